"""Training speed: iterations per second at 256 px, batch 4 (the issue's reference point).

    python benchmarks/bench_train.py [--device cpu] [--steps 7] [--widths light paper]
        [--precisions auto fp32] [--modes single cin add-style temporal]

Trains on crops of the photos in ../shared/images (or generated images when absent) for
``--steps`` steps, discards the first (warm-up) and the last (it saves) and reports the steady
rate, per network width, precision and mode: ``single`` (one style), ``cin`` (a two-style
network), ``add-style`` (a third style added to that network, training only its norm
parameters) and ``temporal`` (one style with the temporal loss on synthetic motion, which
stylizes and scores frame pairs). On a GPU pass ``--device cuda``.
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
    folder.mkdir(parents=True, exist_ok=True)
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
    parser.add_argument("--modes", nargs="+", default=["single"], choices=MODES)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = make_data(Path(tmp) / "photos")
        styles = style_images(Path(tmp))
        header = f"{'width':8} {'precision':10} {'mode':10} {'it/s':>6} {'s/it':>6} {'cpu s/it':>8}"
        print(f"{header}  ({args.image_size} px, batch {args.batch_size})")
        for width in args.widths:
            for precision in args.precisions:
                for mode in args.modes:
                    rate, cpu = measure(args, Path(tmp), data, styles, width, precision, mode)
                    print(
                        f"{width:8} {precision:10} {mode:10} {rate:6.2f} {1 / rate:6.2f} {cpu:8.2f}",
                        flush=True,
                    )


MODES = ("single", "cin", "add-style", "temporal")


def style_images(folder: Path) -> list[Path]:
    """Three paintings from ../shared/images, or generated patterns when absent."""
    names = ("starry_night.jpg", "the_wave.jpg", "udnie.jpg")
    if all((SHARED / name).is_file() for name in names):
        return [SHARED / name for name in names]
    rng = np.random.default_rng(1)
    paths = []
    for index in range(3):
        path = folder / f"style{index}.png"
        Image.fromarray((rng.random((256, 256, 3)) * 255).astype("uint8")).save(path)
        paths.append(path)
    return paths


def measure(
    args: argparse.Namespace, tmp: Path, data: Path, styles: list[Path], width: str, precision: str, mode: str
) -> tuple[float, float]:
    """Steady steps per second of one mode and CPU seconds per step (all threads: less sensitive to a
    machine shared with other work); ``add-style`` first trains a two-style base, untimed."""
    style: object = styles[0]
    extra: dict[str, object] = {}
    if mode == "cin":
        style = styles[:2]
    elif mode == "temporal":
        extra["temporal_weight"] = 1.0
    elif mode == "add-style":
        base = tmp / f"base-{width}.safetensors"
        if not base.is_file():
            train(_settings(args, tmp, data, styles[:2], width, precision, base, iterations=1))
        style, extra["base"] = styles[2], base
    stamps: list[float] = []
    cpu: list[float] = []

    def record(progress: TrainProgress) -> None:
        stamps.append(time.perf_counter())
        cpu.append(time.process_time())

    train(_settings(args, tmp, data, style, width, precision, tmp / "bench.safetensors", **extra), record)
    # The first step warms up; the last one also writes a validation image and the model.
    steps = len(stamps) - 2
    return steps / (stamps[-2] - stamps[0]), (cpu[-2] - cpu[0]) / steps


def _settings(
    args: argparse.Namespace,
    tmp: Path,
    data: Path,
    style: object,
    width: str,
    precision: str,
    output: Path,
    **extra: object,
) -> TrainSettings:
    values: dict = dict(
        style=style,
        data=data,
        output=output,
        workdir=tmp / f"work-{output.stem}",
        iterations=args.steps,
        batch_size=args.batch_size,
        image_size=args.image_size,
        width=width,
        device=args.device,
        precision=precision,
        validate_every=10**6,
        checkpoint_every=10**6,
    )
    values.update(extra)
    return TrainSettings(**values)


if __name__ == "__main__":
    main()
