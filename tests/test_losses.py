from collections.abc import Mapping

import pytest
import torch

from painterly.errors import PainterlyError
from painterly.losses import (
    ContentLoss,
    GramStyleLoss,
    GuidedGramStyleLoss,
    KerasStyleLoss,
    LossCriterion,
    LossTerm,
    PerceptualLoss,
    PowerTVLoss,
    SquaredTVLoss,
    build_criterion,
    content_error,
    gram_matrix,
    guided_gram,
    loss_values,
    propagate_mask,
    tv_loss,
)
from painterly.vgg import load_vgg


def test_gram_matrix_by_hand() -> None:
    f = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [0.0, 1.0]]]])  # (1, C=2, 2, 2)
    # channel vectors a = [1,2,3,4], b = [0,1,0,1]; a.a = 30, a.b = 6, b.b = 2; divided by C*H*W = 8
    expected = torch.tensor([[[30.0, 6.0], [6.0, 2.0]]]) / 8
    assert torch.allclose(gram_matrix(f), expected)


def test_tv_terms_by_hand() -> None:
    image = torch.zeros(1, 1, 2, 2)
    image[0, 0, 0, 1] = 1.0 / 255  # one step of one grey level to the right of the top-left pixel
    # the (H-1)x(W-1) = 1x1 region: dx = 1, dy = 0 in 0-255 units
    assert SquaredTVLoss()(image, {}).item() == pytest.approx(0.5)
    assert PowerTVLoss()(image, {}).item() == pytest.approx(1.0, rel=1e-5)
    image[0, 0, 1, 0] = 2.0 / 255  # dy = 2
    assert tv_loss(image, "squared").item() == pytest.approx(0.5 * (1 + 4))
    assert tv_loss(image, "power1.25").item() == pytest.approx(5**1.25, rel=1e-5)
    with pytest.raises(PainterlyError, match="did you mean"):
        tv_loss(image, "squares")


def test_content_and_style_terms_by_hand() -> None:
    f = torch.ones(1, 2, 2, 2)
    content = ContentLoss({"relu1_1": 2.0})
    with pytest.raises(PainterlyError, match="no target"):
        content(f, {"relu1_1": f})
    content.set_target({"relu1_1": torch.zeros(1, 2, 2, 2)})
    assert content(f, {"relu1_1": f}).item() == pytest.approx(2.0)  # layer weight 2 x mean 1
    assert content_error(f, torch.zeros(1, 2, 2, 2), "sum").item() == pytest.approx(8.0)
    style = GramStyleLoss({"relu1_1": 1.0})
    style.set_target({"relu1_1": torch.zeros(1, 2, 2)})
    # gram of ones / (C*H*W) = 4/8 = 0.5 everywhere; 0.5^2
    assert style(f, {"relu1_1": f}).item() == pytest.approx(0.25)


def test_keras_style_term_matches_its_formula() -> None:
    torch.manual_seed(0)
    f = torch.rand(1, 4, 3, 5)
    target = torch.rand(1, 4, 4)
    image = torch.rand(1, 3, 10, 10)  # 100 image pixels
    term = KerasStyleLoss({"relu1_1": 1.0})
    term.set_target({"relu1_1": target})
    raw = f.reshape(4, 15) @ f.reshape(4, 15).T
    raw_target = target[0] * 4 * 15
    expected = ((raw - raw_target) ** 2).sum() / (4 * 9 * 100**2)
    assert term(image, {"relu1_1": f}).item() == pytest.approx(expected.item(), rel=1e-4)


def _old_formula(
    vgg, image, content_image, style_images, blend, content_layers, style_layers, weights, tv_form, keras
) -> dict[str, float]:
    """The loss as painterly 0.x's monolithic PerceptualLoss computed it, written out independently."""
    layers = [*content_layers, *style_layers]
    feats = vgg(image, layers)
    content_feats = vgg(content_image, content_layers)

    def gram(x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        flat = x.reshape(b, c, h * w)
        return flat @ flat.transpose(1, 2) / (c * h * w)

    targets = {name: 0 for name in style_layers}
    for style_image, weight in zip(style_images, blend, strict=True):
        style_feats = vgg(style_image, style_layers)
        for name in style_layers:
            targets[name] = targets[name] + gram(style_feats[name]) * (weight / sum(blend))
    content = 0.0
    for name, w in content_layers.items():
        diff = (feats[name] - content_feats[name]) ** 2
        content += w * (diff.sum() if keras else diff.mean()).item()
    style = 0.0
    pixels = image.shape[-1] * image.shape[-2]
    for name, w in style_layers.items():
        mse = ((gram(feats[name]) - targets[name]) ** 2).mean().item()
        if keras:
            c, n = feats[name].shape[1], feats[name].shape[2] * feats[name].shape[3]
            mse = mse * c**4 * n**2 / (36 * pixels**2)
        style += w * mse
    dx = (image[:, :, :-1, 1:] - image[:, :, :-1, :-1]) * 255
    dy = (image[:, :, 1:, :-1] - image[:, :, :-1, :-1]) * 255
    if tv_form == "squared":
        tv = 0.5 * (dx**2 + dy**2).sum().item()
    else:
        tv = ((dx**2 + dy**2 + 1e-8) ** 1.25).sum().item()
    parts = {"content": content * weights[0], "style": style * weights[1], "tv": tv * weights[2]}
    return {**parts, "total": sum(parts.values())}


@pytest.mark.parametrize(("convention", "tv_form"), [("classic", "squared"), ("keras", "power1.25")])
def test_criterion_equals_the_old_formula(convention: str, tv_form: str) -> None:
    """Behaviour kept: the composed terms give the numbers the old monolithic loss gave."""
    vgg = load_vgg("vgg19")
    torch.manual_seed(0)
    image, content_image = torch.rand(1, 3, 40, 32), torch.rand(1, 3, 40, 32)
    styles, blend = [torch.rand(1, 3, 24, 24), torch.rand(1, 3, 36, 28)], [1.0, 3.0]
    content_layers = {"relu2_2": 1.0, "relu4_2": 0.5}
    style_layers = {"relu1_1": 1.0, "relu3_1": 2.0, "relu5_1": 0.2}
    weights = (5.0, 100.0, 1e-3)
    criterion = build_criterion(
        vgg,
        content_layers,
        style_layers,
        content_weight=weights[0],
        style_weight=weights[1],
        tv_weight=weights[2],
        tv_form=tv_form,
        convention=convention,
    )
    criterion.set_content(content_image)
    criterion.set_style(styles, blend)
    got = loss_values(criterion(image))
    with torch.no_grad():
        expected = _old_formula(
            vgg,
            image,
            content_image,
            styles,
            blend,
            content_layers,
            style_layers,
            weights,
            tv_form,
            convention == "keras",
        )
    assert list(got) == ["content", "style", "tv", "total"]
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-4), name


def test_perceptual_loss_validates_and_reports_named_parts() -> None:
    vgg = load_vgg("vgg19")
    with pytest.raises(PainterlyError, match="unknown layer"):
        PerceptualLoss(vgg, ["relu9_9"], ["relu1_1"], content_weight=1, style_weight=1, tv_weight=0)
    with pytest.raises(PainterlyError, match="must not be negative"):
        PerceptualLoss(vgg, ["relu4_2"], ["relu1_1"], content_weight=-1, style_weight=1, tv_weight=0)
    with pytest.raises(PainterlyError, match="did you mean"):
        PerceptualLoss(
            vgg, ["relu4_2"], ["relu1_1"], content_weight=1, style_weight=1, tv_weight=0, tv_form="squarred"
        )
    loss = PerceptualLoss(vgg, ["relu2_2"], {"relu1_1": 2.0}, content_weight=1, style_weight=1, tv_weight=1)
    image = torch.rand(1, 3, 16, 16)
    loss.set_content(image)
    loss.set_style([image])
    parts = loss_values(loss(image))
    assert parts["content"] == pytest.approx(0.0, abs=1e-6) and parts["style"] == pytest.approx(0.0, abs=1e-6)
    assert parts["total"] == pytest.approx(parts["tv"], rel=1e-5) and parts["tv"] > 0


def test_content_only_criterion_for_distillation() -> None:
    loss = PerceptualLoss(load_vgg("vgg16"), ["relu2_2"], [], content_weight=2, style_weight=0, tv_weight=0)
    assert list(loss.terms) == ["content", "tv"] and loss.layers == ["relu2_2"]
    batch = torch.rand(2, 3, 16, 16)
    loss.set_content(batch)  # per-batch targets, as training sets them
    assert loss_values(loss(batch.flip(0)))["content"] > 0
    assert loss_values(loss(batch))["total"] == pytest.approx(0.0, abs=1e-6)


def test_style_blend_mixes_gram_targets() -> None:
    vgg = load_vgg("vgg19")
    loss = PerceptualLoss(vgg, ["relu2_2"], ["relu1_1"], content_weight=1, style_weight=1, tv_weight=0)
    a, b = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16) * 0.3
    loss.set_style([a, b], [3.0, 1.0])
    ga, gb = loss.style_grams(a)["relu1_1"], loss.style_grams(b)["relu1_1"]
    target = loss.terms["style"].targets["relu1_1"]  # type: ignore[index]  # the style term's Gram targets
    assert torch.allclose(target, 0.75 * ga + 0.25 * gb, rtol=1e-5)


class _Brightness(LossTerm):
    """A pixel term (no loss-network layers) with a target set per call: mean squared error."""

    def __init__(self) -> None:
        super().__init__()
        self.target = torch.zeros(())

    def forward(self, image: torch.Tensor, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return (image.mean() - self.target).pow(2)


def test_container_sums_named_weighted_terms_and_skips_zero_weights() -> None:
    extra = _Brightness()
    extra.target = torch.tensor(0.25)
    criterion = LossCriterion(None, {"bright": (extra, 4.0), "tv": (SquaredTVLoss(), 0.0)})
    image = torch.full((1, 3, 4, 4), 0.75)
    losses = loss_values(criterion(image))
    assert losses == {"bright": pytest.approx(4 * 0.25), "tv": 0.0, "total": pytest.approx(1.0)}
    assert criterion.layers == []
    with pytest.raises(PainterlyError, match="may not be named 'total'"):
        LossCriterion(None, {"total": (extra, 1.0)})
    with pytest.raises(PainterlyError, match="needs a loss network"):
        LossCriterion(None, {"content": (ContentLoss({"relu1_1": 1.0}), 1.0)})
    bigger = criterion.with_terms({"again": (_Brightness(), 1.0)})
    assert list(loss_values(bigger(image))) == ["bright", "tv", "again", "total"]
    assert list(criterion.terms) == ["bright", "tv"]  # the original is unchanged


def test_mask_is_downsampled_by_each_pooling_layer() -> None:
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., :, :8] = 1.0  # left half
    guides = propagate_mask(mask, "vgg19", ["relu1_1", "relu2_1", "relu3_1", "pool3"])
    assert [tuple(g.shape[-2:]) for g in guides.values()] == [(16, 16), (8, 8), (4, 4), (2, 2)]
    assert torch.equal(guides["relu3_1"][0, 0, 0], torch.tensor([1.0, 1.0, 0.0, 0.0]))


def test_guided_gram_with_full_mask_is_the_gram_and_regions_are_separate() -> None:
    torch.manual_seed(0)
    f = torch.rand(1, 4, 6, 6)
    f[..., 3:] *= 3.0  # the right half has other statistics
    assert torch.allclose(guided_gram(f, torch.ones(1, 1, 6, 6)), gram_matrix(f), rtol=1e-5)
    left = torch.zeros(1, 1, 6, 6)
    left[..., :3] = 1.0
    term = GuidedGramStyleLoss({"relu1_1": 1.0})
    # Region 0 (left) wants the left half's own statistics, region 1 (right) the right half's.
    term.set_target([{"relu1_1": guided_gram(f, left)}, {"relu1_1": guided_gram(f, 1 - left)}], [0.5, 0.5])
    term.set_guides([{"relu1_1": left}, {"relu1_1": 1 - left}])
    assert term(torch.zeros(1, 3, 6, 6), {"relu1_1": f}).item() == pytest.approx(0.0, abs=1e-9)
    term.set_guides([{"relu1_1": 1 - left}, {"relu1_1": left}])  # swapped regions
    assert term(torch.zeros(1, 3, 6, 6), {"relu1_1": f}).item() > 0.1


def test_style_term_image_weights_weight_each_image() -> None:
    torch.manual_seed(0)
    f = torch.rand(2, 4, 3, 5)
    target = torch.rand(2, 4, 4)
    term = GramStyleLoss({"relu1_1": 1.0})
    term.set_target({"relu1_1": target})
    plain = term(f, {"relu1_1": f}).item()
    term.set_target({"relu1_1": target}, torch.ones(2))
    assert term(f, {"relu1_1": f}).item() == pytest.approx(plain)
    term.set_target({"relu1_1": target}, torch.tensor([2.0, 0.0]))  # mean of (2 x first, 0)
    term_first = GramStyleLoss({"relu1_1": 1.0})
    term_first.set_target({"relu1_1": target[:1]})
    assert term(f, {"relu1_1": f}).item() == pytest.approx(term_first(f[:1], {"relu1_1": f[:1]}).item())
    term.set_target({"relu1_1": target}, torch.ones(3))
    with pytest.raises(PainterlyError, match="3 image weights for 2 images"):
        term(f, {"relu1_1": f})
