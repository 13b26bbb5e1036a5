"""Batch stylization throughput: ``--engine ray`` against the plain ``painterly stylize`` loop.

    python benchmarks/bench_batch.py [--photos 200] [--size 512] [--model starry_night] [--batch-size 1]

All in this one run on this machine, on the same synthetic photos (skimage.data pictures cropped,
flipped and tinted into ``--photos`` distinct JPEGs whose long side is ``--size`` px):

* ``plain``: the loop of ``painterly stylize`` in this process (one model, ``stylize_many``, an
  atomic PNG write per photo), run first and last, to show how much the shared machine drifted;
* ``ray 1 actor``: ``painterly batch`` on a local Ray (``ray.init(num_cpus=CPUS)``), one actor
  with CPUS onnxruntime threads, as the plain loop has: what Ray Data's machinery itself costs;
* ``ray local``: the same with one actor per CPU (one thread each; reading, decoding and encoding
  then overlap too), the default of ``painterly batch``;
* ``ray 2 nodes``: the same on a two-node ``ray.cluster_utils.Cluster`` on this machine (CPUS/2 each).

Per engine: ``steady photos/s``, the rate from the 10% mark to the last photo (what a long batch
runs at once workers are up), its overhead against the plain loop, and ``end to end s`` (start-up
included: Ray's, the actors', the model's). The CPU model and its speed flags are printed first.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def make_photos(folder: Path, count: int, size: int) -> list[Path]:
    """``count`` distinct photo-like JPEGs, long side ``size``, from scikit-image's sample pictures."""
    from skimage import data

    bases = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket(), data.immunohistochemistry()]
    rng = np.random.default_rng(0)
    paths = []
    for index in range(count):
        base = bases[index % len(bases)]
        height, width = base.shape[:2]
        crop = rng.uniform(0.6, 1.0)
        h, w = int(height * crop), int(width * crop)
        top, left = rng.integers(0, height - h + 1), rng.integers(0, width - w + 1)
        pixels = base[top : top + h, left : left + w].astype(np.float32) * rng.uniform(0.8, 1.2, 3)
        if index % 2:
            pixels = pixels[:, ::-1]
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        image = image.resize((size, size * 3 // 4), Image.Resampling.LANCZOS)  # one size: full batches
        path = folder / f"photo{index:04d}.jpg"
        image.save(path, quality=90)
        paths.append(path)
    return paths


def rates(stamps: list[float], started: float) -> tuple[float, float]:
    """(steady photos/s from the 10% mark to the end, end-to-end seconds)."""
    stamps = sorted(stamps)
    first = max(1, len(stamps) // 10)
    steady = (len(stamps) - first) / (stamps[-1] - stamps[first - 1])
    return steady, stamps[-1] - started


def plain_loop(paths: list[Path], out: Path, model_name: str, batch_size: int) -> tuple[float, float]:
    """What ``painterly stylize PHOTOS -o OUT -m MODEL`` does after its checks, timed per photo."""
    from painterly.feedforward.backends import pick_backend
    from painterly.feedforward.inference import load_model
    from painterly.images import save_image

    started = time.monotonic()
    model = load_model(model_name, "auto", backend=pick_backend("auto"))
    stamps = []
    results = model.stylize_many(paths, batch_size=batch_size)
    for source, picture in zip(paths, results, strict=True):
        save_image(picture, out / f"{source.stem}_{model.name}.png", {"painterly_model": model.name})
        stamps.append(time.monotonic())
    return rates(stamps, started)


def ray_run(
    paths: list[Path],
    out: Path,
    model_name: str,
    batch_size: int,
    start: Callable[[], Any],
    cpus_per_worker: int = 1,
) -> tuple[float, float]:
    """``painterly batch stylize`` on the Ray that ``start`` brings up (counted in end to end), one
    actor per ``cpus_per_worker`` CPUs, each with as many onnxruntime threads."""
    import ray

    from painterly.batch.manifest import Manifest
    from painterly.batch.ray_engine import _quiet_ray_data, cluster_cpus, stylize_engine
    from painterly.batch.workers import StylizeSpec
    from painterly.feedforward.catalog import resolve_model

    started = time.monotonic()
    start()
    _quiet_ray_data()
    model = resolve_model(model_name)
    spec = StylizeSpec(
        model.name, model.read_bytes(), backend="onnxruntime", batch_size=batch_size, threads=1
    )
    workers = cluster_cpus()
    engine = stylize_engine(spec, workers=workers, cpus_per_worker=1)
    jobs = [{"input": str(p), "output": str(out / f"{p.stem}_{model.stem}.png")} for p in paths]
    stamps: list[float] = []
    from painterly.batch.runner import run_jobs

    summary = run_jobs(
        jobs,  # type: ignore[arg-type]
        engine,
        Manifest(out / "manifest.jsonl"),
        progress=False,
        on_record=lambda item: stamps.append(time.monotonic()),
    )
    assert summary.done == len(paths), summary
    ray.shutdown()
    return rates(stamps, started)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--model", default="starry_night")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()

    import ray
    from ray.cluster_utils import Cluster

    from painterly.feedforward.onnx_backend import physical_cores
    from painterly.tuning import cpu_info

    info = cpu_info()
    print(
        f"CPU: {info.model}, {os.cpu_count()} logical cores, {physical_cores()} physical "
        f"({' '.join(info.speed_flags) or 'no listed flags'}); ray {ray.__version__}; load average "
        f"{os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "in").mkdir()
        paths = make_photos(root / "in", args.photos, args.size)
        print(
            f"{len(paths)} photos of {args.size}x{args.size * 3 // 4}, model {args.model}, "
            f"batch {args.batch_size}"
        )
        cluster: list[Any] = []

        def local() -> None:
            ray.init(
                num_cpus=args.cpus, include_dashboard=False, log_to_driver=False, logging_level="WARNING"
            )

        def two_nodes() -> None:
            half = max(1, args.cpus // 2)
            made = Cluster(
                initialize_head=True, head_node_args={"num_cpus": half, "include_dashboard": False}
            )
            made.add_node(num_cpus=half)
            cluster.append(made)
            ray.init(address=made.address, log_to_driver=False, logging_level="WARNING")

        runs: list[tuple[str, Callable[[Path], tuple[float, float]]]] = [
            ("plain (first)", lambda out: plain_loop(paths, out, args.model, args.batch_size)),
            (
                "ray 1 actor",
                lambda out: ray_run(
                    paths, out, args.model, args.batch_size, local, cpus_per_worker=args.cpus
                ),
            ),
            ("ray local", lambda out: ray_run(paths, out, args.model, args.batch_size, local)),
            ("ray 2 nodes", lambda out: ray_run(paths, out, args.model, args.batch_size, two_nodes)),
            ("plain (last)", lambda out: plain_loop(paths, out, args.model, args.batch_size)),
        ]
        results: dict[str, tuple[float, float]] = {}
        for index, (name, run) in enumerate(runs):
            out = root / f"out{index}"
            out.mkdir()
            results[name] = run(out)
            print(
                f"  {name}: {results[name][0]:.2f} photos/s steady, {results[name][1]:.1f} s end to end",
                flush=True,
            )
        for made in cluster:
            made.shutdown()
    reference = (results["plain (first)"][0] + results["plain (last)"][0]) / 2
    print(f"\n{'engine':<14} {'steady photos/s':>16} {'overhead':>9} {'end to end s':>13}")
    for name, (steady, total) in results.items():
        overhead = 1 - steady / reference
        print(f"{name:<14} {steady:>16.2f} {overhead:>+9.0%} {total:>13.1f}")
    print("overhead: 1 - photos/s / the plain loop's (mean of first and last); + is slower")


if __name__ == "__main__":
    main()
