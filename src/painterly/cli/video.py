"""``painterly video``: stylize a clip with a trained network (``--model``) or by optimization (``--style``).

Needs the ``video`` extra (PyAV and OpenCV); without it the command prints the install line and
exits with code 2. Library defaults are read from the library itself, so they are defined once.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from painterly.cli.number_types import decimal, whole
from painterly.cli.training_progress import LazyBar

#: Defaults shown in --help; the same values as painterly.video.feedforward.DEFAULT_STRENGTH and
#: painterly.video.optimization's (kept here so that --help needs neither PyAV nor torch).
_TEMPORAL_STRENGTH = 0.7


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "video",
        help="stylize a video without flicker (feed-forward or optimization)",
        description="Stylize a video: with --model, a trained network per frame blended along the optical "
        "flow; with --style, image optimization warm-started from the previous frame with a temporal loss "
        "(Ruder et al. 2016). Keeps the frame rate, rotation and audio. Ctrl-C writes the frames done.",
    )
    basic = parser.add_argument_group("basic")
    basic.add_argument("input", metavar="INPUT", help="the video (anything FFmpeg reads)")
    basic.add_argument("-o", "--output", required=True, help=".mp4 (H.264), .webm (VP9), .gif, .mov or .mkv")
    method = basic.add_mutually_exclusive_group(required=True)
    method.add_argument("-m", "--model", help="a trained network: shipped name or model file (fast)")
    method.add_argument("-s", "--style", nargs="+", metavar="IMAGE", help="style image(s), for optimization")
    basic.add_argument(
        "--size", type=whole("size"), help="long side of the output, px (default: the input's)"
    )
    basic.add_argument(
        "--style-mix",
        metavar="NAME:W,...",
        help="with a multi-style --model (e.g. zoo): blend its styles, e.g. the_wave:0.7,udnie:0.3",
    )
    window = parser.add_argument_group("part of the clip")
    window.add_argument(
        "--start", type=decimal("start"), default=0.0, help="seconds from the beginning (default 0)"
    )
    window.add_argument(
        "--duration", type=decimal("duration"), help="seconds to process (default: to the end)"
    )
    window.add_argument("--max-frames", type=whole("max frames"), help="at most this many frames")
    steady = parser.add_argument_group("temporal consistency")
    steady.add_argument(
        "--temporal-strength",
        type=decimal("temporal strength"),
        default=_TEMPORAL_STRENGTH,
        help="feed-forward, 0 to 1: how strongly the network's input and output are steadied along the "
        "optical flow (0 = every frame on its own; default %(default)s)",
    )
    steady.add_argument(
        "--temporal-weight",
        type=decimal("temporal weight"),
        help="optimization: weight of the temporal loss (0 = every frame on its own)",
    )
    steady.add_argument(
        "--long-term", action="store_true", help="optimization: also hold frames to the output 2 and 4 back"
    )
    steady.add_argument(
        "--flow-scale",
        type=decimal("flow scale"),
        help="compute the optical flow at this fraction of the frame size",
    )
    opt = parser.add_argument_group("optimization")
    opt.add_argument("--iterations", type=whole("iterations"), help="L-BFGS iterations for the first frame")
    opt.add_argument(
        "--later-iterations", type=whole("later iterations"), help="iterations for each later frame"
    )
    opt.add_argument(
        "--workdir", help="folder of the finished frames, for resuming (default: OUTPUT.frames/)"
    )
    out = parser.add_argument_group("output and other")
    out.add_argument("--compare", action="store_true", help="write input and output side by side")
    out.add_argument(
        "--report", action="store_true", help="print the temporal warping error (Lai et al. 2018)"
    )
    out.add_argument("--no-audio", action="store_true", help="leave the audio track out")
    out.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    out.add_argument(
        "--backend",
        default="auto",
        help="feed-forward runtime: auto (the fastest of onnxruntime, torch and, on CPUs with native bf16, "
        "torch bf16, timed on a frame first), torch or onnxruntime",
    )
    out.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run_video)


def _optimization_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name in ("iterations", "later_iterations", "temporal_weight", "workdir"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    if args.long_term:
        options["long_term"] = True
    return options


class _FrameBar(LazyBar):
    """A bar over frames (frames/s and ETA), with the running warping error when reported."""

    def open_options(self, progress: Any) -> dict[str, Any]:
        return {"total": progress.total, "unit": "frame"}

    def show(self, progress: Any) -> None:
        self.bar.update(progress.frame - self.bar.n)
        if progress.warping_error is not None and progress.warping_error == progress.warping_error:
            self.bar.set_postfix_str(f"warping error {progress.warping_error:.5f}")


def run_video(args: argparse.Namespace) -> int:
    from painterly.errors import PainterlyError, shown_path
    from painterly.video import require_video_extra
    from painterly.video.runtime import prefer_sleeping_threads

    prefer_sleeping_threads()  # before torch is imported: decoding and flow threads share the cores

    require_video_extra()
    from painterly.video.stylize import stylize_video

    if args.model is not None:
        extra = _optimization_options(args)
        if extra:
            raise PainterlyError(
                f"--{next(iter(extra)).replace('_', '-')} is for --style (optimization) only"
            )
    elif args.style_mix is not None:
        raise PainterlyError("--style-mix is for a multi-style --model only")
    from painterly.feedforward.signals import sigterm_as_interrupt

    bar = _FrameBar(args.quiet)
    try:
        # SIGTERM (timeout, schedulers) as Ctrl-C: the frames done are kept, no .tmp is left.
        with sigterm_as_interrupt():
            result = stylize_video(
                args.input,
                args.output,
                model=args.model,
                style=args.style,
                size=args.size,
                start=args.start,
                duration=args.duration,
                max_frames=args.max_frames,
                temporal_strength=args.temporal_strength,
                style_mix=args.style_mix,
                compare=args.compare,
                report=args.report,
                audio=not args.no_audio,
                flow_scale=args.flow_scale,
                device=args.device,
                backend=args.backend,
                progress=bar,
                **(_optimization_options(args) if args.style else {}),
            )
    finally:
        bar.close()
    width, height = result.size  # as shown: rotation applied, both halves with --compare
    line = f"{result.frames} frames, {width}x{height}, {result.seconds:.1f} s ({result.fps:.2f} frames/s)"
    if result.interrupted:
        print(
            f"painterly: interrupted; wrote the {line} done so far to {shown_path(result.output)}",
            file=sys.stderr,
        )
    else:
        print(f"wrote {shown_path(result.output)}: {line}")
    if result.warping_error is not None and result.frames < 2:
        print("warping error: not measured (it needs at least two frames)")
    elif result.warping_error is not None:
        print(
            f"warping error {result.warping_error:.5f} "
            "(Lai et al. 2018: squared RGB change along the input's optical flow)"
        )
    if args.report and result.runtime:
        print(f"network runtime: {result.runtime}")
    return 130 if result.interrupted else 0
