"""One model, resolved once: its file, metadata, architecture, styles and, when first needed, weights.

Every way to a network starts here: ``painterly stylize -m``, :func:`~painterly.feedforward.load_model`,
``stylize_video(model=...)``, the server's ``/api/stylize`` and the live socket turn what they were
given (the name of a shipped or ``$PAINTERLY_MODELS`` model, a style of a multi-style model, a
``.safetensors`` path or an exported ``.onnx`` file) into a :class:`ModelRecord` with
:func:`resolve_record`, and hand the record to the runtime that runs it
(:class:`~painterly.feedforward.inference.StyleModel`, on torch or onnxruntime as
:mod:`~painterly.feedforward.backends` picks). The catalog lists models as records too.

A record reads its file's metadata once, when it is made; its weights once, when a torch network
or an ONNX export first needs them; its content hash once, for the cache of ONNX exports. Records
are kept per file, keyed by the file's identity, size and modification time, so that the catalog's
listing, the server's next request and a video's candidate runtimes take the same record instead of
reading the file again; a file that is replaced or changed gets a new record. Torch-free until
weights are asked for.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from painterly.errors import PainterlyError
from painterly.feedforward.files import require_regular_file

if TYPE_CHECKING:
    import torch
    from torch import nn

    from painterly.feedforward.architectures import Architecture

ONNX_SUFFIX = ".onnx"
#: Records kept for reuse (the most recently used files); a record holds its weights once read.
KEEP = 32


class _Held:
    """What a record reads lazily, shared by the records of one file (a style's record and its
    model's): the tensors, the content hash and, for an ``.onnx`` file, its onnxruntime session."""

    def __init__(self, onnx: Any = None) -> None:
        self.lock = threading.Lock()
        self.tensors: dict[str, torch.Tensor] | None = None
        self.digest: str | None = None
        self.onnx = onnx


@dataclass(frozen=True, eq=False)
class ModelRecord:
    """A model file and what it holds, resolved once (:func:`resolve_record`, :func:`record_for`).

    ``path`` is the ``.safetensors`` model file or the exported ``.onnx`` file; ``metadata`` its
    painterly metadata (read-only; empty for an ``.onnx`` file from elsewhere); ``style`` the style a
    name picked in a multi-style model (``udnie`` in ``zoo``), else None. A record is path-like
    (``os.fspath(record)`` is its file), so it goes wherever a model path does.
    """

    path: Path
    metadata: Mapping[str, Any]
    style: str | None = None
    _held: _Held = field(default_factory=_Held, repr=False)

    def __fspath__(self) -> str:
        return str(self.path)

    @property
    def name(self) -> str:
        """The model's name: its metadata's, else the file's stem."""
        return str(self.metadata.get("name") or self.path.stem)

    @property
    def is_onnx(self) -> bool:
        """An exported ``.onnx`` file: only onnxruntime runs it."""
        return self.path.suffix.lower() == ONNX_SUFFIX

    @property
    def styles(self) -> tuple[str, ...]:
        """The style names of a multi-style model (empty for a single-style one)."""
        styles = self.metadata.get("styles")
        return tuple(str(name) for name in styles) if isinstance(styles, list) else ()

    @property
    def architecture(self) -> Architecture:
        """The network kind the metadata names (:mod:`painterly.feedforward.architectures`)."""
        from painterly.feedforward import architectures

        return architectures.get(self.metadata.get("architecture"))

    def with_style(self, style: str) -> ModelRecord:
        """This model with ``style`` as the style its name picked; the weights read stay shared."""
        return dataclasses.replace(self, style=style, _held=self._held)

    def _refuse_onnx(self) -> None:
        if self.is_onnx:
            raise PainterlyError(
                f"{self.path} is an ONNX export, not a .safetensors model file "
                "(only the onnxruntime backend runs it)"
            )

    def tensors(self) -> dict[str, torch.Tensor]:
        """Every tensor of the file, read on first call only (imports torch)."""
        self._refuse_onnx()
        held = self._held
        with held.lock:
            if held.tensors is None:
                from painterly.feedforward import model_file

                held.tensors = model_file.read_tensors(self.path)
            return held.tensors

    def network(self) -> nn.Module:
        """A new torch network of this model's architecture holding its weights, in eval mode."""
        from painterly.feedforward import model_file

        self._refuse_onnx()
        net, _, _ = model_file.build_network(self.path, self.metadata, self.tensors)
        return net

    def digest(self) -> str:
        """The SHA-256 of the file's bytes (the key of its cached ONNX export), computed once."""
        held = self._held
        with held.lock:
            if held.digest is None:
                held.digest = hashlib.sha256(self.path.read_bytes()).hexdigest()
            return held.digest

    def onnx_net(self) -> Any:
        """An onnxruntime session for this model: an ``.onnx`` file's own (opened when the record was
        made), or the cached export of a model file
        (:func:`painterly.feedforward.backends.onnx_net_for`)."""
        if self._held.onnx is not None:
            return self._held.onnx
        from painterly.feedforward.backends import onnx_net_for

        return onnx_net_for(self)


_records: OrderedDict[tuple[object, ...], ModelRecord] = OrderedDict()
_records_lock = threading.Lock()


def record_for(path: str | os.PathLike) -> ModelRecord:
    """The record of the model file (or ``.onnx`` file) at ``path``; its metadata is read only when
    no record of this very file (same identity, size and modification time) is kept."""
    if isinstance(path, ModelRecord):
        return path
    path = require_regular_file(path, "model file")
    stat = path.stat()
    key = (os.path.abspath(path), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
    with _records_lock:
        kept = _records.get(key)
        if kept is not None:
            _records.move_to_end(key)
    if kept is None:
        kept = _read(path)
        with _records_lock:
            _records[key] = kept
            while len(_records) > KEEP:
                _records.popitem(last=False)
    if kept.path != path:  # the same file by another spelling (a relative path): keep the caller's
        return dataclasses.replace(kept, path=path, _held=kept._held)
    return kept


def _read(path: Path) -> ModelRecord:
    """A new record of ``path``: its metadata read (a ``.onnx`` file's from its session)."""
    if path.suffix.lower() == ONNX_SUFFIX:
        from painterly.feedforward.onnx_backend import OnnxNet

        session = OnnxNet(path)
        return ModelRecord(path, MappingProxyType(dict(session.metadata)), _held=_Held(session))
    from painterly.feedforward import model_file

    return ModelRecord(path, MappingProxyType(model_file.read_metadata(path)))


def resolve_record(model: str | os.PathLike | ModelRecord) -> ModelRecord:
    """The record of ``model``: a record as it is; a path to a model or ``.onnx`` file; the name of a
    shipped or ``$PAINTERLY_MODELS`` model; or, failing those, a style of a multi-style model (the
    last found: user models before shipped ones), as that model's record with :attr:`~ModelRecord.style`
    set."""
    if isinstance(model, ModelRecord):
        return model
    from painterly.feedforward.catalog import catalog_records, resolve_model

    try:
        path = resolve_model(model)
    except PainterlyError:
        name = str(model)
        if "/" in name or os.sep in name:
            raise
        for _, record in reversed(catalog_records()):
            if name in record.styles:
                return record.with_style(name)
        raise
    return record_for(path)


def forget() -> None:
    """Drop the records kept (tests; the files are read again on next use)."""
    with _records_lock:
        _records.clear()


__all__ = ["ModelRecord", "forget", "record_for", "resolve_record"]
