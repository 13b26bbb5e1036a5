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

With a wider ``limit`` (``--equivariance-shift``, above :data:`GRID`) the batch is widened on all
four sides by independent margins in 0..limit-1, so that a mark the network anchors to an edge (a
painted frame: the_scream's run drew an orange bar along the top and a dark band along the right of
every photo, at a fixed distance from the border) lands elsewhere on the photo in the widened run
and costs the term too. Shifts at the grid's size move a top or left bar by at most 3 px and a
bottom or right one not at all, so they barely touch such a frame. Instance normalization sees
the reflected margins too, so with wide margins the term does not reach zero even for a network
that pins nothing to the edges: its level jumps when a run widens the shift.
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


def random_margins(generator: torch.Generator, limit: int = GRID) -> tuple[int, int, int, int]:
    """Margins (top, left, bottom, right) to widen a batch by: at the grid's ``limit`` (the default),
    :func:`random_shift`'s (dy, dx) on the top and left only (the same draws); above it, each side
    uniform over 0..limit-1, not all zero."""
    if limit <= GRID:
        dy, dx = random_shift(generator)
        return dy, dx, 0, 0
    while True:
        top, left, bottom, right = (int(v) for v in torch.randint(0, limit, (4,), generator=generator))
        if top or left or bottom or right:
            return top, left, bottom, right


def shift_equivariance(
    run: Callable[[torch.Tensor], torch.Tensor],
    batch: torch.Tensor,
    stylized: torch.Tensor,
    shift: tuple[int, int] | tuple[int, int, int, int],
) -> torch.Tensor:
    """Mean squared difference of ``stylized`` and ``run`` of ``batch`` widened by ``shift``, cut
    back: (dy, dx) moves the photo down and right; (top, left, bottom, right) widens every side
    (reflection padding)."""
    top, left, bottom, right = (*shift, 0, 0) if len(shift) == 2 else shift
    h, w = batch.shape[-2:]
    moved = run(F.pad(batch, (left, right, top, bottom), mode="reflect"))
    back = moved[..., top : top + h, left : left + w]
    return F.mse_loss(back.float(), stylized.float())
