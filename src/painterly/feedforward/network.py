"""The image transformation network of Johnson et al. 2016, with the fixes that became standard.

Reflection padding instead of zero padding (no dark borders), instance normalization instead of
batch normalization (Ulyanov et al. 2016: contrast does not leak between images of a batch),
nearest-neighbour upsampling followed by a convolution instead of transposed convolutions (no
checkerboard artifacts; Odena et al. 2016), and five residual blocks.

Input and output are RGB in 0-1, NCHW. The output is not clamped during training (the loss sees
the raw values); :meth:`TransformerNet.stylize_tensor` clamps it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from painterly.errors import PainterlyError, did_you_mean

ARCHITECTURE = "johnson2016"

#: Named widths (channels of the first convolution; the next two layers double it each time).
#: ``paper`` is Johnson et al.'s 32-64-128; ``light`` is 16-32-64, about four times cheaper and
#: the default for CPUs.
WIDTHS = {"paper": 32, "light": 16}

RESIDUAL_BLOCKS = 5

#: The network's proportions. ``johnson`` is Johnson et al.'s: the width doubles at each of the two
#: downsamplings (w, 2w, 4w; the residual blocks at 4w) and halves again in the decoder (2w, w).
#: ``compact`` keeps the width ``w`` throughout the encoder and the six residual blocks at quarter
#: resolution, and narrows the decoder to w/4 and w/8 channels: at width 32 about 140k weights and
#: a tenth of the johnson shape's work at full resolution, the proportions of the small networks that
#: paint bold strokes on a CPU in real time (docs/training-findings.md, "The compact shape").
SHAPES = ("johnson", "compact")
#: Residual blocks of each shape (a file records its own count).
SHAPE_BLOCKS = {"johnson": RESIDUAL_BLOCKS, "compact": 6}


def check_shape(shape: object) -> str:
    if shape not in SHAPES:
        hint = did_you_mean(shape, SHAPES) if isinstance(shape, str) else ""
        raise PainterlyError(f"unknown network shape {shape!r}{hint} (known: {', '.join(SHAPES)})")
    return str(shape)


def shape_channels(shape: str, width: int) -> tuple[list[int], list[int]]:
    """The encoder's three widths and the decoder's two for ``shape`` at ``width``."""
    if shape == "compact":
        return [width, width, width], [max(1, width // 4), max(1, width // 8)]
    return [width, 2 * width, 4 * width], [2 * width, width]


#: How the decoder doubles the resolution before each of its two convolutions. ``nearest`` is
#: Johnson et al.'s (with Odena et al.'s resize-convolution); ``bilinear`` gives the network no
#: 4 px grid to lock a texture to (docs/training-findings.md: the hatching of nearest-upsampling
#: models is exactly 4-periodic). Files without the key were trained with ``nearest``.
UPSAMPLE_MODES = ("nearest", "bilinear")


def check_upsample(mode: object) -> str:
    if mode not in UPSAMPLE_MODES:
        raise PainterlyError(f"unknown upsampling {mode!r} (known: {', '.join(UPSAMPLE_MODES)})")
    return str(mode)


def upsample2x(mode: str) -> nn.Upsample:
    if mode == "nearest":
        return nn.Upsample(scale_factor=2, mode="nearest")
    return nn.Upsample(scale_factor=2, mode=mode, align_corners=False)


#: Height and width are padded to a multiple of this (two stride-2 convolutions, then two 2x upsamplings).
MULTIPLE = 4
#: Sides are padded to at least this: the 9x9 convolutions' reflection padding needs more than 4 px
#: and the residual blocks' 3x3 padding more than 1 px after two stride-2 convolutions.
MIN_SIDE = 16


def parse_width(width: int | str) -> int:
    """A named width (``paper``, ``light``) or a positive whole number of channels."""
    if isinstance(width, str):
        if width in WIDTHS:
            return WIDTHS[width]
        if not width.isdigit():
            raise PainterlyError(f"unknown network width {width!r}{did_you_mean(width, WIDTHS)}")
        width = int(width)
    if not isinstance(width, int) or isinstance(width, bool) or width < 1 or width > 256:
        raise PainterlyError(f"network width must be a whole number from 1 to 256, got {width!r}")
    return width


class ConvLayer(nn.Sequential):
    """Reflection padding, then a convolution (optionally strided)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> None:
        super().__init__(
            nn.ReflectionPad2d(kernel // 2), nn.Conv2d(in_channels, out_channels, kernel, stride)
        )


class ConvNormReLU(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> None:
        super().__init__(
            ConvLayer(in_channels, out_channels, kernel, stride),
            nn.InstanceNorm2d(out_channels, affine=True),
            nn.ReLU(inplace=True),
        )


class UpsampleConv(nn.Sequential):
    """2x upsampling (``nearest`` or ``bilinear``), then a convolution, instance norm and ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 3, mode: str = "nearest") -> None:
        super().__init__(upsample2x(mode), ConvNormReLU(in_channels, out_channels, kernel))


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with instance norm, added to the input (no ReLU after the sum)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            ConvNormReLU(channels, channels, 3),
            ConvLayer(channels, channels, 3),
            nn.InstanceNorm2d(channels, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class TransformerNet(nn.Module):
    """Johnson et al.'s transformation network at a given ``width`` (32 in the paper)."""

    def __init__(
        self,
        width: int | str = "light",
        residual_blocks: int | None = None,
        upsample: str = "nearest",
        shape: str = "johnson",
    ) -> None:
        super().__init__()
        w = parse_width(width)
        self.width = w
        self.shape = check_shape(shape)
        self.residual_blocks = SHAPE_BLOCKS[self.shape] if residual_blocks is None else residual_blocks
        self.upsample = check_upsample(upsample)
        (e1, e2, e3), (d1, d2) = shape_channels(self.shape, w)
        self.encoder = nn.Sequential(
            ConvNormReLU(3, e1, 9),
            ConvNormReLU(e1, e2, 3, stride=2),
            ConvNormReLU(e2, e3, 3, stride=2),
        )
        self.residuals = nn.Sequential(*[ResidualBlock(e3) for _ in range(self.residual_blocks)])
        self.decoder = nn.Sequential(
            UpsampleConv(e3, d1, mode=self.upsample),
            UpsampleConv(d1, d2, mode=self.upsample),
            ConvLayer(d2, 3, 9),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in 0-1 with H and W multiples of :data:`MULTIPLE`, to raw (unclamped) RGB."""
        return self.decoder(self.residuals(self.encoder(x)))

    @torch.no_grad()
    def stylize_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """Any (B, 3, H, W) in 0-1: pads (:func:`pad_to_multiple`), runs, crops, clamps."""
        padded, (h, w) = pad_to_multiple(x)
        return self(padded)[..., :h, :w].clamp(0, 1)

    def config(self) -> dict[str, object]:
        config: dict[str, object] = {
            "architecture": ARCHITECTURE,
            "width": self.width,
            "residual_blocks": self.residual_blocks,
            "upsample": self.upsample,
        }
        if self.shape != "johnson":  # files without the key are johnson-shaped, as before
            config["shape"] = self.shape
        return config


def pad_to_multiple(x: torch.Tensor, multiple: int = MULTIPLE) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad the bottom and right of ``x`` so that H and W are multiples of ``multiple``, at least
    :data:`MIN_SIDE`: by reflection where the image is large enough, else by repeating its edge."""
    h, w = x.shape[-2:]
    pad_h = max(MIN_SIDE, h + -h % multiple) - h
    pad_w = max(MIN_SIDE, w + -w % multiple) - w
    if pad_h or pad_w:
        mode = "reflect" if h > pad_h and w > pad_w else "replicate"
        x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
    return x, (h, w)
