"""``painterly export``: write a model as an ONNX file (:func:`painterly.feedforward.export_onnx`)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    export = subparsers.add_parser("export", help="export a model to ONNX")
    export.add_argument("model", help="model file or shipped model name")
    export.add_argument("--onnx", required=True, metavar="FILE", help="ONNX file to write")
    export.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> int:
    from painterly.errors import shown_path
    from painterly.feedforward.export import export_onnx

    print(shown_path(export_onnx(args.model, args.onnx)))
    return 0
