#!/usr/bin/env python3
"""A before-and-after figure for the docs: photos in rows, models in columns, a published picture last.

    python scripts/before_after.py --photos tubingen.jpg chicago.jpg \\
        --column "shipped until 2026-12-07 (the zoo's row)=zoo:the_wave" \\
        --column "shipped now (step 10000)=src/painterly/models/the_wave.safetensors" \\
        --anchor chicago.jpg=jfn_chicago_wave.jpg --size 384 -o docs/the_wave-before-after.jpg

A column is ``LABEL=MODEL`` or ``LABEL=MODEL:STYLE`` (a style of a multi-style model); a model is a
file or a shipped name. Photos and anchors are looked up as given, then in the developers' shared
material (``$PAINTERLY_SHARED``, default ``../shared``: ``images/`` and ``anchors/``). An anchor
(Johnson et al.'s or pytorch examples' picture of that photo) goes after the row's last column.
Each tile is the photo painted at ``--size`` (long side), labelled under it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from campaign import anchor_picture, shared_file  # this folder's campaign script


def find(name: str) -> Path:
    """``name`` as a path, else in the shared images or anchors (as the campaign looks them up)."""
    return Path(name) if Path(name).is_file() else shared_file(name)


def anchor_label(name: str) -> str:
    """Who painted an anchor, by the shared anchors' file names (SOURCES.md there)."""
    if name.startswith("jfn_"):
        return "Johnson et al."
    if name.startswith("pte_"):
        return "pytorch examples"
    return Path(name).stem


def split_pair(text: str, what: str) -> tuple[str, str]:
    key, sep, value = text.rpartition("=")
    if not sep or not key or not value:
        raise argparse.ArgumentTypeError(f"{what} must be KEY=VALUE, got {text!r}")
    return key, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", nargs="+", required=True, help="one row each")
    parser.add_argument(
        "--column",
        action="append",
        required=True,
        type=lambda t: split_pair(t, "--column"),
        help="LABEL=MODEL or LABEL=MODEL:STYLE (repeat, in order)",
    )
    parser.add_argument(
        "--anchor",
        action="append",
        default=[],
        type=lambda t: split_pair(t, "--anchor"),
        help="PHOTO=PICTURE: a published picture of that photo, shown last in its row",
    )
    parser.add_argument("--size", type=int, default=384, help="long side of each tile (default 384)")
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args(argv)

    from painterly.feedforward.inference import load_model
    from painterly.feedforward.sheet import lay_out
    from painterly.images import open_image, save_image

    models = []
    for label, spec in args.column:
        model, _, style = spec.partition(":") if not Path(spec).is_file() else (spec, "", "")
        models.append((label, load_model(model, backend="torch", style_mix=style or None)))
    anchors = dict(args.anchor)
    unused = sorted(set(anchors) - set(args.photos))
    if unused:
        raise SystemExit(f"before_after: --anchor for a photo not in --photos: {', '.join(unused)}")
    rows: list[list[tuple[Image.Image, str]]] = []
    for name in args.photos:
        photo = open_image(find(name))
        row = [(model.stylize(photo, size=args.size), label) for label, model in models]
        if name in anchors:
            row.append((anchor_picture(find(anchors[name]), args.size), anchor_label(anchors[name])))
        rows.append(row)
    columns = max(len(row) for row in rows)
    blank = (Image.new("RGB", (1, 1), "white"), "")
    tiles = [tile for row in rows for tile in row + [blank] * (columns - len(row))]
    figure = lay_out(tiles, columns)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    save_image(figure, args.output)
    print(f"before_after: wrote {args.output} ({figure.width}x{figure.height})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
