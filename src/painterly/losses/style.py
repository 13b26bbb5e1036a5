"""Gram-matrix style terms: the classic normalization, and the Keras example's.

``GramStyleLoss``: the mean squared difference of normalized Gram matrices (see
:func:`~painterly.losses.gram.gram_matrix`), the Lua neural-style's. ``KerasStyleLoss`` reproduces
the Keras neural style example's formula exactly: a layer's loss is
``sum((F_s F_s^T - F F^T)^2) / (4 * 3^2 * (H_img * W_img)^2)`` with unnormalized Gram matrices and
the *image's* pixel count (3 and the image size are constants in that example).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from painterly.errors import PainterlyError
from painterly.losses.gram import gram_matrix
from painterly.losses.term import LayerWeightedTerm


class GramStyleLoss(LayerWeightedTerm):
    """Squared error between the Gram matrices of activations and fixed target Gram matrices."""

    def __init__(self, layer_weights: Mapping[str, float]) -> None:
        super().__init__(layer_weights)
        self.targets: dict[str, torch.Tensor] = {}
        self.image_weights: torch.Tensor | None = None

    def set_target(
        self, grams: Mapping[str, torch.Tensor], image_weights: torch.Tensor | None = None
    ) -> None:
        """Take Gram matrices (per layer, e.g. from :func:`~painterly.losses.gram.blend_grams`).

        ``image_weights``: optional (N,) weights of a batch's images, e.g. a stronger style weight
        for some styles of a multi-style network; the score is then the mean over images of weight
        times score (not normalized by the weights: all ones gives the plain mean, all twos twice it).
        """
        self.targets = {layer: grams[layer].detach().float() for layer in self.layers}
        self.image_weights = None if image_weights is None else image_weights.detach().float()

    def layer_score(self, layer: str, features: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        positions = features.shape[2] * features.shape[3]
        return self.gram_score(layer, gram_matrix(features), positions, image.shape[-1] * image.shape[-2])

    def gram_score(self, layer: str, gram: torch.Tensor, positions: int, image_pixels: int) -> torch.Tensor:
        """A layer's score from its Gram matrix ``gram`` (of ``positions`` = H*W activations of an
        image of ``image_pixels`` pixels): what a tiled evaluation, which sums a Gram over tiles, uses."""
        if layer not in self.targets:
            raise PainterlyError("the style loss has no target: set it before evaluating")
        squared = (gram - self.targets[layer]).pow(2)
        if self.image_weights is None:
            return squared.mean()
        if self.image_weights.shape != squared.shape[:1]:
            raise PainterlyError(
                f"the style loss has {self.image_weights.numel()} image weights for {squared.shape[0]} images"
            )
        return (squared.mean(dim=(1, 2)) * self.image_weights.to(squared.device)).mean()


class KerasStyleLoss(GramStyleLoss):
    """The Keras example's style loss: raw Gram matrices, over 4 * 3^2 * (image pixels)^2."""

    def gram_score(self, layer: str, gram: torch.Tensor, positions: int, image_pixels: int) -> torch.Tensor:
        mse = super().gram_score(layer, gram, positions, image_pixels)
        channels = gram.shape[-1]
        # From normalized to raw Gram matrices, summed, over 4 * 3^2 * image_pixels^2.
        return mse * (channels**4 * positions**2) / (36.0 * image_pixels**2)
