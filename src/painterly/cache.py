"""painterly's cache folder (converted VGG weights, exported ONNX models): ``$PAINTERLY_CACHE`` or
``~/.cache/painterly``. Torch-free, so that light code paths can use it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from painterly.errors import PainterlyError, shown


def cache_dir() -> Path:
    return Path(os.environ.get("PAINTERLY_CACHE") or Path.home() / ".cache" / "painterly")


def writable_cache_dir() -> Path:
    """The cache folder, created if needed; one line if it is a file or cannot be written."""
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        reason = "is not a folder" if folder.exists() and not folder.is_dir() else (exc.strerror or str(exc))
        raise PainterlyError(
            f"cache folder {shown(folder)} (PAINTERLY_CACHE) cannot be used: {reason}"
        ) from None
    return folder
