"""Image input and output: validation, decoding, colour modes, tensors and atomic writes."""

from __future__ import annotations

import errno
import io
import os
import stat
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin

from painterly.atomic import atomic_write
from painterly.errors import PainterlyError, shown
from painterly.outputs import check_not_an_input as check_not_an_input  # the one output check
from painterly.outputs import check_output_path as check_output_path

if TYPE_CHECKING:
    import torch

#: A path, encoded bytes, a PIL image, an HxWxC array or a (1,)3xHxW tensor in 0-1.
ImageInput = Union[str, os.PathLike, bytes, Image.Image, np.ndarray, "torch.Tensor"]  # noqa: UP007

#: Largest number of pixels we agree to decode (about 16k x 11k). Checked from the header,
#: before any pixel data is read, so a decompression bomb never gets expanded.
MAX_PIXELS = 178_956_970


def _check_pixel_count(width: int, height: int, max_pixels: int, what: str) -> None:
    if width * height > max_pixels:
        raise PainterlyError(
            f"{what} is {width}x{height} = {width * height:,} pixels, more than the limit of "
            f"{max_pixels:,} (a possible decompression bomb)"
        )


def open_image(source: ImageInput, *, max_pixels: int = MAX_PIXELS, what: str = "image") -> Image.Image:
    """Load ``source`` (path, bytes-like, PIL image, array or tensor) as an 8-bit RGB PIL image.

    Handles grayscale, RGBA (composited on white), palette, CMYK and 16-bit images, and
    applies the EXIF orientation. Raises :class:`PainterlyError` for anything unreadable.
    """
    if isinstance(source, Image.Image):
        _check_pixel_count(*source.size, max_pixels, what)
        return to_rgb(source)
    if type(source).__module__.startswith("torch"):  # no torch import for the other kinds
        return tensor_to_pil(source)  # type: ignore[arg-type]
    if isinstance(source, np.ndarray):
        return array_to_pil(source)
    if isinstance(source, bytes | bytearray | memoryview):
        return decode_image(bytes(source), max_pixels=max_pixels, what=what)
    if isinstance(source, str | os.PathLike):
        path = check_input_file(source, what)
        return decode_image(read_input_file(path, what), max_pixels=max_pixels, what=f"{what} {shown(path)}")
    raise PainterlyError(f"{what}: expected a path, PIL image or array, got {type(source).__name__}")


def check_input_file(path: str | os.PathLike, what: str) -> Path:
    """Refuse, with one line and before opening it, an input that is not a readable regular file.

    A FIFO or a device would block or stream forever, a folder or a symlink loop would end in a
    traceback: every command that reads a user's file calls this first.
    """
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise PainterlyError(f"{what} not found: {shown(path)}") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise PainterlyError(f"{what} is a symlink loop: {shown(path)}") from None
        raise PainterlyError(f"cannot read {what} {shown(path)}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise PainterlyError(f"{what} is a folder, not a file: {shown(path)}")
    if not stat.S_ISREG(info.st_mode):
        kind = "a FIFO" if stat.S_ISFIFO(info.st_mode) else "a device or socket"
        raise PainterlyError(f"{what} is {kind}, not a regular file: {shown(path)}")
    return path


def read_input_file(path: str | os.PathLike, what: str) -> bytes:
    """The bytes of a checked input; opened without blocking, so a FIFO swapped in is refused too."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise PainterlyError(f"cannot read {what} {shown(path)}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise PainterlyError(f"{what} is not a regular file: {shown(path)}")
        try:
            return handle.read()
        except OSError as exc:
            raise PainterlyError(f"cannot read {what} {shown(path)}: {exc.strerror or exc}") from None


def image_size(path: str | os.PathLike) -> tuple[int, int] | None:
    """Width and height from an image file's header (nothing decoded), or None if unreadable."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as image:
                width, height = image.size
                rotated = image.getexif().get(0x0112) in (5, 6, 7, 8)  # EXIF rotation by 90 degrees
    except Exception:  # noqa: BLE001 - decoding reports the real problem later, in one line
        return None
    return (height, width) if rotated else (width, height)


def decode_image(
    data: bytes, *, max_pixels: int = MAX_PIXELS, what: str = "image", convert: bool = True
) -> Image.Image:
    """Decode encoded image bytes safely (size cap checked from the header first); as 8-bit RGB
    unless ``convert`` is false (then in the file's own mode, alpha kept: masks want that)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            _check_pixel_count(*image.size, max_pixels, what)
            image.load()
    except PainterlyError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PainterlyError(
            f"{what} is too large to decode safely (a possible decompression bomb)"
        ) from None
    except Image.UnidentifiedImageError:
        raise PainterlyError(f"{what} is not an image (or not a format Pillow can read)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise PainterlyError(f"{what} is truncated or corrupt: {exc}") from None
    return to_rgb(image) if convert else image


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB, honouring EXIF orientation."""
    image = ImageOps.exif_transpose(image)
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if array.max() > 255 else 255.0
        image = Image.fromarray(np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    elif mode == "F":
        array = np.asarray(image, dtype=np.float64)
        image = Image.fromarray(
            np.clip(array * (255.0 if array.max() <= 1 else 1) + 0.5, 0, 255).astype(np.uint8)
        )
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")


def array_to_pil(array: np.ndarray) -> Image.Image:
    """HxW or HxWxC array (uint8 0-255, uint16, or float 0-1) to an RGB image."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise PainterlyError(f"array image must be HxW, HxWx3 or HxWx4, got shape {array.shape}")
    if array.dtype == np.uint8:
        data = array
    elif array.dtype == np.uint16:
        data = (array.astype(np.float64) / 257.0 + 0.5).astype(np.uint8)
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise PainterlyError("array image contains NaN or infinite values")
        data = (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    else:
        raise PainterlyError(f"array image has unsupported dtype {array.dtype}")
    return to_rgb(Image.fromarray(np.ascontiguousarray(data)))


def pil_to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB PIL image to a float tensor of shape (1, 3, H, W) in 0-1."""
    import torch

    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array.copy()).permute(2, 0, 1).unsqueeze(0)


def tensor_to_pil(tensor: torch.Tensor) -> Image.Image:
    """A (1, 3, H, W) or (3, H, W) tensor in 0-1 to an RGB PIL image."""
    tensor = tensor.detach().float().cpu()
    if tensor.ndim == 4:
        tensor = tensor[0]
    array = (tensor.clamp(0, 1).permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(array, "RGB")


def long_side_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    """The size of a ``width`` x ``height`` image resized so that its longer side is ``long_side``."""
    scale = long_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def resize_long_side(image: Image.Image, long_side: int) -> Image.Image:
    """Resize keeping the aspect ratio so that the longer side is ``long_side`` pixels."""
    size = long_side_size(*image.size, long_side)
    if size == image.size:
        return image
    return image.resize(size, Image.Resampling.LANCZOS)


def image_format(path: str | os.PathLike) -> str:
    """The Pillow format an output path's extension asks for; one line if it is not one we write."""
    suffix = Path(path).suffix.lower()
    fmt = _FORMATS.get(suffix)
    if fmt is None:
        raise PainterlyError(
            f"unknown output format '{shown(suffix or '(none)')}' for {shown(path)}; "
            f"use one of {', '.join(sorted(_FORMATS))}"
        )
    return fmt


def check_image_output(path: str | os.PathLike, inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """Everything about an output image that can fail, checked before any work: format, folder, inputs."""
    image_format(path)
    return check_not_an_input(check_output_path(path), inputs)


_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}


#: zlib level of the PNGs painterly writes. Pillow's default (6) spends 0.18 s on a 1024x768
#: painting on a 2-core Xeon, a quarter of a whole ``painterly stylize`` command; level 1 (OpenCV's
#: default) spends 0.07 s for a file about 8% larger (measured 2026-12-07).
PNG_COMPRESS_LEVEL = 1


def save_options(fmt: str, metadata: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Pillow's ``save`` options for ``fmt``: ``metadata`` as PNG text chunks and a fast zlib
    level (:data:`PNG_COMPRESS_LEVEL`), JPEG quality 95."""
    options: dict[str, Any] = {}
    if fmt == "PNG":
        options["compress_level"] = PNG_COMPRESS_LEVEL
        if metadata:
            info = PngImagePlugin.PngInfo()
            for key, value in metadata.items():
                info.add_itxt(key, str(value))
            options["pnginfo"] = info
    elif fmt == "JPEG":
        options["quality"] = 95
    return options


def save_image(
    image: Image.Image, path: str | os.PathLike, metadata: Mapping[str, str] | None = None
) -> Path:
    """Write ``image`` atomically (temporary file in the same folder, then rename).

    For PNG, ``metadata`` goes into text chunks; other formats ignore it.
    """
    path = check_output_path(path)
    fmt = image_format(path)
    with atomic_write(path) as handle:
        image.save(handle, format=fmt, **save_options(fmt, metadata))
    return path
