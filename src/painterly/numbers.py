"""Numbers from untrusted text: one parser for every CLI option and server form field. Torch-free.

Python's ``int()`` and ``float()`` take more than a user means by a number: other scripts' digits
(``'٣'``, full-width ``'３'``), underscores (``'1_000'``), ``'nan'`` and ``'inf'``, and ``str.isdigit()``
says yes to ``'²'``, which ``int()`` then refuses with a bare ValueError. Here a number is ASCII
only: an optional sign, digits, for a decimal number an optional fraction and exponent, at most
:data:`MAX_TEXT` characters. Every failure is one short :class:`~painterly.errors.PainterlyError`
that names the field, echoes the text safely and, for a range, states the real limits.
"""

from __future__ import annotations

import math
import re

from painterly.errors import PainterlyError

#: Longest text read as a number (a float needs at most some 25 characters).
MAX_TEXT = 64
_WHOLE = re.compile(r"[+-]?[0-9]{1,40}", re.ASCII)
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,6})?", re.ASCII)
_NOT_FINITE = ("nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity")


def quoted(text: object, limit: int = 40) -> str:
    """A user's value for a one-line message: ``repr`` (control characters escaped), cut if long."""
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 4] + "...'"


def parse_whole(
    text: str, label: str, *, minimum: int | None = None, maximum: int | None = None, unit: str = ""
) -> int:
    """A whole number in ``[minimum, maximum]`` from ``text`` (surrounding spaces allowed)."""
    stripped = text.strip() if isinstance(text, str) else text
    if not isinstance(stripped, str) or not _WHOLE.fullmatch(stripped):
        span = _span(minimum, maximum, unit)
        raise PainterlyError(f"{label} must be a whole number{span}, got {quoted(text)}")
    value = int(stripped)
    check_range(label, value, minimum, maximum, unit=unit)
    return value


def parse_decimal(
    text: str,
    label: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
) -> float:
    """A finite number in range from ``text``: ``0.5``, ``-2``, ``1e-3``, ``.5``; never ``nan``/``inf``."""
    stripped = text.strip() if isinstance(text, str) else text
    if isinstance(stripped, str) and stripped.lower() in _NOT_FINITE:
        raise PainterlyError(f"{label} must be finite, got {quoted(text)}")
    if not isinstance(stripped, str) or len(stripped) > MAX_TEXT or not _DECIMAL.fullmatch(stripped):
        raise PainterlyError(f"{label} must be a number, got {quoted(text)}")
    value = float(stripped)
    if not math.isfinite(value):  # 1e999
        raise PainterlyError(f"{label} must be finite, got {quoted(text)}")
    check_range(label, value, minimum, maximum, exclusive_minimum=exclusive_minimum)
    return value


def check_range(
    label: str,
    value: float,
    minimum: float | None,
    maximum: float | None,
    *,
    exclusive_minimum: bool = False,
    unit: str = "",
) -> None:
    """One line naming the limit that ``value`` passes (the caller's real limit, e.g. a server's cap)."""
    after = f" {unit}" if unit else ""
    if minimum is not None and (value <= minimum if exclusive_minimum else value < minimum):
        if minimum == 0:
            word = "must be positive" if exclusive_minimum else "must not be negative"
            raise PainterlyError(f"{label} {word}, got {quoted(value)}")
        raise PainterlyError(f"{label} must be at least {shown_number(minimum)}{after}, got {quoted(value)}")
    if maximum is not None and value > maximum:
        raise PainterlyError(f"{label} must be at most {shown_number(maximum)}{after}, got {quoted(value)}")


def shown_number(value: float) -> str:
    """A limit as people write it: whole numbers in full (``16384``), others short (``1e+15``)."""
    return str(value) if isinstance(value, int) else f"{value:g}"


def _span(minimum: float | None, maximum: float | None, unit: str) -> str:
    after = f" {unit}" if unit else ""
    if minimum is not None and maximum is not None:
        return f" from {shown_number(minimum)} to {shown_number(maximum)}{after}"
    return ""
