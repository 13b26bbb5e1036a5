"""Exporting a feed-forward model to ONNX, with dynamic batch, height and width.

The graph's inputs come from the model's architecture (:mod:`painterly.feedforward.architectures`):
first the (N, 3, H, W) RGB image in 0-1 with H and W multiples of 4, then whatever else the network
needs. It returns the raw output; :mod:`painterly.feedforward.onnx_backend` pads, clamps and crops
around it exactly as the torch path does. The painterly metadata travels in the ONNX file's
``metadata_props``.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path

import torch

from painterly.atomic import atomic_write
from painterly.errors import PainterlyError
from painterly.feedforward.catalog import resolve_model
from painterly.feedforward.files import refuse_overwriting_inputs
from painterly.feedforward.record import record_for
from painterly.images import check_output_path

OPSET = 17


def export_onnx(model: str | os.PathLike, output: str | os.PathLike, *, opset: int = OPSET) -> Path:
    """Write ``model`` (a model file path or a shipped model's name) as an ONNX file."""
    source = record_for(resolve_model(model))
    output = check_output_path(output)
    refuse_overwriting_inputs(output, [source.path])
    data = onnx_bytes(source, opset=opset)
    try:
        with atomic_write(output) as handle:
            handle.write(data)
    except OSError as exc:
        raise PainterlyError(f"cannot write {output}: {exc.strerror or exc}") from None
    return output


def onnx_bytes(model_path: str | os.PathLike, *, opset: int = OPSET) -> bytes:
    """The serialized ONNX model of a model file (or its record), with its metadata; nothing is
    written to disk."""
    try:
        import onnx
    except ImportError:
        raise PainterlyError("ONNX export needs the onnx package: pip install 'painterly[onnx]'") from None
    record = record_for(model_path)
    net = record.network().float().eval()
    inputs = record.architecture.onnx_inputs(net)
    dynamic_axes = {item.name: item.dynamic_axes for item in inputs}
    dynamic_axes["stylized"] = {0: "batch", 2: "height", 3: "width"}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            tuple(item.example for item in inputs),
            buffer,  # type: ignore[arg-type]  # the stubs omit file objects, which torch takes
            input_names=[item.name for item in inputs],
            output_names=["stylized"],
            opset_version=opset,
            dynamic_axes=dynamic_axes,
            dynamo=False,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    metadata = {k: v for k, v in record.metadata.items() if k != "kind"}
    entry = proto.metadata_props.add()
    entry.key, entry.value = "painterly", json.dumps(metadata, sort_keys=True)
    proto.producer_name = "painterly"
    return bytes(proto.SerializeToString())
