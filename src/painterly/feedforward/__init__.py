"""Feed-forward style networks (Johnson et al. 2016): train once per style, then stylize in one pass.

Public API::

    from painterly.feedforward import load_model, list_models, stylize
    model = load_model("starry_night")              # a shipped model, or a path to a model file
    picture = model.stylize("photo.jpg", size=1024)  # -> PIL.Image
    picture = stylize("photo.jpg", "starry_night")   # one call
    zoo = load_model("zoo")                          # a multi-style model: blend, weaken
    picture = zoo.stylize("photo.jpg", style_mix="the_wave:0.7,udnie:0.3", strength=0.8)

Training: :func:`train` with :class:`TrainSettings`; distilling a trained model into a smaller,
faster one: :func:`distill` with :class:`DistillSettings`; blending models fine-tuned from one
network into one by their weights: :func:`blend_models`; export: :func:`export_onnx`.
Modules: ``architectures`` (the catalog of network kinds model files name), ``network`` (the
transformer net), ``conditional`` (the multi-style network: conditional instance norm, style
blending, adding a style), ``mixing`` (style mixes and strength, torch-free), ``temporal`` and
``equivariance`` (extra training terms: synthetic-motion stability, anti-grid hatching),
``model_file`` (safetensors + JSON metadata), ``record`` (:class:`ModelRecord`: a model resolved
once from a name, a style, a path or an ``.onnx`` file, with its metadata, styles and weights, what
every runtime takes), ``catalog`` (finding models by name), ``backends`` (torch or onnxruntime,
cached ONNX exports), ``data`` (image folders, random crops), ``loop`` (the training loop every
trainer shares), ``training``, ``distill``, ``weight_blend``, ``inference``, ``tiling``, ``export``,
``onnx_backend``, ``files`` and ``signals``. Importing this package imports
no torch; neither do ``inference``, ``record``, ``catalog``, ``backends``, ``model_file`` and
``onnx_backend`` until a torch model is loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

_LAZY = {
    "StyleModel": "painterly.feedforward.inference",
    "ModelRecord": "painterly.feedforward.record",
    "resolve_record": "painterly.feedforward.record",
    "load_model": "painterly.feedforward.inference",
    "list_models": "painterly.feedforward.catalog",
    "resolve_model": "painterly.feedforward.catalog",
    "pick_backend": "painterly.feedforward.backends",
    "stylize": "painterly.feedforward.inference",
    "TransformerNet": "painterly.feedforward.network",
    "TrainSettings": "painterly.feedforward.training",
    "TrainProgress": "painterly.feedforward.loop",
    "TrainResult": "painterly.feedforward.training",
    "train": "painterly.feedforward.training",
    "DistillSettings": "painterly.feedforward.distill",
    "distill": "painterly.feedforward.distill",
    "export_onnx": "painterly.feedforward.export",
    "read_metadata": "painterly.feedforward.model_file",
    "BlendPart": "painterly.feedforward.weight_blend",
    "blend_models": "painterly.feedforward.weight_blend",
}

if TYPE_CHECKING:
    from painterly.feedforward.backends import pick_backend
    from painterly.feedforward.catalog import list_models, resolve_model
    from painterly.feedforward.distill import DistillSettings, distill
    from painterly.feedforward.export import export_onnx
    from painterly.feedforward.inference import StyleModel, load_model, stylize
    from painterly.feedforward.loop import TrainProgress
    from painterly.feedforward.model_file import read_metadata
    from painterly.feedforward.network import TransformerNet
    from painterly.feedforward.record import ModelRecord, resolve_record
    from painterly.feedforward.training import TrainResult, TrainSettings, train
    from painterly.feedforward.weight_blend import BlendPart, blend_models


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'painterly.feedforward' has no attribute {name!r}")


__all__ = [
    "BlendPart",
    "DistillSettings",
    "ModelRecord",
    "StyleModel",
    "TrainProgress",
    "TrainResult",
    "TrainSettings",
    "TransformerNet",
    "blend_models",
    "distill",
    "export_onnx",
    "list_models",
    "load_model",
    "pick_backend",
    "read_metadata",
    "resolve_model",
    "resolve_record",
    "stylize",
    "train",
]
