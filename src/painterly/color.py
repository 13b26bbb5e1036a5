"""Keeping the photo's colours (Gatys et al. 2016, "Preserving Color in Neural Artistic Style Transfer")."""

from __future__ import annotations

import numpy as np
from PIL import Image

from painterly.errors import PainterlyError, did_you_mean

#: ``none``; ``luminance``: keep the photo's chroma, take only the luminance of the result;
#: ``histogram``: match each style image's colour histogram to the photo before transfer.
PRESERVE_COLORS = ("none", "luminance", "histogram")


def check_preserve_colors(mode: str) -> str:
    if mode not in PRESERVE_COLORS:
        raise PainterlyError(f"unknown colour mode {mode!r}{did_you_mean(mode, PRESERVE_COLORS)}")
    return mode


def transfer_luminance(stylized: Image.Image, content: Image.Image) -> Image.Image:
    """The luminance (Y of YCbCr) of ``stylized`` with the chroma (CbCr) of ``content``."""
    if content.size != stylized.size:
        content = content.resize(stylized.size, Image.Resampling.LANCZOS)
    luma = stylized.convert("YCbCr").getchannel("Y")
    _, cb, cr = content.convert("YCbCr").split()
    return Image.merge("YCbCr", (luma, cb, cr)).convert("RGB")


def match_color_histogram(style: Image.Image, content: Image.Image) -> Image.Image:
    """``style`` repainted so that each RGB channel's histogram matches ``content``'s."""
    from skimage.exposure import match_histograms

    matched = match_histograms(np.asarray(style), np.asarray(content), channel_axis=-1)
    return Image.fromarray(np.clip(matched + 0.5, 0, 255).astype(np.uint8), "RGB")
