"""The one check of an output path, made by every command before any work. Torch-free.

``transfer``, ``stylize``, ``video``, ``train``, ``distill``, ``export`` and the library's writers
all call :func:`check_output_path` (the folder exists, is a folder and can really be written, the
path is not a folder) and :func:`check_not_an_input` (an output never replaces an input: the same
path, a symlink or a hard link). Every failure is one line.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from painterly.errors import PainterlyError, shown


def check_output_path(path: str | os.PathLike) -> Path:
    """Fail early, before any work, if ``path`` cannot be written."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        if not folder.exists():
            raise PainterlyError(f"output folder does not exist: {shown(folder)}")
        if not folder.is_dir():
            raise PainterlyError(f"output folder is not a folder: {shown(folder)}")
        # A real probe: os.access says yes to root even on read-only file systems and in /proc.
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError:
        raise PainterlyError(f"output folder is not writable: {shown(folder)}") from None
    try:
        is_folder = path.is_dir()
    except OSError:  # a name too long, a symlink loop
        raise PainterlyError(f"cannot write the output {shown(path)}") from None
    if is_folder:
        raise PainterlyError(f"output path is a folder: {shown(path)}")
    return path


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.resolve() == b.resolve():
            return True
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop on older Pythons
        return False


def check_not_an_input(output: str | os.PathLike, inputs: Iterable[str | os.PathLike]) -> Path:
    """An output may never overwrite one of the inputs (the same path, a symlink or a hard link)."""
    output = Path(output)
    for item in inputs:
        if _same_file(output, Path(item)):
            raise PainterlyError(
                f"refusing to overwrite the input {shown(item)}: choose another output than {shown(output)}"
            )
    return output


def check_output(path: str | os.PathLike, inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """Both checks: ``path`` can be written and is none of ``inputs``."""
    return check_not_an_input(check_output_path(path), inputs)
