"""What one training step of ``painterly train`` minimizes, and the step itself.

:func:`build_objective` builds the criterion: the shared perceptual loss (content, Gram style, TV)
on the loss network, one Gram target per trained style, each style's multiplier of the style
weight, the coarse style terms (the output reduced by 2, 4, ...) and the temporal term when set.
:class:`TrainStep` runs one step: draws the batch, gives each photo its style, runs the network,
scores it (plus the shift-equivariance term) and updates the weights. A change of recipe (a loss
term, a target, the way styles share a batch) lands here; :mod:`painterly.feedforward.training`
only wires the parts together and saves the run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from PIL import Image

from painterly.feedforward.conditional import ConditionalTransformerNet
from painterly.feedforward.data import CropSampler
from painterly.feedforward.equivariance import random_margins, shift_equivariance
from painterly.feedforward.loop import Runtime
from painterly.feedforward.settings import TrainSettings
from painterly.feedforward.temporal import TemporalLoss, frame_pairs, random_motion
from painterly.images import pil_to_tensor, resize_long_side
from painterly.losses import TOTAL, GramStyleLoss, LossCriterion, LossTerm, PerceptualLoss, loss_values
from painterly.losses.coarse import CoarseGramStyleLoss, check_factor, coarse_grams, coarse_weights
from painterly.vgg.network import VGG


@dataclass
class Objective:
    """The loss of a run: the perceptual loss, its style targets (one per style image) and scales."""

    loss: PerceptualLoss
    #: ``loss`` plus the coarse style terms and the temporal term when the run sets them (else
    #: ``loss`` itself).
    criterion: LossCriterion
    style_term: GramStyleLoss
    #: Gram targets by layer, one dict per style image of the run (in the order of the settings).
    targets: list[dict[str, torch.Tensor]]
    #: Style weight multiplier of each trained style index.
    scale_of: dict[int, float]
    #: The ``--style-weight-scale`` values as given (by style name), for the model's metadata.
    scales: dict[str, float]
    temporal: TemporalLoss
    #: One coarse style term per ``--coarse-style`` factor, with its Gram targets (one per style).
    coarse: list[tuple[CoarseGramStyleLoss, list[dict[str, torch.Tensor]]]] = field(default_factory=list)

    @property
    def per_photo(self) -> bool:
        """Whether each photo of a batch needs its own Gram target or weight (several styles, scales)."""
        return len(self.targets) > 1 or self.scaled

    @property
    def scaled(self) -> bool:
        return any(scale != 1.0 for scale in self.scale_of.values())

    def set_styles(self, styles: Sequence[int], device: torch.device) -> None:
        """Point the style term at each photo's own style (``styles[j]`` for photo ``j``)."""
        if not self.per_photo:
            return
        weights = torch.tensor([self.scale_of[i] for i in styles], device=device) if self.scaled else None
        self.style_term.set_target(_per_photo(self.targets, styles), weights)
        for term, targets in self.coarse:
            term.set_target(_per_photo(targets, styles), weights)


def _per_photo(targets: list[dict[str, torch.Tensor]], styles: Sequence[int]) -> dict[str, torch.Tensor]:
    """The Gram targets of a batch whose photo ``j`` trains style ``styles[j]``."""
    if len(targets) == 1:
        return targets[0]
    return {k: torch.cat([targets[i][k] for i in styles]) for k in targets[0]}


def build_objective(
    s: TrainSettings,
    runtime: Runtime,
    vgg: VGG,
    style_images: Sequence[Image.Image],
    trained: Sequence[int],
    trained_names: Sequence[str],
) -> Objective:
    """The run's loss on ``vgg``, with the Gram targets of ``style_images`` at ``s.style_size``."""
    loss = PerceptualLoss(
        vgg,
        s.content_layers,
        s.style_layers,
        content_weight=s.content_weight,
        style_weight=s.style_weight,
        tv_weight=s.tv_weight,
    )
    style_term = loss.terms["style"]
    assert isinstance(style_term, GramStyleLoss)
    targets: list[dict[str, torch.Tensor]] = []
    coarse: list[tuple[CoarseGramStyleLoss, list[dict[str, torch.Tensor]]]] = [
        (CoarseGramStyleLoss(vgg, style_term.layer_weights, f), []) for f in coarse_weights(s.coarse_style)
    ]
    with runtime.autocast():
        for image in style_images:
            resized = resize_long_side(image, s.style_size)
            for term, _ in coarse:
                check_factor(term.factor, *resized.size)  # a wide painting's short side too
            style_t = runtime.layout(pil_to_tensor(resized).to(runtime.device))
            targets.append(loss.style_targets([style_t]))
            for term, kept in coarse:
                kept.append(coarse_grams(vgg, style_t, term.factor, style_term.layers))
    style_term.set_target(targets[0])
    for term, kept in coarse:
        term.set_target(kept[0])
    multipliers = coarse_weights(s.coarse_style)
    extra: dict[str, tuple[LossTerm, float]] = {
        f"style_x{t.factor}": (t, s.style_weight * multipliers[t.factor]) for t, _ in coarse
    }
    # Each trained style's multiplier of the style weight (1 unless --style-weight-scale names it).
    scales = {name: float(scale) for name, scale in (s.style_weight_scales or {}).items()}
    scale_of = {i: scales.get(name, 1.0) for i, name in zip(trained, trained_names, strict=True)}
    temporal = TemporalLoss()
    if s.temporal_weight:
        extra["temporal"] = (temporal, s.temporal_weight)
    criterion = loss.with_terms(extra) if extra else loss
    return Objective(loss, criterion, style_term, targets, scale_of, scales, temporal, coarse)


def style_rows(net: ConditionalTransformerNet, indices: Sequence[int], device: torch.device) -> torch.Tensor:
    """(len(indices), S) one-hot style weights: row j selects style ``indices[j]``."""
    weights = torch.zeros(len(indices), len(net.styles), device=device)
    weights[torch.arange(len(indices)), torch.tensor(indices)] = 1.0
    return weights


class TrainStep:
    """One training step, ``step(index) -> {loss name: value}``, as
    :func:`~painterly.feedforward.loop.run_loop` calls it.

    Every random choice of a step (crops, styles, motion, shift) is a function of (seed, rank,
    step), so a resumed run takes the same steps an uninterrupted one would.
    """

    def __init__(
        self,
        s: TrainSettings,
        runtime: Runtime,
        net: torch.nn.Module,
        sampler: CropSampler,
        objective: Objective,
        optimizer: torch.optim.Optimizer,
        trained: Sequence[int],
    ) -> None:
        self.s = s
        self.runtime = runtime
        self.net = net
        #: ``net``, or ``net`` wrapped in DistributedDataParallel under torchrun.
        self.model = runtime.parallel(net)
        self.sampler = sampler
        self.objective = objective
        self.optimizer = optimizer
        self.trained = list(trained)
        self.scaler = torch.amp.GradScaler(runtime.device.type, enabled=runtime.amp_dtype == torch.float16)

    def __call__(self, step: int) -> dict[str, float]:
        batch, styles = self.batch(step)
        self.objective.set_styles(styles, self.runtime.device)
        with self.runtime.autocast():
            terms = self.losses(step, batch, styles)
        losses = loss_values(terms)
        if all(map(_finite, losses.values())):
            self.update(terms[TOTAL])
        return losses

    def batch(self, step: int) -> tuple[torch.Tensor, list[int]]:
        """The step's photos (frame pairs with the temporal loss) and the style index of each."""
        runtime = self.runtime
        batch = runtime.layout(self.sampler.batch(step, self.s.batch_size).to(runtime.device))
        # Each photo of a batch trains one style, the styles in turn across photos and steps: a
        # batch of 4 with 6 styles holds 4 of them, so the shared layers' gradient is an average
        # over styles (one style per batch swung the shared layers, and every style's colours with
        # them, towards each style in turn).
        first = (step * runtime.world + runtime.rank) * batch.shape[0]  # distinct across processes too
        styles = [self.trained[(first + j) % len(self.trained)] for j in range(batch.shape[0])]
        if self.s.temporal_weight:
            generator = torch.Generator().manual_seed(self.s.seed * 1_000_003 + step)
            theta = random_motion(batch.shape[0], generator)
            self.objective.temporal.set_motion(theta)
            batch = runtime.layout(frame_pairs(batch, theta))
            styles = styles * 2  # frame 2 of each pair in its frame 1's style
        return batch, styles

    def run_network(self, styles: Sequence[int]) -> Callable[[torch.Tensor], torch.Tensor]:
        """The network as a function of a batch, each photo in its style."""
        net = self.net
        if not isinstance(net, ConditionalTransformerNet):
            return self.model
        weights = style_rows(net, styles, self.runtime.device)
        return lambda x: self.model(x, weights)

    def losses(self, step: int, batch: torch.Tensor, styles: Sequence[int]) -> dict[str, torch.Tensor]:
        """The weighted loss terms of one step and their ``total`` (call under the run's autocast)."""
        s, objective = self.s, self.objective
        objective.loss.set_content(batch)  # each photo's own activations are its content target
        run = self.run_network(styles)
        stylized = run(batch)
        terms = objective.criterion(self.runtime.layout(stylized))
        if s.equivariance_weight:
            generator = torch.Generator().manual_seed(s.seed * 1_000_033 + step)
            margins = random_margins(generator, s.equivariance_shift)
            term = shift_equivariance(run, batch, stylized, margins) * s.equivariance_weight
            total = terms.pop(TOTAL) + term
            terms = {**terms, "equivariance": term, TOTAL: total}
        return terms

    def update(self, total: torch.Tensor) -> None:
        """Backward pass and optimizer step (with a gradient scaler under float16)."""
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()


def _finite(value: float) -> bool:
    return value == value and abs(value) != float("inf")


__all__ = ["Objective", "TrainStep", "build_objective", "style_rows"]
