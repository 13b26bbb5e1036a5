"""``painterly stylize``: stylize photos with a trained network (a thin layer over
:class:`painterly.feedforward.inference.StyleModel`).

Every input is checked (a regular file, a readable image header, not a decompression bomb) and
every output path is settled before the first image is painted, so a bad input in the list leaves
nothing half done. The backend policy is the library's (:func:`painterly.feedforward.pick_backend`).
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path

from painterly.cli.number_types import positive_int, whole
from painterly.cli.training_progress import StoreOnce
from painterly.errors import PainterlyError, shown_path
from painterly.feedforward.backends import CHOICES
from painterly.feedforward.files import refuse_overwriting_inputs, require_regular_file

#: Suffixes of input images for folder expansion.
_INPUT_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def _tile(text: str) -> int | str:
    if text in ("auto", "none"):
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'auto', 'none' or a number of pixels, got {text!r}"
        ) from None
    if value < 64:
        raise argparse.ArgumentTypeError(f"a tile is at least 64 px ('none' for no tiling), got {value}")
    return value


def _feather(text: str) -> float:
    from painterly.regions import check_feather

    try:
        from painterly.numbers import parse_decimal

        return check_feather(parse_decimal(text, "feather"))  # ASCII digits, as every number
    except (ValueError, PainterlyError):
        raise argparse.ArgumentTypeError(
            f"expected a number of pixels from 0 to 1000, got {text!r}"
        ) from None


def _strength(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    stylize = subparsers.add_parser(
        "stylize",
        help="stylize photos with a trained network",
        description="Stylize images, folders or globs with a trained network.",
    )
    stylize.add_argument("inputs", nargs="+", metavar="INPUT", help="images, folders or glob patterns")
    stylize.add_argument(
        "-o",
        "--output",
        help="output file (one input) or folder (default: next to each input, named NAME_MODEL.png)",
    )
    add_stylize_options(stylize)
    add_region_options(stylize)
    from painterly.cli.batch import add_engine_options

    add_engine_options(stylize, default="local", full=False)
    stylize.set_defaults(handler=run_stylize)


#: The longest output side (``painterly.settings.MAX_SIZE``, not imported: it would load Pillow
#: into the start-up of ``stylize`` and ``batch`` before their checks; a test keeps the two equal).
MAX_OUTPUT_SIDE = 16384


def add_region_options(stylize: argparse.ArgumentParser) -> None:
    """``--mask`` and ``--feather``: ``stylize`` on one machine only (``batch stylize`` has no
    regions, so it does not offer them)."""
    stylize.add_argument(
        "--mask",
        action=StoreOnce,
        metavar="IMAGE",
        help="paint only this region (a greyscale image of any size, white inside, resized to each "
        "output); outside it the photo is kept",
    )
    stylize.add_argument(
        "--feather",
        type=_feather,
        default=None,
        metavar="PX",
        help="with --mask: blur the region's edge by a Gaussian of this radius in output pixels (default 8)",
    )


def add_stylize_options(stylize: argparse.ArgumentParser) -> None:
    """The model and how it paints (shared with ``painterly batch stylize``)."""
    stylize.add_argument(
        "-m",
        "--model",
        required=True,
        help="model file, .onnx file, or a shipped model's name (see 'painterly models list')",
    )
    stylize.add_argument(
        "--size",
        type=whole("--size", minimum=16, maximum=MAX_OUTPUT_SIDE, unit="px"),
        help="output long side in px (keeps the aspect ratio)",
    )
    stylize.add_argument(
        "--style-mix",
        metavar="NAME:W,...",
        help="a multi-style model's style, or a blend: the_wave:0.7,udnie:0.3 (weights are normalized; "
        "default: the model's first style)",
    )
    stylize.add_argument(
        "--strength",
        type=_strength,
        default=1.0,
        help="0 = the photo, 1 = the full painting (default 1); the output is interpolated with the photo",
    )
    stylize.add_argument(
        "--preserve-colors",
        choices=("none", "luminance"),
        default="none",
        help="'luminance' keeps the photo's colours",
    )
    stylize.add_argument(
        "--backend",
        choices=CHOICES,
        default="auto",
        help="auto: onnxruntime on a CPU-only machine (fastest there, no torch import) unless an image "
        "needs tiling; torch otherwise",
    )
    stylize.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (torch backend)")
    stylize.add_argument(
        "--precision",
        default="auto",
        help="torch backend: auto (fp16 on GPUs; on CPUs the fastest here, measured once and cached), "
        "fp32, fp16 or bf16",
    )
    stylize.add_argument(
        "--batch-size", type=positive_int, default=1, help="images of equal size per forward pass"
    )
    stylize.add_argument(
        "--tile",
        type=_tile,
        default="auto",
        help="tile side in px for very large images, 'auto' or 'none' (default auto)",
    )
    stylize.add_argument("--format", default="png", help="output format for folders (png, jpg, webp)")


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Files as given; folders to their images (not recursive); glob patterns expanded."""
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.suffix.lower() in _INPUT_SUFFIXES and p.is_file())
        elif os.path.lexists(path):
            found.append(require_regular_file(path, "input image"))
        elif glob.has_magic(item):
            matches = sorted(Path(p) for p in glob.glob(item, recursive=True))
            if not matches:
                raise PainterlyError(f"no files match {item}")
            found += [require_regular_file(p, "input image") for p in matches if not p.is_dir()]
        else:
            raise PainterlyError(f"input not found: {item}")
    if not found:
        raise PainterlyError("no input images found")
    return list(dict.fromkeys(found))


def output_label(
    model_name: str, style_mix: str | Mapping[str, float] | None = None, strength: float = 1.0
) -> str:
    """The ``MODEL`` of ``NAME_MODEL.png``: one style of a multi-style model by its name, a blend and a
    strength spelt out, so that results of one model never overwrite each other (``cat_udnie.png``,
    ``cat_zoo_the_wave0.7_udnie0.3_s0.8.png``)."""
    from painterly.feedforward.mixing import parse_style_mix

    mix = parse_style_mix(style_mix) or {}
    if len(mix) == 1:
        label = next(iter(mix))
    else:
        label = model_name + "".join(f"_{name}{weight:g}" for name, weight in mix.items())
    if strength != 1.0:
        label += f"_s{strength:g}"
    return re.sub(r"[^A-Za-z0-9_.+-]", "-", label)  # a file name, whatever a model file's names say


def is_painterly_result(path: Path) -> bool:
    """Whether ``path`` is a PNG that painterly wrote: a text chunk named ``painterly...``
    (``painterly_model`` from a network, ``painterly_method`` from ``batch transfer``,
    ``painterly:...`` from ``transfer``)."""
    from PIL import Image

    if path.suffix.lower() != ".png":
        return False
    try:
        with Image.open(path) as image:
            return any(isinstance(key, str) and key.startswith("painterly") for key in image.info)
    except Exception:  # noqa: BLE001 - unreadable: not ours to skip; probe_size reports it
        return False


def skip_earlier_outputs(inputs: list[Path], given: list[str]) -> list[Path]:
    """Leave out, of the images found in folders and patterns (not files named in ``given``), the
    PNGs painterly wrote (their ``painterly_model`` text chunk), so a folder stylized a second time
    does not take its own results as photos; one line says how many were left out. Results in other
    formats carry no such mark and stay inputs (an output onto them is then refused, as ever)."""
    named = {Path(item).resolve() for item in given}
    kept = [p for p in inputs if p.resolve() in named or not is_painterly_result(p)]
    if len(kept) < len(inputs):
        count = len(inputs) - len(kept)
        print(f"painterly: leaving out {count} earlier result(s) found among the inputs", file=sys.stderr)
    return kept


def output_paths(
    inputs: list[Path], output: str | None, model_name: str, fmt: str, *others: Path | None
) -> list[Path]:
    """Where each result goes; never onto an input file (nor the model file, nor a mask: ``others``)."""
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
    for target in targets:
        refuse_overwriting_inputs(target, [*inputs, *(p for p in others if p is not None)])
    if len(set(targets)) != len(targets):
        raise PainterlyError("two inputs would be written to the same output name; use separate folders")
    return targets


def probe_size(path: Path) -> tuple[int, int]:
    """An input's (width, height) from its header, refusing unreadable files and decompression bombs."""
    from PIL import Image

    from painterly.images import MAX_PIXELS

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PainterlyError(
            f"input image {path} is too large to decode safely (a possible decompression bomb)"
        ) from None
    except Exception as exc:  # noqa: BLE001 - any failure to read a header means: not an image
        raise PainterlyError(
            f"input image {path} is not an image Pillow can read ({type(exc).__name__})"
        ) from None
    if width * height > MAX_PIXELS:
        raise PainterlyError(
            f"input image {path} is {width}x{height} pixels, more than the limit of {MAX_PIXELS:,} "
            "(a possible decompression bomb)"
        )
    return width, height


def _output_sizes(sizes: list[tuple[int, int]], size: int | None) -> list[tuple[float, float]]:
    if size is None:
        return [(float(w), float(h)) for w, h in sizes]
    return [(w * size / max(w, h), h * size / max(w, h)) for w, h in sizes]


def _check_output_sizes(inputs: list[Path], sizes: list[tuple[float, float]]) -> None:
    """Refuse at once an output above the pixel limit that inputs have (a --size typo such as
    80000 would otherwise start tiled inference of gigapixels)."""
    from painterly.images import MAX_PIXELS

    for path, (width, height) in zip(inputs, sizes, strict=True):
        if round(width) * round(height) > MAX_PIXELS:
            raise PainterlyError(
                f"the output of {path.name} would be {round(width)}x{round(height)} pixels, more than "
                f"the limit of {MAX_PIXELS:,}: give a smaller --size"
            )


def run_stylize(args: argparse.Namespace) -> int:
    from painterly.feedforward.backends import pick_backend
    from painterly.feedforward.inference import load_model
    from painterly.feedforward.signals import sigterm_as_interrupt
    from painterly.images import check_output_path, save_image
    from painterly.regions import DEFAULT_FEATHER, load_mask

    if args.feather is not None and args.mask is None:
        raise PainterlyError("--feather softens the edge of a --mask: give the mask too")
    if args.engine == "ray":  # many photos into a folder, on Ray: painterly batch stylize
        from painterly.cli.batch import run_batch_stylize

        if args.output is None:
            raise PainterlyError("--engine ray writes into a folder: give -o FOLDER")
        if args.mask is not None:
            raise PainterlyError("--mask is for painterly stylize on one machine (--engine local)")
        return run_batch_stylize(args)
    inputs = skip_earlier_outputs(expand_inputs(args.inputs), args.inputs)
    sizes = [probe_size(path) for path in inputs]
    mask = load_mask(require_regular_file(Path(args.mask), "mask"), "mask") if args.mask else None
    output_sizes = _output_sizes(sizes, args.size)
    _check_output_sizes(inputs, output_sizes)
    backend = pick_backend(args.backend, args.device, args.tile, output_sizes, precision=args.precision)
    model = load_model(
        args.model,
        args.device,
        backend=backend,
        precision=args.precision,
        style_mix=args.style_mix,
        strength=args.strength,
    )
    label = output_label(model.name, model.style_mix, args.strength)
    readable = [*([model.path] if model.path else []), *([Path(args.mask)] if args.mask else [])]
    targets = output_paths(inputs, args.output, label, args.format, *readable)
    for target in targets:
        check_output_path(target)
    results = model.stylize_many(
        inputs,
        size=args.size,
        preserve_colors=args.preserve_colors,
        tile=args.tile,
        batch_size=args.batch_size,
        mask=mask,
        feather=DEFAULT_FEATHER if args.feather is None else args.feather,
    )
    written = 0
    with sigterm_as_interrupt():  # SIGTERM mid-write: the temporary file is removed, as on Ctrl-C
        try:
            for source, target, picture in zip(inputs, targets, results, strict=True):
                save_image(picture, target, {"painterly_model": model.name, "source": source.name})
                print(shown_path(target))
                written += 1
        except PainterlyError as exc:
            if written:
                raise PainterlyError(
                    f"{exc} (wrote {written} of {len(inputs)} images before this one)"
                ) from None
            raise
    return 0
