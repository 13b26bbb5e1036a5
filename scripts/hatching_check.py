#!/usr/bin/env python3
"""Measure the grid-locked hatching of feed-forward paintings (see docs/training-findings.md).

Why: the transformation network downsamples twice by 2 and upsamples twice by 2, so it has a
4 px grid; a trained model can paint a fixed texture on that grid, the same everywhere whatever
the photo shows, and the style loss rewards it. That texture is the fine diagonal hatching. It is
exactly periodic with period 4 px, so it can be measured:

* ``lattice4``: for every pixel phase (y mod 4, x mod 4), the mean luminance over the whole image,
  minus the overall mean; the RMS of those 16 numbers in grey levels (0-255). Picture content
  averages out (photos and hatching-free paintings score under about 0.5); the shipped
  ``starry_night`` models score 3.4-4.3.
* with ``--model``: the image is also stylized at all 16 shifts of the grid and the shifted-back
  outputs averaged (``--shift-average OUT``). A grid-locked texture cancels in that average while
  the strokes that follow the picture stay, so comparing the two shows how much of a model's
  "style" is hatching.

Usage::

    python scripts/hatching_check.py painted1.png painted2.png
    python scripts/hatching_check.py --model starry_night --photo tubingen.jpg --size 512 \\
        --shift-average avg.png --plain plain.png
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

PERIOD = 4


def lattice_amplitude(image: Image.Image, period: int = PERIOD) -> float:
    """RMS, in grey levels, of the part of the luminance that repeats exactly every ``period`` px."""
    grey = np.asarray(image.convert("L"), dtype=np.float64)
    h, w = (grey.shape[0] // period) * period, (grey.shape[1] // period) * period
    if h == 0 or w == 0:
        raise ValueError(f"image smaller than {period} px")
    cells = grey[:h, :w].reshape(h // period, period, w // period, period).mean(axis=(0, 2))
    return float(np.sqrt(((cells - cells.mean()) ** 2).mean()))


def shift_average(model: str, photo: Path, size: int) -> tuple[Image.Image, Image.Image]:
    """(plain output, mean of the outputs at all 16 grid shifts) of ``model`` on ``photo``."""
    import torch
    import torch.nn.functional as F

    from painterly.feedforward.inference import load_model
    from painterly.images import open_image, pil_to_tensor, resize_long_side, tensor_to_pil

    net = load_model(model, device="cpu", backend="torch").net
    if net is None:
        raise ValueError(f"{model}: the torch backend gave no network")
    x = pil_to_tensor(resize_long_side(open_image(photo), size))
    x = x.unsqueeze(0) if x.dim() == 3 else x
    h, w = x.shape[-2:]
    total = torch.zeros_like(x)
    with torch.no_grad():
        plain = net.stylize_tensor(x)
        for dy in range(PERIOD):
            for dx in range(PERIOD):
                shifted = F.pad(x, (dx, 0, dy, 0), mode="reflect")
                total += net.stylize_tensor(shifted)[..., dy : dy + h, dx : dx + w]
    return tensor_to_pil(plain), tensor_to_pil(total / PERIOD**2)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="*", type=Path, help="painted images to measure")
    parser.add_argument("--model", help="a model name or file, to run the shift-average test")
    parser.add_argument("--photo", type=Path, help="the photo for --model")
    parser.add_argument("--size", type=int, default=512, help="long side for --model (px)")
    parser.add_argument("--shift-average", type=Path, help="write the 16-shift average here")
    parser.add_argument("--plain", type=Path, help="write the plain output here")
    args = parser.parse_args(argv)
    for path in args.images:
        with Image.open(path) as image:
            print(f"{path}: lattice4={lattice_amplitude(image):.2f}")
    if args.model:
        if args.photo is None:
            parser.error("--model needs --photo")
        plain, averaged = shift_average(args.model, args.photo, args.size)
        print(f"{args.model} on {args.photo.name}: lattice4 plain={lattice_amplitude(plain):.2f}", end="")
        print(f" shift-averaged={lattice_amplitude(averaged):.2f}")
        for image, out in ((plain, args.plain), (averaged, args.shift_average)):
            if out is not None:
                if out.resolve() == args.photo.resolve():
                    parser.error("an output may not overwrite the photo")
                image.save(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
