"""Total-variation smoothness terms, on pixels (no loss network).

Both measure differences in 0-255 pixel units and sum over pixels as the classics do, so the TV
weight's effect grows with the image size.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from painterly.errors import PainterlyError, did_you_mean
from painterly.losses.term import LossTerm
from painterly.settings import TV_FORMS


def _differences(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    dx = (image[:, :, :-1, 1:] - image[:, :, :-1, :-1]) * 255.0
    dy = (image[:, :, 1:, :-1] - image[:, :, :-1, :-1]) * 255.0
    return dx, dy


class SquaredTVLoss(LossTerm):
    """0.5 * sum of dx^2 + dy^2: the loss whose gradient the Lua neural-style uses."""

    def forward(self, image: torch.Tensor, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        dx, dy = _differences(image.float())
        return 0.5 * (dx.pow(2) + dy.pow(2)).sum()


class PowerTVLoss(LossTerm):
    """sum of (dx^2 + dy^2)^exponent; the exponent 1.25 (``power1.25``) is the Keras example's form."""

    def __init__(self, exponent: float = 1.25) -> None:
        super().__init__()
        self.exponent = exponent

    def forward(self, image: torch.Tensor, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        dx, dy = _differences(image.float())
        return (dx.pow(2) + dy.pow(2) + 1e-8).pow(self.exponent).sum()


#: The TV forms by their settings name (:data:`painterly.settings.TV_FORMS`).
TV_TERMS: dict[str, type[LossTerm]] = {"squared": SquaredTVLoss, "power1.25": PowerTVLoss}
assert tuple(TV_TERMS) == TV_FORMS


def tv_term(form: str) -> LossTerm:
    """The TV term of a settings name (``squared`` or ``power1.25``)."""
    if form not in TV_TERMS:
        raise PainterlyError(f"unknown TV form {form!r}{did_you_mean(form, TV_FORMS)}")
    return TV_TERMS[form]()


def tv_loss(image: torch.Tensor, form: str = "squared") -> torch.Tensor:
    """Total variation of a (B, 3, H, W) image in 0-1 (see :class:`SquaredTVLoss`, :class:`PowerTVLoss`)."""
    return tv_term(form)(image, {})
