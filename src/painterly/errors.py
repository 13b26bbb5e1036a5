"""The one error type for everything a user can get wrong."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class PainterlyError(Exception):
    """A problem with the user's input or environment.

    The CLI prints it as one line and exits with code 2; the HTTP API answers 400.
    """


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean X?)' for the closest of ``choices``, or ''."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_weight(name: str, value: object) -> float:
    """Validate a non-negative finite loss weight given by a user."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise PainterlyError(f"{name} must be a number, got {value!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise PainterlyError(f"{name} must be finite, got {value!r}")
    if number < 0:
        raise PainterlyError(f"{name} must not be negative, got {value!r}")
    return number


def shown(text: object, limit: int = 200) -> str:
    """``text`` (often a file name) made safe for a one-line message: control characters such as a
    newline are escaped, and very long text is cut."""
    value = str(text)
    if not value.isprintable():
        value = "".join(
            ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in value
        )
    return value if len(value) <= limit else value[: limit - 3] + "..."


def shown_path(path: object) -> str:
    """A path on a line of output (``wrote PATH``): control characters escaped as :func:`shown`
    does, so a name cannot forge lines or colour the terminal; cut only past 64 KiB, far beyond
    any path a file system takes."""
    return shown(path, limit=1 << 16)
