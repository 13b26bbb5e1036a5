"""Training settings: one dataclass, whose defaults the CLI and the library share. Imports no torch."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class TrainSettings:
    """Every setting of a training run. Loss weights are in :mod:`painterly.losses` units.

    Weights: content and style losses are means (they do not grow with the crop size); with
    these defaults a photo's weighted style term starts some 50 times above its content term
    and the two meet as the network learns the style. TV is a sum over pixels and images, so
    its weight is small (1e-4); raise it for smoother results.
    """

    style: str | os.PathLike
    data: str | os.PathLike
    output: str | os.PathLike
    iterations: int = 2000
    batch_size: int = 4
    image_size: int = 256
    width: int | str = "light"
    network: str = "vgg16"
    content_layers: Sequence[str] = ("relu2_2",)
    style_layers: Sequence[str] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
    content_weight: float = 1.0
    style_weight: float = 5.0
    tv_weight: float = 1e-4
    style_size: int = 384
    learning_rate: float = 1e-3
    seed: int = 0
    checkpoint_every: int = 200
    log_every: int = 10
    validate_every: int = 100
    validation: Sequence[str | os.PathLike] = ()
    validation_size: int = 384
    resume: bool = False
    device: str = "auto"
    precision: str = "auto"
    name: str | None = None
    #: Where checkpoints, the loss log and validation images go; default ``<output>.train/``.
    workdir: str | os.PathLike | None = None
