"""Blend single-style models by their weights into one network that paints between their styles.

Networks fine-tuned from one start stay close to each other in weight space. The CPU campaign's
styles all start from one finished network (``train --init``), and the_wave's network at step
3000 still has a per-tensor cosine similarity of 0.91-0.99 with the starry_night it started from.
The weighted mean of such networks' weights paints a blend of their styles (at step 3000, half of
each: starry_night's swirls and the_wave's crests, in a palette between the two), and it runs at
the cost of one network. Networks trained apart are different: their mean paints mush. So
:func:`blend_models` refuses them when the mean cosine similarity of their convolutions falls
below :data:`RELATED`. Independent random starts give about 0.

``painterly models blend starry_night:0.6 the_wave:0.4 -o mine.safetensors`` is the command. The
result is an ordinary model file, which ``stylize``, ``video``, ``export`` and the server use like
any other. A multi-style model (``zoo``) blends its own styles with ``--style-mix`` instead.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from painterly.errors import PainterlyError, shown
from painterly.feedforward.catalog import resolve_model
from painterly.feedforward.files import refuse_overwriting_inputs
from painterly.feedforward.model_file import (
    build_network,
    check_model_name,
    check_model_output,
    read_metadata,
    read_tensors,
    write_model_file,
)
from painterly.numbers import check_range, parse_decimal, quoted

if TYPE_CHECKING:
    import torch

#: The least mean cosine similarity (over the convolution weights) between each model and the
#: first one: the campaign's fine-tuned styles are at 0.96-0.99, and independent starts at about 0.
RELATED = 0.5
#: The largest weight (only their ratios matter; a bound keeps their sum finite).
MAX_WEIGHT = 1e6
_WEIGHT = re.compile(r"[0-9.eE+-]+")


@dataclass(frozen=True)
class BlendPart:
    """One source of a blend: the model (a name or a file) and its weight (any positive number;
    the weights are normalized to sum to 1)."""

    model: str
    weight: float = 1.0


def parse_blend_part(text: str) -> BlendPart:
    """``MODEL`` or ``MODEL:WEIGHT`` (``the_wave:0.4``). Only a number after the last colon is a
    weight, so a file name holding a colon still names a model."""
    model, sep, weight = text.rpartition(":")
    if not sep or not _WEIGHT.fullmatch(weight.strip()):
        model, weight = text, ""
    if not model.strip():
        raise PainterlyError(f"expected MODEL[:WEIGHT], got {quoted(text)}")
    value = (
        parse_decimal(weight, f"the weight of {model}", minimum=0, maximum=MAX_WEIGHT, exclusive_minimum=True)
        if weight
        else 1.0
    )
    return BlendPart(model, value)


@dataclass(frozen=True)
class _Source:
    path: Path
    weight: float
    metadata: dict[str, Any]
    config: dict[str, Any]  # the network's own description: architecture, width, depth, ...
    tensors: dict[str, torch.Tensor]


def _read_source(part: BlendPart, total: float) -> _Source:
    """The model's network, built and loaded as for stylizing (weights checked against the
    architecture and for NaN), refused if it is a multi-style one."""
    path = resolve_model(part.model)
    metadata = read_metadata(path)
    if isinstance(metadata.get("styles"), list):
        raise PainterlyError(
            f"{shown(part.model)!r} is a multi-style model: it blends its own styles with "
            f"--style-mix (painterly stylize PHOTO -m {shown(part.model)} --style-mix A:0.5,B:0.5)"
        )
    net, metadata, _ = build_network(path, metadata, lambda: read_tensors(path))
    tensors = {f"net/{k}": v.detach().float() for k, v in net.state_dict().items()}
    return _Source(path, part.weight / total, metadata, dict(net.config()), tensors)


def _check_same_network(first: _Source, other: _Source) -> None:
    keys = sorted(first.config.keys() | other.config.keys())
    differ = [
        f"{key} {first.config.get(key, 'default')} against {other.config.get(key, 'default')}"
        for key in keys
        if first.config.get(key) != other.config.get(key)
    ]
    if differ:
        raise PainterlyError(
            f"{other.path.name} is not the same network as {first.path.name} ({'; '.join(differ)}): "
            "only models of one shape can be blended by their weights"
        )


def relatedness(first: Mapping[str, torch.Tensor], other: Mapping[str, torch.Tensor]) -> float:
    """Mean cosine similarity of the two networks' convolution weights (tensors of 2 or more axes)."""
    import torch

    values = [
        float(torch.nn.functional.cosine_similarity(first[k].flatten(), other[k].flatten(), dim=0))
        for k in first
        if first[k].ndim >= 2
    ]
    return sum(values) / len(values) if values else 0.0


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def blend_models(parts: Sequence[BlendPart], output: str | os.PathLike, *, name: str | None = None) -> Path:
    """Write the weighted mean of ``parts``' weights as a model file at ``output``; its metadata
    records each source (name, style, SHA-256 of the file, normalized weight) under ``blend``."""
    import torch

    if len(parts) < 2:
        raise PainterlyError("a blend needs two models or more (MODEL:WEIGHT MODEL:WEIGHT ...)")
    output = check_model_output(output)
    check_model_name(name)
    for part in parts:  # a library caller's BlendPart is not parsed: check it here too
        if not isinstance(part.weight, int | float) or not math.isfinite(part.weight):
            raise PainterlyError(
                f"the weight of {shown(part.model)} must be a finite number, got {part.weight!r}"
            )
        check_range(f"the weight of {shown(part.model)}", part.weight, 0, MAX_WEIGHT, exclusive_minimum=True)
    total = sum(part.weight for part in parts)
    sources = [_read_source(part, total) for part in parts]
    paths = [source.path for source in sources]
    if len({path.resolve() for path in paths}) < len(paths):
        raise PainterlyError("a model is named twice in the blend; give it one weight")
    refuse_overwriting_inputs(output, paths)
    first = sources[0]
    for other in sources[1:]:
        _check_same_network(first, other)
        similarity = relatedness(first.tensors, other.tensors)
        if similarity < RELATED:
            raise PainterlyError(
                f"{other.path.name} and {first.path.name} were not trained from one start (their "
                f"weights' similarity is {similarity:.2f}, under {RELATED}): the mean of their weights "
                "would paint mush. Blend models fine-tuned from one network (train --init), or blend "
                "the pictures: stylize with each and mix them, or a multi-style model's --style-mix"
            )
    blended = {
        key: torch.stack([source.tensors[key] * source.weight for source in sources]).sum(0)
        for key in first.tensors
    }
    # The network's description carries over; any one source's training record (losses, steps,
    # style image) would be false of the blend, which records its sources instead.
    metadata: dict[str, Any] = dict(first.config)
    label = " + ".join(
        f"{source.metadata.get('name', source.path.stem)} {100 * source.weight:.0f}%" for source in sources
    )
    metadata.update(
        name=name or "blend",
        style=f"blend: {label}",
        blend=[
            {
                "model": source.metadata.get("name", source.path.stem),
                "style": source.metadata.get("style"),
                "sha256": _sha256(source.path),
                "weight": round(source.weight, 6),
            }
            for source in sources
        ],
    )
    net, _, _ = build_network(output, first.metadata, lambda: blended)
    return write_model_file(output, net, metadata)


__all__ = ["RELATED", "BlendPart", "blend_models", "parse_blend_part", "relatedness"]
