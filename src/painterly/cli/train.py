"""``painterly train``: train a feed-forward style network (a thin layer over
:func:`painterly.feedforward.training.train`). Defaults come from
:class:`painterly.feedforward.settings.TrainSettings`, the one place that defines them."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

from painterly.cli.number_types import positive_int
from painterly.cli.training_progress import StepBar, report_skipped
from painterly.errors import PainterlyError, shown_path
from painterly.feedforward.settings import TrainSettings
from painterly.numbers import parse_decimal
from painterly.settings import MAX_WEIGHT

_DEFAULTS = {
    f.name: f.default for f in dataclasses.fields(TrainSettings) if f.default is not dataclasses.MISSING
}


def _layers(text: str) -> list[str]:
    layers = [part.strip() for part in text.split(",") if part.strip()]
    if not layers:
        raise argparse.ArgumentTypeError("name at least one layer, for example relu2_2")
    return layers


def _factors(text: str) -> tuple[int, ...] | dict[int, float]:
    """``2,4`` to (2, 4), each at the style weight; ``2:5,4:5`` to {2: 5.0, 4: 5.0}, each factor
    with its own multiplier of the style weight. Whole factors from 2, each once."""
    factors: dict[int, float] = {}
    weighted = False
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, colon, weight = part.partition(":")
        name = name.strip()
        if not (name.isascii() and name.isdigit()) or int(name) < 2 or int(name) > 64:
            raise argparse.ArgumentTypeError(f"{part!r}: give whole factors from 2 to 64, for example 2,4")
        if int(name) in factors:
            raise argparse.ArgumentTypeError(f"{part!r} is named twice")
        try:
            label = f"weight of factor {name}"
            factors[int(name)] = parse_decimal(weight, label, minimum=0, maximum=MAX_WEIGHT) if colon else 1.0
        except PainterlyError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
        weighted = weighted or bool(colon)
    if not factors:
        raise argparse.ArgumentTypeError("name at least one factor, for example 2,4")
    return factors if weighted else tuple(factors)


def _name_scales(text: str) -> dict[str, float]:
    """``udnie=2,the_wave=1.5`` to {"udnie": 2.0, "the_wave": 1.5}."""
    scales: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, value = part.rpartition("=")
        try:
            scale = float(value)
        except ValueError:
            scale = float("nan")
        if not sep or not name.strip() or not scale > 0 or scale == float("inf"):
            raise argparse.ArgumentTypeError(
                f"{part!r}: give NAME=FACTOR with a positive factor, for example udnie=2"
            )
        if name.strip() in scales:
            raise argparse.ArgumentTypeError(f"{name.strip()!r} is named twice")
        scales[name.strip()] = scale
    if not scales:
        raise argparse.ArgumentTypeError("name at least one style, for example udnie=2")
    return scales


def _merge_scales(groups: list[dict[str, float]]) -> dict[str, float]:
    """The scales of every ``--style-weight-scale`` given; a style named twice is refused."""
    merged: dict[str, float] = {}
    for group in groups:
        for name, scale in group.items():
            if name in merged:
                raise PainterlyError(f"--style-weight-scale: {name!r} is named twice")
            merged[name] = scale
    return merged


def register(subparsers: argparse._SubParsersAction) -> None:
    d = _DEFAULTS
    train = subparsers.add_parser(
        "train",
        help="train a feed-forward network for one style, or one network for several",
        description="Train a feed-forward style network (Johnson et al. 2016). Several --style images train "
        "one multi-style network (conditional instance norm, Dumoulin et al. 2017) whose styles can be "
        "blended at inference; --base MODEL adds one style to such a network by training only that "
        "style's norm parameters. Under torchrun it trains with DistributedDataParallel: "
        "torchrun --nproc-per-node=K -m painterly train ...",
    )
    basic = train.add_argument_group("basic")
    basic.add_argument(
        "--style",
        required=True,
        action="extend",
        nargs="+",
        metavar="IMAGE",
        help="the style image; several (--style a.jpg --style b.jpg) train one multi-style network, "
        "each style named after its file",
    )
    basic.add_argument("--data", required=True, help="folder of content photos (searched recursively)")
    basic.add_argument("-o", "--output", required=True, help="model file to write (.safetensors)")
    basic.add_argument(
        "--name",
        help="model name in its metadata (default: the style file's name; a multi-style model: the output's)",
    )
    basic.add_argument(
        "--base",
        metavar="MODEL",
        help="a multi-style model (file or shipped name, e.g. zoo) to extend with the one --style: only "
        "the new style's norm parameters train (the output is a new file with all styles); the network "
        "is the base's, so --width and --upsample do not apply",
    )
    basic.add_argument(
        "--init",
        metavar="MODEL",
        help="start from this trained model's weights (file or shipped name) instead of random ones "
        "(same --width and --upsample; any style, single or multi): far fewer steps to a good network",
    )
    opt = train.add_argument_group("optimization")
    opt.add_argument(
        "--iterations",
        type=positive_int,
        default=d["iterations"],
        help="training steps (default %(default)s)",
    )
    opt.add_argument(
        "--batch-size", type=positive_int, default=d["batch_size"], help="per process (default %(default)s)"
    )
    opt.add_argument(
        "--image-size", type=positive_int, default=d["image_size"], help="crop size, px (default %(default)s)"
    )
    opt.add_argument(
        "--learning-rate", "--lr", type=float, default=d["learning_rate"], help="Adam (default %(default)s)"
    )
    opt.add_argument("--seed", type=int, default=d["seed"])
    opt.add_argument(
        "--time-limit",
        type=float,
        metavar="SECONDS",
        help="stop after about this many seconds of training and write the model (default: no limit)",
    )
    net = train.add_argument_group("network and loss")
    net.add_argument(
        "--width",
        default=d["width"],
        help="'light' (16-32-64, default), 'paper' (32-64-128) or a number of channels",
    )
    net.add_argument(
        "--architecture",
        default=d["architecture"],
        choices=("auto", "johnson2016", "cin"),
        help="auto: cin (multi-style) for several styles or --base, johnson2016 for one (default auto)",
    )
    net.add_argument(
        "--temporal-weight",
        type=float,
        default=d["temporal_weight"],
        help="weight of a temporal loss on synthetic motion (frame pairs made by small random shifts, "
        "rotations, zooms): a network stable on video; 0 = off (default %(default)s)",
    )
    net.add_argument(
        "--equivariance-weight",
        type=float,
        default=d["equivariance_weight"],
        help="weight of a shift-equivariance term against grid-locked hatching (the output of the input "
        "moved by 1-3 px, moved back, must match); 0 = off (default %(default)s)",
    )
    net.add_argument(
        "--equivariance-shift",
        type=int,
        default=d["equivariance_shift"],
        metavar="PX",
        help="the equivariance term's widest move: 4 moves the photo 0-3 px (against hatching); more "
        "widens every side by 0 to PX-1 px, against marks anchored to the edges, such as a painted "
        "frame (default %(default)s)",
    )
    net.add_argument(
        "--upsample",
        default=d["upsample"],
        choices=("nearest", "bilinear"),
        help="the decoder's 2x upsampling: bilinear leaves the network no 4 px grid to paint a "
        "hatching on (default %(default)s)",
    )
    net.add_argument(
        "--shape",
        default=d["shape"],
        choices=("johnson", "compact"),  # network.SHAPES (the parser imports no torch)
        help="the network's proportions: johnson (w, 2w, 4w channels, five residual blocks) or compact "
        "(w channels throughout, six blocks at quarter resolution, a w/4-w/8 decoder: a tenth of the "
        "work at full resolution; single style) (default %(default)s)",
    )
    net.add_argument("--network", default=d["network"], choices=("vgg16", "vgg19"), help="loss network")
    net.add_argument(
        "--content-layers",
        type=_layers,
        default=list(d["content_layers"]),
        metavar="L1,L2",
        help=f"default {','.join(d['content_layers'])}",
    )
    net.add_argument(
        "--style-layers",
        type=_layers,
        default=list(d["style_layers"]),
        metavar="L1,L2",
        help=f"default {','.join(d['style_layers'])}",
    )
    net.add_argument("--content-weight", type=float, default=d["content_weight"], help="default %(default)s")
    net.add_argument("--style-weight", type=float, default=d["style_weight"], help="default %(default)s")
    net.add_argument(
        "--style-weight-scale",
        dest="style_weight_scales",
        type=_name_scales,
        action="append",
        metavar="NAME=F,...",
        help="multiply --style-weight by F for the named styles of a multi-style network, e.g. "
        "udnie=2 for a style that stays too close to the photo (default: 1 for every style; may be "
        "repeated)",
    )
    net.add_argument("--tv-weight", type=float, default=d["tv_weight"], help="default %(default)s")
    net.add_argument(
        "--style-size",
        type=positive_int,
        default=d["style_size"],
        help="style image long side, px: larger gives larger brush strokes (default %(default)s)",
    )
    net.add_argument(
        "--coarse-style",
        type=_factors,
        metavar="F1,F2",
        help="also match the painting's Gram statistics with the output and the painting reduced by "
        "these factors, e.g. 2,4: a fine stipple averages out there, so the network must paint the "
        "painting's larger marks (each a pass of the loss network at 1/F^2 the cost; default: none). "
        "Each is at the style weight; F:M multiplies it by M, e.g. 2:5,4:5 with --style-weight 1",
    )
    out = train.add_argument_group("checkpoints, logs and validation")
    out.add_argument(
        "--resume", action="store_true", help="continue from the checkpoint in the training folder"
    )
    out.add_argument(
        "--workdir", help="checkpoints, losses.jsonl and validation images (default OUTPUT.train/)"
    )
    out.add_argument(
        "--checkpoint-every", type=positive_int, default=d["checkpoint_every"], help="default %(default)s"
    )
    out.add_argument("--log-every", type=positive_int, default=d["log_every"], help="default %(default)s")
    out.add_argument(
        "--validate-every", type=positive_int, default=d["validate_every"], help="default %(default)s"
    )
    out.add_argument(
        "--validation",
        nargs="+",
        default=[],
        metavar="IMAGE",
        help="images to stylize at each validation (default: two of the training images)",
    )
    other = train.add_argument_group("other")
    other.add_argument("--device", default=d["device"], help="auto, cpu, cuda, cuda:N or mps")
    other.add_argument("--precision", default=d["precision"], help="auto, fp32, bf16 or fp16")
    other.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(handler=run_train)


def run_train(args: argparse.Namespace) -> int:
    from painterly.feedforward.training import train

    names = {f.name for f in dataclasses.fields(TrainSettings)}
    values = {k: v for k, v in vars(args).items() if k in names and v is not None}
    values["validation"] = tuple(values.get("validation") or ())
    styles = values["style"]
    values["style"] = styles[0] if len(styles) == 1 else tuple(styles)
    if "style_weight_scales" in values:
        values["style_weight_scales"] = _merge_scales(values["style_weight_scales"])
    settings = TrainSettings(**values)
    report = StepBar(args.quiet)
    try:
        result = train(settings, report)
    finally:
        report.close()
    report_skipped(result.skipped)
    if result.interrupted:
        print(
            f"painterly: interrupted at step {result.steps}; checkpoint saved, continue with --resume",
            file=sys.stderr,
        )
        return 130
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"wrote {shown_path(result.output)} ({result.steps} steps, {result.seconds:.0f} s)")
    return 0
