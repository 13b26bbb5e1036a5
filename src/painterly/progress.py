"""Progress reports: one small dataclass that the CLI, the web server and tests all consume."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from PIL import Image

from painterly.images import tensor_to_pil


@dataclass
class Progress:
    """The state of an image optimization after one iteration.

    ``step`` counts iterations over all scales (1-based) out of ``total_steps``;
    ``iteration`` counts within the current scale. ``losses`` holds the weighted value of every
    loss term by name (``content``, ``style``, ``tv``, any extra term) and ``total``, their sum:
    renderers show whatever names arrive.
    """

    step: int
    total_steps: int
    iteration: int
    iterations: int
    scale: int
    scales: int
    size: tuple[int, int]
    losses: dict[str, float]
    tensor: torch.Tensor = field(repr=False)
    #: Loss-network evaluations so far at this scale (L-BFGS's line search may take several).
    evaluations: int = 0
    #: Seconds still to go, from the measured speed and the plan, never beyond a time limit (None
    #: until a speed is known). Iterations cost more at larger scales, so this beats an it/s guess.
    eta_seconds: float | None = None

    def image(self) -> Image.Image:
        """The current iterate as a PIL image (a copy)."""
        return tensor_to_pil(self.tensor)

    @property
    def done(self) -> bool:
        return self.step >= self.total_steps
