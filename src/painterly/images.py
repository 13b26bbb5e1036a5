"""Image input and output: validation, decoding, colour modes, tensors and atomic writes."""

from __future__ import annotations

import io
import os
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Union

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin

from painterly.atomic import atomic_write
from painterly.errors import PainterlyError

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
        return tensor_to_pil(source)
    if isinstance(source, np.ndarray):
        return array_to_pil(source)
    if isinstance(source, bytes | bytearray | memoryview):
        return decode_image(bytes(source), max_pixels=max_pixels, what=what)
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.exists():
            raise PainterlyError(f"{what} not found: {path}")
        if path.is_dir():
            raise PainterlyError(f"{what} is a folder, not an image file: {path}")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise PainterlyError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
        return decode_image(data, max_pixels=max_pixels, what=f"{what} {path}")
    raise PainterlyError(f"{what}: expected a path, PIL image or array, got {type(source).__name__}")


def decode_image(data: bytes, *, max_pixels: int = MAX_PIXELS, what: str = "image") -> Image.Image:
    """Decode encoded image bytes safely (size cap checked from the header first)."""
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
    return to_rgb(image)


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


def resize_long_side(image: Image.Image, long_side: int) -> Image.Image:
    """Resize keeping the aspect ratio so that the longer side is ``long_side`` pixels."""
    width, height = image.size
    scale = long_side / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if size == image.size:
        return image
    return image.resize(size, Image.Resampling.LANCZOS)


def check_output_path(path: str | os.PathLike) -> Path:
    """Fail early, before any work, if ``path`` cannot be written."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.exists():
        raise PainterlyError(f"output folder does not exist: {folder}")
    if not folder.is_dir():
        raise PainterlyError(f"output folder is not a folder: {folder}")
    try:  # a real probe: os.access says yes to root even on read-only file systems
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError:
        raise PainterlyError(f"output folder is not writable: {folder}") from None
    if path.is_dir():
        raise PainterlyError(f"output path is a folder: {path}")
    return path


_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}


def save_image(
    image: Image.Image, path: str | os.PathLike, metadata: Mapping[str, str] | None = None
) -> Path:
    """Write ``image`` atomically (temporary file in the same folder, then rename).

    For PNG, ``metadata`` goes into text chunks; other formats ignore it.
    """
    path = check_output_path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise PainterlyError(
            f"unknown output format {path.suffix!r} for {path}; use one of {', '.join(sorted(_FORMATS))}"
        )
    kwargs: dict[str, object] = {}
    if fmt == "PNG" and metadata:
        info = PngImagePlugin.PngInfo()
        for key, value in metadata.items():
            info.add_itxt(key, str(value))
        kwargs["pnginfo"] = info
    elif fmt == "JPEG":
        kwargs["quality"] = 95
    with atomic_write(path) as handle:
        image.save(handle, format=fmt, **kwargs)
    return path
