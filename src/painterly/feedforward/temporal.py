"""A temporal loss for training networks that are stable on video, from still photos.

Consecutive video frames differ mostly by small motions; a network that answers them with
different strokes flickers. Following Huang et al. 2017 and Gao et al. 2018 (ReCoNet), training
adds a term on frame pairs, made here by synthetic motion with a known flow (no video needed):
frame 2 is frame 1 moved by a random small affine transform (translation, rotation, zoom), and
the term penalizes the difference between the stylization of frame 1 moved the same way and the
stylization of frame 2, over the pixels whose source lies inside frame 1 (the rest is
disoccluded: filled in by reflection, with no counterpart in frame 1).

The pair travels as one batch of 2B images (frames 1, then frames 2), so the content and style
terms see both frames and :class:`TemporalLoss` is one more :class:`~painterly.losses.LossTerm`
in the same criterion: ``criterion.with_terms({"temporal": (TemporalLoss(), weight)})``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F

from painterly.errors import PainterlyError
from painterly.losses.term import LossTerm

#: Default motion range: shift as a fraction of the side, rotation in degrees, zoom as a fraction.
MAX_SHIFT = 0.03
MAX_ROTATION = 2.0
MAX_ZOOM = 0.03


def random_motion(
    batch: int,
    generator: torch.Generator,
    *,
    max_shift: float = MAX_SHIFT,
    max_rotation: float = MAX_ROTATION,
    max_zoom: float = MAX_ZOOM,
) -> torch.Tensor:
    """(batch, 2, 3) affine transforms (``F.affine_grid``'s convention: output to input coordinates)."""
    u = torch.rand(batch, 4, generator=generator) * 2 - 1
    angle = u[:, 0] * math.radians(max_rotation)
    zoom = 1 + u[:, 1] * max_zoom
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    shift = u[:, 2:] * 2 * max_shift  # normalized coordinates span 2 per side
    return torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)


def identity_motion(batch: int) -> torch.Tensor:
    return torch.eye(2, 3).expand(batch, 2, 3).clone()


def warp(images: torch.Tensor, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``images`` (B, C, H, W) moved by ``theta`` and the (B, 1, H, W) mask of pixels with a source inside."""
    theta = theta.to(device=images.device, dtype=torch.float32)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    moved = F.grid_sample(
        images.float(), grid, mode="bilinear", padding_mode="reflection", align_corners=False
    )
    inside = (grid.abs() <= 1.0).all(dim=-1, keepdim=True).permute(0, 3, 1, 2)
    return moved.to(images.dtype), inside.float()


class TemporalLoss(LossTerm):
    """Mean squared difference (RGB, 0-1) between warp(stylized frame 1) and stylized frame 2.

    ``image`` is the stylized batch of 2B: frames 1 then frames 2; :meth:`set_motion` gives the B
    transforms that made frames 2. Only pixels with a source inside frame 1 count.
    """

    def __init__(self) -> None:
        super().__init__()
        self.theta: torch.Tensor | None = None

    def set_motion(self, theta: torch.Tensor) -> None:
        self.theta = theta.detach()

    def forward(self, image: torch.Tensor, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        if self.theta is None or image.shape[0] != 2 * self.theta.shape[0]:
            raise PainterlyError("the temporal loss needs a batch of frame pairs and their motion")
        half = self.theta.shape[0]
        moved, mask = warp(image[:half].float(), self.theta)
        squared = (moved - image[half:].float()).pow(2) * mask
        return squared.sum() / (mask.sum() * image.shape[1]).clamp_min(1.0)


def frame_pairs(batch: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Frames 1 (``batch``) followed by frames 2 (``batch`` moved by ``theta``): a batch of 2B."""
    moved, _ = warp(batch, theta)
    return torch.cat([batch, moved.to(batch.dtype)])


__all__ = ["TemporalLoss", "frame_pairs", "identity_motion", "random_motion", "warp"]
