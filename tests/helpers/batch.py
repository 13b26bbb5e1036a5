"""Photo folders for ``painterly batch`` and reading its manifest."""

from __future__ import annotations

import json
from pathlib import Path

from .images import make_photo


def photos(folder: Path, count: int = 3, size: tuple[int, int] = (40, 32)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = folder / f"p{index}.jpg"
        make_photo(*size, seed=index).save(path)
        paths.append(path)
    return paths


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]
