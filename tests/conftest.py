"""Shared fixtures: tiny generated images, the optional shared test images, a CLI runner.

Plain helper functions live in ``tests/helpers/``; test modules import them from there, not from here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers.images import make_painting, make_photo, wavy_photo

SHARED_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"


@pytest.fixture
def training_data(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    """Three wavy photos in a folder, and three small style images (stripes, dots, a gradient)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        wavy_photo(i).save(folder / f"photo{i}.png")
    y, x = np.mgrid[0:64, 0:64]
    stripes = ((x + y) // 4 % 2).astype(np.float32)
    paths = []
    for name, array in {
        "stripes": np.stack([stripes, 1 - stripes, stripes * 0.5], -1),
        "dots": np.stack([np.sin(x / 3.0) * np.cos(y / 3.0)] * 3, -1) * 0.5 + 0.5,
        "mine": np.stack([x / 64, y / 64, 1 - x / 64], -1),
    }.items():
        path = tmp_path / f"{name}.png"
        Image.fromarray((array * 255).astype(np.uint8)).save(path)
        paths.append(path)
    return folder, paths[0], paths[1], paths[2]


@pytest.fixture
def photo_path(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    make_photo().save(path)
    return path


@pytest.fixture
def painting_path(tmp_path: Path) -> Path:
    path = tmp_path / "painting.png"
    make_painting().save(path)
    return path


@pytest.fixture
def shared_images() -> Path:
    if not (SHARED_IMAGES / "tubingen.jpg").exists():
        pytest.skip("../shared/images is not present")
    return SHARED_IMAGES


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]):
    """Run ``painterly ARGS`` in-process; return (exit code, stdout, stderr)."""
    from painterly.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture(autouse=True)
def no_speed_calibration(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests run the plain compute path (float32, NCHW) without timing anything: the same numbers on
    every machine and no writes to the user's cache. tests/test_tuning.py turns calibration back on."""
    monkeypatch.setenv("PAINTERLY_CALIBRATE", "0")
