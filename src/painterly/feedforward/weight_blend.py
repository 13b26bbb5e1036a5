"""Blend single-style models by their weights into one network that paints between their styles.

Networks fine-tuned from one start stay close to each other in weight space. The CPU campaign's
styles all descend from one finished network (``train --init``): the shipped the_wave, after
10,000 steps of its own, still has a per-tensor cosine similarity of 0.87 on average (0.77 at the
least) with the starry_night it started from, its weights 9-26% larger. The weighted mean of such
networks' weights paints a blend of their styles (half of each: Hokusai's crests with some of Van
Gogh's yellow, in a palette between the two), and it runs at the cost of one network. Networks
trained apart are different: their mean paints mush. So
:func:`blend_models` refuses them when the mean cosine similarity of their convolutions falls
below :data:`RELATED`. Independent random starts give about 0.

``painterly models blend starry_night:0.6 the_wave:0.4 -o mine.safetensors`` is the command. The
result is an ordinary model file, which ``stylize``, ``video``, ``export`` and the server use like
any other. A multi-style model (``zoo``) blends its own styles with ``--style-mix`` instead.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from painterly.errors import PainterlyError, shown
from painterly.feedforward.model_file import (
    MAX_NAME,
    build_network,
    check_model_name,
    check_model_output,
    write_model_file,
)
from painterly.feedforward.record import ModelRecord, resolve_record
from painterly.numbers import check_range, parse_decimal, quoted
from painterly.outputs import check_not_an_input, check_output_path

if TYPE_CHECKING:
    import torch

#: The least mean cosine similarity (over the convolution weights) between each model and the
#: first one: the campaign's fine-tuned styles are at 0.87 or more, and independent starts at about 0.
RELATED = 0.5
#: How far the size of a convolution's weights may differ between sources (a ratio of norms): the
#: fine-tuned styles differ by up to 26%; a network scaled by 100 points the same way but is not.
SCALE_RATIO = 2.0
#: The largest weight (only their ratios matter; a bound keeps their sum finite).
MAX_WEIGHT = 1e6
#: The least share of the total a source's weight may have: under 1% it adds nothing to the blend.
MIN_SHARE = 0.01
#: The most sources in one blend (each is read whole into memory).
MAX_PARTS = 16


@dataclass(frozen=True)
class BlendPart:
    """One source of a blend: the model (a name or a file) and its weight (any positive number;
    the weights are normalized to sum to 1)."""

    model: str
    weight: float = 1.0


def parse_blend_part(text: str) -> BlendPart:
    """``MODEL`` or ``MODEL:WEIGHT`` (``the_wave:0.4``). Text naming an existing file is a model as a
    whole (a file may be called ``c:0.5``); otherwise what follows the last colon is the weight."""
    if not text.strip():
        raise PainterlyError("expected MODEL[:WEIGHT], got an empty argument")
    if ":" not in text or os.path.lexists(text):
        return BlendPart(text)
    model, _, weight = text.rpartition(":")
    if not model.strip():
        raise PainterlyError(f"expected MODEL[:WEIGHT], got {quoted(text)}")
    label = f"the weight of {shown(model)}"
    return BlendPart(
        model, parse_decimal(weight, label, minimum=0, maximum=MAX_WEIGHT, exclusive_minimum=True)
    )


@dataclass(frozen=True)
class _Source:
    label: str  # the model as the caller named it, for messages
    record: ModelRecord
    weight: float
    config: dict[str, Any]  # the network's own description: architecture, width, depth, ...
    tensors: dict[str, torch.Tensor]

    @property
    def path(self) -> Path:
        return self.record.path

    @property
    def metadata(self) -> Mapping[str, Any]:
        return self.record.metadata

    @property
    def name(self) -> str:
        """The model's name from its metadata, if it is a printable one; else the file's stem."""
        name = self.metadata.get("name")
        if isinstance(name, str) and name.strip() and name.isprintable():
            return name[:MAX_NAME]
        return shown(self.path.stem, MAX_NAME)


def _check_weight(part: BlendPart) -> None:
    """A library caller's :class:`BlendPart` is not parsed: its weight is checked here too."""
    label = f"the weight of {shown(part.model)}"
    if (
        isinstance(part.weight, bool)
        or not isinstance(part.weight, int | float)
        or not math.isfinite(part.weight)
    ):
        raise PainterlyError(f"{label} must be a finite number, got {part.weight!r}")
    check_range(label, part.weight, 0, MAX_WEIGHT, exclusive_minimum=True)


def _read_source(part: BlendPart, total: float) -> _Source:
    """The model's network, resolved and built as for stylizing (:func:`resolve_record`: weights
    checked against the architecture and for NaN), refused if it is a multi-style one or a style
    of one."""
    record = resolve_record(part.model)
    label = shown(part.model)
    if record.styles:
        model = shown(record.path.stem)
        raise PainterlyError(
            f"'{label}' is {'a style of ' if record.style else ''}the multi-style model '{model}': it "
            f"blends its own styles with --style-mix (painterly stylize PHOTO -m {model} "
            "--style-mix A:0.5,B:0.5)"
        )
    net = record.network()
    weights = {f"net/{k}": v.detach().float() for k, v in net.state_dict().items()}
    config: dict[str, Any] = net.config()  # type: ignore[operator]  # every architecture's network has one
    return _Source(label, record, part.weight / total, dict(config), weights)


def _check_same_network(first: _Source, other: _Source) -> None:
    keys = sorted(first.config.keys() | other.config.keys())
    differ = [
        f"{key} {first.config.get(key, 'default')} against {other.config.get(key, 'default')}"
        for key in keys
        if first.config.get(key) != other.config.get(key)
    ]
    if differ:
        raise PainterlyError(
            f"{other.label} is not the same network as {first.label} ({'; '.join(differ)}): "
            "only models of one shape can be blended by their weights"
        )


def _check_named_once(sources: Sequence[_Source]) -> None:
    """One file (or two copies of it) named twice would only change the weights: say so."""
    for i, one in enumerate(sources):
        for other in sources[:i]:
            if one.record.digest() == other.record.digest():  # also a hard link or a copy
                raise PainterlyError(
                    f"{one.label} and {other.label} are the same model file: name it once, "
                    "with the sum of the weights"
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


def scale_ratio(first: Mapping[str, torch.Tensor], other: Mapping[str, torch.Tensor]) -> float:
    """The largest ratio (at least 1) between the norms of the two networks' convolution weights."""
    worst = 1.0
    for key, tensor in first.items():
        if tensor.ndim >= 2:
            a, b = float(tensor.norm()), float(other[key].norm())
            ratio = max(a, b) / max(min(a, b), 1e-12)
            worst = max(worst, ratio)
    return worst


def _check_related(first: _Source, other: _Source) -> None:
    similarity = relatedness(first.tensors, other.tensors)
    ratio = scale_ratio(first.tensors, other.tensors)
    if similarity < RELATED or ratio > SCALE_RATIO:
        measured = (
            f"their weights' similarity is {similarity:.2f}, under {RELATED}"
            if similarity < RELATED
            else f"their weights differ in size up to {ratio:.3g} times"
        )
        raise PainterlyError(
            f"{other.label} and {first.label} were not trained from one start ({measured}): the mean "
            "of their weights would paint mush. Blend models fine-tuned from one network (train "
            "--init), or blend the pictures: stylize with each and mix them, or a multi-style "
            "model's --style-mix"
        )


def _clean(text: object) -> str | None:
    """A string read from a source file, made one printable line of bounded length (else None)."""
    return shown(text, MAX_NAME) if isinstance(text, str) else None


def _record(source: _Source) -> dict[str, Any]:
    """A source as the blend's metadata records it; a blend's own sources go under it, one level
    deep and cleaned (a file's metadata is whoever wrote it)."""
    entry: dict[str, Any] = {
        "model": source.name,
        "style": _clean(source.metadata.get("style")),
        "sha256": source.record.digest(),
        "weight": round(source.weight, 6),
    }
    inner = source.metadata.get("blend")
    if isinstance(inner, list):
        entry["blend"] = [
            {key: _clean(item.get(key)) for key in ("model", "style", "sha256")}
            for item in inner[:MAX_PARTS]
            if isinstance(item, dict)
        ]
    return entry


def blend_models(parts: Sequence[BlendPart], output: str | os.PathLike, *, name: str | None = None) -> Path:
    """Write the weighted mean of ``parts``' weights as a model file at ``output``; its metadata
    records each source (name, style, SHA-256 of the file, normalized weight) under ``blend``; its
    name is ``name``, else the output file's stem (as ``train`` names a model)."""
    import torch

    if not 2 <= len(parts) <= MAX_PARTS:
        raise PainterlyError(
            f"a blend needs 2 to {MAX_PARTS} models (MODEL:WEIGHT MODEL:WEIGHT ...), got {len(parts)}"
        )
    output = check_output_path(check_model_output(output))
    check_model_name(name)
    for part in parts:
        _check_weight(part)
    total = sum(part.weight for part in parts)
    for part in parts:
        if part.weight / total < MIN_SHARE:
            raise PainterlyError(
                f"the weight of {shown(part.model)} is {100 * part.weight / total:.2g}% of the total: "
                f"under {100 * MIN_SHARE:.0f}% a model adds nothing to the blend; leave it out"
            )
    sources = [_read_source(part, total) for part in parts]
    _check_named_once(sources)
    check_not_an_input(output, [source.path for source in sources])
    first = sources[0]
    for other in sources[1:]:
        _check_same_network(first, other)
        _check_related(first, other)
    blended = {
        key: torch.stack([source.tensors[key] * source.weight for source in sources]).sum(0)
        for key in first.tensors
    }
    # The network's description carries over; any one source's training record (losses, steps,
    # style image) would be false of the blend, which records its sources instead.
    metadata: dict[str, Any] = dict(first.config)
    label = " + ".join(f"{source.name} {100 * source.weight:.0f}%" for source in sources)
    metadata.update(name=name or output.stem, style=f"blend: {label}", blend=[_record(s) for s in sources])
    net, _, _ = build_network(output, first.metadata, lambda: blended)
    return write_model_file(output, net, metadata)


__all__ = ["RELATED", "BlendPart", "blend_models", "parse_blend_part", "relatedness", "scale_ratio"]
