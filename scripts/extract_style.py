#!/usr/bin/env python3
"""Take one style of a multi-style (``cin``) model out as a single-style model file.

A conditional-instance-norm network is a single-style network with one row of norm parameters per
style, so one style's row with all the convolutions is a complete single-style network that paints
exactly what the multi-style one paints for that style (to float rounding). That is how the shipped
``starry_night`` got its teacher: the zoo's ``starry_night`` taken out, then distilled to width 8::

    python scripts/extract_style.py zoo starry_night -o starry_zoo_w12.safetensors
    painterly distill --teacher starry_zoo_w12.safetensors --data photos/ -o starry_night.safetensors \\
        --name starry_night --width 8

The output's metadata keeps the source's loss and training record and adds ``extracted_from``
(the file, its SHA-256, the style and its steps).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

from painterly.errors import PainterlyError
from painterly.feedforward.catalog import resolve_model
from painterly.feedforward.conditional import ConditionalTransformerNet
from painterly.feedforward.extract import single_style
from painterly.feedforward.files import refuse_overwriting_inputs
from painterly.feedforward.model_file import check_model_output, read_model_file, write_model_file
from painterly.images import check_output_path


def extract_style(source: str | Path, style: str, output: str | Path) -> Path:
    """Write ``style`` of the multi-style model ``source`` (a file or shipped name) to ``output``."""
    path = Path(resolve_model(str(source)))
    output = check_output_path(check_model_output(output))
    refuse_overwriting_inputs(output, [path])
    net, meta, _ = read_model_file(path)
    if not isinstance(net, ConditionalTransformerNet):
        raise PainterlyError(f"{path.name} holds one style already: nothing to extract")
    single, metadata = single_style(net, meta, style, path.name)
    metadata["extracted_from"] = {
        "file": path.name,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "style": style,
        "steps": meta.get("steps"),
    }
    return write_model_file(output, single, metadata)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a multi-style model file or shipped name (e.g. zoo)")
    parser.add_argument("style", help="the style to take out (see `painterly models info MODEL`)")
    parser.add_argument("-o", "--output", required=True, help="the single-style model file to write")
    args = parser.parse_args(argv)
    try:
        print(f"wrote {extract_style(args.model, args.style, args.output)}")
    except PainterlyError as exc:
        print(f"extract_style: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
