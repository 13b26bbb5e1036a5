"""Model files: safetensors weights with the JSON metadata in the safetensors header.

One file holds everything: the header's ``__metadata__`` has ``format`` (``painterly-feedforward``),
``kind`` (``model`` or ``checkpoint``) and ``painterly``, a JSON document with the architecture,
width, loss layers and weights, style image name, hash and size, training steps and the
painterly version. A checkpoint also holds the optimizer state as tensors under ``optimizer/``.
Loading never unpickles: safetensors stores raw tensors and a JSON header only.

:func:`read_metadata` parses the safetensors header itself and imports no torch, so listing models
and the onnxruntime backend stay torch-free; reading and writing weights import torch.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from painterly.atomic import atomic_write
from painterly.errors import PainterlyError

if TYPE_CHECKING:
    import torch

    from painterly.feedforward.network import TransformerNet

FORMAT = "painterly-feedforward"
FORMAT_VERSION = 1
SUFFIX = ".safetensors"


def write_model_file(
    path: str | os.PathLike,
    net: TransformerNet,
    metadata: Mapping[str, Any],
    *,
    kind: str = "model",
    extra: Mapping[str, torch.Tensor] | None = None,
) -> Path:
    """Write ``net``'s weights (and ``extra`` tensors, e.g. optimizer state) atomically."""
    from safetensors.torch import save

    path = Path(path)
    tensors = {f"net/{k}": v.detach().float().cpu().contiguous() for k, v in net.state_dict().items()}
    for key, value in (extra or {}).items():
        tensors[key] = value.detach().cpu().contiguous()
    document = {**metadata, **net.config(), "format_version": FORMAT_VERSION}
    header = {"format": FORMAT, "kind": kind, "painterly": json.dumps(document, sort_keys=True)}
    try:
        with atomic_write(path) as handle:
            handle.write(save(tensors, metadata=header))
    except OSError as exc:
        raise PainterlyError(f"cannot write model file {path}: {exc.strerror or exc}") from None
    return path


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON metadata of a model file, without reading its weights."""
    path = _check_path(path)
    try:
        header = _safetensors_metadata(path)
    except (OSError, ValueError, struct.error) as exc:  # any parse failure means the file is not ours
        raise PainterlyError(
            f"{path} is not a painterly model file (not a readable safetensors file: {exc})"
        ) from None
    if header.get("format") != FORMAT or "painterly" not in header:
        raise PainterlyError(f"{path} is a safetensors file but not a painterly feed-forward model")
    try:
        document = json.loads(header["painterly"])
    except json.JSONDecodeError:
        raise PainterlyError(f"{path}: the model metadata is not valid JSON") from None
    if not isinstance(document, dict):
        raise PainterlyError(f"{path}: the model metadata is not a JSON object")
    document["kind"] = header.get("kind", "model")
    return document


#: A safetensors header larger than this is not one of ours (safetensors itself caps it at 100 MB).
_MAX_HEADER = 100_000_000


def _safetensors_metadata(path: Path) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file: an 8-byte little-endian length, then JSON."""
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise ValueError("file too short")
        (length,) = struct.unpack("<Q", prefix)
        if length > _MAX_HEADER or length > path.stat().st_size - 8:
            raise ValueError("bad header length")
        raw = handle.read(length)
    header = json.loads(raw)
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object")
    metadata = header.get("__metadata__") or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ValueError("bad __metadata__")
    return metadata


def read_model_file(
    path: str | os.PathLike,
) -> tuple[TransformerNet, dict[str, Any], dict[str, torch.Tensor]]:
    """Build the network a file describes and load its weights.

    Returns (network, metadata, other tensors such as the optimizer state of a checkpoint).
    """
    from safetensors.torch import load_file

    from painterly.feedforward.network import ARCHITECTURE, TransformerNet

    path = _check_path(path)
    metadata = read_metadata(path)
    if metadata.get("architecture") != ARCHITECTURE:
        raise PainterlyError(
            f"{path}: architecture {metadata.get('architecture')!r} is not supported "
            f"(expected {ARCHITECTURE!r})"
        )
    if int(metadata.get("format_version", 0)) > FORMAT_VERSION:
        raise PainterlyError(f"{path} was written by a newer painterly (format {metadata['format_version']})")
    try:
        tensors = load_file(str(path))
    except Exception as exc:  # noqa: BLE001
        raise PainterlyError(f"{path}: cannot read the weights: {exc}") from None
    try:
        net = TransformerNet(int(metadata["width"]), int(metadata.get("residual_blocks", 5)))
    except (KeyError, TypeError, ValueError):
        raise PainterlyError(f"{path}: the metadata has no valid network width") from None
    state = {k[4:]: v for k, v in tensors.items() if k.startswith("net/")}
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = " ".join(line.strip() for line in first[1:3]) or first[0]
        raise PainterlyError(
            f"{path}: the weights do not match the architecture in its metadata "
            f"(width {metadata['width']}): {detail[:300]}"
        ) from None
    others = {k: v for k, v in tensors.items() if not k.startswith("net/")}
    net.eval()
    return net, metadata, others


def _check_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise PainterlyError(f"model file not found: {path}")
    if path.is_dir():
        raise PainterlyError(f"model path is a folder, not a model file: {path}")
    return path


def describe(metadata: Mapping[str, Any]) -> str:
    """Human-readable metadata, one ``key: value`` per line, for ``painterly models info``."""
    lines = []
    for key in sorted(metadata):
        value = metadata[key]
        text = json.dumps(value) if isinstance(value, dict | list) else str(value)
        lines.append(f"{key}: {text}")
    return "\n".join(lines)
