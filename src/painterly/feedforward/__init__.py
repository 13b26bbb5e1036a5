"""Feed-forward style networks (Johnson et al. 2016): train once per style, then stylize in one pass.

Public API::

    from painterly.feedforward import load_model, list_models, stylize
    model = load_model("starry_night")              # a shipped model, or a path to a model file
    picture = model.stylize("photo.jpg", size=1024)  # -> PIL.Image
    picture = stylize("photo.jpg", "starry_night")   # one call

Training: :func:`train` with :class:`TrainSettings`; distilling a trained model into a smaller,
faster one: :func:`distill` with :class:`DistillSettings`; export: :func:`export_onnx`.
Modules: ``network`` (the transformer net), ``model_file`` (safetensors + JSON metadata),
``data`` (image folders, random crops), ``training``, ``distill``, ``inference``, ``tiling``,
``export``, ``onnx_backend``. Importing this package imports no torch; neither do ``inference``,
``model_file`` and ``onnx_backend`` until a torch model is loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

_LAZY = {
    "StyleModel": "painterly.feedforward.inference",
    "load_model": "painterly.feedforward.inference",
    "list_models": "painterly.feedforward.inference",
    "stylize": "painterly.feedforward.inference",
    "TransformerNet": "painterly.feedforward.network",
    "TrainSettings": "painterly.feedforward.training",
    "TrainProgress": "painterly.feedforward.training",
    "TrainResult": "painterly.feedforward.training",
    "train": "painterly.feedforward.training",
    "DistillSettings": "painterly.feedforward.distill",
    "distill": "painterly.feedforward.distill",
    "export_onnx": "painterly.feedforward.export",
    "read_metadata": "painterly.feedforward.model_file",
}

if TYPE_CHECKING:
    from painterly.feedforward.distill import DistillSettings, distill
    from painterly.feedforward.export import export_onnx
    from painterly.feedforward.inference import StyleModel, list_models, load_model, stylize
    from painterly.feedforward.model_file import read_metadata
    from painterly.feedforward.network import TransformerNet
    from painterly.feedforward.training import TrainProgress, TrainResult, TrainSettings, train


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'painterly.feedforward' has no attribute {name!r}")


__all__ = [
    "DistillSettings",
    "StyleModel",
    "TrainProgress",
    "TrainResult",
    "TrainSettings",
    "TransformerNet",
    "distill",
    "export_onnx",
    "list_models",
    "load_model",
    "read_metadata",
    "stylize",
    "train",
]
