"""Training speed: iterations per second at 256 px, batch 4 (the issue's reference point).

    python benchmarks/bench_train.py [--device cpu] [--steps 7] [--widths light paper]
        [--precisions auto fp32]

Trains on crops of the photos in ../shared/images (or generated images when absent) for
``--steps`` steps, discards the first (warm-up) and the last (it saves) and reports the steady
rate, per network width and precision. On a GPU pass ``--device cuda``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from painterly.feedforward.training import TrainProgress, TrainSettings, train

SHARED = Path(__file__).resolve().parents[2] / "shared" / "images"


def make_data(folder: Path) -> Path:
    photos = sorted(p for p in SHARED.glob("*.jpg") if "starry" not in p.name) if SHARED.is_dir() else []
    if photos:
        for photo in photos:
            image = Image.open(photo).convert("RGB")
            image.thumbnail((768, 768))
            image.save(folder / f"{photo.stem}.png")
    else:
        rng = np.random.default_rng(0)
        for i in range(4):
            Image.fromarray((rng.random((400, 600, 3)) * 255).astype("uint8")).save(folder / f"{i}.png")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=7)
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--widths", nargs="+", default=["light"])
    parser.add_argument("--precisions", nargs="+", default=["auto", "fp32"])
    args = parser.parse_args()
    style = SHARED / "starry_night.jpg"
    with tempfile.TemporaryDirectory() as tmp:
        data = make_data(Path(tmp))
        if not style.is_file():
            style = data / next(iter(sorted(p.name for p in data.iterdir())))
        header = f"{'width':8} {'precision':10} {'it/s':>6} {'s/it':>6}"
        print(f"{header}  ({args.image_size} px, batch {args.batch_size})")
        for width in args.widths:
            for precision in args.precisions:
                stamps: list[float] = []

                def record(progress: TrainProgress, stamps: list[float] = stamps) -> None:
                    stamps.append(time.perf_counter())

                settings = TrainSettings(
                    style=style,
                    data=data,
                    output=Path(tmp) / "bench.safetensors",
                    workdir=Path(tmp) / "work",
                    iterations=args.steps,
                    batch_size=args.batch_size,
                    image_size=args.image_size,
                    width=width,
                    device=args.device,
                    precision=precision,
                    validate_every=10**6,
                    checkpoint_every=10**6,
                )
                train(settings, record)
                # The first step warms up; the last one also writes a validation image and the model.
                rate = (len(stamps) - 2) / (stamps[-2] - stamps[0])
                print(f"{width:8} {precision:10} {rate:6.2f} {1 / rate:6.2f}")


if __name__ == "__main__":
    main()
