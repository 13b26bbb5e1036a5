"""painterly: neural style transfer, by image optimization (Gatys et al. 2015) and by
feed-forward networks (Johnson et al. 2016).

Public API::

    import painterly
    image = painterly.transfer("photo.jpg", "starry_night.jpg", size=512)   # image optimization
    image = painterly.stylize("photo.jpg", "starry_night")                  # a trained network
    model = painterly.load_model("starry_night")                            # for repeated calls

Importing painterly loads no model; networks and weights load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "transfer": "painterly.optimization",
    "run_transfer": "painterly.optimization",
    "make_settings": "painterly.optimization",
    "TransferSettings": "painterly.optimization",
    "TransferResult": "painterly.optimization",
    "StopTransfer": "painterly.optimization",
    "Progress": "painterly.progress",
    "PRESETS": "painterly.presets",
    "open_image": "painterly.images",
    "save_image": "painterly.images",
    "load_vgg": "painterly.vgg",
    "PerceptualLoss": "painterly.losses",
    "stylize": "painterly.feedforward.inference",
    "load_model": "painterly.feedforward.inference",
    "list_models": "painterly.feedforward.inference",
    "StyleModel": "painterly.feedforward.inference",
    "train": "painterly.feedforward.training",
    "TrainSettings": "painterly.feedforward.training",
}

from painterly.errors import PainterlyError  # noqa: E402  (cheap: no torch)

if TYPE_CHECKING:
    from painterly.feedforward.inference import StyleModel, list_models, load_model, stylize
    from painterly.feedforward.training import TrainSettings, train
    from painterly.images import open_image, save_image
    from painterly.losses import PerceptualLoss
    from painterly.optimization import (
        StopTransfer,
        TransferResult,
        TransferSettings,
        make_settings,
        run_transfer,
        transfer,
    )
    from painterly.presets import PRESETS
    from painterly.progress import Progress
    from painterly.vgg import load_vgg


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'painterly' has no attribute {name!r}")


__all__ = ["PainterlyError", "__version__", *_LAZY]
