"""``painterly sheet PHOTO``: the photo in every style and a few blends, on one labelled picture
(a thin layer over :mod:`painterly.feedforward.sheet`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from painterly.cli.number_types import positive_int, whole
from painterly.errors import shown_path


def register(subparsers: argparse._SubParsersAction) -> None:
    sheet = subparsers.add_parser(
        "sheet",
        help="paint one photo in every style and blend, on one labelled sheet",
        description="Paint one photo in every known model's styles (see 'painterly models list') and a "
        "few blends of a multi-style model, on one grid with each style's name under its tile, the "
        "photo first.",
    )
    sheet.add_argument("photo", help="the photo")
    sheet.add_argument("-o", "--output", help="the sheet (default: PHOTO_sheet.png next to the photo)")
    sheet.add_argument(
        "-m", "--model", action="append", help="only these models (names or files; repeat for several)"
    )
    sheet.add_argument(
        "--blend",
        action="append",
        metavar="NAME:W,...",
        help="a blend of a multi-style model's styles, e.g. the_wave:0.5,udnie:0.5 (repeat for several; "
        "default: two half-and-half blends; 'none' for none)",
    )
    sheet.add_argument(
        "--size",
        type=whole("tile size", minimum=32, maximum=4096, unit="px"),
        default=256,
        help="long side of each tile in px (default 256)",
    )
    sheet.add_argument("--columns", type=positive_int, help="tiles per row (default: about square)")
    sheet.set_defaults(handler=run_sheet)


def run_sheet(args: argparse.Namespace) -> int:
    from painterly.feedforward.sheet import SheetEntry, sheet_entries, write_style_sheet

    photo = Path(args.photo)
    output = Path(args.output) if args.output else photo.with_name(f"{photo.stem}_sheet.png")
    blends = None if args.blend is None else [b for b in args.blend if b != "none"]
    entries = sheet_entries(args.model, blends)

    def progress(entry: SheetEntry) -> None:
        print(f"painting {entry.label}", file=sys.stderr, flush=True)

    path = write_style_sheet(photo, output, entries, size=args.size, columns=args.columns, progress=progress)
    print(f"{shown_path(path)} ({len(entries) + 1} tiles)")
    return 0
