"""Training settings: one dataclass, whose defaults the CLI and the library share. Imports no torch."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass
class TrainSettings:
    """Every setting of a training run. Loss weights are in :mod:`painterly.losses` units.

    Weights: content and style losses are means (they do not grow with the crop size); with
    these defaults a photo's weighted style term starts some 50 times above its content term
    and the two meet as the network learns the style. TV is a sum over pixels and images, so
    its weight is small (1e-4); raise it for smoother results.

    ``style`` is one image or a list of them; several give a multi-style network (architecture
    ``cin``, each photo of a batch trained on one style, in turn). ``base``: an existing multi-style model to
    which the one ``style`` is added by training only that style's norm parameters.
    ``temporal_weight`` > 0 adds the temporal loss on synthetic motion
    (:mod:`painterly.feedforward.temporal`).
    """

    style: str | os.PathLike | Sequence[str | os.PathLike]
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
    #: Per-style multipliers of ``style_weight`` by style name (the style file's stem), for a
    #: multi-style network whose styles need different strengths, e.g. ``{"udnie": 2.0}``; a style
    #: not named keeps 1.
    style_weight_scales: Mapping[str, float] | None = None
    tv_weight: float = 1e-4
    style_size: int = 384
    #: Also match the painting's Gram statistics with the output and the painting both reduced by
    #: each of these factors (e.g. ``(2, 4)``), each at ``style_weight``, so that only marks at the
    #: painting's larger scales meet them (:mod:`painterly.losses.coarse`); empty leaves them out.
    #: A mapping (``{2: 5.0, 4: 5.0}``) gives each factor its own multiplier of ``style_weight``.
    coarse_style: Sequence[int] | Mapping[int, float] = ()
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
    #: ``auto`` (``cin`` for several styles or a ``base``, else ``johnson2016``), ``johnson2016`` or ``cin``.
    architecture: str = "auto"
    #: A multi-style model to extend with ``style`` (only the new style's norm parameters train).
    base: str | os.PathLike | None = None
    #: Weight of the temporal loss on synthetic motion; 0 leaves it out.
    temporal_weight: float = 0.0
    #: Weight of the shift-equivariance term against grid-locked hatching
    #: (:mod:`painterly.feedforward.equivariance`; engineer F's finding); 0 leaves it out.
    equivariance_weight: float = 1e8
    #: The equivariance term's widest move in px: 4 (the network's grid, against hatching) moves the
    #: photo 0-3 px down and right; more widens every side by 0..N-1 px, against marks anchored to
    #: the edges (a painted frame). See :mod:`painterly.feedforward.equivariance`.
    equivariance_shift: int = 4
    #: The decoder's 2x upsampling: ``nearest`` (Johnson et al.) or ``bilinear`` (no 4 px grid).
    upsample: str = "nearest"
    #: The network's proportions (:data:`painterly.feedforward.network.SHAPES`): ``johnson``
    #: (Johnson et al.'s, w-2w-4w) or ``compact`` (w throughout, six blocks, a w/4-w/8 decoder;
    #: single-style networks only).
    shape: str = "johnson"
    #: Stop after about this many seconds of training (this run's, not counting earlier resumed
    #: ones) and write the model as if the step count had been reached; None: no limit.
    time_limit: float | None = None
    #: A trained model (single- or multi-style) whose weights start this run instead of random ones
    #: (:mod:`painterly.feedforward.warm_start`); same width, depth and upsampling. None: random.
    init: str | os.PathLike | None = None

    def style_paths(self) -> list[str | os.PathLike]:
        """The style images as a list (one or several)."""
        if isinstance(self.style, str | os.PathLike):
            return [self.style]
        return list(self.style)
