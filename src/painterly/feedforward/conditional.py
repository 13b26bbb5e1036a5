"""A multi-style network with conditional instance normalization (Dumoulin, Shlens, Kudlur 2017).

"A Learned Representation for Artistic Style": the transformation network of
:mod:`painterly.feedforward.network` (same convolutions, same layers) where every instance norm
has one scale and one shift *per style* instead of one. All styles share the convolutions; a style
is nothing but its rows of norm parameters (2 x 704 numbers at width 16), so

* one file holds many styles, and a new style can be learned by training only its rows
  (:meth:`ConditionalTransformerNet.add_style`);
* styles blend at inference: the ``style_weights`` input (N, S), a convex combination, mixes the
  rows of every norm layer before they are applied (the paper's interpolation between styles).

``forward(image, style_weights)`` takes the (N, 3, H, W) image in 0-1 and the (N, S) weights.
The statistics of every norm come from an ``nn.InstanceNorm2d`` without affine parameters, so the
tiled inference (:mod:`painterly.feedforward.tiling`) fixes them over the whole image as it does
for the single-style network.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from painterly.feedforward.mixing import STYLE_WEIGHTS, StyleMix, check_style_names, mix_vector
from painterly.feedforward.network import (
    MULTIPLE,
    RESIDUAL_BLOCKS,
    ConvLayer,
    check_upsample,
    pad_to_multiple,
    parse_width,
    upsample2x,
)

ARCHITECTURE = "cin"


class ConditionalInstanceNorm(nn.Module):
    """Instance norm whose scale and shift are the ``weights``-mix of per-style rows."""

    def __init__(self, channels: int, styles: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.scale = nn.Parameter(torch.ones(styles, channels))
        self.shift = nn.Parameter(torch.zeros(styles, channels))

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        gamma = (weights.to(self.scale.dtype) @ self.scale).to(x.dtype)[:, :, None, None]
        beta = (weights.to(self.shift.dtype) @ self.shift).to(x.dtype)[:, :, None, None]
        return self.norm(x) * gamma + beta


class ConvCIN(nn.Module):
    """(Optional 2x upsampling,) reflection-padded convolution, conditional norm, ReLU (optional)."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        styles: int,
        stride: int = 1,
        *,
        up: str | None = None,
        relu: bool = True,
    ) -> None:
        super().__init__()
        self.up = upsample2x(up) if up else None
        self.conv = ConvLayer(cin, cout, kernel, stride)
        self.norm = ConditionalInstanceNorm(cout, styles)
        self.relu = relu

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        if self.up is not None:
            x = self.up(x)
        x = self.norm(self.conv(x), weights)
        return torch.relu(x) if self.relu else x


class ConditionalResidualBlock(nn.Module):
    def __init__(self, channels: int, styles: int) -> None:
        super().__init__()
        self.first = ConvCIN(channels, channels, 3, styles)
        self.second = ConvCIN(channels, channels, 3, styles, relu=False)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return x + self.second(self.first(x, weights), weights)


class ConditionalTransformerNet(nn.Module):
    """Johnson et al.'s network at ``width`` with conditional instance norm over ``styles`` (names)."""

    def __init__(
        self,
        width: int | str,
        styles: Sequence[str],
        residual_blocks: int = RESIDUAL_BLOCKS,
        upsample: str = "nearest",
    ) -> None:
        super().__init__()
        self.styles = check_style_names(styles)
        w = parse_width(width)
        s = len(self.styles)
        self.width = w
        self.residual_blocks = residual_blocks
        self.upsample = check_upsample(upsample)
        self.layers = nn.ModuleList(
            [
                ConvCIN(3, w, 9, s),
                ConvCIN(w, 2 * w, 3, s, stride=2),
                ConvCIN(2 * w, 4 * w, 3, s, stride=2),
                *[ConditionalResidualBlock(4 * w, s) for _ in range(residual_blocks)],
                ConvCIN(4 * w, 2 * w, 3, s, up=self.upsample),
                ConvCIN(2 * w, w, 3, s, up=self.upsample),
            ]
        )
        self.output = ConvLayer(w, 3, 9)

    def forward(self, x: torch.Tensor, style_weights: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in 0-1 (H, W multiples of :data:`MULTIPLE`) and (B, S) weights to raw RGB."""
        for layer in self.layers:
            x = layer(x, style_weights)
        return self.output(x)

    def norms(self) -> list[ConditionalInstanceNorm]:
        return [m for m in self.modules() if isinstance(m, ConditionalInstanceNorm)]

    def weights_for(self, mix: StyleMix | None, batch: int, device: torch.device) -> torch.Tensor:
        """The (batch, S) weights of a mix ``{style name: weight}`` (normalized; None: the first style)."""
        row = torch.tensor(mix_vector(self.styles, mix), dtype=torch.float32, device=device)
        return row.expand(batch, -1)

    @torch.no_grad()
    def stylize_tensor(self, x: torch.Tensor, style_weights: torch.Tensor | None = None) -> torch.Tensor:
        """Any (B, 3, H, W) in 0-1, (B, S) weights (default: the first style): pads, runs, crops, clamps."""
        if style_weights is None:
            style_weights = self.weights_for(None, x.shape[0], x.device)
        padded, (h, w) = pad_to_multiple(x)
        return self(padded, style_weights)[..., :h, :w].clamp(0, 1)

    def add_style(self, name: str) -> int:
        """Append a style whose norm rows start at the mean of the existing styles'; returns its index."""
        self.styles = check_style_names([*self.styles, name])
        for norm in self.norms():
            for attribute in ("scale", "shift"):
                old = getattr(norm, attribute)
                rows = torch.cat([old.data, old.data.mean(dim=0, keepdim=True)])
                setattr(norm, attribute, nn.Parameter(rows, requires_grad=old.requires_grad))
        return len(self.styles) - 1

    def train_only_style(self, index: int) -> list[nn.Parameter]:
        """Freeze everything but style ``index``'s norm rows; returns the parameters left trainable.

        Rows of one tensor cannot be frozen apart, so the other rows' gradients are zeroed by a
        hook: with Adam (no weight decay) a parameter whose gradient is always zero never moves.
        """
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        keep = torch.zeros(len(self.styles), 1)
        keep[index] = 1.0
        trainable: list[nn.Parameter] = []
        for norm in self.norms():
            for parameter in (norm.scale, norm.shift):
                parameter.requires_grad_(True)
                mask = keep.to(parameter.device, parameter.dtype)
                parameter.register_hook(lambda grad, mask=mask: grad * mask)
                trainable.append(parameter)
        return trainable

    def config(self) -> dict[str, object]:
        return {
            "architecture": ARCHITECTURE,
            "width": self.width,
            "residual_blocks": self.residual_blocks,
            "upsample": self.upsample,
            "styles": list(self.styles),
        }


__all__ = ["ARCHITECTURE", "MULTIPLE", "STYLE_WEIGHTS", "ConditionalTransformerNet", "mix_vector"]
