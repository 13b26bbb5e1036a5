"""The content term: squared error between activations and those of a content image."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from painterly.errors import PainterlyError
from painterly.losses.term import LayerWeightedTerm

REDUCTIONS = ("mean", "sum")


def content_error(features: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Squared error between activations: ``mean`` (classic) or ``sum`` (the Keras example's)."""
    diff = (features.float() - target.float()).pow(2)
    return diff.sum() if reduction == "sum" else diff.mean()


class ContentLoss(LayerWeightedTerm):
    """Mean (or summed) squared error of activations against targets set by :meth:`set_target`.

    Image optimization sets the target once per scale; feed-forward training sets it per batch
    (the batch's own activations), which costs nothing more than passing it to every call.
    """

    def __init__(self, layer_weights: Mapping[str, float], reduction: str = "mean") -> None:
        super().__init__(layer_weights)
        if reduction not in REDUCTIONS:
            raise PainterlyError(f"unknown content reduction {reduction!r}; use one of {REDUCTIONS}")
        self.reduction = reduction
        self.targets: dict[str, torch.Tensor] = {}

    def set_target(self, features: Mapping[str, torch.Tensor]) -> None:
        """Take the content activations (at least this term's layers) as the target."""
        self.targets = {layer: features[layer].detach().float() for layer in self.layers}

    def layer_score(self, layer: str, features: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        if layer not in self.targets:
            raise PainterlyError("the content loss has no target: set it before evaluating")
        return content_error(features, self.targets[layer], self.reduction)
