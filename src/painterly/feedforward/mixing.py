"""Style mixes and strength for multi-style models: parsing, checking, applying. Torch-free.

A mix names styles of a conditional-instance-norm model with weights (``the_wave:0.7,udnie:0.3``);
it is normalized into a convex combination, one weight per style of the model, which is the
network's ``style_weights`` input (:mod:`painterly.feedforward.conditional`).

Strength (0 = the photo, 1 = the full painting) interpolates the *output* with the photo:
``photo + strength * (stylized - photo)``. It is exact at both ends for every model (single- or
multi-style, either backend) and needs nothing learned. The alternative, interpolating the norm
parameters toward an identity style, would need a style trained to reproduce photos, which no
model has, and even then would not return the photo exactly at 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from painterly.errors import PainterlyError, did_you_mean
from painterly.numbers import parse_decimal, quoted

StyleMix = Mapping[str, float]

#: The name of a multi-style network's style-weights input, (N, S), in its exported ONNX graph.
STYLE_WEIGHTS = "style_weights"


def check_style_names(styles: Sequence[str]) -> list[str]:
    """The style names of a multi-style model: non-empty, unique, without commas or colons."""
    names = list(styles)
    if not names:
        raise PainterlyError("a multi-style network needs at least one style")
    for name in names:
        if not isinstance(name, str) or not name.strip() or any(c in name for c in ",:"):
            raise PainterlyError(f"invalid style name {name!r} (no commas or colons)")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise PainterlyError(f"two styles are named {duplicates[0]!r}; rename one of the style files")
    return names


def parse_style_mix(text: str | StyleMix | None) -> dict[str, float] | None:
    """``"the_wave:0.7,udnie:0.3"`` (a name alone weighs 1) or a mapping, to ``{name: weight}``."""
    if text is None:
        return None
    if isinstance(text, Mapping):
        return {str(k): v for k, v in text.items()}
    mix: dict[str, float] = {}
    for part in str(text).split(","):
        name, _, weight = part.strip().partition(":")
        name = name.strip()
        if not name:
            raise PainterlyError(f"style mix {text!r}: expected NAME[:WEIGHT],NAME[:WEIGHT],...")
        try:  # the shared parser: ASCII digits only, finite
            value = parse_decimal(weight, "weight", minimum=0) if weight.strip() else 1.0
        except PainterlyError as exc:
            raise PainterlyError(
                f"style mix {quoted(text)}: {quoted(weight)} is not a number ({exc})"
            ) from None
        if name in mix:
            raise PainterlyError(f"style mix {text!r}: {name!r} is named twice")
        mix[name] = value
    return mix


def mix_vector(styles: Sequence[str], mix: StyleMix | None) -> list[float]:
    """One weight per style (summing to 1) of a mix ``{name: weight}``; None or empty: the first style."""
    if not mix:
        return [1.0 if i == 0 else 0.0 for i in range(len(styles))]
    for name, weight in mix.items():
        if name not in styles:
            raise PainterlyError(
                f"this model has no style {name!r}{did_you_mean(name, list(styles))} "
                f"(styles: {', '.join(styles)})"
            )
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight >= 0:
            raise PainterlyError(f"the weight of style {name!r} must be a number >= 0, got {weight!r}")
    total = float(sum(mix.values()))
    if not (total > 0 and math.isfinite(total)):
        raise PainterlyError("style mix: the weights must add up to a positive finite number")
    return [float(mix.get(name, 0.0)) / total for name in styles]


def check_strength(strength: object) -> float:
    if isinstance(strength, bool) or not isinstance(strength, int | float) or not 0 <= strength <= 1:
        raise PainterlyError(
            f"strength must be a number from 0 (the photo) to 1 (the painting), got {strength!r}"
        )
    return float(strength)


def apply_strength(stylized: np.ndarray, photo: np.ndarray, strength: float) -> np.ndarray:
    """``photo + strength * (stylized - photo)`` on float arrays in 0-1 (strength 1: ``stylized``)."""
    if strength >= 1.0:
        return stylized
    if strength <= 0.0:
        return photo.astype(stylized.dtype, copy=True)
    return photo + np.float32(strength) * (stylized - photo)
