"""VGG16/VGG19 feature extractors with named layers (conv1_1 ... relu5_4).

Callers always pass RGB images in 0-1. The network converts them to the input convention of
its weights: ``caffe`` (BGR, 0-255, minus the ImageNet mean; the original weights) or
``torchvision`` (RGB, 0-1, normalized by ImageNet mean and std).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from painterly.errors import PainterlyError
from painterly.vgg.layers import (
    CAFFE_MEAN_BGR,
    CONVENTIONS,
    TORCHVISION_MEAN_RGB,
    TORCHVISION_STD_RGB,
    check_layers,
    layer_names,
)


class VGG(nn.Module):
    """A VGG feature extractor truncated after the deepest layer it is built for.

    ``forward(image, layers)`` returns a dict of the requested activations. Parameters are
    frozen: the network is only ever a fixed loss network here.
    """

    scale: torch.Tensor  # buffers, registered in __init__
    shift: torch.Tensor
    origin: str  # where the weights came from, set by load_vgg

    def __init__(
        self,
        arch: str,
        state: Mapping[str, torch.Tensor],
        *,
        convention: str = "caffe",
        pooling: str = "max",
        last_layer: str | None = None,
    ) -> None:
        super().__init__()
        if convention not in CONVENTIONS:
            raise PainterlyError(f"unknown input convention {convention!r}; use one of {CONVENTIONS}")
        if pooling not in ("max", "avg"):
            raise PainterlyError(f"pooling must be 'max' or 'avg', got {pooling!r}")
        self.arch = arch
        self.convention = convention
        self.pooling = pooling
        names = layer_names(arch)
        last_layer = last_layer or names[-1]
        check_layers(arch, [last_layer])
        self.names = names[: names.index(last_layer) + 1]
        self.convs = nn.ModuleDict()
        for name in self.names:
            if name.startswith("conv"):
                weight = state[f"{name}.weight"]
                conv = nn.Conv2d(weight.shape[1], weight.shape[0], 3, padding=1)
                with torch.no_grad():
                    conv.weight.copy_(weight)
                    assert conv.bias is not None  # built with a bias
                    conv.bias.copy_(state[f"{name}.bias"])
                self.convs[name] = conv
        if convention == "caffe":
            scale = torch.full((3,), 255.0)
            shift = torch.tensor(CAFFE_MEAN_BGR[::-1])  # in RGB order, flipped with the image below
        else:
            scale = 1.0 / torch.tensor(TORCHVISION_STD_RGB)
            shift = torch.tensor(TORCHVISION_MEAN_RGB) * scale
        self.register_buffer("scale", scale.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", shift.view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    @property
    def last_layer(self) -> str:
        return self.names[-1]

    def preprocess(self, image: torch.Tensor) -> torch.Tensor:
        """RGB 0-1 to the weights' own input convention."""
        x = image * self.scale - self.shift
        return x.flip(1) if self.convention == "caffe" else x

    def forward(self, image: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        wanted = set(layers)
        missing = wanted - set(self.names)
        if missing:
            raise PainterlyError(
                f"layer(s) {sorted(missing)} are not in this network (built up to {self.last_layer})"
            )
        deepest = max(self.names.index(name) for name in wanted)
        x = self.preprocess(image)
        out: dict[str, torch.Tensor] = {}
        for name in self.names[: deepest + 1]:
            kind = name[:4]
            if kind == "conv":
                x = self.convs[name](x)
            elif kind == "relu":
                # In place when nobody keeps the conv output: saves one activation per layer.
                x = F.relu(x, inplace=f"conv{name[4:]}" not in wanted)
            elif self.pooling == "max":
                x = F.max_pool2d(x, 2, ceil_mode=True)
            else:
                x = F.avg_pool2d(x, 2, ceil_mode=True)
            if name in wanted:
                out[name] = x
        return out
