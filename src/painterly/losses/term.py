"""The one interface every loss term implements, so that containers and loops never learn names."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn


class LossTerm(nn.Module):
    """One loss term: ``forward(image, features)`` returns an unweighted scalar tensor.

    ``image`` is the (B, 3, H, W) image being optimized (RGB, 0-1, in the loss network's memory
    layout); ``features`` holds the loss network's activations of it for at least the layers named
    in :attr:`layers` (empty for terms on pixels, such as TV). A term keeps its own targets, set
    once (or per batch, per frame) by its ``set_target`` method; its global weight lives in the
    container (:class:`~painterly.losses.container.LossCriterion`), not in the term.
    """

    #: Loss-network layers whose activations :meth:`forward` needs.
    layers: tuple[str, ...] = ()

    def forward(self, image: torch.Tensor, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError


class LayerWeightedTerm(LossTerm):
    """A term summed over loss-network layers, each with its own weight: sum_l w_l * score_l."""

    def __init__(self, layer_weights: Mapping[str, float]) -> None:
        super().__init__()
        self.layer_weights = dict(layer_weights)
        self.layers = tuple(self.layer_weights)

    def layer_score(self, layer: str, features: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, image: torch.Tensor, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        total = torch.zeros((), device=image.device)
        for layer, weight in self.layer_weights.items():
            total = total + weight * self.layer_score(layer, features[layer], image)
        return total
