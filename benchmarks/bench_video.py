"""Video: temporal consistency and speed of both methods, side by side in one run on this machine.

    python benchmarks/bench_video.py [--clip ../shared/videos/cup.mp4] [--frames 60]
        [--strengths 0.4 0.5 0.7] [--optimization] [--opt-frames 8] [--opt-size 256]

Feed-forward (the clip at its own size, 640x480 for cup.mp4): plain per-frame stylization
against flow-guided temporal blending with the same model, each a whole ``stylize_video`` run
(decode, flow, network, blend, encode; frames/s end to end, and seconds per frame in each stage).
``--strengths`` adds blending strengths computed from the same per-frame stylizations.

Optimization (``--optimization``, at ``--opt-size`` px long side): per-frame optimization
against Ruder et al.'s warm start and temporal loss; seconds of the first frame and of each later one.

Every output file is scored by the shared judge, ``../shared/tools/video_score.py``: the warping
error (Lai et al. 2018) on the encoded file, and the style ratio (style loss of each 10th output
frame over that of its input frame; lower = more styled) against the style image. Without the
shared folder the warping error comes from ``painterly.video.metrics`` and the style ratio is left out.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from painterly.video import io as vio
from painterly.video.feedforward import DEFAULT_STRENGTH, FeedForwardPainter, TemporalBlend
from painterly.video.flow import FlowEstimator
from painterly.video.metrics import warping_error
from painterly.video.pipeline import VideoResult, Window, run
from painterly.video.stylize import FEEDFORWARD_FLOW_SCALE

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
STYLE = SHARED / "images" / "starry_night.jpg"


def cpu_line() -> str:
    model, flags = platform.processor() or "?", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    shown = [
        f
        for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile")
        if f in flags
    ]
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return (
        f"CPU: {model}, {os.cpu_count()} cores; flags: {' '.join(shown) or '-'}; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )


def judge() -> ModuleType | None:
    path = SHARED / "tools" / "video_score.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location("video_score", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def score(
    clip: Path, output: Path, frames: int, tool: ModuleType | None, style: bool
) -> tuple[float, float | None]:
    """(warping error, style ratio or None) of an encoded output, by the shared judge when present."""
    if tool is None:
        inputs = vio.read_frames(vio.probe(clip), max_frames=frames)
        outputs = vio.read_frames(vio.probe(output), max_frames=frames)
        return warping_error(inputs, outputs), None
    errors, _ = tool.warping_errors(str(clip), str(output), frames)
    ratio = None
    if style and STYLE.exists():
        ratio = float(np.mean(tool.style_strength(str(clip), str(output), str(STYLE), 10, frames)))
    return float(np.mean(errors)), ratio


class Recording(FeedForwardPainter):
    """Keeps each frame's raw stylization (before blending), for the strength sweep."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.raw: list[np.ndarray] = []

    def paint(self, frame: np.ndarray, index: int, pair: Any) -> np.ndarray:
        out = super().paint(frame, index, pair)
        if self.blend.strength == 0:
            self.raw.append(out)
        return out


def stage_line(result: VideoResult, network: float) -> str:
    n = max(result.frames, 1)
    s = dict(result.stages)
    s["blend"] = s.pop("paint") - network
    s["network"] = network
    parts = [f"{k} {1000 * s[k] / n:.0f}" for k in ("decode", "flow", "network", "blend", "encode")]
    return " / ".join(parts)


def feedforward(args: argparse.Namespace, folder: Path, tool: ModuleType | None) -> None:
    from painterly import load_model

    model = load_model(args.model, "auto", backend=args.backend)
    info = vio.probe(args.clip)
    print(
        f"\n## feed-forward: {args.clip.name}, {info.width}x{info.height}, {args.frames} frames, model "
        f"{args.model} ({model.backend}), flow at {FEEDFORWARD_FLOW_SCALE:g} of the frame size\n"
    )
    window = Window(max_frames=args.frames)
    flow = FlowEstimator("medium", FEEDFORWARD_FLOW_SCALE)
    model.stylize(np.zeros((info.height, info.width, 3), np.uint8), tile="none")  # warm-up
    rows = []
    plain_painter = Recording(model, 0.0)
    plain = run(args.clip, folder / "plain.mp4", plain_painter, window=window, flow=flow)
    rows.append(("per-frame", plain, plain_painter.network_seconds))
    steady_painter = FeedForwardPainter(model, DEFAULT_STRENGTH)
    steady = run(args.clip, folder / "steady.mp4", steady_painter, window=window, flow=flow)
    rows.append((f"blended {DEFAULT_STRENGTH:g} (default)", steady, steady_painter.network_seconds))

    sweep = []
    frames = list(vio.read_frames(info, max_frames=args.frames))
    for strength in args.strengths:
        blend = TemporalBlend(strength)
        path = folder / f"sweep{strength:g}.mp4"
        with vio.VideoWriter(path, rate=info.rate, width=info.width, height=info.height) as writer:
            previous = None
            for frame, raw in zip(frames, plain_painter.raw, strict=True):
                writer.write(blend(raw, flow.pair(previous, frame) if previous is not None else None))
                previous = frame
        sweep.append((f"blended {strength:g}", path))

    base_error, base_style = score(args.clip, plain.output, args.frames, tool, True)
    print(
        "| method | warping error | vs per-frame | style ratio | vs per-frame | frames/s end to end "
        "| ms/frame: decode / flow / network / blend / encode |"
    )
    print("|---|---|---|---|---|---|---|")

    def line(name: str, error: float, style: float | None, fps: str, stages: str) -> None:
        ratio = f"{style:.4f}" if style is not None else "-"
        rel = f"{style / base_style:.2f}x" if style is not None and base_style else "-"
        print(f"| {name} | {error:.5f} | {error / base_error:.2f}x | {ratio} | {rel} | {fps} | {stages} |")

    for name, result, network in rows:
        error, style = (
            (base_error, base_style)
            if result is plain
            else score(args.clip, result.output, args.frames, tool, True)
        )
        line(name, error, style, f"{result.fps:.2f}", stage_line(result, network))
    for name, path in sweep:
        error, style = score(args.clip, path, args.frames, tool, True)
        line(name, error, style, "(same frames)", "-")
    if tool is not None:
        errors, own = tool.warping_errors(str(args.clip), str(plain.output), args.frames)
        print(f"\n(the input's own warping error, for orientation: {np.mean(own):.5f})")


def optimization(args: argparse.Namespace, folder: Path, tool: ModuleType | None) -> None:
    from painterly.video.optimization import OptimizationPainter

    if not STYLE.exists():
        print("\n(optimization skipped: ../shared/images/starry_night.jpg is not present)")
        return
    info = vio.probe(args.clip)
    width, height = vio.output_size(info.width, info.height, args.opt_size)
    print(
        f"\n## optimization: {args.clip.name} at {width}x{height}, {args.opt_frames} frames, style "
        f"{STYLE.name}\n"
    )
    print(
        "| method | warping error | vs per-frame | style ratio | vs per-frame | first frame s "
        "| later frames s (mean) | later / first |"
    )
    print("|---|---|---|---|---|---|---|---|")
    base: tuple[float, float | None] | None = None
    for name, temporal in (("per-frame", False), ("Ruder et al. (warm start + temporal loss)", True)):
        out = folder / f"opt_{temporal}.mp4"
        painter = OptimizationPainter(
            [STYLE], output=out, temporal=temporal, workdir=folder / f"work_{temporal}"
        )
        run(args.clip, out, painter, size=args.opt_size, window=Window(max_frames=args.opt_frames))
        error, style = score(args.clip, out, args.opt_frames, tool, True)
        base = base or (error, style)
        first, later = painter.seconds[0], float(np.mean(painter.seconds[1:]))
        ratio = f"{style:.4f}" if style is not None else "-"
        rel = f"{style / base[1]:.2f}x" if style is not None and base[1] else "-"
        print(
            f"| {name} | {error:.5f} | {error / base[0]:.2f}x | {ratio} | {rel} | {first:.1f} | {later:.1f} "
            f"| {later / first:.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clip", type=Path, default=SHARED / "videos" / "cup.mp4")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--model", default="starry_night")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--strengths", type=float, nargs="*", default=[])
    parser.add_argument("--optimization", action="store_true")
    parser.add_argument("--no-feedforward", action="store_true")
    parser.add_argument("--opt-frames", type=int, default=8)
    parser.add_argument("--opt-size", type=int, default=256)
    args = parser.parse_args()
    if not args.clip.exists():
        sys.exit(f"no clip at {args.clip} (the shared videos folder is not present)")
    import av
    import cv2
    import torch

    print(cpu_line())
    print(
        f"python {platform.python_version()}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"PyAV {av.__version__}, OpenCV {cv2.__version__}"
    )
    print("command: python benchmarks/bench_video.py " + " ".join(sys.argv[1:]))
    tool = judge()
    print("scored by ../shared/tools/video_score.py" if tool else "scored by painterly.video.metrics")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-video-") as tmp:
        if not args.no_feedforward:
            feedforward(args, Path(tmp), tool)
        if args.optimization:
            optimization(args, Path(tmp), tool)
    print(
        f"\n(benchmark took {time.perf_counter() - started:.0f} s; load average at the end "
        f"{os.getloadavg()[0]:.2f})"
    )


if __name__ == "__main__":
    main()
