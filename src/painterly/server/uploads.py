"""Uploaded images, decoded with bounded memory.

A 1 MB upload can hold a 40-megapixel image (120 MB once decoded), and a request several of them,
while the server only ever needs them at the output size. So: every image's header is checked
(per-image and per-request pixel caps) before any is decoded; JPEGs are decoded at a reduced scale
(draft mode); other formats are reduced right after decoding, before any colour conversion (16-bit
images never go through float64 at full size); and only ``ServerSettings.max_decodes`` images are
decoded at once over all requests, waited for without holding a thread.
"""

from __future__ import annotations

import asyncio
import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, TypeVar

from fastapi.concurrency import run_in_threadpool
from PIL import Image

from painterly.errors import PainterlyError
from painterly.images import resize_long_side, to_rgb
from painterly.regions import mask_from_image

T = TypeVar("T")

#: Modes Image.reduce works on directly; the others are converted first.
_REDUCIBLE = frozenset({"L", "LA", "RGB", "RGBA", "CMYK", "YCbCr", "I", "F", "La", "RGBa", "RGBX"})


@dataclass
class Upload:
    """One uploaded image: its file, how messages name it, and the long side it is needed at. A
    mask is decoded as greyscale, transparent pixels black (:func:`painterly.regions.mask_from_image`)."""

    file: BinaryIO
    what: str
    long_side: int
    mask: bool = False


def _open(upload: Upload, max_pixels: int) -> Image.Image:
    upload.file.seek(0)
    if not upload.file.read(1):
        raise PainterlyError(f"{upload.what} is empty")
    upload.file.seek(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        image = Image.open(upload.file)
    width, height = image.size
    if width * height > max_pixels:
        raise PainterlyError(
            f"{upload.what} is {width}x{height} = {width * height:,} pixels, more than the limit of "
            f"{max_pixels:,} (a possible decompression bomb)"
        )
    return image


def _guarded(upload: Upload, action: Callable[[], T]) -> T:
    """Pillow's many exceptions as one-line user errors."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return action()
    except PainterlyError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PainterlyError(
            f"{upload.what} is too large to decode safely (a possible decompression bomb)"
        ) from None
    except Image.UnidentifiedImageError:
        raise PainterlyError(f"{upload.what} is not an image (or not a format Pillow can read)") from None
    except (OSError, SyntaxError, ValueError, MemoryError) as exc:
        raise PainterlyError(f"{upload.what} is truncated or corrupt: {str(exc)[:120]}") from None


def check_headers(uploads: list[Upload], *, max_pixels: int, max_request_pixels: int) -> None:
    """Every image's size from its header, before anything is decoded."""
    total = 0
    for upload in uploads:
        image = _guarded(upload, functools.partial(_open, upload, max_pixels))
        total += image.size[0] * image.size[1]
        del image  # not close(): that would close the upload too
    if total > max_request_pixels:
        raise PainterlyError(
            f"the images of this request have {total:,} pixels together, more than this server's "
            f"limit of {max_request_pixels:,}"
        )


def decode_shrunk(upload: Upload, *, max_pixels: int) -> Image.Image:
    """Decode one upload as 8-bit RGB no larger than ``upload.long_side`` on its long side."""

    def decode() -> Image.Image:
        image = _open(upload, max_pixels)
        target = upload.long_side
        if image.format == "JPEG":
            image.draft("RGB", (target, target))  # decodes at 1/2, 1/4 or 1/8 scale, never below target
        image.load()
        factor = max(image.size) // target
        if factor >= 2:
            if image.mode not in _REDUCIBLE:
                image = image.convert("I" if image.mode.startswith("I;16") else "RGBA")
            image = image.reduce(factor)
        return image  # reduce() keeps ``info``, so to_rgb still applies the EXIF orientation

    small = _guarded(upload, decode)
    rgb = mask_from_image(small) if upload.mask else to_rgb(small)
    return resize_long_side(rgb, upload.long_side) if max(rgb.size) > upload.long_side else rgb


class Decoder:
    """Decodes uploads in worker threads, at most ``limit`` at once; waiting holds no thread."""

    def __init__(self, limit: int, max_pixels: int, max_request_pixels: int) -> None:
        self.max_pixels = max_pixels
        self.max_request_pixels = max_request_pixels
        self._slots = asyncio.Semaphore(limit)

    async def decode(self, uploads: list[Upload]) -> list[Image.Image]:
        await run_in_threadpool(
            check_headers, uploads, max_pixels=self.max_pixels, max_request_pixels=self.max_request_pixels
        )
        images = []
        for upload in uploads:
            async with self._slots:
                images.append(await run_in_threadpool(decode_shrunk, upload, max_pixels=self.max_pixels))
        return images
