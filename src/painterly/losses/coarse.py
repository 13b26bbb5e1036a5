"""A Gram style term on a smaller copy of the image: marks at the painting's larger scales count.

A Gram matrix of VGG activations at the image's own size is satisfied by a fine texture in the
painting's palette: every layer's statistics can be met by marks a few pixels across, and a
feed-forward network learns exactly that (the "stipple"). Compare the same output downsampled by
2 or 4 with the painting downsampled alike and a fine texture averages out to a flat tone, so only
marks that survive the reduction (swirls, stars, bands) meet the target. This is the Gram pyramid
of Snelgrove's multi-scale texture synthesis, used here as an extra training term:
:class:`CoarseGramStyleLoss` downsamples the image by ``factor`` (antialiased bilinear), runs the
loss network on it and scores its Gram matrices with a :class:`~painterly.losses.style.GramStyleLoss`.
Its targets come from :func:`coarse_grams` on the painting at the run's style size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

from painterly.errors import PainterlyError
from painterly.losses.gram import gram_matrix
from painterly.losses.style import GramStyleLoss
from painterly.losses.term import LossTerm
from painterly.vgg.network import VGG

#: The smallest side, in pixels, an image may have after the reduction (relu4_3 is then 4x4).
MIN_REDUCED_SIDE = 32


def downsample(image: torch.Tensor, factor: int) -> torch.Tensor:
    """``image`` (B, 3, H, W) reduced by ``factor`` with an antialiased bilinear filter."""
    if factor == 1:
        return image
    # In float32: the CPU's antialiased kernel has no bfloat16 or float16 version (autocast's outputs).
    return F.interpolate(
        image.float(), scale_factor=1 / factor, mode="bilinear", antialias=True, align_corners=False
    )


def coarse_weights(coarse_style: Sequence[int] | Mapping[int, float]) -> dict[int, float]:
    """Each factor's multiplier of the style weight: ``(2, 4)`` gives 1 to each, a mapping
    (``{2: 5.0, 4: 5.0}``, from ``--coarse-style 2:5,4:5``) its own."""
    if isinstance(coarse_style, Mapping):
        return {factor: float(weight) for factor, weight in coarse_style.items()}
    return {factor: 1.0 for factor in coarse_style}


def check_factor(factor: int, *sides: int) -> None:
    """``factor`` is a whole number from 2 and leaves every side in ``sides`` at least 32 px."""
    if not isinstance(factor, int) or isinstance(factor, bool) or factor < 2:
        raise PainterlyError(f"a coarse style factor must be a whole number from 2, got {factor!r}")
    for side in sides:
        if side // factor < MIN_REDUCED_SIDE:
            raise PainterlyError(
                f"coarse style factor {factor} leaves {side} px at {side // factor} px; "
                f"the loss network needs at least {MIN_REDUCED_SIDE}"
            )


@torch.no_grad()
def coarse_grams(
    vgg: VGG, image: torch.Tensor, factor: int, layers: Sequence[str]
) -> dict[str, torch.Tensor]:
    """The Gram matrices of ``image`` reduced by ``factor``: a :class:`CoarseGramStyleLoss` target."""
    features = vgg(downsample(image, factor), list(layers))
    return {layer: gram_matrix(features[layer]) for layer in layers}


class CoarseGramStyleLoss(LossTerm):
    """The Gram style loss of the image reduced by ``factor`` (its own pass of the loss network)."""

    def __init__(self, vgg: VGG, layer_weights: Mapping[str, float], factor: int) -> None:
        super().__init__()
        check_factor(factor)
        self.factor = factor
        self.gram = GramStyleLoss(layer_weights)
        self._vgg = [vgg]  # not a submodule: the shared loss network is not this term's to move or save

    def set_target(
        self, grams: Mapping[str, torch.Tensor], image_weights: torch.Tensor | None = None
    ) -> None:
        """Gram targets from :func:`coarse_grams` (per-image weights as in GramStyleLoss)."""
        self.gram.set_target(grams, image_weights)

    def forward(self, image: torch.Tensor, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        small = downsample(image, self.factor)
        return self.gram(small, self._vgg[0](small, list(self.gram.layers)))


__all__ = [
    "MIN_REDUCED_SIDE",
    "CoarseGramStyleLoss",
    "check_factor",
    "coarse_grams",
    "coarse_weights",
    "downsample",
]
