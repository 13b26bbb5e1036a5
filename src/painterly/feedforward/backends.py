"""Which runtime stylizes (torch or onnxruntime), and the cached ONNX exports. Torch-free.

The policy lives here so that the CLI, the library's ``load_model(backend="auto")`` and the server
take the same path: onnxruntime on CPU-only machines (measured 0.26 s against 0.42 s for torch at
1024 px, and no torch import), torch on GPUs and for images large enough to need tiling.
"""

from __future__ import annotations

import importlib.util
import os
import platform
from collections.abc import Iterable
from pathlib import Path

from painterly.cache import cache_dir
from painterly.errors import PainterlyError, did_you_mean

BACKENDS = ("torch", "onnxruntime")
CHOICES = ("auto", *BACKENDS)

#: Above this many pixels the torch backend stylizes in tiles (``tile="auto"``): about 6 Mpx,
#: where the light network's activations pass 3 GB.
AUTO_TILE_PIXELS = 2500 * 2500


def has_gpu() -> bool:
    """Whether torch would pick a GPU, guessed without importing torch (which costs a second)."""
    if Path("/dev/nvidia0").exists() or Path("/dev/kfd").exists():
        return True
    return platform.system() == "Darwin" and platform.machine() == "arm64"


def pick_backend(
    backend: str = "auto",
    device: str = "auto",
    tile: object = "auto",
    sizes: Iterable[tuple[float, float]] = (),
    precision: str = "auto",
) -> str:
    """``backend`` itself unless ``auto``; then onnxruntime when it is installed, the device is a
    CPU, no image (``sizes``: the sizes to be stylized) needs tiling and no precision but float32
    is asked for; torch otherwise."""
    if backend not in CHOICES:
        raise PainterlyError(f"unknown backend {backend!r}{did_you_mean(backend, CHOICES)}")
    if backend != "auto":
        return backend
    if device not in ("auto", "cpu") or (device == "auto" and has_gpu()):
        return "torch"
    if importlib.util.find_spec("onnxruntime") is None or tile not in ("auto", None, 0, "none"):
        return "torch"
    if precision not in ("auto", "fp32"):  # onnxruntime runs float32 graphs only
        return "torch"
    if tile == "auto" and any(width * height > AUTO_TILE_PIXELS for width, height in sizes):
        return "torch"
    return "onnxruntime"


def cached_onnx_path(model_path: str | os.PathLike) -> Path:
    """Where the export of ``model_path`` (a model file or its record) is cached: keyed by the
    file's content hash (a record's, computed once)."""
    from painterly.feedforward.record import record_for

    record = record_for(model_path)
    return cache_dir() / "onnx" / f"{record.path.stem}-{record.digest()[:16]}.onnx"


def onnx_net_for(model_path: str | os.PathLike) -> object:
    """An :class:`~painterly.feedforward.onnx_backend.OnnxNet` for a model file (or its
    :class:`~painterly.feedforward.record.ModelRecord`), through the cache.

    A cached export that onnxruntime cannot load (truncated, corrupt) is rebuilt; when the cache
    cannot be written the export stays in memory: no temporary files are left anywhere.
    """
    from painterly.feedforward.onnx_backend import OnnxNet
    from painterly.feedforward.record import record_for

    record = record_for(model_path)
    target = cached_onnx_path(record)
    if target.is_file():
        try:
            return OnnxNet(target)
        except PainterlyError:
            target.unlink(missing_ok=True)  # corrupt: export again below
    from painterly.atomic import atomic_write
    from painterly.feedforward.export import onnx_bytes  # imports torch: only on a cache miss

    data = onnx_bytes(record)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(target) as handle:
            handle.write(data)
    except OSError:  # a read-only or unusable cache: this process keeps the export in memory
        return OnnxNet(data)
    return OnnxNet(target)
