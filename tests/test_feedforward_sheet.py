"""The style sheet: one photo in every style and blend, labelled, written atomically."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from painterly.errors import PainterlyError
from painterly.feedforward.catalog import list_models
from painterly.feedforward.sheet import (
    GAP,
    SheetEntry,
    blend_label,
    lay_out,
    sheet_entries,
    style_sheet,
    write_style_sheet,
)

from .helpers.images import make_photo


def _shipped_styles() -> list[str]:
    names = []
    for m in list_models(warn=None):
        names += list(m["styles"] or [m["name"]])
    return names


def test_entries_hold_every_style_of_every_model_and_two_blends() -> None:
    entries = sheet_entries()
    styles = _shipped_styles()
    assert len(entries) == len(styles) + 2
    labels = [e.label for e in entries]
    assert len(set(labels)) == len(labels)
    for style in styles:  # every style's name is on some tile
        assert any(label.split(" (")[0] == style for label in labels)
    zoo = next(m for m in list_models(warn=None) if m["styles"])
    first, second = zoo["styles"][:2]
    assert entries[-2] == SheetEntry(f"{first} + {second} (zoo)", zoo["path"], f"{first}:0.5,{second}:0.5")


def test_entries_of_chosen_models_and_blends() -> None:
    assert [e.label for e in sheet_entries(["starry_night"], [])] == ["starry_night"]
    entries = sheet_entries(["zoo"], ["the_wave:3,udnie:1"])
    assert entries[-1].label == "the_wave 75% + udnie 25% (zoo)"
    with pytest.raises(PainterlyError, match="multi-style"):
        sheet_entries(["starry_night"], ["the_wave:0.5,udnie:0.5"])
    with pytest.raises(PainterlyError, match="no model file or known model"):
        sheet_entries(["no_such_model"])


def test_blend_label() -> None:
    assert blend_label("a:0.5,b:0.5") == "a + b"
    assert blend_label("a:0.7,b:0.3") == "a 70% + b 30%"


def _dark(region: Image.Image) -> int:
    return int((np.asarray(region.convert("L")) < 100).sum())


def test_layout_puts_each_tile_in_its_cell_with_its_label_under_it() -> None:
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30), (30, 200, 200)]
    tiles = [(Image.new("RGB", (40, 30), c), f"tile{i}") for i, c in enumerate(colours)]
    sheet = lay_out(tiles)
    columns = math.ceil(math.sqrt(len(tiles)))  # 3 columns, 2 rows
    cell_w, cell_h = 40, 30
    strip = (sheet.height - GAP) // 2 - cell_h - GAP
    assert sheet.width == GAP + columns * (cell_w + GAP)
    for index, colour in enumerate(colours):
        left = GAP + (index % columns) * (cell_w + GAP)
        top = GAP + (index // columns) * (cell_h + strip + GAP)
        assert sheet.getpixel((left + 20, top + 15)) == colour
        assert _dark(sheet.crop((left, top + cell_h, left + cell_w, top + cell_h + strip))) > 10  # a label
    # The empty sixth cell has neither tile nor label.
    left, top = GAP + 2 * (cell_w + GAP), GAP + cell_h + strip + GAP
    assert _dark(sheet.crop((left, top, left + cell_w, top + cell_h + strip))) == 0


def test_sheet_has_the_photo_then_one_tile_per_entry() -> None:
    painted: list[str] = []
    entries = sheet_entries(["starry_night", "zoo"], ["the_wave:0.5,udnie:0.5"])
    photo = make_photo(64, 48)
    sheet = style_sheet(
        photo, entries, size=32, columns=len(entries) + 1, progress=lambda e: painted.append(e.label)
    )
    assert painted == [e.label for e in entries]
    assert sheet.width == GAP + (len(entries) + 1) * (32 + GAP)  # one row: the photo and every tile
    first = np.asarray(sheet.crop((GAP, GAP, GAP + 32, GAP + 24)), dtype=np.float32)
    expected = np.asarray(photo.resize((32, 24), Image.Resampling.LANCZOS), dtype=np.float32)
    assert np.abs(first - expected).mean() < 12  # the photo comes first
    second = np.asarray(sheet.crop((2 * GAP + 32, GAP, 2 * GAP + 64, GAP + 24)), dtype=np.float32)
    assert np.abs(second - expected).mean() > 12  # then a painting of it


def test_write_refuses_to_overwrite_the_photo_and_checks_the_output_first(tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    make_photo().save(photo)
    before = photo.read_bytes()
    entries = [SheetEntry("x", "no-such-model.safetensors")]  # never loaded: refused before painting
    with pytest.raises(PainterlyError, match="overwrite"):
        write_style_sheet(photo, photo, entries)
    with pytest.raises(PainterlyError, match="unknown output format"):
        write_style_sheet(photo, tmp_path / "sheet.xyz", entries)
    assert photo.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png"]


def test_cli_writes_a_sheet_and_refuses_the_photo_as_output(tmp_path: Path, run_cli) -> None:
    photo = tmp_path / "photo.png"
    make_photo().save(photo)
    code, out, err = run_cli("sheet", photo, "-m", "starry_night", "--blend", "none", "--size", "32")
    assert code == 0, err
    sheet = tmp_path / "photo_sheet.png"
    assert str(sheet) in out and "2 tiles" in out
    assert Image.open(sheet).size == (GAP + 2 * (32 + GAP), GAP + 24 + 18 + GAP)
    code, out, err = run_cli("sheet", photo, "-o", photo, "-m", "starry_night")
    assert code == 2 and "refusing to overwrite" in err and len(err.strip().splitlines()) == 1
