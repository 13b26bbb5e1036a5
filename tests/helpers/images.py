"""Tiny generated images: a smooth photo, a striped painting, random sine waves."""

from __future__ import annotations

import numpy as np
from PIL import Image


def make_photo(width: int = 64, height: int = 48, seed: int = 0) -> Image.Image:
    """A smooth 'photo': gradients with a bright disc, so content structure exists."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = x / width
    g = y / height
    b = ((x - width / 2) ** 2 + (y - height / 2) ** 2 < (min(width, height) / 3) ** 2).astype(np.float32)
    array = np.stack([r, g, 0.3 + 0.6 * b], axis=-1) + rng.normal(0, 0.02, (height, width, 3))
    return Image.fromarray((np.clip(array, 0, 1) * 255).astype(np.uint8), "RGB")


def make_painting(width: int = 64, height: int = 64, seed: int = 1) -> Image.Image:
    """A 'painting': diagonal stripes of saturated colour, a strong texture for Gram matrices."""
    y, x = np.mgrid[0:height, 0:width]
    stripes = ((x + y) // 6) % 3
    palette = np.array([[230, 40, 30], [250, 210, 40], [20, 60, 200]], dtype=np.uint8)
    return Image.fromarray(palette[stripes], "RGB")


def wavy_photo(
    seed: int = 0, size: tuple[int, int] = (64, 48), frequencies: tuple[float, float] = (2, 8)
) -> Image.Image:
    """A smooth, photo-like image of random sine waves per channel."""
    rng = np.random.default_rng(seed)
    width, height = size
    y, x = np.mgrid[0:height, 0:width] / max(size)
    channels = [
        np.sin(x * rng.uniform(*frequencies) + rng.uniform(0, 6)) * np.cos(y * rng.uniform(*frequencies))
        for _ in range(3)
    ]
    array = (np.stack(channels, -1) * 0.4 + 0.5).clip(0, 1)
    return Image.fromarray((array * 255).astype(np.uint8))
