"""``painterly transfer``: image optimization style transfer (the default command)."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from painterly.cli.training_progress import StoreOnce
from painterly.errors import PainterlyError, shown, shown_path

if TYPE_CHECKING:  # torch-heavy: imported for the annotation only
    from painterly.progress import Progress

#: ``--help`` titles of the settings' groups (:data:`painterly.settings.GROUPS`).
GROUP_TITLES = {
    "basic": "basic options",
    "loss": "loss weights",
    "layers": "layers and network",
    "optimization": "optimization",
    "output-and-other": "output and other",
}


def add_setting_options(
    parser: argparse.ArgumentParser, names: Sequence[str] | None = None
) -> dict[str, Any]:
    """Add one option per declared setting (or only ``names``), grouped as the README groups them.

    Every option is parsed as text and checked by :mod:`painterly.settings`, so that a bad value
    gets the library's one-line message (with a "did you mean"); help and defaults come from the
    declaration. Returns the argument groups by group name, for commands that add their own options.
    """
    from painterly.settings import GROUPS, SETTING_FIELDS

    groups = {name: parser.add_argument_group(GROUP_TITLES[name]) for name in GROUPS}
    for field in SETTING_FIELDS:
        if not field.flags or (names is not None and field.name not in names):
            continue
        text = f"{field.help} (default: {field.shown_default()})"
        if field.kind == "bool":
            groups[field.group].add_argument(
                *field.flags, dest=field.name, action=argparse.BooleanOptionalAction, help=text
            )
            continue
        metavar = field.metavar
        if metavar is None and field.choices is not None and not field.open_choices:
            metavar = "{" + ",".join(field.choices) + "}"
        groups[field.group].add_argument(
            *field.flags, dest=field.name, type=_parser_for(field), metavar=metavar, help=text
        )
    return groups


def _parser_for(field: Any) -> Callable[[str], Any]:
    """An argparse ``type``: every occurrence of an option is checked as it is parsed."""
    from painterly.settings import parse_value

    def parse(text: str) -> Any:
        try:
            return parse_value(field, text)
        except PainterlyError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = field.kind  # argparse names the type in some messages
    return parse


def settings_from_args(args: argparse.Namespace) -> Any:
    """The validated :class:`~painterly.settings.TransferSettings` of parsed options."""
    from painterly.settings import SETTING_FIELDS, make_settings, parse_value

    options: dict[str, Any] = {}
    for field in SETTING_FIELDS:
        value = getattr(args, field.name, None)
        if value is None:
            continue
        options[field.name] = value if not isinstance(value, str) else parse_value(field, value)
    preset = options.pop("preset", None)
    return make_settings(preset, **options)


#: The demo's default time limit, seconds from loading the network to the saved picture
#: (``--time-limit`` changes it). The default plan (``--quality normal``) paints its 512 px cat in
#: about 52 s on an idle 2-core AVX2 CPU (58 s at 512x384); within the limit the schedule shortens
#: every scale by its share of the cost, and the detail-restoring start of each finer scale keeps the
#: picture sharp. 43 s: the evaluation under way at the limit finishes (about 2 s at 512 px), so the
#: picture is written within 45 s (docs/speed.md).
DEMO_SECONDS = 43.0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "transfer",
        help="paint a photo in the style of one or more paintings (image optimization, Gatys et al.)",
        description="Optimize the pixels of an image so that its VGG features match the photo and its Gram "
        "matrices match the style image(s). The default command: 'painterly photo.jpg --style x.jpg'.",
    )
    p.add_argument("content", help="the content photo")
    groups = add_setting_options(p)
    basic = groups["basic"]
    basic.add_argument(
        "-s",
        "--style",
        action="append",
        required=True,
        metavar="IMAGE",
        help="style image; repeat for several styles",
    )
    basic.add_argument("-o", "--output", help="output image (.png, .jpg, ...; default: CONTENT_styled.png)")
    regions = p.add_argument_group("regions (see docs/regions.md)")
    regions.add_argument(
        "--mask",
        action="append",
        metavar="IMAGE",
        help="where the matching --style paints: a greyscale image of any size, white inside, soft edges "
        "allowed; one per --style, in the same order, together covering the picture",
    )
    regions.add_argument(
        "--keep",
        action=StoreOnce,
        metavar="IMAGE",
        help="a region (white) held closer to the photo: the content weight there is --keep-weight times "
        "the rest's, and the style statistics leave it out",
    )
    output = groups["output-and-other"]
    output.add_argument("--save-every", type=int, metavar="N", help="also save the image every N iterations")
    output.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)

    demo = subparsers.add_parser(
        "demo", help="paint a built-in example (scikit-image's cat photo, a painting painterly makes)"
    )
    demo.add_argument("-o", "--output", default="demo.png", help="output image (default: demo.png)")
    add_setting_options(demo, ("size", "iterations", "time_limit", "quality"))
    demo.set_defaults(time_limit=DEMO_SECONDS)
    for action in demo._actions:
        if action.dest == "time_limit":
            action.help = f"paint within about this many seconds (default: {DEMO_SECONDS:g})"
    demo.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    demo.set_defaults(handler=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    """Write the example inputs next to the output, then run a default transfer on them.

    Everything that can be checked is checked before the examples are written, and they are
    removed again if the run fails, so that a bad option leaves nothing behind.
    """
    from painterly.examples import example_painting, example_photo
    from painterly.images import check_image_output, save_image

    output = check_image_output(args.output)
    settings_from_args(args)
    inputs = [output.with_name(f"{output.stem}_photo.png"), output.with_name(f"{output.stem}_painting.png")]
    examples = [example_photo(), example_painting()]
    existed = {path for path in inputs if os.path.lexists(path)}
    for path, example in zip(inputs, examples, strict=True):
        if path in existed and not _holds_image(path, example):
            raise PainterlyError(
                f"{shown(path)} already exists and is not painterly's example image; choose another -o"
            )
    transfer_args = register_namespace(
        content=str(inputs[0]),
        style=[str(inputs[1])],
        output=str(output),
        size=args.size,
        iterations=args.iterations,
        time_limit=args.time_limit,
        quality=args.quality,
        quiet=args.quiet,
    )
    try:
        for path, example in zip(inputs, examples, strict=True):
            if path not in existed:  # an existing one holds the same pixels: a rerun reuses it
                save_image(example, path)
        if not args.quiet:
            print(f"example photo {inputs[0]}, example painting {inputs[1]}", file=sys.stderr)
        return run(transfer_args)
    except BaseException:
        for path in inputs:
            if path not in existed:
                path.unlink(missing_ok=True)
        raise


def _holds_image(path: Path, image: Any) -> bool:
    """Whether ``path`` is a regular image file with exactly ``image``'s pixels (a previous demo's)."""
    import numpy as np

    from painterly.images import open_image

    if path.is_symlink() or not path.is_file():
        return False
    try:
        existing = open_image(path)
    except PainterlyError:
        return False
    return existing.size == image.size and bool(np.array_equal(np.asarray(existing), np.asarray(image)))


def register_namespace(**values: object) -> argparse.Namespace:
    """The namespace ``transfer`` would parse, with every option unset except ``values``."""
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    namespace = parser.parse_args(["transfer", "x", "-s", "y"])
    for key, value in values.items():
        setattr(namespace, key, value)
    return namespace


def default_output(content: str) -> Path:
    path = Path(content)
    return path.with_name(f"{path.stem}_styled.png")


def _check_inputs(args: argparse.Namespace, settings: Any) -> list[Path]:
    """Every file the run will read: present, a regular file (no FIFO, folder or loop)."""
    from painterly.images import check_input_file
    from painterly.settings import INITS

    inputs = [check_input_file(args.content, "content image")]
    inputs += [check_input_file(style, "style image") for style in args.style]
    inputs += [check_input_file(mask, f"mask {i + 1}") for i, mask in enumerate(args.mask or ())]
    if args.keep is not None:
        inputs.append(check_input_file(args.keep, "keep mask"))
    if isinstance(settings.init, str) and settings.init not in INITS:
        inputs.append(check_input_file(settings.init, "init image"))
    if settings.weights is not None:
        inputs.append(check_input_file(settings.weights, "weights file"))
    return inputs


def _check_memory(content: Path, settings: Any, whole: bool = False) -> None:
    """Refuse an output too large for this machine's memory, from the image header (no decoding);
    the library checks again once the photo is decoded (:func:`~painterly.settings.check_transfer_memory`)."""
    from painterly.images import image_size
    from painterly.memory import available_memory
    from painterly.settings import check_transfer_memory

    size = image_size(content)
    if size is None:
        return  # unreadable: decoding reports it properly
    device = str(settings.device)
    if device.startswith("cpu"):
        device_type = "cpu"  # no need to load torch to know
    else:
        from painterly.devices import pick_device

        device_type = pick_device(device).type
    check_transfer_memory(*size, settings, available_memory(), device_type, whole=whole, size_name="--size")


def _regions(args: argparse.Namespace) -> tuple[list[Any] | None, Any]:
    """The style masks and the keep mask, opened and checked (before the loss network loads)."""
    from painterly.regions import load_mask, load_style_masks

    if args.keep is None and getattr(args, "keep_weight", None) is not None:
        raise PainterlyError("--keep-weight weighs the region of a --keep mask: give the mask too")
    masks = load_style_masks(args.mask, len(args.style)) if args.mask else None
    keep = load_mask(args.keep) if args.keep is not None else None
    return masks, keep


class _Signals:
    """SIGTERM stops the run like Ctrl-C (the best image so far is written, exit code 130); while
    the result is being written, a SIGTERM is only noted, so that the image is still completed."""

    def __init__(self) -> None:
        self.writing = False
        self.terminated = False
        self.previous: Any = None

    def _handle(self, signum: int, frame: object) -> None:
        self.terminated = True
        if not self.writing:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def installed(self) -> Iterator[_Signals]:
        try:
            self.previous = signal.signal(signal.SIGTERM, self._handle)
        except ValueError:  # not the main thread: leave signals alone
            yield self
            return
        try:
            yield self
        finally:
            signal.signal(signal.SIGTERM, self.previous)


def run(args: argparse.Namespace) -> int:
    signals = _Signals()
    with signals.installed():
        return _run(args, signals)


def _run(args: argparse.Namespace, signals: _Signals) -> int:
    from painterly.images import check_image_output, save_image

    settings = settings_from_args(args)
    if args.save_every is not None and args.save_every < 1:
        raise PainterlyError("--save-every must be a positive whole number")
    inputs = _check_inputs(args, settings)
    output = check_image_output(args.output or default_output(args.content), inputs)
    _check_memory(inputs[0], settings, whole=bool(args.mask or args.keep))
    masks, keep = _regions(args)

    from painterly.optimization import run_transfer

    reporter = _Reporter(quiet=args.quiet, save_every=args.save_every, output=output)
    try:
        result = run_transfer(
            args.content, args.style, settings, reporter, masks=masks, keep=keep, catch_interrupt=True
        )
    finally:
        reporter.close()
    from painterly import __version__

    metadata = {
        "Software": f"painterly {__version__}",
        "painterly:settings": settings.to_json(),
        "painterly:content": str(args.content),
        "painterly:styles": json.dumps([str(s) for s in args.style]),
        **({"painterly:masks": json.dumps([str(m) for m in args.mask])} if args.mask else {}),
        **({"painterly:keep": str(args.keep)} if args.keep else {}),
        "painterly:seconds": f"{result.seconds:.1f}",
        "painterly:interrupted": str(result.interrupted).lower(),
    }
    signals.writing = True
    save_image(result.image, output, metadata)
    if result.interrupted or signals.terminated:
        print(f"painterly: interrupted; saved the best image so far to {shown_path(output)}", file=sys.stderr)
        return 130
    if not args.quiet:
        print(
            f"wrote {shown_path(output)} "
            f"({result.image.width}x{result.image.height}, {result.seconds:.0f} s)",
            file=sys.stderr,
        )
    return 0


def _clock(seconds: float | None) -> str:
    """``1:02:03`` / ``02:03`` for an ETA, ``?`` while the speed is not yet measured."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


#: Seconds between redraws of the progress bar while an evaluation runs (a tiled one at 4K takes
#: minutes; without redraws the bar's clock would stand still).
REDRAW_SECONDS = 2.0


class _Reporter:
    """Progress bar (tqdm) and --save-every snapshots, fed by the library's progress callback.

    Between reports, on a terminal, a daemon thread redraws the bar every :data:`REDRAW_SECONDS`:
    its elapsed time moves and the ETA counts down from the last report's estimate."""

    def __init__(self, *, quiet: bool, save_every: int | None, output: Path) -> None:
        self.quiet = quiet
        self.save_every = save_every
        self.output = output
        self.bar: Any = None
        self.shown = 0
        self.saved: set[int] = set()
        self.clock: Callable[[], float] = time.monotonic
        self._deadline: float | None = None  # the clock reading at which the last ETA ends
        self._details = ""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._redrawer: threading.Thread | None = None
        #: Redraw between reports only on a terminal: into a log file each redraw is another line.
        self.redraw = sys.stderr.isatty()

    def __call__(self, progress: Progress) -> None:
        if not self.quiet:
            with self._lock:
                self._report(progress)
        every = self.save_every
        if every and progress.iteration and progress.step % every == 0 and progress.step not in self.saved:
            from painterly.images import save_image

            self.saved.add(progress.step)
            path = self.output.with_name(f"{self.output.stem}_{progress.step:05d}{self.output.suffix}")
            save_image(progress.image(), path)

    def _report(self, progress: Progress) -> None:
        if self.bar is None:
            from tqdm import tqdm

            # tqdm's own rate and ETA assume equal iterations; an iteration at the output size costs
            # 16-1000x one at the first scale, so the bar shows the schedule's ETA instead (measured
            # speed x pixels x the iterations still planned, capped by --time-limit).
            self.bar = tqdm(
                total=progress.total_steps,
                unit="it",
                dynamic_ncols=True,
                file=sys.stderr,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]",
            )
            if self.redraw:
                self._redrawer = threading.Thread(target=self._redraw, name="painterly-progress", daemon=True)
                self._redrawer.start()
        total = max(progress.total_steps, progress.step)  # below the count, tqdm would show '?'
        if total != self.bar.total:  # the plan moves with the measured speed
            self.bar.total = total
        self.bar.update(progress.step - self.shown)
        self.shown = progress.step
        eta = progress.eta_seconds
        self._deadline = None if eta is None or not math.isfinite(eta) else self.clock() + eta
        self._details = (
            f"scale {progress.scale}/{progress.scales} {progress.size[0]}x{progress.size[1]} "
            + " ".join(f"{name} {value:.3g}" for name, value in progress.losses.items() if name != "total")
        )
        self._set_postfix()

    def _set_postfix(self) -> None:
        left = None if self._deadline is None else max(0.0, self._deadline - self.clock())
        self.bar.set_postfix_str(f"eta {_clock(left)}, {self._details}", refresh=False)

    def _redraw(self) -> None:
        while not self._stop.wait(REDRAW_SECONDS):
            with self._lock:
                if self.bar is not None:
                    self._set_postfix()
                    self.bar.refresh()

    def close(self) -> None:
        self._stop.set()
        if self._redrawer is not None:
            self._redrawer.join()
        with self._lock:
            if self.bar is not None:
                self.bar.close()
