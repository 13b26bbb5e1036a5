"""``--quality draft|normal|best``: one setting that plans the pyramid, the iterations and the stopping
rule; the start images that let the default spend half the former evaluations (issue 24)."""

import dataclasses
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from painterly.errors import PainterlyError
from painterly.images import pil_to_tensor
from painterly.optimization import (
    colour_matched_start,
    iterations_per_scale,
    make_settings,
    run_transfer,
    scale_sizes,
    upscaled_start,
)
from painterly.schedule import Plateau, Schedule
from painterly.settings import QUALITIES, QUALITY_PLANS, config_schema, settings_from_strings

from .helpers.images import make_painting, make_photo


def test_the_default_is_normal_and_plans_half_the_former_default_s_work() -> None:
    assert make_settings().quality == "normal"
    assert scale_sizes(512, None) == [128, 256, 512]
    assert iterations_per_scale(None, 3) == [30, 20, 15]
    # Work in 512 px iterations (pixels relative to 512 px): the former default 256 -> 362 -> 512 px,
    # 20 + 20 + 40 iterations, was 55; normal must stay at or under about half of it.
    work = sum(n * (side / 512) ** 2 for n, side in zip([30, 20, 15], [128, 256, 512], strict=True))
    former = sum(n * (side / 512) ** 2 for n, side in zip([20, 20, 40], [256, 362, 512], strict=True))
    assert work <= former / 2 + 1


def test_qualities_order_their_work() -> None:
    def work(quality: str) -> float:
        sizes = scale_sizes(512, None, quality)
        its = iterations_per_scale(None, len(sizes), quality)
        return sum(n * (side / 512) ** 2 for n, side in zip(its, sizes, strict=True))

    assert work("draft") < work("normal") / 2 < work("best")
    assert QUALITY_PLANS["best"].tolerance < QUALITY_PLANS["normal"].tolerance
    assert iterations_per_scale(None, 1, "draft") < iterations_per_scale(None, 1, "best")
    assert iterations_per_scale(7, 3, "best") == [7, 7, 7]  # explicit iterations win over the quality


def test_pyramid_halves_down_from_the_output_size() -> None:
    assert scale_sizes(300, None) == [300]  # one scale up to 400 px, whatever the quality
    assert scale_sizes(600, None) == [150, 300, 600]
    assert scale_sizes(1024, None) == [128, 256, 512, 1024]
    assert scale_sizes(1024, 2) == [512, 1024]
    assert scale_sizes(40, 4) == [16, 16, 20, 40]  # never below 16 px


def test_quality_is_one_setting_for_library_form_and_page() -> None:
    assert make_settings(quality="draft").quality == "draft"
    with pytest.raises(PainterlyError, match="did you mean 'draft'"):
        make_settings(quality="darft")
    assert settings_from_strings({"quality": "best"}).quality == "best"
    with pytest.raises(PainterlyError, match="unknown quality 'fast'"):
        settings_from_strings({"quality": "fast"})
    entry = {e["name"]: e for e in config_schema()}["quality"]
    assert entry["choices"] == list(QUALITIES) and entry["default"] == "normal" and entry["group"] == "basic"


def test_cli_takes_quality_and_refuses_a_wrong_one(run_cli, photo_path, painting_path, tmp_path) -> None:
    code, _, err = run_cli("transfer", str(photo_path), "-s", str(painting_path), "--quality", "bset")
    assert code == 2 and "did you mean 'best'" in err and len(err.strip().splitlines()) == 1
    code, out, _ = run_cli("transfer", "--help")
    assert "--quality" in out and "draft" in out


def test_plateau_of_best_stops_a_flat_scale_and_lets_a_falling_one_run() -> None:
    plan = QUALITY_PLANS["best"]

    def iterations_run(loss: Any) -> int:
        schedule = Schedule(
            [1_000_000],
            [1000],
            stop_early=True,
            plateau=lambda: Plateau(plan.window, plan.tolerance, plan.min_iterations),
        )
        schedule.start_scale(0)
        for i in range(1000):
            schedule.evaluated()
            if schedule.iteration_done(loss(i)):
                return i + 1
        return 1000

    assert iterations_run(lambda i: 100.0 * 0.99**i) == 1000  # 1% per iteration: still improving
    flat_after_50 = iterations_run(lambda i: 100.0 * 0.9 ** min(i, 50))
    assert 50 < flat_after_50 <= 50 + plan.window + 1  # stops within a window of the flattening


def test_best_quality_stops_when_the_picture_stops_improving() -> None:
    """A tiny run at ``best`` (cap 1000 iterations at one scale) ends at its plateau, long before."""
    steps: list[int] = []
    settings = make_settings(quality="best", size=32, precision="fp32", device="cpu")
    result = run_transfer(make_photo(32, 24), make_painting(32, 32), settings, lambda p: steps.append(p.step))
    assert QUALITY_PLANS["best"].min_iterations <= max(steps) < 400
    assert not result.interrupted


def test_detail_start_puts_the_photo_s_fine_detail_back() -> None:
    content = pil_to_tensor(make_photo(64, 48))
    coarse = F.interpolate(content, size=(24, 32), mode="area")  # what the previous scale could hold
    plain = upscaled_start(coarse, content, detail=False)
    detailed = upscaled_start(coarse, content, detail=True)
    assert detailed.shape == content.shape == plain.shape
    assert torch.allclose(detailed, content, atol=1e-5)  # a perfect coarse copy gives the photo back
    assert (plain - content).abs().mean() > 0.01  # the plain upsampling is blurred
    painted = coarse.flip(-1)  # any other coarse picture keeps its own low frequencies
    low = F.interpolate(upscaled_start(painted, content, detail=True), size=(24, 32), mode="area")
    assert (low - painted).abs().mean() < 0.02


def test_matched_start_takes_the_painting_s_colours() -> None:
    photo = pil_to_tensor(make_photo(64, 48))
    rng = np.random.default_rng(0)
    tint = rng.uniform([150, 50, 0], [250, 150, 100], (64, 64, 3))  # a warm palette, many shades
    painting = Image.fromarray(tint.astype(np.uint8), "RGB")
    start = colour_matched_start(photo, painting)
    assert start.shape == photo.shape and start.dtype == torch.float32
    want = np.asarray(painting, dtype=np.float32).reshape(-1, 3).mean(0) / 255
    got = start[0].permute(1, 2, 0).reshape(-1, 3).mean(0).numpy()
    before = photo[0].permute(1, 2, 0).reshape(-1, 3).mean(0).numpy()
    assert np.abs(got - want).max() < 0.02 < np.abs(before - want).max()
    # The photo's shapes stay: matching is monotonic per channel.
    assert np.corrcoef(start[0, 0].flatten(), photo[0, 0].flatten())[0, 1] > 0.9


def test_a_plan_may_leave_the_output_size_unpainted_but_sharp(monkeypatch: pytest.MonkeyPatch) -> None:
    """A plan with 0 iterations at the last scale paints the coarser scales only; the output size
    gets the photo's detail back (measured for ``draft``: too little style at 512 px, so it paints 2)."""
    plan = dataclasses.replace(QUALITY_PLANS["draft"], last_iterations=0)
    monkeypatch.setitem(QUALITY_PLANS, "draft", plan)
    seen: list[tuple[int, int]] = []
    photo = make_photo(64, 48)
    settings = make_settings(
        quality="draft",
        size=64,
        scales=2,
        precision="fp32",
        device="cpu",
        style_layers=["relu1_1", "relu2_1"],
    )
    assert iterations_per_scale(None, 2, "draft")[-1] == 0
    result = run_transfer(photo, make_painting(), settings, lambda p: seen.append(p.size))
    assert set(seen) == {(32, 24)}  # no evaluation at 64 px
    assert result.image.size == (64, 48)
    half = photo.resize((32, 24), Image.Resampling.BOX).resize((64, 48), Image.Resampling.BICUBIC)
    grey = [np.asarray(im.convert("L"), dtype=np.float32) for im in (result.image, photo, half)]
    detail = [np.abs(np.diff(g, axis=1)).mean() for g in grey]
    assert detail[0] > detail[2]  # sharper than the half-size picture blown up
