"""Running an exported model with onnxruntime: the second runtime, no torch needed at inference.

The session uses all graph optimizations (constant folding, fusions, the CPU provider's blocked
NCHWc layout for convolutions) and, unless told otherwise, one intra-op thread per physical core
(onnxruntime's own default; hyperthreads slow convolutions down). This module imports no torch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from painterly.errors import PainterlyError

#: Height and width are padded to a multiple of this (as :data:`painterly.feedforward.network.MULTIPLE`).
MULTIPLE = 4


def physical_cores() -> int | None:
    """Physical CPU cores on Linux (distinct core ids per package), else None (onnxruntime decides)."""
    try:
        cores = set()
        package = core = None
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "physical id":
                    package = value.strip()
                elif key == "core id":
                    core = value.strip()
                elif not key and core is not None:
                    cores.add((package, core))
                    package = core = None
        if core is not None:
            cores.add((package, core))
        available = len(os.sched_getaffinity(0))
        return min(len(cores), available) if cores else None
    except (OSError, AttributeError):
        return None


class OnnxNet:
    """An onnxruntime session with the same ``stylize_array`` contract as the torch network."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise PainterlyError(
                "--backend onnxruntime needs onnxruntime: pip install 'painterly[onnx]'"
            ) from None
        path = Path(path)
        if not path.is_file():
            raise PainterlyError(f"ONNX model not found: {path}")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        threads = threads or physical_cores()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types for bad files
            raise PainterlyError(
                f"{path} is not a usable ONNX model: {str(exc).splitlines()[0][:200]}"
            ) from None
        self.input = self.session.get_inputs()[0].name
        props = self.session.get_modelmeta().custom_metadata_map
        self.metadata: dict[str, Any] = json.loads(props["painterly"]) if "painterly" in props else {}

    def stylize_array(self, x: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 in 0-1, any H and W, to the clamped result of the same shape."""
        h, w = x.shape[-2:]
        pad_h, pad_w = -h % MULTIPLE, -w % MULTIPLE
        if pad_h or pad_w:
            mode = "reflect" if h > pad_h and w > pad_w else "edge"
            x = np.pad(x, ((0, 0), (0, 0), (0, pad_h), (0, pad_w)), mode=mode)
        out = self.session.run(None, {self.input: np.ascontiguousarray(x, dtype=np.float32)})[0]
        return np.clip(out[..., :h, :w], 0.0, 1.0)
