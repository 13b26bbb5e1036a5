import pytest
import torch

from painterly.errors import PainterlyError
from painterly.losses import ContentLoss, PerceptualLoss, StyleLoss, content_error, gram_matrix, tv_loss
from painterly.vgg import load_vgg


def test_gram_matrix_by_hand() -> None:
    f = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [0.0, 1.0]]]])  # (1, C=2, 2, 2)
    # channel vectors a = [1,2,3,4], b = [0,1,0,1]; a.a = 30, a.b = 6, b.b = 2; divided by C*H*W = 8
    expected = torch.tensor([[[30.0, 6.0], [6.0, 2.0]]]) / 8
    assert torch.allclose(gram_matrix(f), expected)


def test_tv_loss_by_hand() -> None:
    image = torch.zeros(1, 1, 2, 2)
    image[0, 0, 0, 1] = 1.0 / 255  # one step of one grey level to the right of the top-left pixel
    # the (H-1)x(W-1) = 1x1 region: dx = 1, dy = 0 in 0-255 units
    assert tv_loss(image, "squared").item() == pytest.approx(0.5)
    assert tv_loss(image, "power1.25").item() == pytest.approx(1.0, rel=1e-5)
    image[0, 0, 1, 0] = 2.0 / 255  # dy = 2
    assert tv_loss(image, "squared").item() == pytest.approx(0.5 * (1 + 4))
    assert tv_loss(image, "power1.25").item() == pytest.approx(5**1.25, rel=1e-5)
    with pytest.raises(PainterlyError, match="did you mean"):
        tv_loss(image, "squares")


def test_content_and_style_loss_by_hand() -> None:
    f = torch.ones(1, 2, 2, 2)
    target = torch.zeros(1, 2, 2, 2)
    assert ContentLoss(target)(f).item() == pytest.approx(1.0)
    assert content_error(f, target, "keras").item() == pytest.approx(8.0)
    style = StyleLoss(torch.zeros(1, 2, 2))
    assert style(f).item() == pytest.approx(0.25)  # gram of ones / (C*H*W) = 4/8 = 0.5 everywhere; 0.5^2


def test_keras_style_convention_matches_its_formula() -> None:
    torch.manual_seed(0)
    f = torch.rand(1, 4, 3, 5)
    target = torch.rand(1, 4, 4)
    image_pixels = 100
    loss = StyleLoss(target, "keras", image_pixels)(f)
    raw = f.reshape(4, 15) @ f.reshape(4, 15).T
    raw_target = target[0] * 4 * 15
    expected = ((raw - raw_target) ** 2).sum() / (4 * 9 * image_pixels**2)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-4)


def test_perceptual_loss_validates_and_computes_parts() -> None:
    vgg = load_vgg("vgg19")
    with pytest.raises(PainterlyError, match="unknown layer"):
        PerceptualLoss(vgg, ["relu9_9"], ["relu1_1"], content_weight=1, style_weight=1, tv_weight=0)
    with pytest.raises(PainterlyError, match="must not be negative"):
        PerceptualLoss(vgg, ["relu4_2"], ["relu1_1"], content_weight=-1, style_weight=1, tv_weight=0)
    loss = PerceptualLoss(vgg, ["relu2_2"], {"relu1_1": 2.0}, content_weight=1, style_weight=1, tv_weight=1)
    image = torch.rand(1, 3, 16, 16)
    loss.set_content(image)
    loss.set_style([image])
    total, parts = loss(image)
    assert parts.content == pytest.approx(0.0, abs=1e-6) and parts.style == pytest.approx(0.0, abs=1e-6)
    assert total.item() == pytest.approx(parts.tv, rel=1e-5) and parts.tv > 0


def test_style_blend_mixes_gram_targets() -> None:
    vgg = load_vgg("vgg19")
    loss = PerceptualLoss(vgg, ["relu2_2"], ["relu1_1"], content_weight=1, style_weight=1, tv_weight=0)
    a, b = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16) * 0.3
    loss.set_style([a, b], [3.0, 1.0])
    ga, gb = loss.style_grams(a)["relu1_1"], loss.style_grams(b)["relu1_1"]
    assert torch.allclose(loss.style_losses["relu1_1"].target, 0.75 * ga + 0.25 * gb, rtol=1e-5)
