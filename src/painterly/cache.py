"""painterly's cache folder (converted VGG weights, exported ONNX models): ``$PAINTERLY_CACHE`` or
``~/.cache/painterly``. Torch-free, so that light code paths can use it."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    return Path(os.environ.get("PAINTERLY_CACHE") or Path.home() / ".cache" / "painterly")
