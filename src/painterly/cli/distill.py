"""``painterly distill``: train a smaller, faster network to reproduce a trained one (a thin layer
over :func:`painterly.feedforward.distill.distill`)."""

from __future__ import annotations

import argparse

from painterly.cli.number_types import positive_float, positive_int
from painterly.cli.training_progress import StepBar, report_skipped
from painterly.errors import shown_path


def register(subparsers: argparse._SubParsersAction) -> None:
    distill = subparsers.add_parser(
        "distill",
        help="train a smaller, faster network to reproduce a trained one",
        description="Distill a trained model (the teacher) into a network of a smaller width (the "
        "student): the student learns to output what the teacher outputs on random crops of photos "
        "(L1 on pixels, optionally plus a VGG content term). No style image or loss network needed.",
    )
    distill.add_argument("--teacher", required=True, help="model file or shipped model name")
    distill.add_argument(
        "--style",
        dest="teacher_style",
        metavar="NAME",
        help="for a multi-style teacher (e.g. zoo): the style to distill into a single-style student",
    )
    distill.add_argument("--data", required=True, help="folder of content photos (searched recursively)")
    distill.add_argument("-o", "--output", required=True, help="model file to write (.safetensors)")
    distill.add_argument("--width", default="8", help="student width: a number of channels (default 8)")
    distill.add_argument("--iterations", type=positive_int, default=2000, help="steps (default %(default)s)")
    distill.add_argument("--batch-size", type=positive_int, default=8, help="default %(default)s")
    distill.add_argument(
        "--image-size", type=positive_int, default=192, help="crop size, px (default %(default)s)"
    )
    distill.add_argument(
        "--learning-rate", "--lr", type=float, default=2e-3, help="Adam, cosine decay (default %(default)s)"
    )
    distill.add_argument(
        "--perceptual-weight",
        type=float,
        default=0.0,
        help="weight of a VGG relu2_2 content term added to the L1 pixel loss (default 0: pixels only)",
    )
    distill.add_argument(
        "--init",
        choices=("teacher", "random"),
        default="teacher",
        help="start from the teacher's strongest channels (default) or from random weights",
    )
    distill.add_argument("--max-minutes", type=positive_float, help="stop and save after this many minutes")
    distill.add_argument(
        "--checkpoint-every", type=positive_int, default=100, help="save the model every N steps"
    )
    distill.add_argument("--seed", type=int, default=0)
    distill.add_argument("--name", help="model name in its metadata (default: the teacher's)")
    distill.add_argument("--workdir", help="where losses.jsonl goes (default OUTPUT.distill/)")
    distill.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    distill.add_argument("--precision", default="auto", help="auto, fp32, bf16 or fp16")
    distill.add_argument("--quiet", action="store_true", help="no progress bar")
    distill.set_defaults(handler=run_distill)


def run_distill(args: argparse.Namespace) -> int:
    from painterly.feedforward.distill import DistillSettings, distill

    settings = DistillSettings(
        teacher=args.teacher,
        teacher_style=args.teacher_style,
        data=args.data,
        output=args.output,
        width=args.width,
        iterations=args.iterations,
        batch_size=args.batch_size,
        image_size=args.image_size,
        learning_rate=args.learning_rate,
        perceptual_weight=args.perceptual_weight,
        init=args.init,
        seed=args.seed,
        max_seconds=args.max_minutes * 60 if args.max_minutes is not None else None,
        checkpoint_every=args.checkpoint_every,
        device=args.device,
        precision=args.precision,
        name=args.name,
        workdir=args.workdir,
    )
    report = StepBar(args.quiet)
    try:
        result = distill(settings, report)
    finally:
        report.close()
    report_skipped(result.skipped)
    figures = f"{result.steps} steps, {result.seconds:.0f} s, l1 {result.loss:.4f}"
    print(f"wrote {shown_path(result.output)} ({figures})")
    return 130 if result.interrupted else 0
