"""The shift-equivariance term against grid-locked hatching (engineer F's finding)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from painterly.errors import PainterlyError
from painterly.feedforward.equivariance import GRID, random_margins, random_shift, shift_equivariance
from painterly.feedforward.model_file import read_model_file
from painterly.feedforward.training import train

from .helpers.images import wavy_photo
from .helpers.models import tiny_style_net, tiny_train_settings


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


def _framed(x: torch.Tensor) -> torch.Tensor:
    """A map that paints a bar 3-5 px inside the right edge of any input: a frame."""
    out = x * 0.5
    out[..., :, -6:-3] = 1.0
    return out


def test_grid_shifts_draw_as_before_and_leave_a_right_hand_frame_alone() -> None:
    a, b = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    for _ in range(50):
        dy, dx = random_shift(a)
        assert random_margins(b) == (dy, dx, 0, 0)  # the default draws what the grid shift drew
    batch = _batch()
    framed = _framed(batch)
    for shift in [(dy, dx) for dy in range(GRID) for dx in range(GRID)]:
        assert float(shift_equivariance(_framed, batch, framed, shift)) < 1e-12


def test_wide_margins_widen_every_side_and_cost_a_frame_its_place() -> None:
    generator = torch.Generator().manual_seed(0)
    draws = [random_margins(generator, 8) for _ in range(400)]
    assert (0, 0, 0, 0) not in draws
    for side in range(4):
        assert {d[side] for d in draws} == set(range(8))
    batch = _batch()
    framed = _framed(batch)
    assert float(shift_equivariance(lambda x: x * 0.5, batch, batch * 0.5, (5, 1, 7, 2))) < 1e-12
    assert float(shift_equivariance(_framed, batch, framed, (0, 0, 0, 5))) > 0.01  # the bar moved
    assert float(shift_equivariance(_framed, batch, framed, (3, 2, 5, 0))) < 1e-12  # right edge kept


def test_a_resume_that_widens_the_shift_records_what_the_earlier_steps_trained_with(
    tmp_path: Path, training_data: tuple[Path, ...]
) -> None:
    folder, painting = training_data[:2]
    out = tmp_path / "m.safetensors"
    common = dict(checkpoint_every=2)
    train(tiny_train_settings(folder, painting, out, iterations=2, **common))
    assert "equivariance_shift" not in read_model_file(out)[1]["loss"]  # the grid's: as before
    train(
        tiny_train_settings(folder, painting, out, iterations=4, resume=True, equivariance_shift=8, **common)
    )
    meta = read_model_file(out)[1]
    assert meta["loss"]["equivariance_shift"] == 8 and meta["training"]["equivariance_shift"] == 8
    assert [(h["until_step"], "equivariance_shift" in h["loss"]) for h in meta["loss_history"]] == [
        (2, False)
    ]


@pytest.mark.parametrize("shift", [3, 9, True, 2.5])
def test_a_shift_off_the_range_is_refused(
    tmp_path: Path, training_data: tuple[Path, ...], shift: object
) -> None:
    folder, painting = training_data[:2]  # 32 px crops: at most 8
    with pytest.raises(PainterlyError, match="equivariance shift"):
        train(tiny_train_settings(folder, painting, tmp_path / "m.safetensors", equivariance_shift=shift))


def test_training_widens_by_the_shift_it_is_given(
    tmp_path: Path, training_data: tuple[Path, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    from painterly.feedforward import objective

    seen: list[tuple[int, ...]] = []

    def recording(run, batch, stylized, shift):
        seen.append(tuple(shift))
        return shift_equivariance(run, batch, stylized, shift)

    monkeypatch.setattr(objective, "shift_equivariance", recording)
    folder, painting = training_data[:2]
    out = tmp_path / "m.safetensors"
    train(tiny_train_settings(folder, painting, out, iterations=4, equivariance_shift=8))
    assert len(seen) == 4 and all(len(s) == 4 and max(s) < 8 for s in seen)
    assert any(s[2] or s[3] for s in seen)  # the bottom or the right edge moved
    (log,) = tmp_path.rglob("losses.jsonl")
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(rows) == 4 and all(
        math.isfinite(row["equivariance"]) and row["equivariance"] > 0 for row in rows
    )


@pytest.mark.parametrize("size", [34, 35, 62])
def test_a_crop_size_off_the_networks_grid_is_refused(
    tmp_path: Path, training_data: tuple[Path, ...], size: int
) -> None:
    folder, painting = training_data[:2]
    with pytest.raises(PainterlyError, match="multiple of 4"):
        train(tiny_train_settings(folder, painting, tmp_path / "m.safetensors", image_size=size))
