"""The catalog of network kinds a model file may name in its ``architecture`` metadata key.

Loading (:func:`painterly.feedforward.model_file.read_model_file`), ``painterly models info``, ONNX
export and the server all look a network kind up here, so a new kind (a multi-style network with
conditional instance norm, an arbitrary-style network) is one network module plus one
:func:`register` call below. Files written before the key existed load as :data:`DEFAULT`.

This module imports no torch; the builders import their network module when called.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from painterly.errors import PainterlyError, did_you_mean

if TYPE_CHECKING:
    import torch
    from torch import nn

#: The kind of files that do not name one (all files written before the registry existed).
DEFAULT = "johnson2016"


@dataclass(frozen=True)
class OnnxInput:
    """One input of an exported graph: its name, an example tensor and its dynamic axes."""

    name: str
    example: torch.Tensor
    dynamic_axes: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Architecture:
    """A network kind: how to build it from a file's metadata and what its ONNX graph takes.

    ``build`` gets the file's metadata (the network's own ``config()`` keys among them) and
    returns an ``nn.Module`` whose ``forward`` takes the ONNX inputs in order, the first being the
    (N, 3, H, W) image in 0-1, and which has ``stylize_tensor(image)`` and ``config()``.
    """

    name: str
    build: Callable[[Mapping[str, Any]], nn.Module]
    onnx_inputs: Callable[[nn.Module], list[OnnxInput]]
    description: str = ""


_CATALOG: dict[str, Architecture] = {}


def register(architecture: Architecture) -> Architecture:
    if architecture.name in _CATALOG:
        raise ValueError(f"architecture {architecture.name!r} is already registered")
    _CATALOG[architecture.name] = architecture
    return architecture


def names() -> list[str]:
    return sorted(_CATALOG)


def get(name: object) -> Architecture:
    """The architecture called ``name``; None (an old file) means :data:`DEFAULT`."""
    if name is None:
        name = DEFAULT
    if not isinstance(name, str) or name not in _CATALOG:
        hint = did_you_mean(name, _CATALOG) if isinstance(name, str) else ""
        raise PainterlyError(
            f"network architecture {name!r} is not supported by this painterly{hint} "
            f"(known: {', '.join(names())})"
        )
    return _CATALOG[name]


def _int(metadata: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = metadata.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise PainterlyError(f"the metadata has no valid {key.replace('_', ' ')} ({value!r})")
    return value


def _upsample(metadata: Mapping[str, Any]) -> str:
    """The decoder's upsampling; files written before the key existed used nearest neighbour."""
    from painterly.feedforward.network import check_upsample

    try:
        return check_upsample(metadata.get("upsample", "nearest"))
    except PainterlyError as exc:
        raise PainterlyError(f"the metadata has no valid upsampling: {exc}") from None


def _shape(metadata: Mapping[str, Any]) -> str:
    """The network's proportions; files written before the key existed are johnson-shaped."""
    from painterly.feedforward.network import check_shape

    try:
        return check_shape(metadata.get("shape", "johnson"))
    except PainterlyError as exc:
        raise PainterlyError(f"the metadata has no valid shape: {exc}") from None


def _build_johnson(metadata: Mapping[str, Any]) -> nn.Module:
    from painterly.feedforward.network import SHAPE_BLOCKS, TransformerNet

    shape = _shape(metadata)
    blocks = _int(metadata, "residual_blocks", SHAPE_BLOCKS[shape])
    if not 0 <= blocks <= 64:
        raise PainterlyError(f"the metadata has no valid residual blocks ({blocks!r})")
    return TransformerNet(_int(metadata, "width"), blocks, _upsample(metadata), shape)


def _image_input(net: nn.Module) -> list[OnnxInput]:
    import torch

    return [OnnxInput("image", torch.rand(1, 3, 64, 64), {0: "batch", 2: "height", 3: "width"})]


register(
    Architecture(
        DEFAULT,
        _build_johnson,
        _image_input,
        "Johnson et al. 2016 transformation network (reflection padding, instance norm, upsample-conv)",
    )
)


def _build_cin(metadata: Mapping[str, Any]) -> nn.Module:
    from painterly.feedforward.conditional import ConditionalTransformerNet
    from painterly.feedforward.network import RESIDUAL_BLOCKS

    blocks = _int(metadata, "residual_blocks", RESIDUAL_BLOCKS)
    if not 0 <= blocks <= 64:
        raise PainterlyError(f"the metadata has no valid residual blocks ({blocks!r})")
    styles = metadata.get("styles")
    if not isinstance(styles, list) or not 1 <= len(styles) <= 1024:
        raise PainterlyError(f"the metadata has no valid list of styles ({styles!r})")
    return ConditionalTransformerNet(_int(metadata, "width"), styles, blocks, _upsample(metadata))


def _image_and_style_weights(net: nn.Module) -> list[OnnxInput]:
    import torch

    from painterly.feedforward.conditional import STYLE_WEIGHTS

    styles = len(net.styles)  # type: ignore[arg-type]
    weights = torch.full((1, styles), 1.0 / styles)
    return [*_image_input(net), OnnxInput(STYLE_WEIGHTS, weights, {0: "batch"})]


register(
    Architecture(
        "cin",
        _build_cin,
        _image_and_style_weights,
        "multi-style network with conditional instance norm (Dumoulin et al. 2017); blends styles",
    )
)
