"""A style sheet: one photo painted in every known style and a few blends, on one labelled picture.

:func:`sheet_entries` lists what goes on it: each single-style model, each style of a multi-style
model (``zoo``: the_wave, starry_night, ...) and blends of a multi-style model's styles (by
default two half-and-half mixes of its first four styles). :func:`style_sheet` paints the photo
in each and lays the tiles out in a grid, the photo first, each tile's name under it;
:func:`write_style_sheet` also checks the output (never onto the photo) and writes it atomically.
``painterly sheet PHOTO`` is the command; ``scripts/zoo_report.py --gallery`` builds on it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from painterly.errors import PainterlyError
from painterly.feedforward.catalog import list_models, model_metadata, resolve_model
from painterly.feedforward.files import refuse_overwriting_inputs
from painterly.feedforward.mixing import parse_style_mix
from painterly.images import (
    ImageInput,
    check_output_path,
    image_format,
    open_image,
    resize_long_side,
    save_image,
)

#: Long side of each tile (px) unless asked otherwise.
TILE = 256
#: Height of the label strip under a tile, as a fraction of the tile's long side (at least 18 px).
LABEL_FRACTION = 0.09
#: Gap between tiles (px).
GAP = 6


@dataclass(frozen=True)
class SheetEntry:
    """One tile: its label, the model (name or file) and the style mix (None: the model's own style)."""

    label: str
    model: str
    style_mix: str | None = None


def blend_label(mix: str) -> str:
    """``the_wave:0.7,udnie:0.3`` as ``the_wave 70% + udnie 30%`` (weights normalized); equal
    weights as ``the_wave + udnie``."""
    weights = parse_style_mix(mix) or {}
    if len(set(weights.values())) == 1:
        return " + ".join(weights)
    total = sum(weights.values()) or 1.0
    return " + ".join(f"{name} {100 * weight / total:.0f}%" for name, weight in weights.items())


def default_blends(styles: Sequence[str]) -> list[str]:
    """Two half-and-half blends of a multi-style model's styles: its 1st and 2nd, its 3rd and 4th."""
    pairs = [(0, 1), (2, 3)]
    return [f"{styles[a]}:0.5,{styles[b]}:0.5" for a, b in pairs if b < len(styles)]


def sheet_entries(
    models: Sequence[str] | None = None,
    blends: Sequence[str] | None = None,
    *,
    catalog: Callable[[], list[dict[str, Any]]] | None = None,
) -> list[SheetEntry]:
    """The tiles of a sheet: every model ``painterly models list`` shows (or those named in
    ``models``), one tile per style, then ``blends`` (style mixes of the first multi-style model;
    None: :func:`default_blends`, ``[]``: none)."""
    known = [m for m in (catalog or (lambda: list_models(warn=None)))() if not m.get("shadowed_by")]
    if models:
        by_name = {str(m["name"]): m for m in known}
        chosen = []
        for name in models:
            if name in by_name:
                chosen.append(by_name[name])
            else:  # a model file (.safetensors or .onnx)
                path = resolve_model(name)
                styles = model_metadata(path).get("styles")
                chosen.append({"name": path.stem, "path": str(path), "styles": styles or None})
        known = chosen
    if not known:
        raise PainterlyError("no models to put on a sheet (see 'painterly models list')")
    entries: list[SheetEntry] = []
    multi: dict[str, Any] | None = None
    for m in known:
        styles = m.get("styles")
        if styles:
            multi = multi or m
            entries += [
                SheetEntry(f"{style} ({m['name']})", str(m["path"]), f"{style}:1") for style in styles
            ]
        else:
            entries.append(SheetEntry(str(m["name"]), str(m["path"])))
    mixes = default_blends(multi["styles"]) if blends is None and multi else list(blends or [])
    if mixes and multi is None:
        raise PainterlyError("blends need a multi-style model on the sheet (such as zoo)")
    for mix in mixes:
        assert multi is not None
        unknown = [name for name in parse_style_mix(mix) or {} if name not in multi["styles"]]
        if unknown:  # refused before any tile is painted, not after the whole sheet's work
            raise PainterlyError(
                f"blend {mix!r}: {multi['name']} has no style {unknown[0]!r} "
                f"(styles: {', '.join(multi['styles'])})"
            )
        entries.append(SheetEntry(f"{blend_label(mix)} ({multi['name']})", str(multi["path"]), mix))
    return entries


def style_sheet(
    photo: ImageInput,
    entries: Sequence[SheetEntry] | None = None,
    *,
    size: int = TILE,
    columns: int | None = None,
    progress: Callable[[SheetEntry], None] | None = None,
) -> Image.Image:
    """The photo and its paintings (one per entry; default :func:`sheet_entries`), each ``size`` px
    on its long side with its label under it, in a grid of ``columns`` (default: about square)."""
    from painterly.feedforward.inference import load_model

    if not isinstance(size, int) or isinstance(size, bool) or not 32 <= size <= 4096:
        raise PainterlyError(f"sheet tile size must be a whole number of px from 32 to 4096, got {size!r}")
    entries = list(sheet_entries() if entries is None else entries)
    image = open_image(photo, what="photo")
    tiles = [(resize_long_side(image, size), "photo")]
    loaded: dict[str, Any] = {}
    for entry in entries:
        if progress is not None:
            progress(entry)
        model = loaded.get(entry.model) or loaded.setdefault(entry.model, load_model(entry.model))
        tiles.append((model.stylize(image, size=size, style_mix=entry.style_mix), entry.label))
    return lay_out(tiles, columns)


def lay_out(tiles: Sequence[tuple[Image.Image, str]], columns: int | None = None) -> Image.Image:
    """Tiles in a grid (row by row), each label centred in a strip under its tile, on white."""
    if columns is not None and (not isinstance(columns, int) or isinstance(columns, bool) or columns < 1):
        raise PainterlyError(f"columns must be a positive whole number, got {columns!r}")
    columns = min(columns or math.ceil(math.sqrt(len(tiles))), len(tiles))
    rows = math.ceil(len(tiles) / columns)
    cell_w = max(t.width for t, _ in tiles)
    cell_h = max(t.height for t, _ in tiles)
    strip = max(18, round(max(cell_w, cell_h) * LABEL_FRACTION))
    font = _font(strip)
    sheet = Image.new("RGB", (GAP + columns * (cell_w + GAP), GAP + rows * (cell_h + strip + GAP)), "white")
    draw = ImageDraw.Draw(sheet)
    for index, (tile, label) in enumerate(tiles):
        left = GAP + (index % columns) * (cell_w + GAP)
        top = GAP + (index // columns) * (cell_h + strip + GAP)
        sheet.paste(tile, (left + (cell_w - tile.width) // 2, top + (cell_h - tile.height) // 2))
        text = _fit(draw, label, font, cell_w)
        box = draw.textbbox((0, 0), text, font=font)
        x = left + (cell_w - (box[2] - box[0])) // 2 - box[0]
        y = top + cell_h + (strip - (box[3] - box[1])) // 2 - box[1]
        draw.text((x, y), text, fill=(0, 0, 0), font=font)
    return sheet


def _font(strip: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=max(10, round(strip * 0.6)))
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _fit(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int) -> str:
    """``text``, shortened with an ellipsis until it fits ``width`` px."""
    if draw.textlength(text, font=font) <= width - 4:
        return text
    while len(text) > 1 and draw.textlength(text + "…", font=font) > width - 4:
        text = text[:-1]
    return text + "…"


def write_style_sheet(
    photo: str | os.PathLike,
    output: str | os.PathLike,
    entries: Sequence[SheetEntry] | None = None,
    **options: Any,
) -> Path:
    """:func:`style_sheet` of ``photo`` written atomically to ``output`` (never onto the photo)."""
    output = check_output_path(output)
    image_format(output)  # an unknown suffix fails before any painting
    entries = list(sheet_entries() if entries is None else entries)
    models = [e.model for e in entries if os.path.lexists(e.model)]
    refuse_overwriting_inputs(output, [photo, *models])
    return save_image(style_sheet(photo, entries, **options), output)


__all__ = ["SheetEntry", "default_blends", "lay_out", "sheet_entries", "style_sheet", "write_style_sheet"]
