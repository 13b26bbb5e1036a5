import numpy as np
import pytest
import torch
from PIL import Image

from painterly.errors import PainterlyError
from painterly.images import pil_to_tensor
from painterly.losses import PerceptualLoss
from painterly.optimization import StopTransfer, make_settings, run_transfer, scale_sizes, transfer
from painterly.vgg import load_vgg

from .conftest import make_painting, make_photo

FAST = {"size": 64, "precision": "fp32", "device": "cpu"}


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
    _, parts = loss(pil_to_tensor(image))
    return parts.style, parts.content


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
    assert seen[0].scale == 1 and seen[0].losses.style > seen[-1].losses.style
    assert all(p.total_steps == 50 for p in seen)


def test_multiscale_pyramid_and_output_size() -> None:
    assert scale_sizes(300, None) == [300]
    assert scale_sizes(512, None) == [256, 362, 512]
    assert scale_sizes(1024, 2) == [256, 1024]
    sizes = []
    result = run_transfer(
        make_photo(80, 60),
        make_painting(),
        make_settings(size=80, scales=2, iterations=2, precision="fp32"),
        lambda p: sizes.append(p.size),
    )
    assert sizes[0] == (80, 60) or sizes[0][0] < 80
    assert result.image.size == (80, 60)


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
    assert sum(keras.style_layers.values()) * keras.style_weight == pytest.approx(5.0)
    assert make_settings("keras-example", size=128).size == 128
    classic = make_settings("classic")
    assert (classic.content_weight, classic.style_weight, classic.tv_weight) == (5.0, 100.0, 1e-3)
    with pytest.raises(PainterlyError, match="did you mean 'classic'"):
        make_settings("clasic")


def test_bad_settings_fail_before_work() -> None:
    with pytest.raises(PainterlyError, match="did you mean 'relu4_2'"):
        make_settings(content_layers=["rleu4_2"])
    with pytest.raises(PainterlyError, match="must not be negative"):
        make_settings(style_weight=-1)
    with pytest.raises(PainterlyError, match="must be a number"):
        make_settings(tv_weight="lots")
    with pytest.raises(PainterlyError, match="unknown setting"):
        make_settings(iteratons=3)


def test_non_finite_loss_stops_with_a_clear_error() -> None:
    with pytest.raises(PainterlyError, match="loss became"):
        transfer(make_photo(), make_painting(), style_weight=1e38, iterations=3, **FAST)


@pytest.mark.slow
def test_real_photo_and_painting(shared_images) -> None:
    out = transfer(shared_images / "tubingen.jpg", shared_images / "starry_night.jpg", size=96, iterations=30)
    assert out.width == 96
    assert torch.tensor(np.asarray(out)).float().std() > 20  # not mush
