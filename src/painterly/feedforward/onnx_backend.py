"""Running an exported model with onnxruntime: the second runtime, no torch needed at inference.

The session uses all graph optimizations (constant folding, fusions, the CPU provider's blocked
NCHWc layout for convolutions) and, unless told otherwise, one intra-op thread per physical core
(onnxruntime's own default; hyperthreads slow convolutions down). Its worker threads sleep between
operators instead of spinning: on a machine shared with other work (the video decoder and optical
flow, a live connection's client, other processes) spinning threads take cores from them, and
turning it off was measured 20-35% faster under load.
This module imports no torch.
"""

from __future__ import annotations

import os
from typing import Any, Literal

import numpy as np

from painterly.errors import PainterlyError

#: Height and width are padded to a multiple of this (as :data:`painterly.feedforward.network.MULTIPLE`).
MULTIPLE = 4
#: Sides are padded to at least this (as :data:`painterly.feedforward.network.MIN_SIDE`).
MIN_SIDE = 16


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
    """An onnxruntime session with the same ``stylize_array`` contract as the torch network.

    ``source`` is an ``.onnx`` file or the serialized model itself (an export kept in memory when
    the cache cannot be written). The first graph input is the image; a network that takes more
    (a style-weights vector, say) gets them as keyword arguments of :meth:`stylize_array`.
    """

    def __init__(self, source: str | os.PathLike | bytes, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise PainterlyError(
                "--backend onnxruntime needs onnxruntime: pip install 'painterly[onnx]'"
            ) from None
        if isinstance(source, bytes):
            where: object = "the exported ONNX model"
            model: str | bytes = source
        else:
            from painterly.feedforward.files import require_regular_file

            path = require_regular_file(source, "ONNX model")
            where, model = path, str(path)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        threads = threads or physical_cores()
        if threads:
            options.intra_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types for bad files
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise PainterlyError(f"{where} is not a usable ONNX model: {first[:200]}") from None
        inputs = self.session.get_inputs()
        if not inputs or len(inputs[0].shape) != 4:
            raise PainterlyError(f"{where} is not a painterly ONNX model (no (N, 3, H, W) image input)")
        self.input = inputs[0].name
        self.extra_inputs = [item.name for item in inputs[1:]]
        props = self.session.get_modelmeta().custom_metadata_map
        self.metadata: dict[str, Any] = {}
        if "painterly" in props:
            from painterly.feedforward.model_file import parse_document

            self.metadata = parse_document(props["painterly"], where)

    def stylize_array(self, x: np.ndarray, **extra: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 in 0-1, any H and W, to the clamped result of the same shape."""
        missing = [name for name in self.extra_inputs if name not in extra]
        if missing:
            raise PainterlyError(f"this model needs the inputs {', '.join(missing)} besides the image")
        h, w = x.shape[-2:]
        pad_h, pad_w = padding(h), padding(w)
        if pad_h or pad_w:
            mode: Literal["reflect", "edge"] = "reflect" if h > pad_h and w > pad_w else "edge"
            x = np.pad(x, ((0, 0), (0, 0), (0, pad_h), (0, pad_w)), mode=mode)
        feed = {self.input: np.ascontiguousarray(x, dtype=np.float32)}
        feed.update({name: np.ascontiguousarray(extra[name], dtype=np.float32) for name in self.extra_inputs})
        out = self.session.run(None, feed)[0]
        return np.clip(out[..., :h, :w], 0.0, 1.0)


def padding(side: int) -> int:
    """Pixels to add to ``side``: up to a multiple of :data:`MULTIPLE` and at least :data:`MIN_SIDE`."""
    return max(MIN_SIDE, side + -side % MULTIPLE) - side
