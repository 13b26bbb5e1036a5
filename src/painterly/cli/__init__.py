"""The ``painterly`` command: a thin layer over the library API.

Each subcommand lives in its own module with ``register(subparsers)``; ``transfer`` is the
default, so ``painterly photo.jpg --style painting.jpg -o out.png`` works without naming it.
User errors print one line and exit with code 2; Ctrl-C (and SIGTERM during ``transfer``) exits
with 130.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings
from collections.abc import Sequence

from painterly.errors import PainterlyError, shown

#: Subcommand modules, in the order ``--help`` lists them.
COMMAND_MODULES = (
    "transfer",
    "train",
    "distill",
    "stylize",
    "batch",
    "sheet",
    "export",
    "models",
    "video",
    "serve",
    "weights",
)
#: Commands registered by a module of another name.
COMMAND_ALIASES = {"demo": "transfer"}
DEFAULT_COMMAND = "transfer"


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line and exit code 2, like every other user error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"{self.prog}: error: {shown(message, limit=1000)} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def command_module(command: str) -> str | None:
    """The module under ``painterly.cli`` that registers ``command``, or None for no command."""
    if command in COMMAND_MODULES:
        return command
    return COMMAND_ALIASES.get(command)


def build_parser(module: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or only the commands of one ``module`` (a name of
    :data:`COMMAND_MODULES`): a run needs only its own command's parser, and building the others'
    (their imports and option tables) cost a whole ``stylize`` command about 0.02 s."""
    from painterly import __version__

    parser = ArgumentParser(
        prog="painterly", description="Neural style transfer: paint a photo in the style of a painting."
    )
    parser.add_argument("--version", action="version", version=f"painterly {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    for name in COMMAND_MODULES if module is None else (module,):
        importlib.import_module(f"painterly.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The console entry point. Ctrl-C at any moment, even while torch is still being imported,
    ends with one line and exit code 130; every user error with one line and exit code 2; a reader
    that left (``painterly models list | head``) quietly, with 141."""
    try:
        try:
            code = _main(argv)
        except SystemExit:  # --help, a usage error: their output is flushed here too
            sys.stdout.flush()
            raise
        sys.stdout.flush()  # here, not at the interpreter's exit, so that a reader that left shows below
        return code  # (a crash is not flushed: a broken pipe must not hide it)
    except KeyboardInterrupt:
        print("painterly: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        if not _stdout_reader_left():
            raise  # another pipe (a video container's, a socket): a real error
        return 141  # 128 + SIGPIPE (13), what a shell reports for a process whose reader left


def _stdout_reader_left() -> bool:
    """Whether standard output is a pipe whose reader left, asked of the descriptor itself (a
    write larger than the buffer leaves nothing behind to fail again); if so, point it at
    /dev/null, so that the interpreter's own flush at exit raises nothing more."""
    import select

    try:
        fd = sys.stdout.fileno()
        poller = select.poll()  # not on Windows: there the error is shown as it is
        poller.register(fd, select.POLLOUT)
        left = any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll, or no real fd 1 (an in-process caller)
        return False
    if left:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)
    return left


def _main(argv: Sequence[str] | None) -> int:
    # Pillow's own bomb warning would print before our one-line error (we enforce a pixel limit).
    warnings.filterwarnings("ignore", message=r"Image size \(\d+ pixels\) exceeds limit")
    argv = list(sys.argv[1:] if argv is None else argv)
    module = command_module(argv[0]) if argv else None
    if argv and module is None and argv[0] not in ("-h", "--help", "--version"):
        argv.insert(0, DEFAULT_COMMAND)
        module = command_module(DEFAULT_COMMAND)
    parser = build_parser(module)
    if not argv:
        parser.print_help()
        return 2
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except PainterlyError as exc:
        print(f"painterly: error: {shown(exc, limit=1000)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
