"""Issue 21's second probe: regions and masks, batch and its manifest under hostile input.

Each test is a defect the probe found: an option given twice silently replaced the first, numbers in
other scripts' digits slipped past ``float()``/``int()``, a keep weight that can only give an infinite
loss ran until it did, a manifest that is a photo or some other file was read (traceback) or appended
to, and a folder's earlier ``transfer`` results were taken as photos again.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from painterly.batch.manifest import Manifest, record
from painterly.cli.number_types import non_negative_float as _non_negative_float
from painterly.cli.number_types import positive_float as _positive_float
from painterly.cli.number_types import positive_int
from painterly.cli.stylize import is_painterly_result, skip_earlier_outputs
from painterly.errors import PainterlyError
from painterly.settings import MAX_WEIGHT
from tests.helpers.images import make_photo


def halves(folder: Path) -> tuple[Path, Path]:
    left = np.zeros((32, 40), np.uint8)
    left[:, :20] = 255
    Image.fromarray(left).save(folder / "left.png")
    Image.fromarray(255 - left).save(folder / "right.png")
    return folder / "left.png", folder / "right.png"


def test_a_keep_or_stylize_mask_given_twice_is_refused_not_replaced(tmp_path: Path, run_cli) -> None:
    left, right = halves(tmp_path)
    photo = tmp_path / "photo.png"
    make_photo(40, 32).save(photo)
    code, _, err = run_cli(
        "transfer", photo, "-s", photo, "--keep", left, "--keep", right, "-o", tmp_path / "o.png"
    )
    assert code == 2 and "--keep: given twice" in err and err.count("\n") == 1, err
    code, _, err = run_cli(
        "stylize", photo, "-m", "starry_night", "--mask", left, "--mask", right, "-o", tmp_path / "s.png"
    )
    assert code == 2 and "--mask: given twice" in err and err.count("\n") == 1, err
    assert not (tmp_path / "o.png").exists() and not (tmp_path / "s.png").exists()


def test_keep_weight_is_capped_and_needs_a_keep_mask(tmp_path: Path, run_cli) -> None:
    left, _ = halves(tmp_path)
    photo = tmp_path / "photo.png"
    make_photo(40, 32).save(photo)
    base = ("transfer", photo, "-s", photo, "--size", "32", "--iterations", "1", "-o", tmp_path / "o.png")
    # 1e308 ran a full iteration (seconds of work) before the loss became NaN
    code, _, err = run_cli(*base, "--keep", left, "--keep-weight", "1e308")
    assert code == 2 and f"at most {MAX_WEIGHT:g}" in err and err.count("\n") == 1, err
    # without --keep the weight was silently ignored (--feather without --mask is refused)
    code, _, err = run_cli(*base, "--keep-weight", "3")
    assert code == 2 and "give the mask too" in err and err.count("\n") == 1, err
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("text", ["３", "٣", "1_0", "inf", "nan", "-1", "1001"])
def test_feather_takes_ascii_numbers_only(text: str, tmp_path: Path, run_cli) -> None:
    left, _ = halves(tmp_path)
    photo = tmp_path / "photo.png"
    make_photo(40, 32).save(photo)
    code, _, err = run_cli(
        "stylize", photo, "-m", "starry_night", "--mask", left, "--feather", text, "-o", tmp_path / "s.png"
    )
    assert code == 2 and "--feather" in err and err.count("\n") == 1, err


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=12))
def test_worker_counts_are_ascii_whole_numbers_or_one_refusal(text: str) -> None:
    """--workers, --batch-size (positive_int) and --cpus-per-worker never pass other scripts' digits,
    'inf' or 'nan', and fail only with argparse's one-line error."""
    for parse in (positive_int, _positive_float, _non_negative_float):
        try:
            value = parse(text)
        except argparse.ArgumentTypeError:
            continue
        assert text.strip().isascii() and np.isfinite(value) and value >= 0
        assert parse is _non_negative_float or value > 0


@pytest.mark.parametrize("text", ["２", "٣", "1_000", "inf", "nan", "1e400"])
def test_batch_numbers_refuse_unicode_digits_and_infinity(text: str) -> None:
    for parse in (positive_int, _positive_float, _non_negative_float):
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)


def test_a_manifest_that_is_not_one_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    binary = tmp_path / "photo.png"
    make_photo(40, 32).save(binary)
    text = tmp_path / "notes.txt"
    text.write_text("shopping\nlist\n")
    for path in (binary, text):
        before = path.read_bytes()
        with pytest.raises(PainterlyError, match="not a painterly manifest"):
            Manifest(path).latest()
        assert path.read_bytes() == before
    torn = tmp_path / "torn.jsonl"  # one torn line is still a manifest (a run killed mid-write)
    torn.write_text('{"output": "a.png", "sta')
    assert Manifest(torn).latest() == {}
    good = tmp_path / "good.jsonl"
    manifest = Manifest(good)
    manifest.append(record("a.png", "b.png", 0.1))
    manifest.close()
    good.write_text(good.read_text() + "garbage\n")
    assert list(Manifest(good).latest()) == ["b.png"]


def test_batch_refuses_an_input_or_binary_file_as_manifest_and_makes_no_folder(
    tmp_path: Path, run_cli
) -> None:
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    make_photo(40, 32).save(first)
    make_photo(40, 32, seed=1).save(second)
    before = second.read_bytes()
    out = tmp_path / "out"
    base = ("batch", "stylize", first, second, "-m", "starry_night", "-o", out, "--engine", "local")
    code, _, err = run_cli(*base, "--manifest", second)
    assert code == 2 and "refusing to use the input" in err and err.count("\n") == 1, err
    assert second.read_bytes() == before
    notes = tmp_path / "notes.txt"
    notes.write_text("one\ntwo\n")
    code, _, err = run_cli(*base, "--manifest", notes)
    assert code == 2 and "not a painterly manifest" in err and err.count("\n") == 1, err
    assert notes.read_text() == "one\ntwo\n" and not out.exists()


def test_earlier_transfer_results_in_a_folder_are_not_taken_as_photos(tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    make_photo(40, 32).save(photo)
    from PIL import PngImagePlugin

    for name, key in (("t_styled.png", "painterly_method"), ("c_styled.png", "painterly:settings")):
        info = PngImagePlugin.PngInfo()
        info.add_text(key, "x")
        make_photo(40, 32).save(tmp_path / name, pnginfo=info)
        assert is_painterly_result(tmp_path / name)
    assert not is_painterly_result(photo)
    found = sorted(tmp_path.glob("*.png"))
    assert skip_earlier_outputs(found, [str(tmp_path)]) == [photo]


def test_sheet_refuses_an_unknown_blend_style_before_painting_anything() -> None:
    from painterly.feedforward.sheet import sheet_entries

    def catalog() -> list[dict]:
        return [{"name": "zoo", "path": "zoo.safetensors", "styles": ["the_wave", "udnie"]}]

    # this ran every tile (half a minute) before the last one found no style 'nosuch'
    for mix in ("nosuch:1", "the_wave:1,nosuch:1"):
        with pytest.raises(PainterlyError, match="zoo has no style 'nosuch'"):
            sheet_entries(blends=[mix], catalog=catalog)
    assert sheet_entries(blends=["the_wave:1,udnie:1"], catalog=catalog)[-1].style_mix == "the_wave:1,udnie:1"


@pytest.mark.parametrize("size", ["0", "31", "4097", "２"])
def test_sheet_size_names_the_real_limits(size: str, tmp_path: Path, run_cli) -> None:
    photo = tmp_path / "photo.png"
    make_photo(40, 32).save(photo)
    code, _, err = run_cli("sheet", photo, "--size", size, "-o", tmp_path / "s.png")
    assert code == 2 and "--size: tile size must" in err and err.count("\n") == 1, err
    assert "at least 1," not in err and not (tmp_path / "s.png").exists()


def test_a_tile_size_made_of_halos_is_refused_before_the_run() -> None:
    """``--tile-size 1`` on a 256 px picture: 200-odd tiles of mostly halo, a run that looked hung."""
    from painterly.losses.tiled import MAX_TILED_COST, TiledLoss, tiling_for
    from tests.helpers.tiled import DEEP, make_criterion

    criterion = make_criterion(config=DEEP)
    for tile in (1, 16):
        with pytest.raises(PainterlyError, match=rf"--tile-size {tile} cuts a 256x205 image"):
            tiling_for(criterion, 256, 205, tile, None)
    tiled = tiling_for(criterion, 256, 205, 128, None)  # a sensible size still tiles
    assert isinstance(tiled, TiledLoss) and tiled.cost_factor(205, 256) <= MAX_TILED_COST
    assert tiling_for(criterion, 256, 205, 0, None) is None


def test_stylize_refuses_an_output_above_the_pixel_limit_before_any_work(tmp_path: Path, run_cli) -> None:
    """``--size 80000`` (a typo for 800) started tiled inference of a 6-gigapixel output; now the
    parser caps the side, and a side under the cap whose picture is above the pixel limit is
    refused before the model loads."""
    photo = tmp_path / "photo.png"
    make_photo(40, 30).save(photo)
    code, _, err = run_cli(
        "stylize", photo, "-m", "starry_night", "--size", "16384", "-o", tmp_path / "s.png"
    )
    assert code == 2 and "16384x12288 pixels, more than the limit" in err and "--size" in err, err
    from painterly.cli.stylize import MAX_OUTPUT_SIDE
    from painterly.settings import MAX_SIZE

    assert MAX_OUTPUT_SIDE == MAX_SIZE
    for size in ("0", "-5", "８", "16385", "80000"):
        code, _, err = run_cli(
            "stylize", photo, "-m", "starry_night", "--size", size, "-o", tmp_path / "s.png"
        )
        assert code == 2 and "--size" in err and err.count("\n") == 1, err
    assert not (tmp_path / "s.png").exists()
