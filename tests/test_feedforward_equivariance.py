"""The shift-equivariance term against grid-locked hatching (engineer F's finding)."""

from __future__ import annotations

import numpy as np
import torch

from painterly.feedforward.equivariance import GRID, random_shift, shift_equivariance

from .helpers.images import wavy_photo
from .helpers.models import tiny_style_net


def _batch() -> torch.Tensor:
    return torch.from_numpy(np.asarray(wavy_photo(0), np.float32) / 255).permute(2, 0, 1)[None, :, :32, :32]


def test_zero_for_a_shift_equivariant_map_and_positive_for_a_network() -> None:
    batch = _batch()
    assert float(shift_equivariance(lambda x: x * 0.5, batch, batch * 0.5, (1, 3))) < 1e-12
    net = tiny_style_net()
    with torch.no_grad():
        assert float(shift_equivariance(net, batch, net(batch), (1, 2))) > 1e-6


def test_shifts_cover_the_grid_without_zero() -> None:
    generator = torch.Generator().manual_seed(0)
    shifts = {random_shift(generator) for _ in range(400)}
    assert (0, 0) not in shifts and len(shifts) == GRID * GRID - 1
