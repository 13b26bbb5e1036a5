"""The cost of regions: seconds per loss evaluation of a masked painting (two styles, each in its
region), with a keep mask, and plain (the two styles blended), side by side in the same run.

    python benchmarks/bench_regions.py --size 256 --evaluations 6

Each variant runs ``--evaluations`` evaluations (forward + backward of the whole criterion, as one
L-BFGS evaluation does), after one warm-up, in fp32 on the CPU, interleaved round by round so that
a busy machine disturbs all of them alike; prints the CPU model and flags, and the median per variant.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

SHARED = Path(__file__).resolve().parents[2] / "shared" / "images"


def cpu_line() -> str:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    shown = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return f"{model} ({', '.join(shown) or 'no AVX2'})"


def images() -> tuple[Image.Image, list[Image.Image]]:
    if (SHARED / "golden_gate.jpg").exists():
        return Image.open(SHARED / "golden_gate.jpg"), [
            Image.open(SHARED / "the_scream.jpg"),
            Image.open(SHARED / "the_wave.jpg"),
        ]
    rng = np.random.default_rng(0)
    noise = [Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)) for _ in range(3)]
    return noise[0], noise[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--evaluations", type=int, default=6)
    args = parser.parse_args()

    import torch

    from painterly.optimization import Painter, make_settings

    print(f"CPU: {cpu_line()}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    photo, styles = images()
    width, height = photo.size
    left = Image.new("L", (width, height), 0)
    left.paste(255, (0, 0, width // 2, height))
    right = Image.eval(left, lambda v: 255 - v)
    settings = make_settings(size=args.size, scales=1, precision="fp32", device="cpu", optimizer="adam")
    painter = Painter(settings, styles)
    variants = {
        "plain (two styles blended)": {},
        "two styles, one region each": {"content_masks": [left, right]},
        "blended, with a keep mask": {"keep": left},
        "regions and a keep mask": {"content_masks": [left, right], "keep": left},
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for round_ in range(args.evaluations + 1):
        for name, options in variants.items():
            started = time.perf_counter()
            painter.paint(photo, iterations=1, **options)  # type: ignore[arg-type]
            if round_:  # the first round warms up (targets, allocations)
                times[name].append(time.perf_counter() - started)
    print(f"{args.size} px, {args.evaluations} paint calls of one evaluation each (median):")
    base = statistics.median(times["plain (two styles blended)"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:32s} {median:6.2f} s  ({median / base:4.2f}x plain)")


if __name__ == "__main__":
    main()
