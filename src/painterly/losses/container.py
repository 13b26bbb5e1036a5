"""A container of named, weighted loss terms on one loss network, returning a named dict.

The optimization loop and the training loop call ``criterion(image)`` and get
``{"content": ..., "style": ..., "tv": ..., "total": ...}`` (whatever terms it holds): they never
learn a term's name. Adding a loss is one :class:`~painterly.losses.term.LossTerm` subclass and one
entry here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import torch
from torch import nn

from painterly.errors import PainterlyError, check_weight
from painterly.losses.term import LossTerm
from painterly.vgg.network import VGG

#: The key of the weighted sum in every loss dict; no term may take it.
TOTAL = "total"


class LossCriterion(nn.Module):
    """Named terms, each with a global weight, evaluated on the activations of one VGG pass.

    ``forward(image)`` runs the network once, only as deep as the terms need and only for the
    layers they need, and returns the weighted value of every term plus ``"total"``, their sum (in
    the order the terms were given). A term of weight 0 is not evaluated (it reports 0).
    """

    def __init__(self, vgg: VGG | None, terms: Mapping[str, tuple[LossTerm, float]]) -> None:
        super().__init__()
        self.vgg = vgg
        self.terms = nn.ModuleDict()
        self.weights: dict[str, float] = {}
        for name, (term, weight) in terms.items():
            self.add_term(name, term, weight)

    def add_term(self, name: str, term: LossTerm, weight: float) -> None:
        """Add (or replace) a term; later terms are summed after earlier ones."""
        if name == TOTAL:
            raise PainterlyError(f"a loss term may not be named {TOTAL!r}")
        if not isinstance(term, LossTerm):
            raise PainterlyError(f"loss term {name!r} is not a LossTerm")
        if term.layers and self.vgg is None:
            raise PainterlyError(f"loss term {name!r} needs a loss network")
        self.weights[name] = check_weight(f"{name} weight", weight)
        self.terms[name] = term

    def with_terms(self, extra: Mapping[str, tuple[LossTerm, float]] | None) -> LossCriterion:
        """A criterion sharing this one's network and terms, plus (or replacing by name) ``extra``."""
        combined = {name: (term, self.weights[name]) for name, term in self.items()}
        for name, (term, weight) in (extra or {}).items():
            combined[name] = (term, weight)
        return LossCriterion(self.vgg, combined)

    def items(self) -> Iterator[tuple[str, LossTerm]]:
        for name, term in self.terms.items():
            assert isinstance(term, LossTerm)
            yield name, term

    @property
    def layers(self) -> list[str]:
        """The loss-network layers the weighted terms need, each once."""
        wanted = [layer for name, term in self.items() if self.weights[name] for layer in term.layers]
        return list(dict.fromkeys(wanted))

    def features(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        layers = self.layers
        if not layers:
            return {}
        assert self.vgg is not None
        return self.vgg(image, layers)

    def forward(
        self, image: torch.Tensor, features: Mapping[str, torch.Tensor] | None = None
    ) -> dict[str, torch.Tensor]:
        """The weighted terms of ``image`` and ``"total"``; pass ``features`` if already computed."""
        if features is None:
            features = self.features(image)
        zero = torch.zeros((), device=image.device)
        losses: dict[str, torch.Tensor] = {}
        total = zero
        for name, term in self.items():
            weight = self.weights[name]
            value = term(image, features) * weight if weight else zero
            losses[name] = value
            total = total + value
        losses[TOTAL] = total
        return losses


def loss_values(losses: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """The losses as floats for reports, with one device synchronization for all of them."""
    names = list(losses)
    values = torch.stack([losses[name].detach().float() for name in names]).tolist()
    return dict(zip(names, values, strict=True))
