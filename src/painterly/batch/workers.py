"""The work of a batch, engine-free: read a photo, stylize it, write the result atomically, and
return one :class:`~painterly.batch.manifest.Record` per photo. Every failure of one photo (not an
image, too large, out of memory, unwritable output) becomes that photo's failed record; nothing
here raises for a photo. Writes are idempotent: a retried photo (a worker killed and its batch run
again) replaces its own output with the same picture, atomically.

:class:`StylizeWorker` holds one loaded network (built once per worker: a Ray actor, or the
driver in the local engine) and takes batches as ``{"input": [...], "output": [...]}``;
:func:`transfer_photo` paints one photo by image optimization (one Ray task each).
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from painterly.batch.locations import read_bytes, write_bytes
from painterly.batch.manifest import Record, record
from painterly.errors import PainterlyError, shown

#: Default largest photo, in pixels, read from its header before decoding: about 50 Mpx. A larger
#: one is recorded as failed rather than risk a worker's memory (``--max-pixels`` changes it).
MAX_PHOTO_PIXELS = 50_000_000


@dataclass(frozen=True)
class StylizeSpec:
    """Everything a worker needs to stylize, picklable: the model travels as its bytes, so that
    workers on other machines need no copy of the file (written once per machine into the cache)."""

    model_name: str  # the model file's name (its stem names the model when its metadata does not)
    model_bytes: bytes = field(repr=False)
    backend: str = "auto"
    device: str = "auto"
    precision: str = "auto"
    style_mix: dict[str, float] | None = None
    strength: float = 1.0
    size: int | None = None
    preserve_colors: str = "none"
    tile: int | str = "auto"
    batch_size: int = 1
    threads: int | None = None  # onnxruntime intra-op threads per worker (None: its default)
    max_pixels: int = MAX_PHOTO_PIXELS
    metadata: Mapping[str, str] = field(default_factory=dict)


def materialize_model(name: str, data: bytes) -> Path:
    """The model's bytes as a file in this machine's cache, keyed by content (written once)."""
    from painterly.atomic import atomic_write
    from painterly.cache import cache_dir

    digest = hashlib.sha256(data).hexdigest()[:16]
    path = cache_dir() / "batch-models" / digest / name
    if not (path.is_file() and path.stat().st_size == len(data)):
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as handle:
            handle.write(data)
    return path


def decode_photo(location: str, max_pixels: int, size: int | None) -> Image.Image:
    """A photo read and decoded (its header checked against ``max_pixels`` first), resized to
    ``size`` (the long side) when given."""
    from painterly.images import decode_image, resize_long_side

    picture = decode_image(read_bytes(location), max_pixels=max_pixels, what=f"photo {shown(location)}")
    return resize_long_side(picture, size) if size is not None else picture


def encode(picture: Image.Image, target: str, metadata: Mapping[str, str]) -> bytes:
    """The picture encoded in the format ``target``'s suffix names (PNG with text chunks)."""
    from painterly.images import image_format, save_options

    fmt = image_format(target)
    buffer = io.BytesIO()
    picture.save(buffer, format=fmt, **save_options(fmt, metadata))
    return buffer.getvalue()


def write_result(picture: Image.Image, source: str, target: str, metadata: Mapping[str, str]) -> None:
    """Write one result atomically, its source named in the PNG's text chunks."""
    write_bytes(target, encode(picture, target, {**metadata, "source": Path(source).name}))


class StylizeWorker:
    """One loaded network; call it with a batch of ``input`` and ``output`` columns."""

    def __init__(self, spec: StylizeSpec) -> None:
        from painterly.feedforward.inference import StyleModel

        self.spec = spec
        path = materialize_model(spec.model_name, spec.model_bytes)
        self.model = StyleModel(
            path,
            device=spec.device,
            backend=spec.backend,
            precision=spec.precision,
            style_mix=spec.style_mix,
            strength=spec.strength,
        )
        if self.model.onnx is not None and spec.threads:
            self.model.onnx = _onnx_with_threads(path, spec.threads)

    def _too_large(self, picture: Image.Image) -> str | None:
        """Why onnxruntime (which paints whole images) should not take this picture, if it should not."""
        from painterly.feedforward.backends import AUTO_TILE_PIXELS

        width, height = picture.size
        if self.model.onnx is not None and width * height > AUTO_TILE_PIXELS:
            return (
                f"{width}x{height} is too large to paint whole with onnxruntime; "
                "use --size, or --backend torch (which paints in tiles)"
            )
        return None

    def __call__(self, batch: Mapping[str, Sequence[Any]]) -> dict[str, list[Any]]:
        records: list[Record] = []
        ready: list[tuple[str, str, Image.Image, float]] = []
        for source, target in zip(batch["input"], batch["output"], strict=True):
            source, target = str(source), str(target)
            started = time.monotonic()
            try:
                picture = decode_photo(source, self.spec.max_pixels, self.spec.size)
                reason = self._too_large(picture)
                if reason is not None:
                    raise PainterlyError(f"photo {shown(source)}: {reason}")
            except Exception as exc:  # noqa: BLE001 - one photo's failure is its record
                records.append(record(source, target, time.monotonic() - started, exc))
                continue
            ready.append((source, target, picture, time.monotonic() - started))
        records += self._stylize(ready)
        return columns(records)

    def _stylize(self, ready: list[tuple[str, str, Image.Image, float]]) -> list[Record]:
        """Stylize the decoded photos as batches of equal sizes; if a batch fails, each photo alone,
        so that one photo's failure stays its own."""
        if not ready:
            return []
        started = time.monotonic()
        try:
            pictures = self._run([item[2] for item in ready])
        except Exception:  # noqa: BLE001 - retried one by one below
            return [record for item in ready for record in self._stylize_alone(item)]
        share = (time.monotonic() - started) / len(ready)
        return [
            self._write(source, target, picture, spent + share)
            for (source, target, _, spent), picture in zip(ready, pictures, strict=True)
        ]

    def _stylize_alone(self, item: tuple[str, str, Image.Image, float]) -> list[Record]:
        source, target, photo, spent = item
        started = time.monotonic()
        try:
            (picture,) = self._run([photo])
        except Exception as exc:  # noqa: BLE001 - one photo's failure is its record
            return [record(source, target, spent + time.monotonic() - started, exc)]
        return [self._write(source, target, picture, spent + time.monotonic() - started)]

    def _run(self, photos: list[Image.Image]) -> list[Image.Image]:
        spec = self.spec
        return list(
            self.model.stylize_many(
                photos, preserve_colors=spec.preserve_colors, tile=spec.tile, batch_size=spec.batch_size
            )
        )

    def _write(self, source: str, target: str, picture: Image.Image, spent: float) -> Record:
        started = time.monotonic()
        try:
            write_result(picture, source, target, {"painterly_model": self.model.name, **self.spec.metadata})
        except Exception as exc:  # noqa: BLE001 - an unwritable output fails this photo only
            return record(source, target, spent + time.monotonic() - started, exc)
        return record(source, target, spent + time.monotonic() - started)


def _onnx_with_threads(model_path: Path, threads: int) -> Any:
    """An onnxruntime session of the model (the cached export, or the ``.onnx`` file itself) with
    ``threads`` intra-op threads: a worker sharing a machine with others takes only its share."""
    from painterly.feedforward.backends import cached_onnx_path
    from painterly.feedforward.catalog import ONNX_SUFFIX
    from painterly.feedforward.onnx_backend import OnnxNet

    source = model_path if model_path.suffix == ONNX_SUFFIX else cached_onnx_path(model_path)
    return OnnxNet(source, threads=threads)


_KEYS = ("input", "output", "status", "error", "seconds")


def columns(records: Sequence[Record]) -> dict[str, list[Any]]:
    """Records as columns (the batch format of Ray Data)."""
    columns: dict[str, list[Any]] = {key: [item[key] for item in records] for key in _KEYS}  # type: ignore[literal-required]
    columns["error"] = [item["error"] or "" for item in records]  # one type: no None in a string column
    return columns


def rows(batch: Mapping[str, Sequence[Any]]) -> list[Record]:
    """Columns back to records."""
    found = [{key: _plain(batch[key][i]) for key in _KEYS} for i in range(len(batch["input"]))]
    for item in found:
        item["error"] = item["error"] or None
    return found  # type: ignore[return-value]


def _plain(value: Any) -> Any:
    """A numpy scalar as the plain Python value (for JSON)."""
    return value.item() if hasattr(value, "item") else value


@dataclass(frozen=True)
class TransferSpec:
    """What :func:`transfer_photo` needs: the settings and the style images' bytes."""

    settings: Any  # painterly.settings.TransferSettings
    styles: tuple[bytes, ...] = field(repr=False)
    max_pixels: int = MAX_PHOTO_PIXELS
    metadata: Mapping[str, str] = field(default_factory=dict)


def transfer_photo(job: Mapping[str, str], spec: TransferSpec) -> Record:
    """Paint one photo by image optimization (Gatys et al.) and write it; its record either way."""
    source, target = str(job["input"]), str(job["output"])
    started = time.monotonic()
    try:
        from painterly.images import decode_image
        from painterly.optimization import run_transfer

        photo = decode_photo(source, spec.max_pixels, None)
        styles = [decode_image(data, what="style image") for data in spec.styles]
        result = run_transfer(photo, styles, spec.settings)
        write_result(result.image, source, target, {"painterly_method": "transfer", **spec.metadata})
    except Exception as exc:  # noqa: BLE001 - one photo's failure is its record
        return record(source, target, time.monotonic() - started, exc)
    return record(source, target, time.monotonic() - started)
