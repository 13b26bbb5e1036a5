"""A shift-equivariance term against the grid-locked hatching of feed-forward networks.

Engineer F's study (docs/training-findings.md) found that the hatching of the shipped models is a
photo-independent texture with an exact 4 px period: the network's grid (two stride-2
convolutions, two 2x upsamplings). A texture locked to that grid changes when the input moves by
less than 4 px; strokes that follow the picture move with it. So each training step also runs the
network on the batch shifted by a random (dy, dx) in 0..3 (not both 0; reflection padding),
shifts the output back and adds ``weight * mean((shifted back - unshifted)^2)`` (RGB in 0-1).
It costs one more pass of the transformation network per step and no pass of the loss network.
80 warm-start steps at weight 1e8 halved the grid component (F's ``lattice4``: 3.95 -> 1.99 and
4.27 -> 2.86 on the validation photos) and kept more of the photo.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

#: The network's grid (:data:`painterly.feedforward.network.MULTIPLE`): shifts below it are tested.
GRID = 4


def random_shift(generator: torch.Generator) -> tuple[int, int]:
    """A (dy, dx) uniform over {0..3}^2 without (0, 0)."""
    index = int(torch.randint(1, GRID * GRID, (1,), generator=generator))
    return index // GRID, index % GRID


def shift_equivariance(
    run: Callable[[torch.Tensor], torch.Tensor],
    batch: torch.Tensor,
    stylized: torch.Tensor,
    shift: tuple[int, int],
) -> torch.Tensor:
    """Mean squared difference of ``stylized`` and ``run`` of ``batch`` moved by ``shift``, moved back."""
    dy, dx = shift
    h, w = batch.shape[-2:]
    moved = run(F.pad(batch, (dx, 0, dy, 0), mode="reflect"))
    back = moved[..., dy : dy + h, dx : dx + w]
    return F.mse_loss(back.float(), stylized.float())
