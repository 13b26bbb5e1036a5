"""The tiled loss evaluation (painterly.losses.tiled): the same loss and gradient as the whole image."""

import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from painterly.errors import PainterlyError
from painterly.losses import GuidedGramStyleLoss, PerceptualLoss
from painterly.losses.tiled import TiledLoss, alignment, halo_for, lbfgs_history_for, spans, tiling_for
from painterly.optimization import Painter, make_settings
from painterly.settings import check_memory, estimated_tiled_bytes, needs_tiles

from .helpers.images import make_painting, make_photo
from .helpers.tiled import DEEP, SHALLOW, STYLE_LAYERS, make_criterion


@pytest.fixture(autouse=True)
def one_thread() -> Any:
    """Dozens of tiny tiles: on a busy 2-core machine, two threads' hand-offs took 40 s, one thread 3 s."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _whole(criterion: PerceptualLoss, image: torch.Tensor) -> tuple[dict[str, float], torch.Tensor]:
    leaf = image.clone().requires_grad_(True)
    losses = criterion(leaf)
    losses["total"].backward()
    assert leaf.grad is not None
    return {name: value.item() for name, value in losses.items()}, leaf.grad


def _image(seed: int = 1, config: Any = SHALLOW) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, *config["size"], generator=generator)


def _check_equal(convention: str, tv_form: str, config: Any, tiles: int) -> None:
    criterion = make_criterion(convention, tv_form, config)
    image = _image(config=config)
    whole, whole_grad = _whole(criterion, image)
    tiled = TiledLoss(criterion, config["tile"])
    assert len(tiled.tiles(*config["size"])) == tiles
    losses, grad = tiled.evaluate(image)
    assert list(losses) == list(whole)
    for name, value in whole.items():
        assert losses[name].item() == pytest.approx(value, rel=1e-5), name
    _assert_close(grad, whole_grad)


def test_halo_covers_the_receptive_field_of_the_deepest_layer() -> None:
    # The band a cut edge spoils: 5 activations at stride 16 for relu5_1, 5 at stride 8 for relu4_2.
    assert halo_for("vgg19", ["relu5_1"]) == 80
    assert halo_for("vgg19", ["relu4_2"]) == 40
    assert halo_for("vgg19", ["relu1_1", "relu3_1"]) == 12
    assert halo_for("vgg16", ["relu5_1"]) == 64  # 3 convolutions per block in blocks 3-4
    assert alignment("vgg19", STYLE_LAYERS) == 16
    assert alignment("vgg19", ["relu4_2"]) == 8


def test_spans_cover_the_image_once_aligned() -> None:
    parts = spans(150, 48, 80)
    assert [(p.start, p.end) for p in parts] == [(0, 48), (48, 96), (96, 144), (144, 150)]
    assert all(
        p.lo % 16 == 0 and p.lo == max(0, p.start - 80) and p.hi == min(150, p.end + 80) for p in parts
    )


@pytest.mark.parametrize(("convention", "tv_form"), [("classic", "squared"), ("keras", "power1.25")])
def test_tiled_loss_and_gradient_equal_the_whole_images(convention: str, tv_form: str) -> None:
    _check_equal(convention, tv_form, SHALLOW, tiles=5 * 7)  # 38 x 54 px in 8 px cores: neither a multiple


@pytest.mark.slow
def test_tiled_loss_and_gradient_equal_the_whole_images_to_relu5_1() -> None:
    _check_equal("classic", "squared", DEEP, tiles=3 * 4)  # 80 px halo, 16 px pooling grid


def test_a_halo_narrower_than_the_receptive_field_gives_a_wrong_gradient() -> None:
    criterion = make_criterion()
    image = _image()
    _, whole_grad = _whole(criterion, image)
    tiled = TiledLoss(criterion, SHALLOW["tile"])
    tiled.halo = 4  # relu3_1 needs 12
    _, grad = tiled.evaluate(image)
    assert (grad - whole_grad).abs().max() > 1e-2 * whole_grad.abs().max()


def test_tiled_targets_equal_the_whole_images() -> None:
    criterion = make_criterion()
    image = _image(2)
    tiled = TiledLoss(criterion, 8)
    features, whole_features = tiled.features(image, ["relu2_2"]), criterion.content_features(image)
    _assert_close(features["relu2_2"], whole_features["relu2_2"])
    grams, whole = tiled.grams(image, SHALLOW["style"]), criterion.style_grams(image)
    for layer in SHALLOW["style"]:
        _assert_close(grams[layer], whole[layer])


def _assert_close(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.shape == b.shape
    assert (a - b).abs().max() <= 1e-5 * b.abs().max()


def test_an_evaluation_stops_between_tiles_when_asked() -> None:
    tiled = TiledLoss(make_criterion(), 8)
    calls = []

    def between() -> None:
        calls.append(1)
        if len(calls) == 2:
            raise TimeoutError

    with pytest.raises(TimeoutError):
        tiled.evaluate(_image(), between_tiles=between)
    assert len(calls) == 2


def test_masked_style_is_left_whole_unless_tiles_are_asked_for() -> None:
    criterion = make_criterion()
    masked = criterion.with_terms({"style": (GuidedGramStyleLoss({"relu1_1": 1.0}), 1.0)})
    assert tiling_for(masked, 4000, 3000, None, 2**30) is None  # automatic: whole image
    with pytest.raises(PainterlyError, match="tile-size .* masked style"):
        tiling_for(masked, 4000, 3000, 512, 2**30)
    assert isinstance(tiling_for(criterion, 4000, 3000, None, 2**30), TiledLoss)
    assert tiling_for(criterion, 4000, 3000, 0, 2**30) is None  # never
    assert tiling_for(criterion, 400, 300, 512, 2**30) is None  # one tile would hold it


def test_tiles_are_automatic_when_the_whole_image_would_not_fit() -> None:
    gib = 2**30
    assert not needs_tiles(512, 384, 24 * gib, None)
    assert needs_tiles(3840, 2160, 24 * gib, None)  # 32 GiB whole
    assert not needs_tiles(3840, 2160, 24 * gib, 0)
    assert needs_tiles(1024, 768, 24 * gib, 256)
    assert not needs_tiles(3840, 2160, None, None)  # unknown memory: as before
    check_memory(3840, 2160, 24 * gib)  # refused before tiles; now about 7 GiB
    assert estimated_tiled_bytes(3840, 2160) <= 8 * gib
    assert estimated_tiled_bytes(7680, 4320) <= 16 * gib
    with pytest.raises(PainterlyError, match="try --size"):
        check_memory(3840, 2160, 24 * gib, tile_size=0)  # tiles turned off


def test_lbfgs_history_is_cut_to_fit_large_images() -> None:
    assert lbfgs_history_for(512 * 512, 50, 3 * 2**30) == 50
    assert lbfgs_history_for(3840 * 2160, 50, 3 * 2**30) == 16
    assert lbfgs_history_for(7680 * 4320, 50, 3 * 2**30) == 4
    assert lbfgs_history_for(16384 * 12288, 50, 3 * 2**30) == 3  # never fewer than 3


def test_a_tiled_painting_equals_the_whole_image_painting() -> None:
    content, style = make_photo(48, 40), make_painting(32, 32)
    options: dict[str, Any] = {
        "size": 48,
        "scales": 1,
        "iterations": 3,
        "precision": "fp32",
        "device": "cpu",
        "content_layers": ["relu2_2"],
        "style_layers": ["relu1_1", "relu2_1", "relu3_1"],
    }
    whole = Painter(make_settings(tile_size=0, **options), style).paint(content)
    tiled = Painter(make_settings(tile_size=16, **options), style).paint(content)
    difference = np.abs(np.asarray(whole.image, dtype=float) - np.asarray(tiled.image, dtype=float))
    assert difference.max() <= 1 and tiled.image.size == whole.image.size
    assert tiled.last is not None and whole.last is not None
    assert tiled.last.losses["total"] == pytest.approx(whole.last.losses["total"], rel=1e-3)


def test_the_cost_of_tiles_counts_the_halos() -> None:
    tiled = TiledLoss(make_criterion(config=DEEP), 512)
    assert tiled.halo == 80 and len(tiled.tiles(2160, 3840)) == 8 * 5
    # regions cover 4960 x 2800 px of the 3840 x 2160 image (halos overlap), each pixel costing 1.8
    assert tiled.cost_factor(2160, 3840) == pytest.approx(4960 * 2800 / (3840 * 2160) * 1.8)


def test_the_cli_starts_a_4k_run_in_tiles_and_refuses_it_without(
    run_cli: Any, tmp_path: Path, photo_path: Path, painting_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:

    started: list[Any] = []

    def run_transfer(content: object, style: object, settings: Any, *args: object, **kwargs: object) -> None:
        started.append(settings)
        raise PainterlyError("the run started")

    fake = types.ModuleType("painterly.optimization")
    fake.run_transfer = run_transfer  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "painterly.optimization", fake)
    monkeypatch.setattr("painterly.memory.available_memory", lambda: 24 * 2**30)
    args = (photo_path, "-s", painting_path, "-o", tmp_path / "o.png", "--size", "3840")
    code, _, err = run_cli(*args)
    assert code == 2 and "the run started" in err and started[0].tile_size is None
    code, _, err = run_cli(*args, "--tile-size", "0")
    assert code == 2 and "GiB of memory" in err and len(started) == 1
    code, _, err = run_cli(*args, "--tile-size", "384")
    assert code == 2 and "the run started" in err and started[1].tile_size == 384


def test_a_time_limit_stops_a_tiled_evaluation_between_tiles() -> None:
    content, style = make_photo(48, 40), make_painting(32, 32)
    settings = make_settings(
        size=48, scales=1, iterations=50, time_limit=1e-3, tile_size=16, precision="fp32", device="cpu"
    )
    result = Painter(settings, style).paint(content, init=content)
    # Time was up before the first evaluation's first tile was done: no evaluation completed, and
    # the best image so far (the start, here the photo itself) is the result.
    assert result.last is None and result.image.size == content.size
    assert np.abs(np.asarray(result.image, dtype=float) - np.asarray(content, dtype=float)).mean() < 2


def test_the_cpu_counts_the_memory_a_run_may_use_as_the_checks_do(monkeypatch: pytest.MonkeyPatch) -> None:
    # Under ``ulimit -v`` the checks before a run count the address space left; the painter's
    # automatic tiles must count the same, or a run the check passed as tiled is painted whole.
    from painterly import memory
    from painterly.devices import device_memory

    monkeypatch.setattr(memory, "physical_memory", lambda: 64 * 2**30)
    monkeypatch.setattr(memory, "address_space_left", lambda: 6 * 2**30)
    assert device_memory(torch.device("cpu")) == 6 * 2**30
    assert needs_tiles(2048, 1536, device_memory(torch.device("cpu")), None)  # ~12 GiB whole
    monkeypatch.setattr(memory, "address_space_left", lambda: None)
    assert device_memory(torch.device("cpu")) == 64 * 2**30
    assert not needs_tiles(2048, 1536, device_memory(torch.device("cpu")), None)
