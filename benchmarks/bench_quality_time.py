"""Quality against time: the shared yardstick's scores of a run's snapshots, against seconds.

    python benchmarks/bench_quality_time.py                       # the default (--quality normal)
    python benchmarks/bench_quality_time.py --label draft --set quality=draft
    python benchmarks/bench_quality_time.py --label former-default --former-default
    python benchmarks/bench_quality_time.py --plot                # every recorded curve in one PNG

Runs tubingen + starry_night (from ../shared/images; skipped when absent) at 512 px with the given
settings, saves the current image every ``--every`` iterations (resized to the output size: what a
user would get by stopping there), then scores all snapshots with ``../shared/tools/score.py --size
512`` (style_ratio: style loss over the untouched photo's, lower is more styled; content_ratio:
content loss over the style image's, lower keeps more of the photo). Results go to
``benchmarks/out/quality_time/<label>.json``.

Each snapshot records its wall seconds and the loss evaluations spent at each scale, and so also
the *idle-equivalent* seconds: evaluations x the idle per-evaluation time of a 2-core AVX2 Zen 3
(2.91 s at 512x384, in proportion to the pixels; ``IDLE_SECONDS_PER_EVAL``) plus its set-up time.
That axis does not move when other work shares the CPU. ``--former-default`` reproduces the default
before issue 24 (256 -> 362 -> 512 px, 20 + 20 + 40 iterations, plain starts).

``--plot`` draws every recorded curve into ``quality_time.png`` next to them (``--out`` elsewhere,
e.g. docs/quality-time.png; ``--axis wall`` for measured seconds), on a log time axis with the
reference points: the PyTorch port of the Lua neural-style, 500 iterations (1728 s, 0.149 / 0.300
on an idle 2-core Zen 3) and the former default (182 s, 0.0245 / 0.281 there). Targets of issue 24:
style_ratio <= 0.15 and content_ratio <= 0.30 within 90 s on a 2-core AVX2 CPU.
"""

from __future__ import annotations

import argparse
import json
import math
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
STYLE_TARGET, CONTENT_TARGET, SECONDS_TARGET = 0.15, 0.30, 90.0
#: Idle seconds per loss evaluation of a 512x384 image on a 2-core AMD EPYC Zen 3 (AVX2, no BF16),
#: ``benchmarks/bench_transfer.py --iterations 8`` at bee5ea1; other sizes in proportion to pixels
#: (0.73 s at 256x192 by this rule, 0.66 s measured: the rule errs on the slow side).
IDLE_SECONDS_PER_EVAL = 2.91
IDLE_PIXELS = 512 * 384
#: Idle set-up of a run on that CPU (network, style targets; calibration cached), seconds.
IDLE_SETUP_SECONDS = 4.0
#: Reference points on that CPU, idle: (label, seconds, style_ratio, content_ratio). The former
#: default is the CLI at bee5ea1 timed back to back with today's on 2026-12-07 (170 s and 153 s;
#: 182 s when issue 24 was filed).
REFERENCES = [
    ("PyTorch port of Lua neural-style, 500 it.", 1728.0, 0.149, 0.300),
    ("former default (bee5ea1, 153-170 s)", 162.0, 0.0245, 0.281),
]


def idle_seconds(evaluations_per_scale: list[tuple[int, int]]) -> float:
    """Idle-equivalent seconds of (pixels, evaluations) per scale, with the set-up."""
    return IDLE_SETUP_SECONDS + sum(
        IDLE_SECONDS_PER_EVAL * pixels / IDLE_PIXELS * n for pixels, n in evaluations_per_scale
    )


def use_former_default() -> None:
    """Make this process paint with the default before issue 24 (an experiment's switch)."""
    import painterly.optimization
    import painterly.settings

    former = painterly.settings.QualityPlan(
        256,
        20,
        20,
        40,
        300,
        window=20,
        tolerance=0.01,
        min_iterations=30,
        matched_start=False,
        detail_start=False,
    )
    painterly.settings.QUALITY_PLANS["normal"] = former
    painterly.optimization.scale_sizes = lambda size, scales, quality="normal": [256, 362, 512]  # type: ignore[assignment]


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
    per_scale: dict[int, tuple[int, int]] = {}  # scale -> (pixels, evaluations)

    def callback(progress: Any) -> None:
        nonlocal pause, target
        now = time.perf_counter()
        elapsed = now - started - pause
        total = progress.losses["total"] if isinstance(progress.losses, dict) else progress.losses.total
        if progress.scale != counted["scale"]:
            counted.update(scale=progress.scale, before=counted["total"])
        counted["total"] = counted["before"] + progress.evaluations
        per_scale[progress.scale] = (progress.size[0] * progress.size[1], progress.evaluations)
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
                    "per_scale": [per_scale[k] for k in sorted(per_scale)],
                    "idle_seconds": idle_seconds(list(per_scale.values())),
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
            "per_scale": [per_scale[k] for k in sorted(per_scale)],
            "idle_seconds": idle_seconds(list(per_scale.values())),
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


def plot(results: list[dict[str, Any]], path: Path, axis: str = "idle") -> None:
    """Two panels (style_ratio, content_ratio) against seconds on a log axis, one line per run, the
    reference points as crosses, target lines dashed. ``axis``: ``idle`` (idle-equivalent seconds from
    the evaluations spent) or ``wall`` (measured)."""
    from PIL import Image, ImageDraw

    key_seconds = "idle_seconds" if axis == "idle" else "seconds"
    width, height, pad = 960, 380, 56
    image = Image.new("RGB", (width, 2 * height), "white")
    draw = ImageDraw.Draw(image)
    t_min, t_max = 5.0, 3000.0
    span = math.log10(t_max / t_min)
    for panel, (key, target, y_max, column) in enumerate(
        [("style_ratio", STYLE_TARGET, 0.6, 2), ("content_ratio", CONTENT_TARGET, 0.6, 3)]
    ):
        top = panel * height

        def xy(t: float, v: float, top: int = top, y_max: float = y_max) -> tuple[float, float]:
            x = pad + (width - 2 * pad) * math.log10(max(t, t_min) / t_min) / span
            y = top + height - pad - (height - 2 * pad) * min(v, y_max) / y_max
            return x, y

        draw.rectangle([pad, top + pad, width - pad, top + height - pad], outline="black")
        for tick in (5, 10, 20, 45, 90, 180, 500, 1000, 2000):
            x, _ = xy(tick, 0)
            draw.line([x, top + height - pad, x, top + height - pad + 5], fill="black")
            draw.text((x - 8, top + height - pad + 8), f"{tick}s", fill="black")
        for i in range(0, 7):
            v = y_max * i / 6
            _, y = xy(t_min, v)
            draw.text((8, y - 6), f"{v:.2f}", fill="black")
        _, ty = xy(t_min, target)
        for x0 in range(pad, width - pad, 12):
            draw.line([x0, ty, x0 + 6, ty], fill=(120, 120, 120))
        tx, _ = xy(SECONDS_TARGET, 0)
        for y0 in range(top + pad, top + height - pad, 12):
            draw.line([tx, y0, tx, y0 + 6], fill=(120, 120, 120))
        what = "idle-equivalent seconds, 2-core Zen 3 AVX2" if axis == "idle" else "wall seconds"
        draw.text(
            (pad + 6, top + pad + 4),
            f"{key} (lower is better; target {target}, {SECONDS_TARGET:.0f} s) against {what}, log scale",
            fill="black",
        )
        for n, (label, seconds, *ratios) in enumerate(REFERENCES):
            x, y = xy(seconds, ratios[column - 2])
            draw.line([x - 5, y - 5, x + 5, y + 5], fill="black", width=2)
            draw.line([x - 5, y + 5, x + 5, y - 5], fill="black", width=2)
            draw.text((x - 230 if x > width / 2 else x + 8, y - 18 - 12 * n), label, fill="black")
        for n, result in enumerate(results):
            color = COLORS[n % len(COLORS)]
            snaps = [s for s in result["snapshots"] if key in s and key_seconds in s]
            points = [xy(s[key_seconds], s[key]) for s in sorted(snaps, key=lambda s: s[key_seconds])]
            if len(points) > 1:
                draw.line(points, fill=color, width=2)
            for x, y in points:
                draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=color)
            final = result["snapshots"][-1]
            legend = (
                f"{result['label']}: {final.get(key_seconds, 0):.0f} s, {final.get(key, float('nan')):.3f}"
            )
            draw.text((width - pad - 300, top + pad + 22 + 14 * n), legend, fill=color)
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
    parser.add_argument("--out", type=Path, default=OUT / "quality_time.png", help="where --plot draws")
    parser.add_argument("--axis", choices=("idle", "wall"), default="idle", help="--plot's time axis")
    parser.add_argument(
        "--former-default", action="store_true", help="paint with the default before issue 24"
    )
    args = parser.parse_args()
    if args.plot:
        results = [json.loads(p.read_text()) for p in sorted(OUT.glob("*.json"))]
        plot(results, args.out, args.axis)
        for r in results:
            last = r["snapshots"][-1]
            print(
                f"{r['label']}: {r['seconds']:.0f} s wall (load {r['load_average'][0]:.1f}), "
                f"{last.get('idle_seconds', float('nan')):.0f} s idle-equivalent, "
                f"{last['evaluations']} evaluations {last.get('per_scale')}, style_ratio "
                f"{last.get('style_ratio')}, content_ratio {last.get('content_ratio')}; {r['machine']}"
            )
        print(f"wrote {args.out}")
        return
    if not (SHARED / "images" / "tubingen.jpg").exists() or not (SHARED / "tools" / "score.py").exists():
        print("skipped: ../shared/images and ../shared/tools are absent")
        return
    options = {}
    for item in args.set:
        name, _, value = item.partition("=")
        options[name.replace("-", "_")] = _value(value)
    if args.former_default:
        use_former_default()
    if args.split:
        import painterly.optimization

        split = [int(x) for x in args.split.split(",")]
        painterly.optimization.iterations_per_scale = lambda iterations, n, quality="normal": split[:n]  # type: ignore[assignment]
    print(f"{_machine()}; load average {os.getloadavg()[0]:.2f}", flush=True)
    result = record(args.label, args.size, args.every, options)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{args.label}.json").write_text(json.dumps(result, indent=1))
    print(
        f"{'seconds':>8} {'idle s':>7} {'evals':>5} {'step':>5} {'scale':>5} "
        f"{'style_ratio':>12} {'content_ratio':>14}"
    )
    for s in result["snapshots"]:
        print(
            f"{s['seconds']:>8.1f} {s['idle_seconds']:>7.1f} {s['evaluations']:>5} {s['step']:>5} "
            f"{s['scale']:>5} "
            f"{s.get('style_ratio', float('nan')):>12.4f} {s.get('content_ratio', float('nan')):>14.4f}"
        )
    print(f"total {result['seconds']:.1f} s; load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
