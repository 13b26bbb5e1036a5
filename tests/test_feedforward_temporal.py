"""The temporal loss on synthetic motion: zero without motion, positive with it, and training with it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from painterly.feedforward.temporal import TemporalLoss, frame_pairs, identity_motion, random_motion, warp
from painterly.feedforward.training import train

from .helpers.images import wavy_photo
from .helpers.models import tiny_style_net, tiny_train_settings


def _batch() -> torch.Tensor:
    return torch.from_numpy(np.asarray(wavy_photo(0), np.float32) / 255).permute(2, 0, 1)[None, :, :32, :32]


def _temporal(theta: torch.Tensor) -> float:
    net = tiny_style_net()
    term = TemporalLoss()
    term.set_motion(theta)
    with torch.no_grad():
        stylized = net(frame_pairs(_batch(), theta))
    return float(term(stylized, {}))


def test_zero_for_identity_motion() -> None:
    assert _temporal(identity_motion(1)) < 1e-10


def test_positive_for_motion() -> None:
    theta = random_motion(1, torch.Generator().manual_seed(0))
    assert not torch.allclose(theta, identity_motion(1))
    assert _temporal(theta) > 1e-5


def test_warp_moves_by_the_known_flow() -> None:
    image = torch.zeros(1, 1, 32, 32)
    image[..., 10, 12] = 1.0
    shift = torch.tensor([[[1.0, 0.0, 2 * 4 / 32], [0.0, 1.0, 0.0]]])  # sample 4 px to the right
    moved, mask = warp(image, shift)
    assert moved[0, 0, 10, 8] > 0.99  # the dot moved 4 px left
    assert mask[0, 0, :, -4:].sum() == 0 and mask[0, 0, :, :-4].min() == 1  # no source beyond the edge


def test_training_with_the_temporal_term(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(2):
        wavy_photo(i).save(folder / f"p{i}.png")
    style = tmp_path / "style.png"
    y, x = np.mgrid[0:64, 0:64]
    Image.fromarray(((np.stack([x, y, x + y], -1) % 16) * 16).astype(np.uint8)).save(style)
    out = tmp_path / "m.safetensors"
    settings = tiny_train_settings(folder, style, out, iterations=3, batch_size=1, temporal_weight=10.0)
    assert train(settings).steps == 3
    log = [json.loads(line) for line in (tmp_path / "m.train" / "losses.jsonl").read_text().splitlines()]
    assert len(log) == 3 and all(entry["temporal"] > 0 for entry in log)
    parts = ("content", "style", "tv", "temporal", "equivariance")
    assert all(abs(e["total"] - sum(e[p] for p in parts)) < 1e-3 * e["total"] for e in log)
