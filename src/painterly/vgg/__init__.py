"""The loss network: VGG feature extractors and their pretrained weights.

Modules: ``layers`` (names, torch-free), ``network`` (the extractor), ``sources`` (where weights
come from, torch-free), ``weights`` (loading, caching, downloading). Names load lazily.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "ARCHITECTURES": "painterly.vgg.layers",
    "layer_names": "painterly.vgg.layers",
    "VGG": "painterly.vgg.network",
    "VGGWeights": "painterly.vgg.weights",
    "load_vgg": "painterly.vgg.weights",
    "load_weights": "painterly.vgg.weights",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'painterly.vgg' has no attribute {name!r}")


__all__ = list(_LAZY)
