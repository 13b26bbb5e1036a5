"""Quality against time: the shared yardstick's scores of a run's snapshots, against seconds.

    python benchmarks/bench_quality_time.py                       # default 512 px run, one curve
    python benchmarks/bench_quality_time.py --label long --set iterations=150
    python benchmarks/bench_quality_time.py --plot                # every recorded curve in one PNG

Runs tubingen + starry_night (from ../shared/images; skipped when absent) at 512 px with the given
settings, saves the current image every ``--every`` iterations (resized to the output size: what a
user would get by stopping there), then scores all snapshots with ``../shared/tools/score.py --size
512`` (style_ratio: style loss over the untouched photo's, lower is more styled; content_ratio:
content loss over the style image's, lower keeps more of the photo). Results go to
``benchmarks/out/quality_time/<label>.json``; ``--plot`` draws every recorded curve into
``quality_time.png`` next to them (Pillow only). The target of issue 9: style_ratio <= 0.15 and
content_ratio <= 0.30 within 4 minutes on a 2-core AVX2 CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
OUT = ROOT / "benchmarks" / "out" / "quality_time"
STYLE_TARGET, CONTENT_TARGET, SECONDS_TARGET = 0.15, 0.30, 240.0


def _value(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"none": None, "true": True, "false": False}.get(text.lower(), text)


def record(label: str, size: int, every: int, options: dict[str, Any]) -> dict[str, Any]:
    import painterly
    from painterly.images import save_image
    from painterly.optimization import StopTransfer, make_settings, run_transfer

    content, style = SHARED / "images" / "tubingen.jpg", SHARED / "images" / "starry_night.jpg"
    settings = make_settings(size=size, **options)
    snapshots: list[dict[str, Any]] = []
    losses: list[tuple[float, int, float]] = []
    folder = Path(tempfile.mkdtemp(prefix=f"quality_{label}_"))
    started = time.perf_counter()
    pause = 0.0  # time spent saving snapshots, not charged to the run
    target: tuple[int, int] | None = None
    limit = float(os.environ.get("QUALITY_MAX_SECONDS", "inf"))
    counted = {"scale": 0, "before": 0, "total": 0}  # loss evaluations over all scales

    def callback(progress: Any) -> None:
        nonlocal pause, target
        now = time.perf_counter()
        elapsed = now - started - pause
        total = progress.losses["total"] if isinstance(progress.losses, dict) else progress.losses.total
        if progress.scale != counted["scale"]:
            counted.update(scale=progress.scale, before=counted["total"])
        counted["total"] = counted["before"] + progress.evaluations
        losses.append((elapsed, progress.step, float(total)))
        if (
            progress.iteration
            and progress.step % every == 0
            and all(s["step"] != progress.step for s in snapshots)
        ):
            image = progress.image()
            if target is None:
                target = painterly.images.resize_long_side(image, size).size
            path = folder / f"{label}_{progress.step:05d}.png"
            save_image(image.resize(target), path)
            snapshots.append(
                {
                    "step": progress.step,
                    "scale": progress.scale,
                    "seconds": elapsed,
                    "evaluations": counted["total"],
                    "file": str(path),
                }
            )
        pause += time.perf_counter() - now
        if elapsed > limit:
            raise StopTransfer

    result = run_transfer(content, style, settings, callback)
    seconds = result.seconds - pause
    final = folder / f"{label}_final.png"
    save_image(result.image, final)
    snapshots.append(
        {
            "step": result.last.step if result.last else 0,
            "scale": -1,
            "seconds": seconds,
            "evaluations": counted["total"],
            "file": str(final),
        }
    )
    scores = score([s["file"] for s in snapshots], content, style, size)
    for snap in snapshots:
        snap.update(scores.get(snap["file"], {}))
    return {
        "label": label,
        "settings": json.loads(settings.to_json()),
        "seconds": seconds,
        "snapshots": snapshots,
        "losses": losses,
        "load_average": os.getloadavg(),
        "machine": _machine(),
    }


def score(files: list[str], content: Path, style: Path, size: int) -> dict[str, dict[str, float]]:
    out = subprocess.run(
        [
            sys.executable,
            str(SHARED / "tools" / "score.py"),
            str(content),
            str(style),
            *files,
            "--size",
            str(size),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    scores = {}
    for line in out.splitlines():
        name = line.split(": content_loss=")[0]
        found = dict(re.findall(r"(style_ratio|content_ratio)=([0-9.]+)", line))
        if found:
            scores[name] = {k: float(v) for k, v in found.items()}
    return scores


def _machine() -> str:
    import torch

    from painterly.tuning import cpu_info

    info = cpu_info()
    flags = " ".join(info.speed_flags)
    return f"{info.model} ({flags}), torch {torch.__version__}, {torch.get_num_threads()} threads"


COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]


def plot(results: list[dict[str, Any]], path: Path) -> None:
    """Two panels (style_ratio, content_ratio) against seconds, one line per run, target lines dashed."""
    from PIL import Image, ImageDraw

    width, height, pad = 900, 360, 50
    image = Image.new("RGB", (width, 2 * height), "white")
    draw = ImageDraw.Draw(image)
    t_max = max([SECONDS_TARGET * 1.1] + [s["seconds"] for r in results for s in r["snapshots"]])
    for panel, (key, target, y_max) in enumerate(
        [("style_ratio", STYLE_TARGET, 0.6), ("content_ratio", CONTENT_TARGET, 0.6)]
    ):
        top = panel * height

        def xy(t: float, v: float, top: int = top, y_max: float = y_max) -> tuple[float, float]:
            x = pad + (width - 2 * pad) * t / t_max
            y = top + height - pad - (height - 2 * pad) * min(v, y_max) / y_max
            return x, y

        draw.rectangle([pad, top + pad, width - pad, top + height - pad], outline="black")
        for tick in range(0, int(t_max) + 1, 60):
            x, _ = xy(tick, 0)
            draw.line([x, top + height - pad, x, top + height - pad + 5], fill="black")
            draw.text((x - 8, top + height - pad + 8), f"{tick}s", fill="black")
        for i in range(0, 7):
            v = y_max * i / 6
            _, y = xy(0, v)
            draw.text((8, y - 6), f"{v:.2f}", fill="black")
        _, ty = xy(0, target)
        for x0 in range(pad, width - pad, 12):
            draw.line([x0, ty, x0 + 6, ty], fill=(120, 120, 120))
        tx, _ = xy(SECONDS_TARGET, 0)
        for y0 in range(top + pad, top + height - pad, 12):
            draw.line([tx, y0, tx, y0 + 6], fill=(120, 120, 120))
        draw.text(
            (pad + 6, top + pad + 4),
            f"{key} (lower is better; target {target}, {SECONDS_TARGET:.0f} s)",
            fill="black",
        )
        for n, result in enumerate(results):
            color = COLORS[n % len(COLORS)]
            points = [xy(s["seconds"], s[key]) for s in result["snapshots"] if key in s]
            if len(points) > 1:
                draw.line(points, fill=color, width=2)
            for x, y in points:
                draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=color)
            threads = result["machine"].rsplit(", ", 1)[-1]
            legend = f"{result['label']} ({threads}, load {result['load_average'][0]:.0f})"
            draw.text((width - pad - 330, top + pad + 6 + 14 * n), legend, fill=color)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--label", default="default")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--every", type=int, default=10, help="iterations between snapshots")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a run setting")
    parser.add_argument("--split", help="iterations per scale, e.g. 30,30,100 (an experiment's knob)")
    parser.add_argument("--plot", action="store_true", help="draw the recorded curves and exit")
    args = parser.parse_args()
    if args.plot:
        results = [json.loads(p.read_text()) for p in sorted(OUT.glob("*.json"))]
        plot(results, OUT / "quality_time.png")
        for r in results:
            last = r["snapshots"][-1]
            print(
                f"{r['label']}: {r['seconds']:.0f} s, style_ratio {last.get('style_ratio')}, "
                f"content_ratio {last.get('content_ratio')}, load {r['load_average'][0]:.1f}"
            )
        print(f"wrote {OUT / 'quality_time.png'}")
        return
    if not (SHARED / "images" / "tubingen.jpg").exists() or not (SHARED / "tools" / "score.py").exists():
        print("skipped: ../shared/images and ../shared/tools are absent")
        return
    options = {}
    for item in args.set:
        name, _, value = item.partition("=")
        options[name.replace("-", "_")] = _value(value)
    if args.split:
        import painterly.optimization

        split = [int(x) for x in args.split.split(",")]
        painterly.optimization.iterations_per_scale = lambda iterations, n: split[:n]  # type: ignore[assignment]
    print(f"{_machine()}; load average {os.getloadavg()[0]:.2f}", flush=True)
    result = record(args.label, args.size, args.every, options)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{args.label}.json").write_text(json.dumps(result, indent=1))
    print(f"{'seconds':>8} {'evals':>5} {'step':>5} {'scale':>5} {'style_ratio':>12} {'content_ratio':>14}")
    for s in result["snapshots"]:
        print(
            f"{s['seconds']:>8.1f} {s['evaluations']:>5} {s['step']:>5} {s['scale']:>5} "
            f"{s.get('style_ratio', float('nan')):>12.4f} {s.get('content_ratio', float('nan')):>14.4f}"
        )
    print(f"total {result['seconds']:.1f} s; load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
