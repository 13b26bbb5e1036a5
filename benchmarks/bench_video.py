"""Video: temporal consistency and speed of both methods, side by side in one run on this machine.

    python benchmarks/bench_video.py [--clip ../shared/videos/cup.mp4] [--frames 60]
        [--strengths 0.3 0.7] [--flow-preset fast] [--flow-scale 0.5] [--backend auto]
        [--optimization] [--opt-frames 8] [--opt-size 256] [--opt-iterations 100] [--no-feedforward]

Feed-forward (the clip at its own size, 640x480 for cup.mp4): plain per-frame stylization
against flow-guided temporal blending with the same model, each a whole ``stylize_video`` run
(decode, flow, network, blend, encode; frames/s end to end, and milliseconds per frame in each
stage: decoding with the flow, and encoding, run in threads of their own, so the stages overlap and
add up to more than the time per frame), and the CPU time per frame of all threads together, a
figure that hardly depends on the machine's other load. The runtime is the one ``stylize_video``
picks (measured once before the runs; ``--backend`` fixes it). ``--strengths`` adds rows.

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

import numpy as np

from painterly.video import io as vio
from painterly.video.feedforward import DEFAULT_STRENGTH, FeedForwardPainter, shares
from painterly.video.flow import FlowEstimator
from painterly.video.metrics import warping_error
from painterly.video.pipeline import VideoResult, Window, run
from painterly.video.runtime import choose_runtime
from painterly.video.stylize import FEEDFORWARD_FLOW_PRESET, FEEDFORWARD_FLOW_SCALE

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


def stage_line(result: VideoResult, network: float) -> str:
    n = max(result.frames, 1)
    s = dict(result.stages)
    s["blend"] = s.pop("paint") - network
    s["network"] = network
    parts = [f"{k} {1000 * s[k] / n:.0f}" for k in ("decode", "flow", "network", "blend", "encode")]
    return " / ".join(parts)


def frame_strip(clip: Path, plain: Path, steady: Path, path: Path, first: int = 20, count: int = 4) -> None:
    """Rows: input, per-frame, its change from the previous frame, temporally consistent, its change.

    The change rows (absolute difference to the previous output frame, times 3) make flicker
    visible in a still: a steady video changes only where things move.
    """
    from PIL import Image, ImageDraw

    def frames(source: Path) -> list[np.ndarray]:
        return list(vio.read_frames(vio.probe(source), max_frames=first + count))[first - 1 :]

    def change(seq: list[np.ndarray]) -> list[np.ndarray]:
        return [
            np.clip(np.abs(b.astype(int) - a.astype(int)) * 3, 0, 255).astype(np.uint8)
            for a, b in zip(seq, seq[1:], strict=False)
        ]

    inputs, per_frame, consistent = frames(clip)[1:], frames(plain), frames(steady)
    rows = [
        ("input", inputs),
        ("per-frame", per_frame[1:]),
        ("per-frame: change x3", change(per_frame)),
        ("temporally consistent", consistent[1:]),
        ("consistent: change x3", change(consistent)),
    ]
    tile = (200, 150)
    strip = Image.new("RGB", (tile[0] * count, tile[1] * len(rows)), "white")
    draw = ImageDraw.Draw(strip)
    for r, (label, images) in enumerate(rows):
        for c, image in enumerate(images):
            strip.paste(
                Image.fromarray(image).resize(tile, Image.Resampling.LANCZOS), (c * tile[0], r * tile[1])
            )
        draw.rectangle((0, r * tile[1], 8 + 6 * len(label), r * tile[1] + 14), fill="black")
        draw.text((4, r * tile[1] + 2), label, fill="white")
    strip.save(path, quality=82, optimize=True)
    print(
        f"\nwrote {path} ({path.stat().st_size // 1024} KB): "
        f"frames {first + 1}-{first + count} of {clip.name}"
    )


def feedforward(args: argparse.Namespace, folder: Path, tool: ModuleType | None) -> None:
    info = vio.probe(args.clip)
    started = time.perf_counter()
    choice = choose_runtime(args.model, info.width, info.height, backend=args.backend)
    model = choice.model
    print(
        f"\n## feed-forward: {args.clip.name}, {info.width}x{info.height}, {args.frames} frames, model "
        f"{args.model}, flow: DIS {args.flow_preset} at {args.flow_scale:g} of the frame size\n"
        f"\nruntime: {choice.describe()} (chosen in {time.perf_counter() - started:.1f} s, "
        "before the timed runs)\n"
    )
    window = Window(max_frames=args.frames)
    flow = FlowEstimator(args.flow_preset, args.flow_scale)
    model.stylize(np.zeros((info.height, info.width, 3), np.uint8), tile="none")  # warm-up
    rows = []
    for strength in [0.0, DEFAULT_STRENGTH, *args.strengths]:
        painter = FeedForwardPainter(model, strength)
        cpu = time.process_time()
        result = run(args.clip, folder / f"ff{strength:g}.mp4", painter, window=window, flow=flow)
        cpu_ms = 1000 * (time.process_time() - cpu) / max(1, result.frames)
        smoothing, blending = shares(strength)
        name = (
            "per-frame"
            if strength == 0
            else f"strength {strength:g} (input {smoothing:g}, output {blending:g})"
        )
        if strength == DEFAULT_STRENGTH:
            name += ", the default"
        rows.append((name, result, painter.network_seconds, cpu_ms))
    plain = rows[0][1]

    base_error, base_style = score(args.clip, plain.output, args.frames, tool, True)
    print(
        "| method | warping error | vs per-frame | style ratio | vs per-frame | frames/s end to end "
        "| CPU ms/frame | ms/frame: decode / flow / network / blend / encode |"
    )
    print("|---|---|---|---|---|---|---|---|")

    def line(name: str, error: float, style: float | None, fps: str, cpu: float, stages: str) -> None:
        ratio = f"{style:.4f}" if style is not None else "-"
        rel = f"{style / base_style:.2f}x" if style is not None and base_style else "-"
        print(
            f"| {name} | {error:.5f} | {error / base_error:.2f}x | {ratio} | {rel} | {fps} | {cpu:.0f} "
            f"| {stages} |"
        )

    for name, result, network, cpu_ms in rows:
        error, style = (
            (base_error, base_style)
            if result is plain
            else score(args.clip, result.output, args.frames, tool, True)
        )
        line(name, error, style, f"{result.fps:.2f}", cpu_ms, stage_line(result, network))
    if args.strip is not None:
        frame_strip(args.clip, rows[0][1].output, rows[1][1].output, args.strip)
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
            [STYLE],
            output=out,
            iterations=args.opt_iterations,
            temporal=temporal,
            workdir=folder / f"work_{temporal}",
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
    parser.add_argument("--flow-preset", default=FEEDFORWARD_FLOW_PRESET, help="DIS preset (feed-forward)")
    parser.add_argument("--flow-scale", type=float, default=FEEDFORWARD_FLOW_SCALE)
    parser.add_argument("--strip", type=Path, help="also write a frame strip (JPEG) of the first two rows")
    parser.add_argument("--optimization", action="store_true")
    parser.add_argument("--no-feedforward", action="store_true")
    parser.add_argument("--opt-frames", type=int, default=8)
    parser.add_argument("--opt-size", type=int, default=256)
    parser.add_argument("--opt-iterations", type=int, default=100, help="first frame (later: a quarter)")
    args = parser.parse_args()
    if not args.clip.exists():
        sys.exit(f"no clip at {args.clip} (the shared videos folder is not present)")
    from painterly.video.runtime import prefer_sleeping_threads

    prefer_sleeping_threads()  # as `painterly video` does
    import av
    import cv2
    import torch

    print(cpu_line())
    print(
        f"python {platform.python_version()}, torch {torch.__version__} ({torch.get_num_threads()} threads, "
        f"OMP_WAIT_POLICY {os.environ.get('OMP_WAIT_POLICY', 'unset')}), "
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
