"""Where photos come from and results go: local paths or fsspec URLs (``s3://bucket/x.jpg``).

A URL needs :mod:`fsspec` and the package of its file system (``s3fs``, ``gcsfs``, ...); a missing
one is a one-line :class:`~painterly.errors.PainterlyError`. Local paths never touch fsspec.
"""

from __future__ import annotations

import glob
import os
import re
import uuid
from pathlib import Path
from typing import Any

from painterly.errors import PainterlyError, shown

#: Suffixes of input images found in folders (as ``painterly stylize``).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(location: str) -> bool:
    """Whether ``location`` is a URL (``scheme://...``) rather than a local path."""
    return bool(_URL.match(location))


def local_path(location: str) -> Path | None:
    """The local path of a plain path or a ``file://`` URL; None for other URLs."""
    if not is_url(location):
        return Path(location)
    if location.startswith("file://"):
        return Path(location[len("file://") :])
    return None


def filesystem(url: str) -> tuple[Any, str]:
    """The fsspec file system of ``url`` and the path within it; one line when it cannot be had."""
    try:
        import fsspec
    except ImportError:
        raise PainterlyError(f"reading {shown(url)} needs fsspec: pip install fsspec") from None
    try:
        fs, path = fsspec.core.url_to_fs(url)
    except ImportError as exc:
        raise PainterlyError(f"{shown(url)}: {str(exc).splitlines()[0] if str(exc) else exc!r}") from None
    except ValueError as exc:  # an unknown protocol
        raise PainterlyError(f"{shown(url)}: {exc}") from None
    return fs, path


def expand_url(url: str) -> list[str]:
    """A URL's images: a file as given, a folder's images (not recursive), a glob's matches."""
    fs, path = filesystem(url)
    try:
        if glob.has_magic(path):
            found = [p for p in sorted(fs.glob(path)) if not fs.isdir(p)]
            if not found:
                raise PainterlyError(f"no files match {shown(url)}")
        elif fs.isdir(path):
            found = sorted(p for p in fs.ls(path, detail=False) if Path(p).suffix.lower() in IMAGE_SUFFIXES)
        elif fs.exists(path):
            found = [path]
        else:
            raise PainterlyError(f"input not found: {shown(url)}")
    except (OSError, PermissionError) as exc:
        raise PainterlyError(f"cannot list {shown(url)}: {exc}") from None
    return [fs.unstrip_protocol(p) for p in found]


def read_bytes(location: str) -> bytes:
    """The bytes of a photo: a checked regular local file, or a URL through fsspec."""
    from painterly.images import check_input_file, read_input_file

    path = local_path(location)
    if path is not None:
        return read_input_file(check_input_file(path, "input image"), "input image")
    fs, inner = filesystem(location)
    try:
        with fs.open(inner, "rb") as handle:
            return bytes(handle.read())
    except FileNotFoundError:
        raise PainterlyError(f"input image not found: {shown(location)}") from None
    except OSError as exc:
        raise PainterlyError(f"cannot read input image {shown(location)}: {exc}") from None


def exists(location: str) -> bool:
    """Whether a file is at ``location`` (local path or URL)."""
    path = local_path(location)
    if path is not None:
        return path.is_file()
    fs, inner = filesystem(location)
    return bool(fs.exists(inner))


def join(folder: str, name: str) -> str:
    """``folder``/``name`` for a local folder or a URL."""
    if is_url(folder):
        return folder.rstrip("/") + "/" + name
    return str(Path(folder) / name)


def write_bytes(location: str, data: bytes) -> None:
    """Write ``data`` atomically: a temporary name then a rename, so a reader, a crash or a retry on
    another worker never sees half a file (on object stores an upload appears whole or not at all)."""
    path = local_path(location)
    if path is not None:
        from painterly.atomic import atomic_write

        with atomic_write(path) as handle:
            handle.write(data)
        return
    fs, inner = filesystem(location)
    temporary = f"{inner}.{uuid.uuid4().hex}.tmp"
    try:
        fs.pipe_file(temporary, data)
        fs.mv(temporary, inner)
    except BaseException:
        try:
            if fs.exists(temporary):
                fs.rm(temporary)
        except Exception:  # noqa: BLE001 - the original error is the one to report
            pass
        raise


def make_folder(location: str) -> None:
    """Create an output folder (local or URL) if needed; one line if that fails."""
    path = local_path(location)
    try:
        if path is not None:
            os.makedirs(path, exist_ok=True)
        else:
            fs, inner = filesystem(location)
            fs.makedirs(inner, exist_ok=True)
    except OSError as exc:
        raise PainterlyError(f"cannot create output folder {shown(location)}: {exc}") from None
