"""Exporting a feed-forward model to ONNX, with dynamic batch, height and width.

The graph takes (N, 3, H, W) RGB in 0-1 with H and W multiples of 4 and returns the raw output;
:mod:`painterly.feedforward.onnx_backend` pads, clamps and crops around it exactly as the torch path
does. The painterly metadata travels in the ONNX file's ``metadata_props``.
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
from painterly.feedforward.model_file import read_model_file
from painterly.images import check_output_path

OPSET = 17


def export_onnx(model: str | os.PathLike, output: str | os.PathLike, *, opset: int = OPSET) -> Path:
    """Write ``model`` (a model file path or a shipped model's name) as an ONNX file."""
    from painterly.feedforward.inference import resolve_model

    try:
        import onnx
    except ImportError:
        raise PainterlyError("ONNX export needs the onnx package: pip install 'painterly[onnx]'") from None
    output = check_output_path(output)
    net, metadata, _ = read_model_file(resolve_model(model))
    net = net.float().eval()
    example = torch.rand(1, 3, 64, 64)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (example,),
            buffer,
            input_names=["image"],
            output_names=["stylized"],
            opset_version=opset,
            dynamic_axes={
                "image": {0: "batch", 2: "height", 3: "width"},
                "stylized": {0: "batch", 2: "height", 3: "width"},
            },
            dynamo=False,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    metadata = {k: v for k, v in metadata.items() if k != "kind"}
    entry = proto.metadata_props.add()
    entry.key, entry.value = "painterly", json.dumps(metadata, sort_keys=True)
    proto.producer_name = "painterly"
    with atomic_write(output) as handle:
        handle.write(proto.SerializeToString())
    return output
