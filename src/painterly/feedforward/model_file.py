"""Model files: safetensors weights with the JSON metadata in the safetensors header.

One file holds everything: the header's ``__metadata__`` has ``format`` (``painterly-feedforward``),
``kind`` (``model`` or ``checkpoint``) and ``painterly``, a JSON document with the architecture,
width, loss layers and weights, style image name, hash and size, training steps and the
painterly version. A checkpoint also holds the optimizer state as tensors under ``optimizer/``.
Loading never unpickles: safetensors stores raw tensors and a JSON header only.

:func:`read_metadata` reads the header with ``safetensors.safe_open`` (numpy framework: no torch),
so listing models and the onnxruntime backend stay torch-free; reading and writing weights import
torch. The ``architecture`` key names the network kind in :mod:`painterly.feedforward.architectures`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from painterly.atomic import atomic_write
from painterly.errors import PainterlyError, shown

if TYPE_CHECKING:
    import torch
    from torch import nn

FORMAT = "painterly-feedforward"
FORMAT_VERSION = 1
SUFFIX = ".safetensors"


def check_model_output(path: str | os.PathLike) -> Path:
    """A model file must end in ``.safetensors``: the catalog and ``stylize --model`` only find those."""
    path = Path(path)
    if path.suffix != SUFFIX:
        raise PainterlyError(f"the output must be a {SUFFIX} file, got '{shown(path.name)}'")
    return path


#: The longest model name: it is shown on one line (``models list``, the page's model menu).
MAX_NAME = 200


def check_model_name(name: str | None) -> None:
    """A model name is shown on one line (``models list``, the server): refuse control characters,
    a blank name and one longer than :data:`MAX_NAME` characters."""
    if name is None:
        return
    if not name.isprintable():
        raise PainterlyError(f"--name may not contain control characters, got '{shown(name)}'")
    if not name.strip():
        raise PainterlyError("--name may not be blank")
    if len(name) > MAX_NAME:
        raise PainterlyError(f"--name may be at most {MAX_NAME} characters, got {len(name)}")


def write_model_file(
    path: str | os.PathLike,
    net: nn.Module,
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
    document = {**metadata, **net.config(), "format_version": FORMAT_VERSION}  # type: ignore[operator]
    header = {"format": FORMAT, "kind": kind, "painterly": json.dumps(document, sort_keys=True)}
    try:
        with atomic_write(path) as handle:
            handle.write(save(tensors, metadata=header))
    except OSError as exc:
        raise PainterlyError(f"cannot write model file {path}: {exc.strerror or exc}") from None
    return path


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON metadata of a model file, without reading its weights (and without importing torch)."""
    path = _check_path(path)
    header = _safetensors_metadata(path)
    if header.get("format") != FORMAT or "painterly" not in header:
        raise PainterlyError(f"{path} is a safetensors file but not a painterly feed-forward model")
    document = parse_document(header["painterly"], path)
    document["kind"] = header.get("kind", "model")
    return document


def parse_document(text: str, source: object) -> dict[str, Any]:
    """The painterly JSON document of a model file (or of an exported ONNX file), checked."""
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise PainterlyError(f"{source}: the model metadata is not valid JSON") from None
    if not isinstance(document, dict):
        raise PainterlyError(f"{source}: the model metadata is not a JSON object")
    version = document.get("format_version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise PainterlyError(f"{source}: the model metadata has an invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise PainterlyError(f"{source} was written by a newer painterly (format {version})")
    return document


def _safetensors_metadata(path: Path) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file, read by safetensors itself (numpy: no torch)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as handle:
            metadata = handle.metadata()
    except Exception as exc:  # noqa: BLE001 - SafetensorError, OSError: any failure means not ours
        reason = " ".join(str(exc).split())[:200]
        raise PainterlyError(
            f"{path} is not a painterly model file (not a readable safetensors file: {reason})"
        ) from None
    return dict(metadata or {})


def read_model_file(
    path: str | os.PathLike,
) -> tuple[Any, dict[str, Any], dict[str, torch.Tensor]]:
    """Build the network a file describes (by its ``architecture``) and load its weights.

    Returns (network, metadata, other tensors such as the optimizer state of a checkpoint). For a
    model to stylize with, :class:`painterly.feedforward.record.ModelRecord` does the same with the
    metadata it already holds.
    """
    path = _check_path(path)
    metadata = read_metadata(path)
    return build_network(path, metadata, lambda: read_tensors(path))


def read_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Every tensor of a model file (the weights under ``net/``; a checkpoint's optimizer state)."""
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as exc:  # noqa: BLE001
        raise PainterlyError(f"{path}: cannot read the weights: {' '.join(str(exc).split())[:200]}") from None


def build_network(
    path: str | os.PathLike,
    metadata: Mapping[str, Any],
    tensors: Callable[[], Mapping[str, torch.Tensor]],
) -> tuple[Any, dict[str, Any], dict[str, torch.Tensor]]:
    """The network ``metadata`` describes, in eval mode, holding the ``net/`` tensors that
    ``tensors()`` gives (asked for once the network is built, so a bad architecture is reported
    before any weights are read); with a copy of the metadata and the other tensors. ``path`` names
    the file in errors."""
    from painterly.feedforward import architectures

    try:
        architecture = architectures.get(metadata.get("architecture"))
        net = architecture.build(metadata)
    except PainterlyError as exc:
        raise PainterlyError(f"{path}: {exc}") from None
    loaded = tensors()
    state = {k[4:]: v for k, v in loaded.items() if k.startswith("net/")}
    check_finite_weights(state, path)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = " ".join(line.strip() for line in first[1:3]) or first[0]
        raise PainterlyError(
            f"{path}: the weights do not match the architecture in its metadata "
            f"({architecture.name}, width {metadata.get('width')}): {detail[:300]}"
        ) from None
    others = {k: v for k, v in loaded.items() if not k.startswith("net/")}
    net.eval()
    return net, dict(metadata), others


def check_finite_weights(state: Mapping[str, torch.Tensor], source: object) -> None:
    """Refuse weights holding NaN or infinity (a damaged file, or training that diverged): such a
    network paints garbage, or NaN that becomes black, with no error (``stylize`` exited 0)."""
    import torch

    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise PainterlyError(
                f"{source}: the weight {name} holds NaN or infinite values; the file is damaged or its "
                "training diverged (retrain, or use an earlier checkpoint)"
            )


def _check_path(path: str | os.PathLike) -> Path:
    from painterly.feedforward.files import require_regular_file

    return require_regular_file(path, "model file")


def describe(metadata: Mapping[str, Any]) -> str:
    """Human-readable metadata, one ``key: value`` per line, for ``painterly models info``."""
    lines = []
    for key in sorted(metadata):
        value = metadata[key]
        text = json.dumps(value) if isinstance(value, dict | list) else str(value)
        lines.append(f"{key}: {text}")
    return "\n".join(lines)
