"""Content, style (Gram) and total-variation losses, shared by both methods.

Gram normalization: for a feature map F with C channels and N = H*W positions,
``gram(F) = F F^T / (C * N)``, so that the style loss of a layer does not grow with the image
size or channel count (the Lua neural-style divides by C*H*W the same way). The style loss of
a layer is the mean squared difference of Gram matrices; the content loss is the mean squared
difference of activations. Each is multiplied by its layer weight and by the global weight.
This is the ``classic`` loss convention, the Lua neural-style's.

The ``keras`` convention reproduces the Keras neural style example's formulas exactly: content
is the *sum* of squared differences, and a style layer's loss is
``sum((F_s F_s^T - F F^T)^2) / (4 * 3^2 * (H_img * W_img)^2)`` with unnormalized Gram matrices
and the *image's* pixel count (3 and the image size are constants in that example).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from painterly.errors import PainterlyError, check_weight, did_you_mean
from painterly.settings import layer_weights
from painterly.vgg.network import VGG, check_layers


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) activations to (B, C, C) float32 Gram matrices normalized by C*H*W.

    The product runs in the activations' dtype (float16 excepted, which would overflow): under bf16
    autocast that is bf16 with float32 accumulation (0.07 s instead of 0.16 s for relu1_1 at 512 px,
    forward and backward; final losses of a run within 1% of float32's).
    """
    b, c, h, w = features.shape
    if features.is_contiguous(memory_format=torch.channels_last) and not features.is_contiguous():
        # (B, HW, C) is a free view of channels-last memory: no layout copy.
        flat = features.permute(0, 2, 3, 1).reshape(b, h * w, c)
        return _product(flat.transpose(1, 2), flat) / (c * h * w)
    flat = features.reshape(b, c, h * w)
    return _product(flat, flat.transpose(1, 2)) / (c * h * w)


def _product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if a.dtype == torch.float16:
        # Sums over H*W of Caffe-scale activations overflow float16's 65504.
        with torch.autocast(a.device.type, enabled=False):
            return torch.bmm(a.float(), b.float())
    return torch.bmm(a, b).float()


TV_FORMS = ("squared", "power1.25")


def tv_loss(image: torch.Tensor, form: str = "squared") -> torch.Tensor:
    """Total variation of a (B, 3, H, W) image in 0-1, measured in 0-255 pixel units, summed.

    ``squared``: 0.5 * sum of dx^2 + dy^2, the loss whose gradient the Lua neural-style uses.
    ``power1.25``: sum of (dx^2 + dy^2)^1.25, the Keras neural style example's form. Both sum
    over pixels as the classics do, so the TV weight's effect grows with the image size.
    """
    dx = (image[:, :, :-1, 1:] - image[:, :, :-1, :-1]) * 255.0
    dy = (image[:, :, 1:, :-1] - image[:, :, :-1, :-1]) * 255.0
    if form == "squared":
        return 0.5 * (dx.pow(2) + dy.pow(2)).sum()
    if form == "power1.25":
        return (dx.pow(2) + dy.pow(2) + 1e-8).pow(1.25).sum()
    raise PainterlyError(f"unknown TV form {form!r}{did_you_mean(form, ['squared', 'power1.25'])}")


LOSS_CONVENTIONS = ("classic", "keras")


def content_error(features: torch.Tensor, target: torch.Tensor, convention: str = "classic") -> torch.Tensor:
    """Squared error between activations: mean (classic) or sum (keras)."""
    diff = (features.float() - target.float()).pow(2)
    return diff.sum() if convention == "keras" else diff.mean()


class ContentLoss(nn.Module):
    """:func:`content_error` against a fixed target."""

    def __init__(self, target: torch.Tensor, convention: str = "classic") -> None:
        super().__init__()
        self.register_buffer("target", target.detach().float())
        self.convention = convention

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return content_error(features, self.target, self.convention)


class StyleLoss(nn.Module):
    """Squared error between the Gram matrices of activations and a fixed target Gram matrix."""

    def __init__(self, target_gram: torch.Tensor, convention: str = "classic", image_pixels: int = 1) -> None:
        super().__init__()
        self.register_buffer("target", target_gram.detach().float())
        self.convention = convention
        self.image_pixels = image_pixels

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        mse = (gram_matrix(features) - self.target).pow(2).mean()
        if self.convention == "keras":
            channels, positions = features.shape[1], features.shape[2] * features.shape[3]
            # From normalized to raw Gram matrices, summed, over 4 * 3^2 * image_pixels^2.
            return mse * (channels**4 * positions**2) / (36.0 * self.image_pixels**2)
        return mse


@dataclass
class LossParts:
    """The weighted parts of a perceptual loss, as floats, for progress reports."""

    content: float
    style: float
    tv: float

    @property
    def total(self) -> float:
        return self.content + self.style + self.tv


class PerceptualLoss(nn.Module):
    """Weighted content + style + TV loss on a VGG loss network.

    Image optimization sets one fixed content target (:meth:`set_content`); feed-forward training
    passes content targets per batch (``forward(image, content_features=...)``). Style targets
    come from one or more style images (:meth:`set_style`).
    """

    def __init__(
        self,
        vgg: VGG,
        content_layers: Sequence[str] | Mapping[str, float],
        style_layers: Sequence[str] | Mapping[str, float],
        *,
        content_weight: float,
        style_weight: float,
        tv_weight: float,
        tv_form: str = "squared",
        convention: str = "classic",
    ) -> None:
        super().__init__()
        self.content_layers = layer_weights(content_layers, "content")
        self.style_layers = layer_weights(style_layers, "style")
        check_layers(vgg.arch, [*self.content_layers, *self.style_layers])
        if tv_form not in TV_FORMS:
            raise PainterlyError(f"unknown TV form {tv_form!r}{did_you_mean(tv_form, TV_FORMS)}")
        if convention not in LOSS_CONVENTIONS:
            raise PainterlyError(
                f"unknown loss convention {convention!r}{did_you_mean(convention, LOSS_CONVENTIONS)}"
            )
        self.vgg = vgg
        self.content_weight = check_weight("content weight", content_weight)
        self.style_weight = check_weight("style weight", style_weight)
        self.tv_weight = check_weight("TV weight", tv_weight)
        self.tv_form = tv_form
        self.convention = convention
        self.content_losses = nn.ModuleDict()
        self.style_losses = nn.ModuleDict()

    @property
    def layers(self) -> list[str]:
        return list(dict.fromkeys([*self.content_layers, *self.style_layers]))

    @torch.no_grad()
    def content_features(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.vgg(image, list(self.content_layers))

    @torch.no_grad()
    def style_grams(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.vgg(image, list(self.style_layers))
        return {name: gram_matrix(features[name]) for name in self.style_layers}

    @torch.no_grad()
    def set_style(
        self, images: Sequence[torch.Tensor], blend: Sequence[float] | None = None, image_pixels: int = 1
    ) -> None:
        """Set the Gram targets from one or more style images, mixed by ``blend`` weights.

        ``image_pixels`` is the output's pixel count, used only by the keras convention.
        """
        blend = (
            [check_weight("style blend weight", b) for b in blend]
            if blend is not None
            else [1.0] * len(images)
        )
        total = sum(blend)
        if not images or total <= 0:
            raise PainterlyError("need at least one style image with a positive blend weight")
        targets: dict[str, torch.Tensor] = {}
        for image, weight in zip(images, blend, strict=True):
            for name, gram in self.style_grams(image).items():
                targets[name] = targets.get(name, 0) + gram * (weight / total)
        self.style_losses = nn.ModuleDict(
            {name: StyleLoss(gram, self.convention, image_pixels) for name, gram in targets.items()}
        )

    @torch.no_grad()
    def set_content(self, image: torch.Tensor) -> None:
        features = self.content_features(image)
        self.content_losses = nn.ModuleDict(
            {name: ContentLoss(features[name], self.convention) for name in self.content_layers}
        )

    def forward(
        self, image: torch.Tensor, content_features: Mapping[str, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, LossParts]:
        """Total loss of ``image`` and its weighted parts."""
        features = self.vgg(image, self.layers)
        zero = torch.zeros((), device=image.device)
        content = zero
        for name, weight in self.content_layers.items():
            if content_features is not None:
                term = content_error(features[name], content_features[name], self.convention)
            else:
                term = self.content_losses[name](features[name])
            content = content + weight * term
        style = zero
        for name, weight in self.style_layers.items():
            style = style + weight * self.style_losses[name](features[name])
        content = content * self.content_weight
        style = style * self.style_weight
        tv = tv_loss(image.float(), self.tv_form) * self.tv_weight if self.tv_weight else zero
        total = content + style + tv
        return total, LossParts(content.item(), style.item(), tv.item())
