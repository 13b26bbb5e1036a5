"""Finding model files: the shipped models, ``$PAINTERLY_MODELS``, names and paths. Torch-free.

Every command and the server look models up here: :func:`resolve_model` turns a name or a path
into a model file, :func:`list_models` lists the known ones (skipping, with a warning, any file
that cannot be read), and :func:`model_metadata` gives the metadata of a ``.safetensors`` model or
an exported ``.onnx`` file. Each file is read through its
:class:`~painterly.feedforward.record.ModelRecord` (:func:`~painterly.feedforward.record.record_for`),
so listing the models and then loading one reads its metadata once.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from painterly.errors import PainterlyError, did_you_mean, shown
from painterly.feedforward.files import require_regular_file
from painterly.feedforward.model_file import SUFFIX
from painterly.feedforward.record import ONNX_SUFFIX, ModelRecord, record_for

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "models"


def model_dirs() -> list[tuple[str, Path]]:
    """(source, folder) pairs searched for models by name, later ones taking precedence."""
    dirs = [("shipped", SHIPPED_DIR)]
    if os.environ.get("PAINTERLY_MODELS"):
        folder = Path(os.environ["PAINTERLY_MODELS"])
        if not folder.is_dir():
            _warn_unusable_models_dir(folder)
        dirs.append(("user", folder))
    return dirs


_warned_dirs: set[str] = set()


def _warn_unusable_models_dir(folder: Path) -> None:
    """A mistyped ``$PAINTERLY_MODELS`` would otherwise look like "no such model": say so, once per
    process and folder, on one stderr line."""
    if str(folder) in _warned_dirs:
        return
    _warned_dirs.add(str(folder))
    problem = "is not a folder" if os.path.lexists(folder) else "does not exist"
    print(f"painterly: warning: PAINTERLY_MODELS={shown(folder)} {problem}; ignoring it", file=sys.stderr)


def _warn(message: str) -> None:
    warnings.warn(message, stacklevel=3)


def catalog_records(warn: Callable[[str], None] | None = None) -> list[tuple[str, ModelRecord]]:
    """(source, record) of every model file in :func:`model_dirs`, in listing order (shipped first);
    a file that cannot be read is left out and reported through ``warn`` (None: silent)."""
    found = []
    for source, folder in model_dirs():
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob(f"*{SUFFIX}")):
            try:
                found.append((source, record_for(path)))
            except PainterlyError as exc:
                if warn is not None:
                    warn(f"skipping {path.name}: {exc}")
    return found


def _steps(meta: dict[str, Any]) -> Any:
    """The steps a model was trained for: a CPU campaign's total (``campaign_steps``, written by
    ``scripts/campaign.py``) where there is one, since a campaign resumed from its own stash counts
    ``steps`` from that resume; else the training run's ``steps``."""
    total = meta.get("campaign_steps")
    if isinstance(total, int) and not isinstance(total, bool) and total > 0:
        return total
    return meta.get("steps")


def list_models(warn: Callable[[str], None] | None = _warn) -> list[dict[str, Any]]:
    """Shipped models and those in ``$PAINTERLY_MODELS``: name, path, style, width, steps (a CPU
    campaign's total where the file records one, else the training run's), source
    (and ``styles``, the style names of a multi-style model; None for a single-style one), and
    ``shadowed_by``: the path of the model that a name finds instead of this one (a user model of
    the same name), else None.

    A file that cannot be read is left out and reported through ``warn`` (one line; None: silent).
    """
    models = []
    winner: dict[str, str] = {}  # what resolve_model finds for a name: the last folder's file
    for _, folder in model_dirs():
        if folder.is_dir():
            for path in sorted(folder.glob(f"*{SUFFIX}")):
                if path.is_file():
                    winner[path.name[: -len(SUFFIX)]] = str(path)
    for source, record in catalog_records(warn):
        meta = dict(record.metadata)
        models.append(
            {
                "name": record.path.name[: -len(SUFFIX)],
                "path": str(record.path),
                "style": meta.get("style"),
                "width": meta.get("width"),
                "steps": _steps(meta),
                "architecture": meta.get("architecture"),
                "styles": list(record.styles) if isinstance(meta.get("styles"), list) else None,
                "source": source,
                "metadata": meta,
            }
        )
    for m in models:  # say which rows a name does not find
        here = str(m["path"])
        found = winner.get(str(m["name"]), here)
        m["shadowed_by"] = None if found == here else found
    return models


def resolve_model(name_or_path: str | os.PathLike) -> Path:
    """A path to an existing model file, or the file of a shipped / ``$PAINTERLY_MODELS`` model by name."""
    path = Path(name_or_path)
    if os.path.lexists(path):
        return require_regular_file(path, "model file")
    text = str(name_or_path)
    if os.sep not in text and "/" not in text:
        name = text[: -len(SUFFIX)] if text.endswith(SUFFIX) else text
        for _, folder in reversed(model_dirs()):
            candidate = folder / f"{name}{SUFFIX}"
            if candidate.is_file():
                return candidate
        names = [m["name"] for m in list_models(warn=None)]
        hint = did_you_mean(name, names) or (f" (known models: {', '.join(names)})" if names else "")
        raise PainterlyError(f"no model file or known model named {text!r}{hint}")
    raise PainterlyError(f"model file not found: {path}")


def model_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata of a model file, or of an exported ONNX file (read with onnxruntime)."""
    return dict(record_for(path).metadata)


__all__ = ["ONNX_SUFFIX", "catalog_records", "list_models", "model_dirs", "model_metadata", "resolve_model"]
