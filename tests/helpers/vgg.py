"""VGG weights in other layouts than the bundled file's."""

from __future__ import annotations

import torch

from painterly.vgg.network import layer_names
from painterly.vgg.weights import load_weights


def torchvision_state(arch: str) -> dict[str, torch.Tensor]:
    """A torchvision-layout state dict built from the real weights (features.K indices)."""
    original = load_weights(arch).state
    state = {}
    for index, name in enumerate(layer_names(arch)):
        if name.startswith("conv"):
            state[f"features.{index}.weight"] = original[f"{name}.weight"]
            state[f"features.{index}.bias"] = original[f"{name}.bias"]
    return state
