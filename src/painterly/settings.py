"""The settings of an image optimization run: defaults, presets, validation, the scale pyramid.

Kept free of torch so that the CLI can build its parser (and show defaults) without loading it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image

from painterly.color import check_preserve_colors
from painterly.errors import PainterlyError, check_weight, did_you_mean
from painterly.presets import preset as preset_settings
from painterly.vgg.layers import layer_names

OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise", "style")
POOLINGS = ("max", "avg")

#: Above this output size (long side, px) the default is to paint coarse to fine.
MULTISCALE_ABOVE = 400
#: The smallest scale of a coarse-to-fine run.
MIN_SCALE = 256


def layer_weights(layers: Sequence[str] | Mapping[str, float], what: str) -> dict[str, float]:
    """A list of layers gets equal weights of 1; a mapping is taken as per-layer weights."""
    if isinstance(layers, str):
        layers = [layers]
    if isinstance(layers, Mapping):
        return {name: check_weight(f"{what} weight of layer {name}", value) for name, value in layers.items()}
    if not layers:
        raise PainterlyError(f"need at least one {what} layer")
    return {name: 1.0 for name in layers}


@dataclass
class TransferSettings:
    """Every setting of an image optimization run. Defaults are the ``classic`` preset.

    Loss weights follow the Lua neural-style's units (see :mod:`painterly.losses`).
    """

    size: int = 512
    iterations: int | None = None
    network: str = "vgg19"
    weights: str | None = None
    weights_convention: str | None = None
    pooling: str = "max"
    content_layers: Sequence[str] | Mapping[str, float] = ("relu4_2",)
    style_layers: Sequence[str] | Mapping[str, float] = (
        "relu1_1",
        "relu2_1",
        "relu3_1",
        "relu4_1",
        "relu5_1",
    )
    content_weight: float = 5.0
    style_weight: float = 100.0
    tv_weight: float = 1e-3
    tv_form: str = "squared"
    loss_convention: str = "classic"
    optimizer: str = "lbfgs"
    learning_rate: float | None = None
    lbfgs_history: int = 50
    init: str = "content"
    seed: int = 0
    style_blend: Sequence[float] | None = None
    style_scale: float = 1.0
    preserve_colors: str = "none"
    scales: int | None = None
    square: bool = False
    device: str = "auto"
    precision: str = "auto"
    preset: str | None = None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True, default=str)


def make_settings(preset: str | None = None, **options: Any) -> TransferSettings:
    """Defaults, then the preset, then explicit ``options`` (which always win). ``None`` means unset."""
    known = {f.name for f in dataclasses.fields(TransferSettings)}
    values: dict[str, Any] = {}
    if preset is not None:
        values.update(preset_settings(preset))
        values["preset"] = preset
    for key, value in options.items():
        if key not in known:
            raise PainterlyError(f"unknown setting {key!r}{did_you_mean(key, known)}")
        if value is not None:
            values[key] = value
    settings = TransferSettings(**values)
    validate(settings)
    return settings


def _choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise PainterlyError(
            f"unknown {name} {value!r}{did_you_mean(value, choices)}; choose from {', '.join(choices)}"
        )


def validate(s: TransferSettings) -> None:
    """Check every setting up front, so that bad input fails before any work."""
    for name in ("content_weight", "style_weight", "tv_weight", "style_scale"):
        check_weight(name.replace("_", " "), getattr(s, name))
    if s.style_scale <= 0:
        raise PainterlyError("style scale must be positive")
    if not isinstance(s.size, int) or s.size < 16:
        raise PainterlyError(f"size must be a whole number of pixels, at least 16, got {s.size!r}")
    if s.iterations is not None and (not isinstance(s.iterations, int) or s.iterations < 1):
        raise PainterlyError(f"iterations must be a positive whole number, got {s.iterations!r}")
    if s.scales is not None and (not isinstance(s.scales, int) or s.scales < 1):
        raise PainterlyError(f"scales must be a positive whole number, got {s.scales!r}")
    if s.learning_rate is not None:
        check_weight("learning rate", s.learning_rate)
    _choice("optimizer", s.optimizer, OPTIMIZERS)
    _choice("pooling", s.pooling, POOLINGS)
    check_preserve_colors(s.preserve_colors)
    if s.init not in INITS and not isinstance(s.init, str | Image.Image):
        raise PainterlyError(f"init must be one of {INITS} or an image path")
    names = layer_names(s.network)  # validates the network name
    for what, layers in (("content", s.content_layers), ("style", s.style_layers)):
        for layer in layer_weights(layers, what):
            if layer not in names:
                raise PainterlyError(
                    f"unknown {what} layer {layer!r} for {s.network}{did_you_mean(layer, names)}"
                )


def scale_sizes(size: int, scales: int | None) -> list[int]:
    """Long sides of the coarse-to-fine pyramid, smallest first, ending at ``size``.

    ``None`` picks automatically: one scale up to :data:`MULTISCALE_ABOVE` px, otherwise steps of
    about sqrt(2) down from ``size`` to at least :data:`MIN_SCALE`.
    """
    if scales is None:
        if size <= MULTISCALE_ABOVE:
            return [size]
        scales = 1 + math.floor(2 * math.log2(size / MIN_SCALE) + 1e-9)
    if scales == 1:
        return [size]
    low = max(16, min(size, MIN_SCALE))
    ratio = (size / low) ** (1 / (scales - 1))
    return [round(low * ratio**i) for i in range(scales - 1)] + [size]


#: Iterations when none are given: 300 at a single scale, 100 per scale coarse to fine (a 512 px
#: default run, 256 -> 362 -> 512 px, looks finished after about 3 minutes on a 2-core CPU).
AUTO_ITERATIONS_SINGLE = 300
AUTO_ITERATIONS_PER_SCALE = 100


def iterations_per_scale(iterations: int | None, n_scales: int) -> list[int]:
    """Iterations at each scale: ``iterations`` everywhere, or the automatic budget if None."""
    if iterations is None:
        iterations = AUTO_ITERATIONS_SINGLE if n_scales == 1 else AUTO_ITERATIONS_PER_SCALE
    return [iterations] * n_scales
