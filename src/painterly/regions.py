"""Region masks given by users: loaded as greyscale, and checked before any work.

A mask is an image of any size whose brightness says how much a pixel belongs to a region: white
is inside, black outside, grey in between (soft edges). Colour images count by their luminance;
transparent pixels count as outside (a brush stroke on a transparent layer is the region). Masks
are resized to the picture at every scale by the painter, so only their shape matters here.

Style masks come one per style image, in the same order; every pixel must belong to at least
one of them (a pixel no style may paint has no meaning), and none may be empty. The keep mask
marks where the output stays closer to the photo (a larger content weight there).

For a trained network (``stylize --mask``) one mask says where the stylized picture replaces
the photo: :func:`region_alpha` resizes it to the picture and feathers its edge.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from painterly.errors import PainterlyError
from painterly.images import MAX_PIXELS, ImageInput, check_input_file, decode_image, read_input_file

#: A mask whose brightest pixel is below this (0-255) is "all black": it marks no region.
EMPTY_LEVEL = 3
#: Masks that sum to less than this (0-255) at a pixel leave that pixel to no style.
UNCOVERED_LEVEL = 0.5
#: The grid on which masks of different sizes are compared (long side, pixels).
CHECK_SIDE = 512


def mask_from_image(image: Image.Image) -> Image.Image:
    """A greyscale (mode ``L``) mask from any image: luminance, transparent pixels as black."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    ):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, rgba).convert("L")
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # 16-bit and float greyscale: the image module's scaling to 8 bits, then luminance.
        from painterly.images import to_rgb

        return to_rgb(image).convert("L")
    return image.convert("L")


def open_mask(source: ImageInput, what: str = "mask") -> Image.Image:
    """Load a mask (path, encoded bytes, PIL image, array, or tensor in 0-1) as a mode-``L`` image."""
    if isinstance(source, Image.Image):
        if source.width * source.height > MAX_PIXELS:
            raise PainterlyError(f"{what} is {source.width}x{source.height}, too many pixels")
        return mask_from_image(source)
    if isinstance(source, np.ndarray) or type(source).__module__.startswith("torch"):
        return _array_mask(np.asarray(source.detach().cpu() if hasattr(source, "detach") else source), what)
    if isinstance(source, bytes | bytearray | memoryview):
        return mask_from_image(_decode(bytes(source), what))
    if isinstance(source, str | os.PathLike):
        path = check_input_file(source, what)
        return mask_from_image(_decode(read_input_file(path, what), f"{what} {path}"))
    raise PainterlyError(f"{what}: expected a path, PIL image or array, got {type(source).__name__}")


def _decode(data: bytes, what: str) -> Image.Image:
    """Decoded with the image module's checks (size cap, bombs, corrupt files), alpha kept."""
    return decode_image(data, what=what, convert=False)


def _array_mask(array: np.ndarray, what: str) -> Image.Image:
    """An HxW array (or 1xHxW, 1x1xHxW, HxWx1/3/4): uint8 0-255, or floats/bools in 0-1."""
    while array.ndim > 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 3 and array.shape[2] in (1, 3, 4):
        if array.shape[2] == 4:  # RGBA: luminance times alpha
            alpha = array[..., 3:4].astype(np.float64) / (255.0 if array.dtype == np.uint8 else 1.0)
            array = (array[..., :3] * alpha).astype(array.dtype)
        array = array[..., :3].mean(axis=2) if array.shape[2] >= 3 else array[..., 0]
        array = array if array.dtype != np.float64 else array.astype(np.float32)
    if array.ndim != 2:
        raise PainterlyError(f"{what}: an array mask must be HxW (or HxWx3), got shape {array.shape}")
    if array.dtype == np.bool_:
        data = array.astype(np.uint8) * 255
    elif array.dtype == np.uint8:
        data = array
    elif np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer):
        values = array.astype(np.float64)
        if not np.isfinite(values).all():
            raise PainterlyError(f"{what} contains NaN or infinite values")
        top = 1.0 if np.issubdtype(array.dtype, np.floating) else float(np.iinfo(array.dtype).max)
        data = (np.clip(values / top, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    else:
        raise PainterlyError(f"{what}: unsupported array type {array.dtype}")
    return Image.fromarray(np.ascontiguousarray(data), "L")


def check_not_empty(mask: Image.Image, what: str) -> None:
    if int(np.asarray(mask.convert("L")).max()) < EMPTY_LEVEL:
        raise PainterlyError(f"{what} is all black: it marks no region (white is inside, black outside)")


def check_style_masks(masks: Sequence[Image.Image], styles: int) -> None:
    """One mask per style image, none empty, and together covering every pixel; else one error."""
    if len(masks) != styles:
        raise PainterlyError(
            f"{styles} style image(s) but {len(masks)} mask(s): give one mask per style, in the same order"
        )
    for index, mask in enumerate(masks):
        check_not_empty(mask, f"mask {index + 1}")
    total = _coverage(masks)
    uncovered = total < UNCOVERED_LEVEL
    if uncovered.any():
        ys, xs = np.nonzero(uncovered)
        height, width = total.shape
        x, y = xs[0] / width, ys[0] / height
        raise PainterlyError(
            f"the masks leave {uncovered.mean():.1%} of the picture to no style (black in every mask, "
            f"e.g. at {x:.0%} across, {y:.0%} down): every pixel must be white or grey in at least one "
            "mask (to keep a region as the photo, use a keep mask)"
        )


def _coverage(masks: Sequence[Image.Image]) -> np.ndarray:
    """The sum of the masks (0-255 each) on one grid: the largest mask's shape, at most CHECK_SIDE.

    Resizing averages with non-negative weights, so a pixel covered on this grid stays covered at
    every size the painter resizes the masks to, and an uncovered one is uncovered at full size.
    """
    width, height = max((m.size for m in masks), key=lambda size: size[0] * size[1])
    scale = min(1.0, CHECK_SIDE / max(width, height))
    grid = (max(1, round(width * scale)), max(1, round(height * scale)))
    total = np.zeros((grid[1], grid[0]), dtype=np.float64)
    for mask in masks:
        # BOX is an exact area average (no overshoot), so a thin stroke still counts where it is.
        total += np.asarray(mask.resize(grid, Image.Resampling.BOX), dtype=np.float64)
    return total


def load_style_masks(sources: Sequence[ImageInput], styles: int) -> list[Image.Image]:
    """Open and check the style masks (see :func:`check_style_masks`)."""
    if len(sources) != styles:
        raise PainterlyError(
            f"{styles} style image(s) but {len(sources)} mask(s): give one mask per style, in the same order"
        )
    masks = [open_mask(source, f"mask {index + 1}") for index, source in enumerate(sources)]
    check_style_masks(masks, styles)
    return masks


def load_mask(source: ImageInput, what: str = "keep mask") -> Image.Image:
    """Open and check a single mask (the keep mask, or a stylize mask): an image, not all black."""
    mask = open_mask(source, what)
    check_not_empty(mask, what)
    return mask


#: ``stylize --mask``'s default feather: the Gaussian blur radius of the mask's edge, in pixels.
DEFAULT_FEATHER = 8.0


def check_feather(feather: object) -> float:
    if isinstance(feather, bool) or not isinstance(feather, int | float) or not 0 <= feather <= 1000:
        raise PainterlyError(f"feather must be a number of pixels from 0 to 1000, got {feather!r}")
    return float(feather)


def region_alpha(mask: Image.Image, size: tuple[int, int], feather: float = DEFAULT_FEATHER) -> np.ndarray:
    """The mask at ``size`` (width, height) as an HxW float32 array in 0-1, its edge blurred by a
    Gaussian of radius ``feather`` px (0: as given); use it as ``photo + alpha * (styled - photo)``."""
    resized = mask.convert("L").resize(size, Image.Resampling.BILINEAR)
    if feather > 0:
        resized = resized.filter(ImageFilter.GaussianBlur(feather))
    return np.asarray(resized, dtype=np.float32) / 255.0
