"""The ``painterly`` command: a thin layer over the library API.

Each subcommand lives in its own module with ``register(subparsers)``; ``transfer`` is the
default, so ``painterly photo.jpg --style painting.jpg -o out.png`` works without naming it.
User errors print one line and exit with code 2; Ctrl-C exits with 130.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from painterly.errors import PainterlyError

#: Subcommand modules, in the order ``--help`` lists them.
COMMAND_MODULES = ("transfer", "feedforward", "serve", "weights")
DEFAULT_COMMAND = "transfer"


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line and exit code 2, like every other user error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    from painterly import __version__

    parser = ArgumentParser(
        prog="painterly", description="Neural style transfer: paint a photo in the style of a painting."
    )
    parser.add_argument("--version", action="version", version=f"painterly {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"painterly.cli.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    commands = set(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    if argv and argv[0] not in commands and argv[0] not in ("-h", "--help", "--version"):
        argv.insert(0, DEFAULT_COMMAND)
    if not argv:
        parser.print_help()
        return 2
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except PainterlyError as exc:
        print(f"painterly: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("painterly: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
