"""argparse types over the library's one number parser (:mod:`painterly.numbers`): ASCII digits
only, finite, in range, and the parser's own one-line message. Imports no torch."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def whole(
    label: str = "value", *, minimum: int | None = None, maximum: int | None = None, unit: str = ""
) -> Callable[[str], int]:
    """A whole number in ``[minimum, maximum]``."""

    def parse(text: str) -> int:
        from painterly.errors import PainterlyError
        from painterly.numbers import parse_whole

        try:
            return parse_whole(text, label, minimum=minimum, maximum=maximum, unit=unit)
        except PainterlyError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = "int"
    return parse


def decimal(
    label: str = "value",
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
) -> Callable[[str], float]:
    """A finite decimal number in range (``nan``, ``inf`` and non-ASCII digits refused)."""

    def parse(text: str) -> float:
        from painterly.errors import PainterlyError
        from painterly.numbers import parse_decimal

        try:
            return parse_decimal(
                text, label, minimum=minimum, maximum=maximum, exclusive_minimum=exclusive_minimum
            )
        except PainterlyError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = "float"
    return parse


#: A whole number of at least 1 (steps, sizes, batch sizes, workers, columns).
positive_int = whole(minimum=1)
#: A finite number above 0 (minutes, CPUs per worker).
positive_float = decimal(minimum=0, exclusive_minimum=True)
#: A finite number of at least 0 (GPUs per worker).
non_negative_float = decimal(minimum=0)
