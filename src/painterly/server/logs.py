"""Keeps the token out of the access log: browsers must send it as ``?token=`` where they cannot set
headers (``EventSource``, ``<img src>``), and uvicorn logs every request's full path."""

from __future__ import annotations

import logging
import re

_TOKEN_IN_QUERY = re.compile(r"([?&]token=)[^&\s]*")
ACCESS_LOGGER = "uvicorn.access"


def redact(text: str) -> str:
    """``/api/x?token=abc&y=1`` -> ``/api/x?token=[redacted]&y=1``."""
    return _TOKEN_IN_QUERY.sub(r"\1[redacted]", text)


class RedactToken(logging.Filter):
    """Rewrites any ``?token=`` in a record's message arguments (uvicorn passes the path as one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) and "token=" in a else a for a in record.args)
        elif isinstance(record.msg, str) and "token=" in record.msg:
            record.msg = redact(record.msg)
        return True


def install_redaction(logger_name: str = ACCESS_LOGGER) -> None:
    """Add the filter once (creating the app twice must not stack filters)."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, RedactToken) for f in logger.filters):
        logger.addFilter(RedactToken())
