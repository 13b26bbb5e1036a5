"""Running an exported model with onnxruntime: the second runtime, no torch needed at inference."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from painterly.errors import PainterlyError
from painterly.feedforward.network import MULTIPLE


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
