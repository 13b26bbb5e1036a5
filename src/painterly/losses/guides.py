"""Spatial control (Gatys et al. 2017): region masks carried through the loss network, the
guided Gram style term that matches each region of the output to its own style, and the guided
content term that holds a region closer to the photo.

A mask is a (1, 1, H, W) tensor in 0-1 at the image's size. :func:`propagate_mask` carries it to
a layer's resolution the way the activations get there: unchanged through convolutions and ReLUs
(padding keeps the size), halved by a 2x2 average at each pooling layer (soft edges).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

from painterly.errors import PainterlyError
from painterly.losses.content import ContentLoss
from painterly.losses.term import LayerWeightedTerm
from painterly.vgg.layers import layer_names


def propagate_mask(mask: torch.Tensor, arch: str, layers: Sequence[str]) -> dict[str, torch.Tensor]:
    """The mask at the resolution of each of ``layers`` of the network ``arch``."""
    wanted = set(layers)
    out: dict[str, torch.Tensor] = {}
    current = mask.float()
    for name in layer_names(arch):
        if not wanted - out.keys():
            break
        if name.startswith("pool"):
            current = F.avg_pool2d(current, 2, ceil_mode=True)
        if name in wanted:
            out[name] = current
    return out


def guided_gram(features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Gram matrix of the masked activations, normalized by C times the mask's area.

    With a mask of ones it equals :func:`~painterly.losses.gram.gram_matrix`; a region's Gram is
    per unit of area, so a small region is compared on the same scale as a whole image.
    """
    b, c, h, w = features.shape
    masked = (features.float() * mask.to(features.device)).reshape(b, c, h * w)
    area = mask.float().sum().clamp_min(1e-8)
    return torch.bmm(masked, masked.transpose(1, 2)) / (c * area)


class GuidedGramStyleLoss(LayerWeightedTerm):
    """Style per region: region r of the output (content mask r) matches target Gram matrices r.

    :meth:`set_target` takes, per region, the target Gram matrices (from :func:`guided_gram` of a
    style image, masked by its style mask or not); :meth:`set_guides` the content masks at each
    layer's resolution (from :func:`propagate_mask`). Regions are summed with ``region_weights``.
    """

    def __init__(self, layer_weights: Mapping[str, float]) -> None:
        super().__init__(layer_weights)
        self.targets: list[dict[str, torch.Tensor]] = []
        self.guides: list[dict[str, torch.Tensor]] = []
        self.region_weights: list[float] = []

    def set_target(
        self, grams: Sequence[Mapping[str, torch.Tensor]], region_weights: Sequence[float]
    ) -> None:
        if len(grams) != len(region_weights):
            raise PainterlyError(f"{len(grams)} style targets but {len(region_weights)} region weights")
        self.targets = [{layer: g[layer].detach().float() for layer in self.layers} for g in grams]
        self.region_weights = list(region_weights)

    def set_guides(self, guides: Sequence[Mapping[str, torch.Tensor]]) -> None:
        self.guides = [{layer: g[layer] for layer in self.layers} for g in guides]

    def layer_score(self, layer: str, features: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        if not self.targets or len(self.guides) != len(self.targets):
            raise PainterlyError(
                f"the guided style loss needs as many masks as style images ({len(self.targets)}), "
                f"got {len(self.guides)}"
            )
        total = torch.zeros((), device=image.device)
        for target, guide, weight in zip(self.targets, self.guides, self.region_weights, strict=True):
            total = total + weight * (guided_gram(features, guide[layer]) - target[layer]).pow(2).mean()
        return total


def keep_weight_map(keep: torch.Tensor, keep_weight: float) -> torch.Tensor:
    """Per-position content weight: 1 outside the keep mask, ``keep_weight`` inside, blended between."""
    return 1.0 + (keep_weight - 1.0) * keep.float()


class GuidedContentLoss(LayerWeightedTerm):
    """The content term of ``base`` (its targets and reduction), weighted per position.

    :meth:`set_guides` takes, per layer, a weight map at the layer's resolution (from
    :func:`propagate_mask` of :func:`keep_weight_map`): the squared error at each position is
    multiplied by it before the mean (or sum). A map of ones gives ``base``'s value.
    """

    def __init__(self, base: ContentLoss) -> None:
        super().__init__(base.layer_weights)
        self.base = base
        self.guides: dict[str, torch.Tensor] = {}

    def set_guides(self, guides: Mapping[str, torch.Tensor]) -> None:
        self.guides = {layer: guides[layer] for layer in self.layers}

    def layer_score(self, layer: str, features: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        if layer not in self.base.targets or layer not in self.guides:
            raise PainterlyError("the guided content loss has no target or no mask: set them first")
        diff = (features.float() - self.base.targets[layer]).pow(2) * self.guides[layer].to(features.device)
        return diff.sum() if self.base.reduction == "sum" else diff.mean()
