"""``painterly models list``, ``painterly models info`` and ``painterly models blend``: the model
catalog (:mod:`painterly.feedforward.catalog`) on the command line, torch-free; and blends of
models by their weights (:mod:`painterly.feedforward.weight_blend`)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    models = subparsers.add_parser("models", help="list models or show a model file's metadata")
    models_sub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    info = models_sub.add_parser("info", help="print a model file's metadata (.safetensors or .onnx)")
    info.add_argument("file", help="model file or shipped model name")
    info.add_argument("--json", action="store_true", help="as JSON")
    info.set_defaults(handler=run_models_info)
    listing = models_sub.add_parser("list", help="shipped models and those in $PAINTERLY_MODELS")
    listing.add_argument("--json", action="store_true", help="as JSON")
    listing.set_defaults(handler=run_models_list)
    blend = models_sub.add_parser(
        "blend",
        help="blend models fine-tuned from one network into one model file",
        description="Write the weighted mean of single-style models' weights as a new model: one "
        "network that paints between their styles, as fast as either. The models must be of one shape "
        "and fine-tuned from one network (train --init), such as the shipped starry_night and the_wave; "
        "others are refused, since the mean of unrelated weights paints mush.",
    )
    blend.add_argument(
        "parts", nargs="+", metavar="MODEL[:WEIGHT]", help="model name or file, weight (default 1)"
    )
    blend.add_argument("-o", "--output", required=True, help="model file to write (.safetensors)")
    blend.add_argument("--name", help="model name in its metadata (default blend)")
    blend.set_defaults(handler=run_models_blend)


def _warn(message: str) -> None:
    print(f"painterly: warning: {' '.join(message.split())}", file=sys.stderr)


def _printable(value: Any) -> Any:
    """``value`` with control characters escaped in every string: a model file's metadata is the
    trainer's text (``--name``), and a raw newline or escape sequence would forge lines."""
    from painterly.errors import shown

    if isinstance(value, str):
        return shown(value, limit=10_000)
    if isinstance(value, dict):
        return {shown(k, limit=10_000): _printable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_printable(v) for v in value]
    return value


def run_models_info(args: argparse.Namespace) -> int:
    from painterly.feedforward.catalog import model_metadata, resolve_model
    from painterly.feedforward.model_file import describe

    metadata = model_metadata(resolve_model(args.file))
    print(json.dumps(metadata, indent=2, sort_keys=True) if args.json else describe(_printable(metadata)))
    return 0


def run_models_list(args: argparse.Namespace) -> int:
    from painterly.feedforward.catalog import list_models

    models = [{k: v for k, v in m.items() if k != "metadata"} for m in list_models(warn=_warn)]
    if args.json:
        print(json.dumps(models, indent=2))
    else:
        for m in models:
            m = {k: _printable(v) for k, v in m.items()}
            steps = "-" if m["steps"] is None else m["steps"]
            print(f"{m['name']:20} width {m['width']!s:<4} {steps} steps  {m['source']:8} {m['path']}")
            if m.get("shadowed_by"):
                print(f"{'':20} not used: the name {m['name']} finds {m['shadowed_by']}")
            if m.get("styles"):
                print(f"{'':20} styles: {', '.join(map(str, m['styles']))} (--style-mix NAME:W,...)")
    return 0


def run_models_blend(args: argparse.Namespace) -> int:
    from painterly.errors import shown_path
    from painterly.feedforward.weight_blend import blend_models, parse_blend_part

    path = blend_models([parse_blend_part(text) for text in args.parts], args.output, name=args.name)
    print(f"wrote {shown_path(path)}")
    return 0
