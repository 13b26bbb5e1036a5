"""VGG layer names, free of torch: conv1_1, relu1_1, ..., pool5."""

from __future__ import annotations

from collections.abc import Iterable

from painterly.errors import PainterlyError, did_you_mean

#: Convolutions per block.
ARCHITECTURES: dict[str, tuple[int, ...]] = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
TORCHVISION_MEAN_RGB = (0.485, 0.456, 0.406)
TORCHVISION_STD_RGB = (0.229, 0.224, 0.225)
CONVENTIONS = ("caffe", "torchvision")


def layer_names(arch: str) -> list[str]:
    """All layer names of ``arch`` in order: conv1_1, relu1_1, ..., pool5."""
    if arch not in ARCHITECTURES:
        raise PainterlyError(f"unknown network {arch!r}{did_you_mean(arch, ARCHITECTURES)}")
    names = []
    for block, count in enumerate(ARCHITECTURES[arch], start=1):
        for index in range(1, count + 1):
            names += [f"conv{block}_{index}", f"relu{block}_{index}"]
        names.append(f"pool{block}")
    return names


def conv_names(arch: str) -> list[str]:
    return [name for name in layer_names(arch) if name.startswith("conv")]


def check_layers(arch: str, layers: Iterable[str]) -> list[str]:
    """Validate layer names, suggesting the closest one for a typo."""
    known = layer_names(arch)
    checked = []
    for layer in layers:
        if layer not in known:
            raise PainterlyError(f"unknown layer {layer!r} for {arch}{did_you_mean(layer, known)}")
        checked.append(layer)
    return checked
