#!/usr/bin/env python3
"""Make docs/regions-example.jpg: a photo painted in two styles, one per region.

The sky mask comes from a simple rule, no hand drawing: a pixel is sky where it is bright, not
red and in the upper half (the bridge is red, the water and the hills darker), cleaned by a
median filter and blurred for a soft edge; the ground mask is its inverse. Then::

    painterly PHOTO --style the_scream.jpg --mask sky.png --style the_wave.jpg --mask ground.png

and the photo, the sky mask and the painting side by side in one small JPEG.

Usage: ``python scripts/regions_example.py --images ../shared/images --out docs/regions-example.jpg``
(``--size``, ``--iterations`` pass to the painting; the masks and the full painting go to ``--work``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, ImageOps


def sky_mask(photo: Image.Image) -> Image.Image:
    """White where the photo is bright and not red (the sky), soft-edged."""
    rgb = np.asarray(photo.convert("RGB"), dtype=np.float32)
    red, blue = rgb[..., 0], rgb[..., 2]
    brightness = rgb.mean(axis=2)
    rows = np.arange(rgb.shape[0])[:, None] < rgb.shape[0] * 0.5  # the upper half: no bright water
    sky = (brightness > 150) & (blue + 25 > red) & rows
    mask = Image.fromarray((sky * 255).astype(np.uint8), "L")
    mask = mask.filter(ImageFilter.MedianFilter(9))
    return mask.filter(ImageFilter.GaussianBlur(max(photo.size) / 200))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=Path("../shared/images"))
    parser.add_argument("--out", type=Path, default=Path("docs/regions-example.jpg"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/regions-example"))
    parser.add_argument("--size", default="512")
    parser.add_argument("--iterations", default="300")
    parser.add_argument("--time-limit", default="1200")
    parser.add_argument("--style-weight", default="100")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    photo_path = args.images / "golden_gate.jpg"
    photo = ImageOps.exif_transpose(Image.open(photo_path)).convert("RGB")
    sky = sky_mask(photo)
    sky.save(args.work / "sky.png")
    ImageOps.invert(sky).save(args.work / "ground.png")
    painted = args.work / "painted.png"
    command = [
        sys.executable, "-m", "painterly", str(photo_path),
        "--style", str(args.images / "the_scream.jpg"), "--mask", str(args.work / "sky.png"),
        "--style", str(args.images / "the_wave.jpg"), "--mask", str(args.work / "ground.png"),
        "--size", args.size, "--iterations", args.iterations, "--time-limit", args.time_limit,
        "--style-weight", args.style_weight,
        "-o", str(painted),
    ]  # fmt: skip
    print(" ".join(command), file=sys.stderr)
    subprocess.run(command, check=True)
    result = Image.open(painted).convert("RGB")
    height = 240
    panels = [
        img.resize((round(img.width * height / img.height), height), Image.Resampling.LANCZOS)
        for img in (photo, sky.convert("RGB"), result)
    ]
    sheet = Image.new("RGB", (sum(p.width for p in panels) + 8 * (len(panels) - 1), height), "white")
    x = 0
    for panel in panels:
        sheet.paste(panel, (x, 0))
        x += panel.width + 8
    sheet.save(args.out, quality=85, optimize=True)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
