from typing import Any
from unittest.mock import patch

import numpy as np
import pytest
import torch
from PIL import Image

from painterly.devices import cpu_has_fast_bf16
from painterly.errors import PainterlyError
from painterly.images import pil_to_tensor
from painterly.losses import LossTerm, PerceptualLoss, loss_values
from painterly.optimization import (
    FIRST_STEP,
    Painter,
    StopTransfer,
    _run_lbfgs,
    make_settings,
    run_transfer,
    scale_sizes,
    transfer,
)
from painterly.vgg import load_vgg

from .helpers.images import make_painting, make_photo

FAST: dict[str, Any] = {"size": 64, "precision": "fp32", "device": "cpu"}


def _style_and_content_loss(
    image: Image.Image, content: Image.Image, style: Image.Image
) -> tuple[float, float]:
    s = make_settings()
    loss = PerceptualLoss(
        load_vgg("vgg19"),
        s.content_layers,
        s.style_layers,
        content_weight=s.content_weight,
        style_weight=s.style_weight,
        tv_weight=0,
    )
    loss.set_content(pil_to_tensor(content))
    loss.set_style([pil_to_tensor(style)])
    parts = loss_values(loss(pil_to_tensor(image)))
    return parts["style"], parts["content"]


def test_short_run_paints_the_style_and_keeps_the_content() -> None:
    content, style = make_photo(), make_painting()
    result = transfer(content, style, iterations=40, **FAST)
    assert result.size == content.size
    own_style, _ = _style_and_content_loss(content, content, style)
    style_loss, content_loss = _style_and_content_loss(result, content, style)
    _, style_image_content_loss = _style_and_content_loss(style.resize(content.size), content, style)
    assert style_loss <= own_style / 5
    assert content_loss < style_image_content_loss  # closer to the photo than the painting is


def test_same_seed_same_pixels_and_noise_init_depends_on_seed() -> None:
    content, style = make_photo(32, 24), make_painting(32, 32)
    a = transfer(content, style, iterations=5, init="noise", seed=3, size=32, precision="fp32", device="cpu")
    b = transfer(content, style, iterations=5, init="noise", seed=3, size=32, precision="fp32", device="cpu")
    c = transfer(content, style, iterations=5, init="noise", seed=4, size=32, precision="fp32", device="cpu")
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))


def test_progress_callback_and_stop_keeps_best() -> None:
    seen = []

    def callback(progress) -> None:
        seen.append(progress)
        if progress.iteration >= 3:
            raise StopTransfer

    result = run_transfer(make_photo(), make_painting(), make_settings(iterations=50, **FAST), callback)
    assert result.interrupted and result.image.size == (64, 48)
    assert seen[0].scale == 1 and seen[0].losses["style"] > seen[-1].losses["style"]
    assert all(p.total_steps == 50 for p in seen)


def test_multiscale_pyramid_and_output_size() -> None:
    assert scale_sizes(300, None) == [300]
    assert scale_sizes(512, None) == [128, 256, 512]
    assert scale_sizes(1024, 2) == [512, 1024]
    seen: list[tuple[int, tuple[int, int]]] = []
    settings = make_settings(
        scales=2,
        iterations=2,
        optimizer="adam",
        content_layers=["relu1_1"],
        style_layers=["relu1_1"],
        **{**FAST, "size": 300},
    )
    result = run_transfer(
        make_photo(80, 60), make_painting(), settings, lambda p: seen.append((p.scale, p.size))
    )
    assert list(dict.fromkeys(seen)) == [(1, (150, 112)), (2, (300, 225))]
    assert result.image.size == (300, 225)


def test_adam_and_multiple_styles_and_colour_modes() -> None:
    styles = [make_painting(), make_painting(seed=2).transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    for mode in ("luminance", "histogram"):
        out = transfer(
            make_photo(),
            styles,
            style_blend=[1, 2],
            optimizer="adam",
            iterations=3,
            preserve_colors=mode,
            **FAST,
        )
        assert out.size == (64, 48)
    with pytest.raises(PainterlyError, match="2 style images but 1 blend"):
        transfer(make_photo(), styles, style_blend=[1], iterations=1, **FAST)


def test_presets_and_explicit_overrides() -> None:
    keras = make_settings("keras-example")
    assert keras.network == "vgg16" and keras.tv_form == "power1.25" and keras.size == 512
    assert keras.init == "noise" and keras.content_weight == 0.025
    assert sum(keras.style_layers.values()) * keras.style_weight == pytest.approx(5.0)  # type: ignore[union-attr]
    assert make_settings("keras-example", size=128).size == 128
    classic = make_settings("classic")
    assert (classic.content_weight, classic.style_weight, classic.tv_weight) == (5.0, 100.0, 1e-3)
    with pytest.raises(PainterlyError, match="did you mean 'classic'"):
        make_settings("clasic")


def test_default_budget_spends_most_at_the_last_scale_with_a_heavier_content_weight() -> None:
    """Issues 9 and 24: the yardstick targets (style_ratio <= 0.15, content_ratio <= 0.30 at 512 px)
    are met by 30/20/15 iterations at 128/256/512 px with content weight 50 (half the work of the
    former 20/20/40 at 256/362/512); the ``classic`` preset keeps the Lua neural-style's 5."""
    from painterly.optimization import iterations_per_scale

    assert iterations_per_scale(None, 3) == [30, 20, 15]
    assert iterations_per_scale(None, 5) == [30, 20, 20, 20, 15]
    assert iterations_per_scale(None, 1) == [300]
    assert iterations_per_scale(12, 3) == [12, 12, 12]  # explicit iterations: the same at every scale
    assert make_settings().content_weight == 50.0
    assert make_settings("classic").content_weight == 5.0
    assert make_settings("classic", content_weight=7).content_weight == 7


def test_bad_settings_fail_before_work() -> None:
    with pytest.raises(PainterlyError, match="did you mean 'relu4_2'"):
        make_settings(content_layers=["rleu4_2"])
    with pytest.raises(PainterlyError, match="must not be negative"):
        make_settings(style_weight=-1)
    with pytest.raises(PainterlyError, match="must be a number"):
        make_settings(tv_weight="lots")
    with pytest.raises(PainterlyError, match="unknown setting"):
        make_settings(iteratons=3)


class _Infinite(LossTerm):
    """A pixel term that is infinite from the first evaluation."""

    def forward(self, image: torch.Tensor, features) -> torch.Tensor:  # noqa: ANN001
        return image.mean() * 0 + float("inf")


def test_non_finite_loss_stops_with_a_clear_error() -> None:
    # a weight that can only give an infinite loss is refused before any work (issue 21)
    with pytest.raises(PainterlyError, match="style weight must be at most"):
        transfer(make_photo(), make_painting(), style_weight=1e38, iterations=3, **FAST)
    painter = Painter(make_settings(iterations=3, **FAST), make_painting())
    with pytest.raises(PainterlyError, match="loss became inf at iteration 1;"):
        painter.paint(make_photo(), extra_terms={"infinite": (_Infinite(), 1.0)})


class _NanAfter(LossTerm):
    """A pixel term that turns NaN at its ``after``-th evaluation."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after, self.calls = after, 0

    def forward(self, image: torch.Tensor, features) -> torch.Tensor:  # noqa: ANN001
        self.calls += 1
        value = image.mean() * 0
        return value + float("nan") if self.calls >= self.after else value


def test_non_finite_loss_names_the_real_iteration() -> None:
    settings = make_settings(
        iterations=6, optimizer="adam", content_layers=["relu1_1"], style_layers=["relu1_1"], **FAST
    )
    painter = Painter(settings, make_painting())
    with pytest.raises(PainterlyError, match="loss became nan at iteration 4;"):
        painter.paint(make_photo(), extra_terms={"broken": (_NanAfter(4), 1.0)})


def test_painter_computes_style_targets_once_and_paints_many() -> None:
    settings = make_settings(iterations=2, optimizer="adam", **FAST)
    painter = Painter(settings, make_painting())
    calls = []
    original = PerceptualLoss.style_grams

    def spy(self, image):  # noqa: ANN001, ANN202
        calls.append(image.shape)
        return original(self, image)

    with patch.object(PerceptualLoss, "style_grams", spy):
        first = painter.paint(make_photo())
        second = painter.paint(make_photo(seed=5))
    assert len(calls) == 1
    assert first.image.size == second.image.size == (64, 48)
    assert not np.array_equal(np.asarray(first.image), np.asarray(second.image))


def test_painter_gives_run_transfers_image_and_builds_vgg_only_as_deep_as_needed() -> None:
    settings = make_settings(
        iterations=3, content_layers=["relu2_2"], style_layers=["relu1_1", "relu2_1"], **FAST
    )
    painter = Painter(settings, make_painting())
    assert painter.criterion.network.last_layer == "relu2_2"
    assert Painter(make_settings(**FAST), make_painting()).criterion.network.last_layer == "relu5_1"
    a = painter.paint(make_photo()).image
    b = run_transfer(make_photo(), make_painting(), settings).image
    assert np.array_equal(np.asarray(a), np.asarray(b))


def test_warm_start_and_extra_term_by_name() -> None:
    settings = make_settings(iterations=2, optimizer="adam", **FAST)
    painter = Painter(settings, make_painting())
    init = torch.rand(1, 3, 48, 64)
    first: list[torch.Tensor] = []
    names: list[list[str]] = []

    def callback(p) -> None:  # noqa: ANN001
        if not first:
            first.append(p.tensor.clone())
        names.append(list(p.losses))

    painter.paint(make_photo(), init=init, callback=callback, extra_terms={"broken": (_NanAfter(99), 2.0)})
    assert torch.allclose(first[0], init)  # evaluated before the first step: exactly the given start
    assert names[0] == ["content", "style", "tv", "broken", "total"]
    assert list(painter.criterion.terms) == ["content", "style", "tv"]  # extra terms are per call


def test_full_content_mask_equals_unmasked_style() -> None:
    settings = make_settings(iterations=1, optimizer="adam", **FAST)
    painter = Painter(settings, make_painting(), style_masks=[None])
    plain: list[dict[str, float]] = []
    masked: list[dict[str, float]] = []
    painter.paint(make_photo(), callback=lambda p: plain.append(p.losses))
    white = Image.new("RGB", (64, 48), "white")
    painter.paint(make_photo(), callback=lambda p: masked.append(p.losses), content_masks=[white])
    assert masked[0]["style"] == pytest.approx(plain[0]["style"], rel=1e-4)
    with pytest.raises(PainterlyError, match="1 style images but 2 content masks"):
        painter.paint(make_photo(), content_masks=[white, white])


def test_content_masks_paint_each_style_in_its_region() -> None:
    red, blue = Image.new("RGB", (32, 32), (220, 20, 20)), Image.new("RGB", (32, 32), (20, 20, 220))
    left = Image.new("RGB", (32, 32), "black")
    left.paste((255, 255, 255), (0, 0, 16, 32))
    right = Image.eval(left, lambda v: 255 - v)
    grey = Image.new("RGB", (32, 32), (128, 128, 128))
    settings = make_settings(
        iterations=30,
        optimizer="adam",
        learning_rate=0.05,
        content_weight=0.0,
        tv_weight=0,
        content_layers=["relu1_1"],
        style_layers=["relu1_1", "relu2_1"],
        **{**FAST, "size": 32},
    )
    painted = Painter(settings, [red, blue]).paint(grey, content_masks=[left, right]).image
    out = np.asarray(painted).astype(float)
    left_half, right_half = out[:, :14], out[:, 18:]
    assert left_half[..., 0].mean() - left_half[..., 2].mean() > 20  # redder than blue on the left
    assert right_half[..., 2].mean() - right_half[..., 0].mean() > 20  # bluer on the right


@pytest.mark.slow
def test_real_photo_and_painting(shared_images) -> None:
    out = transfer(shared_images / "tubingen.jpg", shared_images / "starry_night.jpg", size=96, iterations=30)
    assert out.width == 96
    assert torch.tensor(np.asarray(out)).float().std() > 20  # not mush


def test_interrupt_keeps_the_best_image_only_when_asked() -> None:
    """Ctrl-C (and SIGTERM, which the CLI turns into it) ends a run with the best image so far."""

    def interrupt(progress) -> None:  # noqa: ANN001
        if progress.step >= 2:
            raise KeyboardInterrupt

    settings = make_settings(iterations=10, optimizer="adam", **FAST)
    result = run_transfer(make_photo(), make_painting(), settings, interrupt, catch_interrupt=True)
    assert result.interrupted and result.image.size == (64, 48) and result.last.step == 2  # type: ignore[union-attr]
    with pytest.raises(KeyboardInterrupt):
        run_transfer(make_photo(), make_painting(), settings, interrupt)


@pytest.mark.skipif(not cpu_has_fast_bf16(), reason="this CPU has no native bf16")
def test_lbfgs_under_bf16_takes_a_grey_level_first_step_and_stays_finite() -> None:
    """bf16 autocast rounds the image and activations to 8 bits of mantissa: at torch's first
    L-BFGS trial step (1e-5 per pixel) the loss is a staircase, the line search stopped after a
    tiny step, L-BFGS rejected the curvature pair and its next step, -grad, went to inf at
    iteration 2. The first step is now about a grey level and the run converges."""
    images: list[torch.Tensor] = []
    totals: list[float] = []

    def record(progress) -> None:  # noqa: ANN001
        images.append(progress.tensor.detach().clone())
        totals.append(progress.losses["total"])

    settings = make_settings(size=128, iterations=3, seed=0, precision="bf16", device="cpu")
    run_transfer(make_photo(320, 240), make_painting(256, 256), settings, record)
    first_step = (images[1] - images[0]).pow(2).mean().sqrt().item()
    assert 0.3 / 255 < first_step < 30 / 255
    assert all(np.isfinite(totals)) and min(totals) < 0.9 * totals[0]


def test_lbfgs_starts_each_scale_with_a_grey_level_step_and_evaluates_no_point_twice() -> None:
    """torch's own first trial step is about 1e-5 per pixel; the search then grows it over 3 to 5
    evaluations. painterly's first trial is about a grey level, and the point where the first
    iteration ended is reused when the remaining iterations begin, not evaluated again."""
    torch.manual_seed(0)
    target = torch.rand(3 * 64 * 64)
    # Curvatures spread over three decades, like an image loss: six iterations do not converge.
    weights = torch.logspace(0, 3, target.numel())[torch.randperm(target.numel())]
    x = torch.zeros_like(target, requires_grad=True)
    points: list[torch.Tensor] = []
    optimizer = torch.optim.LBFGS(
        [x], lr=1.0, max_iter=6, line_search_fn="strong_wolfe", tolerance_grad=-1.0, tolerance_change=-1.0
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = (weights * (x - target) ** 2).sum()
        loss.backward()
        points.append(x.detach().clone())
        return loss

    _run_lbfgs(optimizer, closure, 6)
    first = float((points[1] - points[0]).pow(2).mean().sqrt())
    assert FIRST_STEP / 3 < first < FIRST_STEP * 3
    assert all(not torch.equal(a, b) for a, b in zip(points, points[1:], strict=False))
    assert len(points) <= 6 + 2  # the start, one trial to grow the first step, one per iteration
    assert float(((x - target) ** 2).mean()) < 0.5 * float((target**2).mean())
