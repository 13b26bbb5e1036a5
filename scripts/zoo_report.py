#!/usr/bin/env python3
"""Judge a trained model on held-out photos: paintings, the yardstick table, and a gallery picture.

For every style of ``--model`` (a multi-style file, or several single-style files) and every photo
and size, stylizes the photo, measures the grid-locked hatching (``lattice4``, from
``scripts/hatching_check.py``) and, with ``--score``, the shared yardstick
(``../shared/tools/score.py``: style_ratio, content_ratio, at 512 px as the issue asks). Prints one
Markdown table and writes every painting to ``--out`` (look at them). With ``--gallery FILE``,
also one picture: a row per photo, the photo and then each style (and ``--blend`` mixes) at
``--thumb`` px, labelled under each tile (:func:`painterly.feedforward.sheet.style_sheet`, the
library's ``painterly sheet``).

Usage::

    python scripts/zoo_report.py --model zoo --paintings DIR --photos a.jpg b.jpg \\
        --sizes 512 1024 --out runs/report --score ../shared/tools/score.py \\
        --gallery docs/gallery.jpg --blend the_wave:0.5,udnie:0.5

``--paintings`` holds each style's painting as ``NAME.jpg`` (the style's name in the model).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

from PIL import Image

import painterly
from painterly.feedforward.sheet import SheetEntry, blend_label, style_sheet
from painterly.images import open_image, save_image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hatching_check import lattice_amplitude  # noqa: E402

SCORE = re.compile(r"style_ratio=([0-9.]+) content_ratio=([0-9.]+)")


def score(tool: Path, photo: Path, painting: Path, output: Path, size: int) -> tuple[float, float]:
    text = subprocess.run(
        [sys.executable, str(tool), str(photo), str(painting), str(output), "--size", str(size)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    match = SCORE.search(text)
    if not match:
        raise SystemExit(f"zoo_report: no figures in the yardstick's output: {text!r}")
    return float(match.group(1)), float(match.group(2))


def painting_for(paintings: Path, style: str) -> Path:
    for suffix in (".jpg", ".jpeg", ".png"):
        if (paintings / f"{style}{suffix}").is_file():
            return paintings / f"{style}{suffix}"
    raise SystemExit(f"zoo_report: no painting for style {style!r} in {paintings}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", nargs="+", required=True, help="a model name or file (several allowed)")
    parser.add_argument("--paintings", type=Path, required=True)
    parser.add_argument("--photos", nargs="+", type=Path, required=True)
    parser.add_argument("--sizes", nargs="+", type=int, default=[512])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--score", type=Path, help="the yardstick script (../shared/tools/score.py)")
    parser.add_argument("--score-size", type=int, default=512)
    parser.add_argument("--gallery", type=Path)
    parser.add_argument("--thumb", type=int, default=256)
    parser.add_argument("--blend", action="append", default=[], help="a style mix for the gallery")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    jobs: list[tuple[str, painterly.StyleModel, str | None]] = []  # (style, model, mix)
    for name in args.model:
        model = painterly.load_model(name)
        styles = list(getattr(model, "styles", None) or []) or [model.name]
        for style in styles:
            jobs.append((style, model, f"{style}:1" if len(styles) > 1 else None))

    print("| style | photo | size | style_ratio | content_ratio | lattice4 |")
    print("| --- | --- | --- | --- | --- | --- |")
    for style, model, mix in jobs:
        painting = painting_for(args.paintings, style)
        for photo in args.photos:
            for size in args.sizes:
                output = args.out / f"{style}__{photo.stem}__{size}.png"
                save_image(model.stylize(photo, size=size, style_mix=mix), output)
                lattice = lattice_amplitude(open_image(output))
                figures = ["-", "-"]
                if args.score and size == args.score_size:
                    figures = [f"{value:.3f}" for value in score(args.score, photo, painting, output, size)]
                print(
                    f"| {style} | {photo.stem} | {size} | {figures[0]} | {figures[1]} | {lattice:.2f} |",
                    flush=True,
                )

    if args.gallery:
        # One row per photo: the style sheet of the library (painterly sheet), photo first, each
        # style and blend labelled under its tile.
        entries = [SheetEntry(style, str(model.path), mix) for style, model, mix in jobs]
        multi = [model for _, model, mix in jobs if mix is not None]
        for blend in args.blend if multi else []:
            entries.append(SheetEntry(blend_label(blend), str(multi[0].path), blend))
        rows = [
            style_sheet(photo, entries, size=args.thumb, columns=len(entries) + 1) for photo in args.photos
        ]
        sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), "white")
        y = 0
        for row in rows:
            sheet.paste(row, (0, y))
            y += row.height
        save_image(sheet, args.gallery)
        print(f"gallery: {args.gallery} ({sheet.width}x{sheet.height})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
