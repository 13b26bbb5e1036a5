"""Shared fixtures: tiny generated images, the optional shared test images, a CLI runner."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from PIL import Image

if TYPE_CHECKING:  # torch is imported by the helpers that need it, not by every test
    from painterly.feedforward.conditional import ConditionalTransformerNet
    from painterly.feedforward.network import TransformerNet

SHARED_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"


def import_file(path: Path, name: str) -> ModuleType:
    """Import a script that is not a package module (``scripts/``, the shared tools) by its path."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def make_photo(width: int = 64, height: int = 48, seed: int = 0) -> Image.Image:
    """A smooth 'photo': gradients with a bright disc, so content structure exists."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = x / width
    g = y / height
    b = ((x - width / 2) ** 2 + (y - height / 2) ** 2 < (min(width, height) / 3) ** 2).astype(np.float32)
    array = np.stack([r, g, 0.3 + 0.6 * b], axis=-1) + rng.normal(0, 0.02, (height, width, 3))
    return Image.fromarray((np.clip(array, 0, 1) * 255).astype(np.uint8), "RGB")


def make_painting(width: int = 64, height: int = 64, seed: int = 1) -> Image.Image:
    """A 'painting': diagonal stripes of saturated colour, a strong texture for Gram matrices."""
    y, x = np.mgrid[0:height, 0:width]
    stripes = ((x + y) // 6) % 3
    palette = np.array([[230, 40, 30], [250, 210, 40], [20, 60, 200]], dtype=np.uint8)
    return Image.fromarray(palette[stripes], "RGB")


def wavy_photo(
    seed: int = 0, size: tuple[int, int] = (64, 48), frequencies: tuple[float, float] = (2, 8)
) -> Image.Image:
    """A smooth, photo-like image of random sine waves per channel."""
    rng = np.random.default_rng(seed)
    width, height = size
    y, x = np.mgrid[0:height, 0:width] / max(size)
    channels = [
        np.sin(x * rng.uniform(*frequencies) + rng.uniform(0, 6)) * np.cos(y * rng.uniform(*frequencies))
        for _ in range(3)
    ]
    array = (np.stack(channels, -1) * 0.4 + 0.5).clip(0, 1)
    return Image.fromarray((array * 255).astype(np.uint8))


def tiny_style_net(width: int = 4, seed: int = 1) -> TransformerNet:
    """A small random transformer network whose outputs sit inside 0-1 (so clamping hides nothing)."""
    import torch

    from painterly.feedforward.network import TransformerNet

    torch.manual_seed(seed)
    net = TransformerNet(width)
    with torch.no_grad():
        net.decoder[-1][1].bias.fill_(0.5)  # type: ignore[index]
        net.decoder[-1][1].weight.mul_(0.2)  # type: ignore[index]
    return net.eval()


def tiny_cin(styles: list[str], seed: int = 3) -> ConditionalTransformerNet:
    """A width-4 multi-style network whose styles differ clearly and whose outputs sit inside 0-1."""
    import torch

    from painterly.feedforward.conditional import ConditionalTransformerNet

    torch.manual_seed(seed)
    net = ConditionalTransformerNet(4, styles)
    with torch.no_grad():
        for norm in net.norms():
            norm.scale.normal_(1.0, 0.5)
            norm.shift.normal_(0.0, 0.5)
        net.output[1].bias.fill_(0.5)  # type: ignore[operator]
        net.output[1].weight.mul_(0.2)  # type: ignore[operator]
    return net.eval()


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


def tiny_train_settings(folder: Path, style: object, output: Path, **overrides: object) -> Any:
    """:class:`TrainSettings` for a seconds-long CPU training: width 4, 32 px crops, fp32."""
    from painterly.feedforward.training import TrainSettings

    values: dict[str, Any] = dict(
        style=style,
        data=folder,
        output=output,
        iterations=6,
        batch_size=2,
        image_size=32,
        width=4,
        style_size=64,
        checkpoint_every=3,
        log_every=1,
        validate_every=100,
        validation_size=32,
        precision="fp32",
        device="cpu",
        learning_rate=1e-2,
    )
    values.update(overrides)
    return TrainSettings(**values)
