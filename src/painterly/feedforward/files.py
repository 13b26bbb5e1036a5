"""Checks on the files a feed-forward command reads and writes, made before any work starts.

Inputs must be regular files (a FIFO or a device would block the read forever); an output may
never be one of the inputs (``train --style s.jpg -o s.jpg`` must not replace the style image).
Torch-free.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from painterly.errors import PainterlyError
from painterly.outputs import check_not_an_input


def require_regular_file(path: str | os.PathLike, what: str) -> Path:
    """``path`` if it is an existing regular file (symlinks followed), else one-line PainterlyError."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise PainterlyError(f"{what} not found: {path}") from None
    except OSError as exc:  # a symlink loop, a name too long, no permission
        raise PainterlyError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise PainterlyError(f"{what} is a folder, not a file: {path}")
    if not stat.S_ISREG(mode):
        raise PainterlyError(f"{what} is not a regular file (a pipe or device?): {path}")
    return path


def refuse_overwriting_inputs(output: str | os.PathLike, inputs: Iterable[str | os.PathLike]) -> None:
    """Raise if writing ``output`` would replace any of ``inputs`` (same path, link or file)."""
    check_not_an_input(output, inputs)


def check_seed(seed: object) -> None:
    """Refuse a seed ``torch.manual_seed`` cannot take, before any work (it raises a bare ValueError)."""
    from painterly.settings import SEED_MAX, SEED_MIN

    if not isinstance(seed, int) or isinstance(seed, bool) or not SEED_MIN <= seed <= SEED_MAX:
        raise PainterlyError(f"seed must be a whole number from {SEED_MIN} to {SEED_MAX}, got {seed!r}")


#: Largest training crop side, and most crop pixels per step: sanity caps, far above what fits in
#: memory on common hardware; ``--image-size 1000000`` got the process killed by the kernel instead.
MAX_CROP_SIDE = 8192
MAX_BATCH_PIXELS = 2**27


def check_batch_size(batch_size: int, image_size: int) -> None:
    """Refuse crops or batches no machine holds, before any work or any file is written."""
    if image_size > MAX_CROP_SIDE:
        raise PainterlyError(f"image size must be at most {MAX_CROP_SIDE} px, got {image_size}")
    if batch_size * image_size * image_size > MAX_BATCH_PIXELS:
        most = max(1, MAX_BATCH_PIXELS // (image_size * image_size))
        raise PainterlyError(
            f"a batch of {batch_size} crops of {image_size} px is far more than memory holds; "
            f"use --batch-size {most} or less"
        )
