"""The perceptual loss both methods use: content + Gram style + TV, built from settings.

``convention`` picks the formulas: ``classic`` (the Lua neural-style's: mean squared errors and
normalized Gram matrices) or ``keras`` (the Keras neural style example's: summed content error and
:class:`~painterly.losses.style.KerasStyleLoss`). Image optimization sets one content target per
scale (:meth:`PerceptualLoss.set_content`); feed-forward training sets it per batch, the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch

from painterly.errors import PainterlyError, check_weight, did_you_mean
from painterly.losses.container import LossCriterion
from painterly.losses.content import ContentLoss
from painterly.losses.gram import blend_grams, gram_matrix
from painterly.losses.style import GramStyleLoss, KerasStyleLoss
from painterly.losses.term import LossTerm
from painterly.losses.tv import tv_term
from painterly.settings import LOSS_CONVENTIONS, layer_weights
from painterly.vgg.layers import check_layers, layer_names
from painterly.vgg.network import VGG


def deepest_layer(arch: str, layers: Sequence[str]) -> str:
    """The deepest of ``layers`` in ``arch``: how far the loss network must be built."""
    names = layer_names(arch)
    check_layers(arch, layers)
    return max(layers, key=names.index)


class PerceptualLoss(LossCriterion):
    """Weighted ``content`` + ``style`` + ``tv`` terms on a VGG loss network.

    An empty layer list leaves its term out (distillation uses content alone). The terms are in
    :attr:`terms` by name; :meth:`set_content` and :meth:`set_style` set their targets from images.
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
        if convention not in LOSS_CONVENTIONS:
            raise PainterlyError(
                f"unknown loss convention {convention!r}{did_you_mean(convention, LOSS_CONVENTIONS)}"
            )
        terms: dict[str, tuple[LossTerm, float]] = {}
        if content_layers:
            content = layer_weights(content_layers, "content")
            check_layers(vgg.arch, content)
            reduction = "sum" if convention == "keras" else "mean"
            terms["content"] = (
                ContentLoss(content, reduction),
                check_weight("content weight", content_weight),
            )
        if style_layers:
            style = layer_weights(style_layers, "style")
            check_layers(vgg.arch, style)
            kind = KerasStyleLoss if convention == "keras" else GramStyleLoss
            terms["style"] = (kind(style), check_weight("style weight", style_weight))
        terms["tv"] = (tv_term(tv_form), check_weight("TV weight", tv_weight))
        super().__init__(vgg, terms)
        self.convention = convention

    @property
    def network(self) -> VGG:
        assert self.vgg is not None
        return self.vgg

    def _term(self, name: str) -> LossTerm:
        if name not in self.terms:
            raise PainterlyError(f"this loss has no {name} term")
        term = self.terms[name]
        assert isinstance(term, LossTerm)
        return term

    @property
    def content_layers(self) -> tuple[str, ...]:
        return self._term("content").layers if "content" in self.terms else ()

    @property
    def style_layers(self) -> tuple[str, ...]:
        return self._term("style").layers if "style" in self.terms else ()

    @torch.no_grad()
    def content_features(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.network(image, self.content_layers)

    @torch.no_grad()
    def style_grams(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.network(image, self.style_layers)
        return {name: gram_matrix(features[name]) for name in self.style_layers}

    @torch.no_grad()
    def style_targets(
        self,
        images: Sequence[torch.Tensor],
        blend: Sequence[float] | None = None,
        grams_of: Callable[[torch.Tensor], dict[str, torch.Tensor]] | None = None,
    ) -> dict[str, torch.Tensor]:
        """The Gram targets of one or more style images, mixed by ``blend`` weights (``grams_of``: how
        an image's Grams are computed, :meth:`style_grams` by default; e.g. in tiles)."""
        weights = (
            [check_weight("style blend weight", b) for b in blend]
            if blend is not None
            else [1.0] * len(images)
        )
        if not images or sum(weights) <= 0:
            raise PainterlyError("need at least one style image with a positive blend weight")
        grams_of = grams_of or self.style_grams
        return blend_grams([grams_of(image) for image in images], weights)

    def set_style(self, images: Sequence[torch.Tensor], blend: Sequence[float] | None = None) -> None:
        """Set the style term's Gram targets from one or more style images."""
        style = self._term("style")
        assert isinstance(style, GramStyleLoss)
        style.set_target(self.style_targets(images, blend))

    def set_content(
        self,
        image: torch.Tensor,
        features_of: Callable[[torch.Tensor], dict[str, torch.Tensor]] | None = None,
    ) -> None:
        """Set the content target: an image (or a batch) whose activations the output should keep
        (``features_of``: how they are computed, :meth:`content_features` by default)."""
        content = self._term("content")
        assert isinstance(content, ContentLoss)
        content.set_target((features_of or self.content_features)(image))


#: The content + style + TV criterion of a method's settings (see :class:`PerceptualLoss`).
build_criterion = PerceptualLoss
