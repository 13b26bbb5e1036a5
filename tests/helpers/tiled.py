"""Layer sets and a seeded criterion for the tiled loss evaluation."""

from __future__ import annotations

from typing import Any

import torch

from painterly.losses import PerceptualLoss, build_criterion
from painterly.vgg import load_vgg

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
#: Shallow layers keep the tests fast (a 12 px halo, stride 4); the same code as relu5_1's 80 px.
SHALLOW: dict[str, Any] = {
    "content": ["relu2_2"],
    "style": ["relu1_1", "relu2_1", "relu3_1"],
    "size": (38, 54),
    "tile": 8,
}
DEEP: dict[str, Any] = {"content": ["relu4_2"], "style": list(STYLE_LAYERS), "size": (100, 150), "tile": 48}


def make_criterion(
    convention: str = "classic", tv_form: str = "squared", config: Any = SHALLOW
) -> PerceptualLoss:
    torch.manual_seed(0)
    criterion = build_criterion(
        load_vgg("vgg19", last_layer="relu5_1"),
        config["content"],
        config["style"],
        content_weight=25,
        style_weight=100,
        tv_weight=1e-3,
        tv_form=tv_form,
        convention=convention,
    )
    criterion.set_content(torch.rand(1, 3, *config["size"]))
    criterion.set_style([torch.rand(1, 3, 40, 48)])
    return criterion
