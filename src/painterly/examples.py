"""Built-in example images that need no download: a photo shipped by scikit-image and a
painting that painterly paints itself (swirling brush strokes in a night-sky palette)."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def example_photo() -> Image.Image:
    """scikit-image's 'chelsea' (a cat photo, public domain, ships with the package)."""
    from skimage import data

    return Image.fromarray(data.chelsea()).convert("RGB")


def example_painting(size: int = 512, seed: int = 0) -> Image.Image:
    """A procedural painting: thick strokes following a field of swirls, Starry-Night colours."""
    rng = np.random.default_rng(seed)
    palette = [
        (18, 38, 92),
        (32, 72, 150),
        (70, 120, 190),
        (150, 190, 220),
        (235, 205, 90),
        (250, 235, 160),
        (20, 30, 50),
    ]
    weights = np.array([0.2, 0.25, 0.2, 0.1, 0.12, 0.08, 0.05])
    image = Image.new("RGB", (size, size), palette[1])
    draw = ImageDraw.Draw(image)
    centres = rng.uniform(0, size, (6, 2))
    spins = rng.choice([-1.0, 1.0], 6) * rng.uniform(0.6, 1.4, 6)

    def angle(x: float, y: float) -> float:
        vx, vy = 1.0, 0.15
        for (cx, cy), spin in zip(centres, spins, strict=True):
            dx, dy = x - cx, y - cy
            r2 = dx * dx + dy * dy + 400.0
            vx += -spin * dy * 3000 / r2
            vy += spin * dx * 3000 / r2
        return math.atan2(vy, vx)

    for _ in range(2600):
        x, y = rng.uniform(0, size, 2)
        colour: tuple[int, ...] = palette[rng.choice(len(palette), p=weights / weights.sum())]
        jitter = rng.integers(-18, 19, 3)
        colour = tuple(int(np.clip(c + j, 0, 255)) for c, j in zip(colour, jitter, strict=True))
        width = int(rng.integers(3, 8))
        points = [(x, y)]
        for _ in range(int(rng.integers(4, 12))):
            a = angle(x, y)
            x, y = x + 4 * math.cos(a), y + 4 * math.sin(a)
            points.append((x, y))
        draw.line(points, fill=colour, width=width, joint="curve")
    return image.filter(ImageFilter.SMOOTH)
