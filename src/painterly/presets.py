"""Named settings bundles (``--preset``). Explicit options always override a preset."""

from __future__ import annotations

from typing import Any

from painterly.errors import PainterlyError, did_you_mean

PRESETS: dict[str, dict[str, Any]] = {
    # The Lua neural-style defaults (Johnson): VGG19, relu4_2 content, relu1_1..relu5_1 style.
    "classic": {
        "network": "vgg19",
        "content_layers": ["relu4_2"],
        "style_layers": ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"],
        "content_weight": 5.0,
        "style_weight": 100.0,
        "tv_weight": 1e-3,
        "tv_form": "squared",
        "loss_convention": "classic",
        "optimizer": "lbfgs",
        "init": "content",
    },
    # The widely copied Keras neural style example, reproduced exactly: VGG16, content
    # block2_conv2, style block1_conv2..block5_conv3 sharing 5.0, TV 1.0 in the ^1.25 form.
    "keras-example": {
        "network": "vgg16",
        "content_layers": ["relu2_2"],
        "style_layers": {name: 1.0 / 5 for name in ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")},
        "content_weight": 0.025,
        "style_weight": 5.0,
        "tv_weight": 1.0,
        "tv_form": "power1.25",
        "loss_convention": "keras",
        "optimizer": "lbfgs",
        "init": "noise",
        "size": 512,
        "square": True,
        "scales": 1,
        "preserve_colors": "none",
    },
}


def preset(name: str) -> dict[str, Any]:
    if name not in PRESETS:
        raise PainterlyError(
            f"unknown preset {name!r}{did_you_mean(name, PRESETS)}; choose from {sorted(PRESETS)}"
        )
    return dict(PRESETS[name])
