"""Large outputs by image optimization: peak memory and time of one tiled loss+gradient evaluation at
3840x2160 (4K) and 7680x4320 (8K), beside the whole-image evaluation at a size that fits (the reference,
same run, same machine).

    python benchmarks/bench_large.py                 # reference, tiled at the reference size, 4K
    python benchmarks/bench_large.py --8k            # and 8K (about 4x 4K's time)
    python benchmarks/bench_large.py --only 4k       # one case

Each case runs in its own process, so that its peak RSS (``ru_maxrss``) is its own: the loss network,
the content and style targets, the image and its gradient, the L-BFGS state a painting at that size
holds (the history pairs painterly keeps for it, filled, and four more image-sized vectors), then one
evaluation of the default loss (content relu4_2, style relu1_1-relu5_1, TV). The targets: 4K in at
most 8 GB, 8K in at most 16 GB. Last, the time of a whole default 4K painting (coarse to fine, 20
iterations per scale and 40 at the top, about 1.4 evaluations per iteration) is extrapolated from the
measured speeds: whole-image scales at the reference's seconds per megapixel, tiled ones at 4K's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "images"
CASES = {
    "reference": (1024, 576, 0),  # whole image
    "tiled-reference": (1024, 576, 512),  # the same size in 512 px tiles: the tiles' overhead
    "4k": (3840, 2160, 512),
    "8k": (7680, 4320, 512),
}
TARGET_GB = {"4k": 8, "8k": 16}


def _content(width: int, height: int):
    import torch
    from PIL import Image

    from painterly.images import open_image, pil_to_tensor

    if (SHARED / "tubingen.jpg").exists():
        image = open_image(SHARED / "tubingen.jpg").resize((width, height), Image.Resampling.BICUBIC)
        style = open_image(SHARED / "starry_night.jpg").resize((512, 405), Image.Resampling.BICUBIC)
        return pil_to_tensor(image), pil_to_tensor(style)
    generator = torch.Generator().manual_seed(0)
    return torch.rand(1, 3, height, width, generator=generator), torch.rand(
        1, 3, 405, 512, generator=generator
    )


class _Sampled:
    """A tiled evaluation of only ``count`` of the image's largest tiles (both passes, the real code,
    image-sized tensors all there): its peak memory is the whole evaluation's (one tile's graph at a
    time), and its time times the tiles' area ratio is the whole evaluation's, extrapolated."""

    def __init__(self, tiled, count: int) -> None:
        self.tiled, self.count = tiled, count
        self.all_tiles = tiled.tiles

    def tiles(self, height: int, width: int) -> list:
        tiles = self.all_tiles(height, width)
        return sorted(tiles, key=self.area, reverse=True)[: self.count]

    @staticmethod
    def area(tile) -> int:
        return (tile.rows.hi - tile.rows.lo) * (tile.cols.hi - tile.cols.lo)

    def scale(self, height: int, width: int) -> float:
        return sum(map(self.area, self.all_tiles(height, width))) / sum(
            map(self.area, self.tiles(height, width))
        )


def worker(case: str, sample: int) -> dict:
    import torch

    from painterly.losses import build_criterion, deepest_layer
    from painterly.losses.tiled import TiledLoss, lbfgs_history_for
    from painterly.settings import TILED_HISTORY_BYTES, make_settings
    from painterly.vgg import load_vgg

    width, height, tile = CASES[case]
    s = make_settings()
    layers = [*s.content_layers, *s.style_layers]
    vgg = load_vgg(s.network, last_layer=deepest_layer(s.network, layers))
    criterion = build_criterion(
        vgg,
        s.content_layers,
        s.style_layers,
        content_weight=s.content_weight,
        style_weight=s.style_weight,
        tv_weight=s.tv_weight,
    )
    content, style = _content(width, height)
    tiled = TiledLoss(criterion, tile) if tile else None
    tiles = len(tiled.tiles(height, width)) if tiled else 1
    sampled = _Sampled(tiled, sample) if tiled and sample and sample < tiles else None
    if sampled is not None:
        tiled.tiles = sampled.tiles  # type: ignore[method-assign]
    started = time.perf_counter()
    if tiled is None:
        criterion.set_content(content)
    else:
        criterion.set_content(content, lambda t: tiled.features(t, criterion.content_layers))
        for target in criterion.terms["content"].targets.values():  # type: ignore[union-attr]
            target.add_(0.0)  # sampled: the tiles not computed still take their pages
    criterion.set_style([style])  # a 512 px style image: its targets are not what is measured here
    targets_seconds = time.perf_counter() - started
    pixels = width * height
    history = lbfgs_history_for(pixels, s.lbfgs_history, TILED_HISTORY_BYTES) if tiled else s.lbfgs_history
    # What L-BFGS holds at this size: the history pairs, and d, the previous gradient, the line
    # search's start and trial step (filled, so that their pages count).
    state = [torch.empty_like(content).fill_(1.0) for _ in range(2 * history + 4)]
    noise = torch.randn(content.shape, generator=torch.Generator().manual_seed(0))
    image = (content + 0.05 * noise).clamp(0, 1)
    started = time.perf_counter()
    if tiled is None:
        leaf = image.clone().requires_grad_(True)
        losses = criterion(leaf)
        losses["total"].backward()
        grad = leaf.grad
    else:
        losses, grad = tiled.evaluate(image)
    seconds = time.perf_counter() - started
    assert grad is not None and torch.isfinite(grad).all()
    del state
    if sampled is not None:
        seconds *= sampled.scale(height, width)
    return {
        "case": case,
        "size": f"{width}x{height}",
        "tile": tile,
        "tiles": tiles,
        "sampled": sample if sampled is not None else 0,
        "halo": tiled.halo if tiled else 0,
        "history": history,
        "seconds": seconds,
        "targets_seconds": targets_seconds,
        "seconds_per_megapixel": seconds / (pixels / 1e6),
        "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9,
        "total": float(losses["total"]),
    }


def _machine_lines() -> list[str]:
    import torch

    from painterly.devices import cpu_has_fast_bf16
    from painterly.tuning import cpu_info

    info = cpu_info()
    return [
        f"CPU: {info.model}; flags: {' '.join(info.speed_flags) or 'none of note'}; "
        f"native bf16 (oneDNN): {'yes' if cpu_has_fast_bf16() else 'no'}; {os.cpu_count()} cores",
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32",
        f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min)",
    ]


def _painting_estimate(results: dict[str, dict]) -> list[str]:
    """The time of a default 4K painting from the measured speeds (see the module's notes)."""
    from painterly.schedule import EVALS_PER_ITERATION
    from painterly.settings import iterations_per_scale, needs_tiles, scale_sizes

    whole = results["reference"]["seconds_per_megapixel"]
    tiled = results["4k"]["seconds_per_megapixel"]
    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    sizes = scale_sizes(3840, None)
    iterations = iterations_per_scale(None, len(sizes))
    lines, total = [], 0.0
    for long_side, count in zip(sizes, iterations, strict=True):
        width, height = long_side, round(long_side * 9 / 16)
        in_tiles = needs_tiles(width, height, memory, None)
        seconds = count * EVALS_PER_ITERATION * width * height / 1e6 * (tiled if in_tiles else whole)
        total += seconds
        how = "tiled" if in_tiles else "whole"
        lines.append(f"  {width}x{height}: {count} iterations, {how}, ~{seconds / 60:.1f} min")
    lines.append(f"  total ~{total / 3600:.1f} h (at most; the plateau rule often ends a scale sooner)")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--8k", dest="eight_k", action="store_true", help="also 7680x4320")
    parser.add_argument("--only", choices=sorted(CASES), help="run one case")
    parser.add_argument("--timeout", type=float, default=7200, help="seconds per case")
    parser.add_argument(
        "--sample",
        type=int,
        default=int(os.environ.get("BENCH_LARGE_SAMPLE", "2")),
        help="evaluate only this many of the largest tiles at 4K and 8K and extrapolate the time "
        "(peak memory is the whole evaluation's); 0: every tile (default 2)",
    )
    parser.add_argument("--worker", choices=sorted(CASES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        sample = args.sample if args.worker in TARGET_GB else 0
        print(json.dumps(worker(args.worker, sample)))
        return
    for line in _machine_lines():
        print(line)
    cases = (
        [args.only]
        if args.only
        else ["reference", "tiled-reference", "4k"] + (["8k"] if args.eight_k else [])
    )
    results: dict[str, dict] = {}
    for case in cases:
        try:
            out = subprocess.run(
                [sys.executable, __file__, "--worker", case, "--sample", str(args.sample)],
                capture_output=True,
                text=True,
                timeout=args.timeout,
                check=True,
            )
        except subprocess.TimeoutExpired:
            print(f"{case}: over {args.timeout:.0f} s, stopped")
            continue
        except subprocess.CalledProcessError as error:
            print(f"{case}: failed\n{error.stderr[-2000:]}")
            continue
        row = json.loads(out.stdout.strip().splitlines()[-1])
        results[case] = row
        target = f" (target <= {TARGET_GB[case]} GB)" if case in TARGET_GB else ""
        sampled_note = f" (extrapolated from {row['sampled']} tiles)" if row.get("sampled") else ""
        print(
            f"{case:>16} {row['size']:>10}  tile {row['tile'] or '-':>4} x{row['tiles']:<3}"
            f" halo {row['halo']:>2}"
            f"  L-BFGS pairs {row['history']:>2}  one evaluation {row['seconds']:8.1f} s"
            f"{sampled_note}"
            f" ({row['seconds_per_megapixel']:.2f} s/MP)  peak RSS {row['peak_gb']:.2f} GB{target}",
            flush=True,
        )
    if "reference" in results and "tiled-reference" in results:
        ratio = results["tiled-reference"]["seconds"] / results["reference"]["seconds"]
        same = abs(results["tiled-reference"]["total"] / results["reference"]["total"] - 1)
        print(f"tiles cost {ratio:.2f}x the whole image at 1024x576; losses agree to {same:.1e}")
    if "reference" in results and "4k" in results:
        print("a default 4K painting (3840x2160) on this machine, extrapolated:")
        for line in _painting_estimate(results):
            print(line)


if __name__ == "__main__":
    main()
