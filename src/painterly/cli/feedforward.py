"""``painterly train``, ``stylize``, ``export`` and ``models``: the feed-forward method's commands.

Defaults come from :class:`painterly.feedforward.settings.TrainSettings` and the library
functions' signatures, so there is one place that defines each. Heavy modules load only when a
command runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from painterly.errors import PainterlyError
from painterly.feedforward.settings import TrainSettings

_DEFAULTS = {
    f.name: f.default for f in dataclasses.fields(TrainSettings) if f.default is not dataclasses.MISSING
}

#: Suffixes of input images for folder and glob expansion in ``stylize``.
_INPUT_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def _layers(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _tile(text: str) -> int | str:
    return text if text in ("auto", "none") else int(text)


def register(subparsers: argparse._SubParsersAction) -> None:
    d = _DEFAULTS
    train = subparsers.add_parser(
        "train",
        help="train a feed-forward network for one style",
        description="Train a feed-forward style network (Johnson et al. 2016). Under torchrun it trains with "
        "DistributedDataParallel: torchrun --nproc-per-node=K -m painterly train ...",
    )
    basic = train.add_argument_group("basic")
    basic.add_argument("--style", required=True, help="the style image")
    basic.add_argument("--data", required=True, help="folder of content photos (searched recursively)")
    basic.add_argument("-o", "--output", required=True, help="model file to write (.safetensors)")
    basic.add_argument("--name", help="model name in its metadata (default: the style file's name)")
    opt = train.add_argument_group("optimization")
    opt.add_argument(
        "--iterations", type=int, default=d["iterations"], help="training steps (default %(default)s)"
    )
    opt.add_argument(
        "--batch-size", type=int, default=d["batch_size"], help="per process (default %(default)s)"
    )
    opt.add_argument(
        "--image-size", type=int, default=d["image_size"], help="crop size, px (default %(default)s)"
    )
    opt.add_argument(
        "--learning-rate", "--lr", type=float, default=d["learning_rate"], help="Adam (default %(default)s)"
    )
    opt.add_argument("--seed", type=int, default=d["seed"])
    net = train.add_argument_group("network and loss")
    net.add_argument(
        "--width",
        default=d["width"],
        help="'light' (16-32-64, default), 'paper' (32-64-128) or a number of channels",
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
    net.add_argument("--tv-weight", type=float, default=d["tv_weight"], help="default %(default)s")
    net.add_argument(
        "--style-size",
        type=int,
        default=d["style_size"],
        help="style image long side, px: larger gives larger brush strokes (default %(default)s)",
    )
    out = train.add_argument_group("checkpoints, logs and validation")
    out.add_argument(
        "--resume", action="store_true", help="continue from the checkpoint in the training folder"
    )
    out.add_argument(
        "--workdir", help="checkpoints, losses.jsonl and validation images (default OUTPUT.train/)"
    )
    out.add_argument(
        "--checkpoint-every", type=int, default=d["checkpoint_every"], help="default %(default)s"
    )
    out.add_argument("--log-every", type=int, default=d["log_every"], help="default %(default)s")
    out.add_argument("--validate-every", type=int, default=d["validate_every"], help="default %(default)s")
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

    stylize = subparsers.add_parser(
        "stylize",
        help="stylize photos with a trained network",
        description="Stylize images, folders or globs with a trained network.",
    )
    stylize.add_argument("inputs", nargs="+", metavar="INPUT", help="images, folders or glob patterns")
    stylize.add_argument(
        "-m",
        "--model",
        required=True,
        help="model file, .onnx file, or a shipped model's name (see 'painterly models list')",
    )
    stylize.add_argument(
        "-o",
        "--output",
        help="output file (one input) or folder (default: next to each input, named NAME_MODEL.png)",
    )
    stylize.add_argument("--size", type=int, help="output long side in px (keeps the aspect ratio)")
    stylize.add_argument(
        "--preserve-colors",
        choices=("none", "luminance"),
        default="none",
        help="'luminance' keeps the photo's colours",
    )
    stylize.add_argument(
        "--backend",
        choices=("auto", "torch", "onnxruntime"),
        default="auto",
        help="auto: onnxruntime on a CPU-only machine (fastest there, no torch import) unless an image "
        "needs tiling; torch otherwise",
    )
    stylize.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (torch backend)")
    stylize.add_argument(
        "--precision", default="auto", help="auto (fp16 on GPUs, fp32 on CPUs), fp32, fp16, bf16"
    )
    stylize.add_argument("--batch-size", type=int, default=1, help="images of equal size per forward pass")
    stylize.add_argument(
        "--tile",
        type=_tile,
        default="auto",
        help="tile side in px for very large images, 'auto' or 'none' (default auto)",
    )
    stylize.add_argument("--format", default="png", help="output format for folders (png, jpg, webp)")
    stylize.set_defaults(handler=run_stylize)

    distill = subparsers.add_parser(
        "distill",
        help="train a smaller, faster network to reproduce a trained one",
        description="Distill a trained model (the teacher) into a network of a smaller width (the "
        "student): the student learns to output what the teacher outputs on random crops of photos "
        "(L1 on pixels, optionally plus a VGG content term). No style image or loss network needed.",
    )
    distill.add_argument("--teacher", required=True, help="model file or shipped model name")
    distill.add_argument("--data", required=True, help="folder of content photos (searched recursively)")
    distill.add_argument("-o", "--output", required=True, help="model file to write (.safetensors)")
    distill.add_argument("--width", default="8", help="student width: a number of channels (default 8)")
    distill.add_argument("--iterations", type=int, default=2000, help="steps (default %(default)s)")
    distill.add_argument("--batch-size", type=int, default=8, help="default %(default)s")
    distill.add_argument("--image-size", type=int, default=192, help="crop size, px (default %(default)s)")
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
    distill.add_argument("--max-minutes", type=float, help="stop and save after this many minutes")
    distill.add_argument("--checkpoint-every", type=int, default=100, help="save the model every N steps")
    distill.add_argument("--seed", type=int, default=0)
    distill.add_argument("--name", help="model name in its metadata (default: the teacher's)")
    distill.add_argument("--workdir", help="where losses.jsonl goes (default OUTPUT.distill/)")
    distill.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    distill.add_argument("--precision", default="auto", help="auto, fp32, bf16 or fp16")
    distill.add_argument("--quiet", action="store_true", help="no progress bar")
    distill.set_defaults(handler=run_distill)

    export = subparsers.add_parser("export", help="export a model to ONNX")
    export.add_argument("model", help="model file or shipped model name")
    export.add_argument("--onnx", required=True, metavar="FILE", help="ONNX file to write")
    export.set_defaults(handler=run_export)

    models = subparsers.add_parser("models", help="list models or show a model file's metadata")
    models_sub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    info = models_sub.add_parser("info", help="print a model file's metadata")
    info.add_argument("file", help="model file or shipped model name")
    info.add_argument("--json", action="store_true", help="as JSON")
    info.set_defaults(handler=run_models_info)
    listing = models_sub.add_parser("list", help="shipped models and those in $PAINTERLY_MODELS")
    listing.add_argument("--json", action="store_true", help="as JSON")
    listing.set_defaults(handler=run_models_list)


def run_train(args: argparse.Namespace) -> int:
    from painterly.feedforward.training import train

    names = {f.name for f in dataclasses.fields(TrainSettings)}
    values = {k: v for k, v in vars(args).items() if k in names and v is not None}
    values["validation"] = tuple(values.get("validation") or ())
    settings = TrainSettings(**values)
    report = _StepBar(args.quiet, lambda p: f"content {p.losses.content:.3g} style {p.losses.style:.3g}")
    try:
        result = train(settings, report)
    finally:
        report.close()
    if result.skipped_images:
        print(f"skipped {result.skipped_images} unreadable image(s)", file=sys.stderr)
    if result.interrupted:
        print(
            f"painterly: interrupted at step {result.steps}; checkpoint saved, continue with --resume",
            file=sys.stderr,
        )
        return 130
    import os

    if int(os.environ.get("RANK", "0")) == 0:
        print(f"wrote {result.output} ({result.steps} steps, {result.seconds:.0f} s)")
    return 0


class _StepBar:
    """A tqdm bar for training-like progress (one report per step, with messages to print)."""

    def __init__(self, quiet: bool, postfix: Callable[[Any], str]) -> None:
        self.quiet = quiet
        self.postfix = postfix
        self.bar: Any = None

    def __call__(self, progress: Any) -> None:
        if self.quiet:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(
                total=progress.total_steps, initial=progress.step - 1, unit="it", dynamic_ncols=True
            )
        self.bar.update(1)
        self.bar.set_postfix_str(self.postfix(progress))
        for event in progress.events:
            self.bar.write(event)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_distill(args: argparse.Namespace) -> int:
    from painterly.feedforward.distill import DistillSettings, distill

    settings = DistillSettings(
        teacher=args.teacher,
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
    report = _StepBar(args.quiet, lambda p: f"l1 {p.loss:.4f}")
    try:
        result = distill(settings, report)
    finally:
        report.close()
    print(f"wrote {result.output} ({result.steps} steps, {result.seconds:.0f} s, l1 {result.loss:.4f})")
    return 130 if result.interrupted else 0


def _has_gpu() -> bool:
    """Whether torch would pick a GPU, guessed without importing torch (which costs a second)."""
    import platform

    if Path("/dev/nvidia0").exists() or Path("/dev/kfd").exists():
        return True
    return platform.system() == "Darwin" and platform.machine() == "arm64"


def pick_backend(inputs: list[Path], size: int | None, device: str, tile: object) -> str:
    """onnxruntime on CPU-only machines (measured 0.26 s vs 0.42 s for torch at 1024 px, and no
    torch import), unless an image is large enough to need the torch backend's tiling."""
    import importlib.util

    from PIL import Image

    from painterly.feedforward.inference import AUTO_TILE_PIXELS

    if device not in ("auto", "cpu") or (device == "auto" and _has_gpu()):
        return "torch"
    if importlib.util.find_spec("onnxruntime") is None or tile not in ("auto", None, 0, "none"):
        return "torch"
    for path in inputs:
        try:
            with Image.open(path) as image:
                width, height = image.size
        except OSError:
            continue  # reported properly when the image is loaded
        if size is not None:
            scale = size / max(width, height)
            width, height = width * scale, height * scale
        if tile == "auto" and width * height > AUTO_TILE_PIXELS:
            return "torch"
    return "onnxruntime"


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Files as given; folders to their images (not recursive); glob patterns expanded."""
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.suffix.lower() in _INPUT_SUFFIXES and p.is_file())
        elif path.exists():
            found.append(path)
        elif glob.has_magic(item):
            matches = sorted(Path(p) for p in glob.glob(item, recursive=True))
            if not matches:
                raise PainterlyError(f"no files match {item}")
            found += [p for p in matches if p.is_file()]
        else:
            raise PainterlyError(f"input not found: {item}")
    if not found:
        raise PainterlyError("no input images found")
    return list(dict.fromkeys(found))


def output_paths(inputs: list[Path], output: str | None, model_name: str, fmt: str) -> list[Path]:
    """Where each result goes; never onto an input file."""
    suffix = "." + fmt.lower().lstrip(".")
    if output is not None and len(inputs) == 1 and not Path(output).is_dir() and Path(output).suffix:
        targets = [Path(output)]
    else:
        folder = Path(output) if output is not None else None
        if folder is not None and not folder.is_dir():
            raise PainterlyError(
                f"output folder does not exist: {folder} (several inputs need an existing folder)"
            )
        targets = [(folder or p.parent) / f"{p.stem}_{model_name}{suffix}" for p in inputs]
    resolved_inputs = {p.resolve() for p in inputs}
    for target in targets:
        if target.resolve() in resolved_inputs:
            raise PainterlyError(f"refusing to overwrite the input {target}; choose another -o")
    if len(set(targets)) != len(targets):
        raise PainterlyError("two inputs would be written to the same output name; use separate folders")
    return targets


def run_stylize(args: argparse.Namespace) -> int:
    from painterly.feedforward.inference import load_model
    from painterly.images import check_output_path, save_image

    inputs = expand_inputs(args.inputs)
    backend = args.backend
    if backend == "auto":
        backend = pick_backend(inputs, args.size, args.device, args.tile)
    model = load_model(args.model, args.device, backend=backend, precision=args.precision)
    targets = output_paths(inputs, args.output, model.name, args.format)
    for target in targets:
        check_output_path(target)
    results = model.stylize_many(
        inputs,
        size=args.size,
        preserve_colors=args.preserve_colors,
        tile=args.tile,
        batch_size=args.batch_size,
    )
    for source, target, picture in zip(inputs, targets, results, strict=True):
        save_image(picture, target, {"painterly_model": model.name, "source": source.name})
        print(target)
    return 0


def run_export(args: argparse.Namespace) -> int:
    from painterly.feedforward.export import export_onnx

    print(export_onnx(args.model, args.onnx))
    return 0


def run_models_info(args: argparse.Namespace) -> int:
    from painterly.feedforward.inference import resolve_model
    from painterly.feedforward.model_file import describe, read_metadata

    metadata = read_metadata(resolve_model(args.file))
    print(json.dumps(metadata, indent=2, sort_keys=True) if args.json else describe(metadata))
    return 0


def run_models_list(args: argparse.Namespace) -> int:
    from painterly.feedforward.inference import list_models

    models = [{k: v for k, v in m.items() if k != "metadata"} for m in list_models()]
    if args.json:
        print(json.dumps(models, indent=2))
    else:
        for m in models:
            print(f"{m['name']:20} width {m['width']:<4} {m['steps']} steps  {m['source']:8} {m['path']}")
    return 0
