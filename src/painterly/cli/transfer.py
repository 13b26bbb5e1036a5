"""``painterly transfer``: image optimization style transfer (the default command)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from painterly.errors import PainterlyError, check_weight


def _default(name: str) -> str:
    """Defaults shown in --help come from the library's own settings (one place defines a default)."""
    from painterly.settings import TransferSettings

    value = {f.name: f for f in dataclasses.fields(TransferSettings)}[name].default
    if isinstance(value, tuple):
        value = ",".join(value)
    return f" (default: {value})"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "transfer",
        help="paint a photo in the style of one or more paintings (image optimization, Gatys et al.)",
        description="Optimize the pixels of an image so that its VGG features match the photo and its Gram "
        "matrices match the style image(s). The default command: 'painterly photo.jpg --style x.jpg'.",
    )
    p.add_argument("content", help="the content photo")
    basic = p.add_argument_group("basic options")
    basic.add_argument(
        "-s",
        "--style",
        action="append",
        required=True,
        metavar="IMAGE",
        help="style image; repeat for several styles",
    )
    basic.add_argument("-o", "--output", help="output image (.png, .jpg, ...; default: CONTENT_styled.png)")
    basic.add_argument("--size", type=int, help="long side of the output in px" + _default("size"))
    basic.add_argument(
        "--iterations",
        type=int,
        help="iterations per scale (default: 300 at one scale, 100 per scale coarse to fine)",
    )
    basic.add_argument(
        "--preset", help="named settings: classic, keras-example (explicit options override it)"
    )
    weights = p.add_argument_group("loss weights")
    weights.add_argument("--content-weight", help="content loss weight" + _default("content_weight"))
    weights.add_argument("--style-weight", help="style loss weight" + _default("style_weight"))
    weights.add_argument("--tv-weight", help="total-variation weight" + _default("tv_weight"))
    weights.add_argument(
        "--tv-form", choices=["squared", "power1.25"], help="TV loss form" + _default("tv_form")
    )
    weights.add_argument(
        "--style-blend", help="comma-separated blend weights, one per --style (default: equal)"
    )
    weights.add_argument(
        "--style-scale", help="style image size relative to the output" + _default("style_scale")
    )
    layers = p.add_argument_group("layers and network")
    layers.add_argument(
        "--content-layers", help="comma-separated, optionally NAME:WEIGHT" + _default("content_layers")
    )
    layers.add_argument(
        "--style-layers", help="comma-separated, optionally NAME:WEIGHT" + _default("style_layers")
    )
    layers.add_argument("--network", choices=["vgg19", "vgg16"], help="loss network" + _default("network"))
    layers.add_argument(
        "--weights",
        metavar="FILE",
        help="your own VGG weights (torchvision layout, .pth or "
        ".safetensors; expects torchvision's RGB normalization unless --weights-convention caffe)",
    )
    layers.add_argument("--pooling", choices=["max", "avg"], help="pooling layers" + _default("pooling"))
    optim = p.add_argument_group("optimization")
    optim.add_argument("--optimizer", choices=["lbfgs", "adam"], help="optimizer" + _default("optimizer"))
    optim.add_argument("--learning-rate", help="step size (Adam: pixels in 0-1 units; default 0.02)")
    optim.add_argument(
        "--init", help="starting image: content, noise, style or an image path" + _default("init")
    )
    optim.add_argument(
        "--seed", type=int, help="random seed; same seed and settings, same pixels" + _default("seed")
    )
    optim.add_argument(
        "--scales",
        type=int,
        help="coarse-to-fine scales (default: 1 up to 400 px, else steps of sqrt(2) from 256 px)",
    )
    output = p.add_argument_group("output")
    output.add_argument(
        "--preserve-colors",
        choices=["none", "luminance", "histogram"],
        help="keep the photo's colours" + _default("preserve_colors"),
    )
    output.add_argument("--save-every", type=int, metavar="N", help="also save the image every N iterations")
    output.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    other = p.add_argument_group("other")
    other.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps" + _default("device"))
    other.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16", "fp16"],
        help="loss network precision (auto: bf16 on CPUs with native bf16)" + _default("precision"),
    )
    layers.add_argument(
        "--weights-convention",
        choices=["caffe", "torchvision"],
        help="input convention of --weights (default: torchvision)",
    )
    p.set_defaults(handler=run)

    demo = subparsers.add_parser(
        "demo", help="paint a built-in example (scikit-image's cat photo, a painting painterly makes)"
    )
    demo.add_argument("-o", "--output", default="demo.png", help="output image (default: demo.png)")
    demo.add_argument("--size", type=int, help="long side of the output in px" + _default("size"))
    demo.add_argument("--iterations", type=int, help="iterations per scale (default: automatic)")
    demo.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    demo.set_defaults(handler=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    """Write the example inputs next to the output, then run a default transfer on them."""
    from painterly.examples import example_painting, example_photo
    from painterly.images import check_output_path, save_image

    output = check_output_path(args.output)
    content = save_image(example_photo(), output.with_name(f"{output.stem}_photo.png"))
    style = save_image(example_painting(), output.with_name(f"{output.stem}_painting.png"))
    if not args.quiet:
        print(f"example photo {content}, example painting {style}", file=sys.stderr)
    transfer_args = register_namespace(
        content=str(content),
        style=[str(style)],
        output=str(output),
        size=args.size,
        iterations=args.iterations,
        quiet=args.quiet,
    )
    return run(transfer_args)


def register_namespace(**values: object) -> argparse.Namespace:
    """The namespace ``transfer`` would parse, with every option unset except ``values``."""
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    namespace = parser.parse_args(["transfer", "x", "-s", "y"])
    for key, value in values.items():
        setattr(namespace, key, value)
    return namespace


def _layers(text: str | None, what: str) -> list[str] | dict[str, float] | None:
    if text is None:
        return None
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise PainterlyError(f"--{what}-layers is empty")
    if any(":" in item for item in items):
        out = {}
        for item in items:
            name, _, weight = item.partition(":")
            out[name] = check_weight(f"weight of {what} layer {name}", weight or 1.0)
        return out
    return items


def _number(text: str | None, name: str) -> float | None:
    return None if text is None else check_weight(name, text)


def default_output(content: str) -> Path:
    path = Path(content)
    return path.with_name(f"{path.stem}_styled.png")


def run(args: argparse.Namespace) -> int:
    from painterly.images import check_output_path, save_image
    from painterly.optimization import run_transfer
    from painterly.settings import make_settings

    output = Path(args.output) if args.output else default_output(args.content)
    check_output_path(output)
    inputs = {Path(p).resolve() for p in [args.content, *args.style]}
    if output.resolve() in inputs:
        raise PainterlyError(f"output {output} would overwrite an input image")
    blend = None
    if args.style_blend is not None:
        blend = [check_weight("style blend weight", b) for b in args.style_blend.split(",")]
    if args.save_every is not None and args.save_every < 1:
        raise PainterlyError("--save-every must be a positive whole number")
    settings = make_settings(
        args.preset,
        size=args.size,
        iterations=args.iterations,
        content_weight=_number(args.content_weight, "content weight"),
        style_weight=_number(args.style_weight, "style weight"),
        tv_weight=_number(args.tv_weight, "TV weight"),
        tv_form=args.tv_form,
        style_blend=blend,
        style_scale=_number(args.style_scale, "style scale"),
        content_layers=_layers(args.content_layers, "content"),
        style_layers=_layers(args.style_layers, "style"),
        network=args.network,
        weights=args.weights,
        pooling=args.pooling,
        optimizer=args.optimizer,
        learning_rate=_number(args.learning_rate, "learning rate"),
        init=args.init,
        seed=args.seed,
        scales=args.scales,
        preserve_colors=args.preserve_colors,
        device=args.device,
        precision=args.precision,
        weights_convention=args.weights_convention,
    )
    reporter = _Reporter(quiet=args.quiet, save_every=args.save_every, output=output)
    try:
        result = run_transfer(args.content, args.style, settings, reporter, catch_interrupt=True)
    finally:
        reporter.close()
    from painterly import __version__

    metadata = {
        "Software": f"painterly {__version__}",
        "painterly:settings": settings.to_json(),
        "painterly:content": str(args.content),
        "painterly:styles": json.dumps([str(s) for s in args.style]),
        "painterly:seconds": f"{result.seconds:.1f}",
        "painterly:interrupted": str(result.interrupted).lower(),
    }
    save_image(result.image, output, metadata)
    if result.interrupted:
        print(f"painterly: interrupted; saved the best image so far to {output}", file=sys.stderr)
        return 130
    if not args.quiet:
        print(
            f"wrote {output} ({result.image.width}x{result.image.height}, {result.seconds:.0f} s)",
            file=sys.stderr,
        )
    return 0


class _Reporter:
    """Progress bar (tqdm) and --save-every snapshots, fed by the library's progress callback."""

    def __init__(self, *, quiet: bool, save_every: int | None, output: Path) -> None:
        self.quiet = quiet
        self.save_every = save_every
        self.output = output
        self.bar = None
        self.shown = 0
        self.saved: set[int] = set()

    def __call__(self, progress) -> None:  # noqa: ANN001 - painterly.progress.Progress
        if not self.quiet:
            if self.bar is None:
                from tqdm import tqdm

                self.bar = tqdm(total=progress.total_steps, unit="it", dynamic_ncols=True, file=sys.stderr)
            self.bar.update(progress.step - self.shown)
            self.shown = progress.step
            losses = progress.losses
            self.bar.set_postfix_str(
                f"scale {progress.scale}/{progress.scales} {progress.size[0]}x{progress.size[1]} "
                f"content {losses.content:.3g} style {losses.style:.3g} tv {losses.tv:.3g}",
                refresh=False,
            )
        every = self.save_every
        if every and progress.iteration and progress.step % every == 0 and progress.step not in self.saved:
            from painterly.images import save_image

            self.saved.add(progress.step)
            path = self.output.with_name(f"{self.output.stem}_{progress.step:05d}{self.output.suffix}")
            save_image(progress.image(), path)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
