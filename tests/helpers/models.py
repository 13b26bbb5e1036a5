"""Tiny random style networks and seconds-long training settings."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported by the helpers that need it, not by every test
    from painterly.feedforward.conditional import ConditionalTransformerNet
    from painterly.feedforward.network import TransformerNet


def tiny_style_net(width: int = 4, seed: int = 1) -> TransformerNet:
    """A small random transformer network whose outputs sit inside 0-1 (so clamping hides nothing)."""
    import torch

    from painterly.feedforward.network import TransformerNet

    torch.manual_seed(seed)
    net = TransformerNet(width)
    with torch.no_grad():
        net.decoder[-1][1].bias.fill_(0.5)  # type: ignore[index]
        net.decoder[-1][1].weight.mul_(0.2)  # type: ignore[index]
    return net.eval()


def tiny_cin(styles: list[str], seed: int = 3) -> ConditionalTransformerNet:
    """A width-4 multi-style network whose styles differ clearly and whose outputs sit inside 0-1."""
    import torch

    from painterly.feedforward.conditional import ConditionalTransformerNet

    torch.manual_seed(seed)
    net = ConditionalTransformerNet(4, styles)
    with torch.no_grad():
        for norm in net.norms():
            norm.scale.normal_(1.0, 0.5)
            norm.shift.normal_(0.0, 0.5)
        net.output[1].bias.fill_(0.5)  # type: ignore[operator]
        net.output[1].weight.mul_(0.2)  # type: ignore[operator]
    return net.eval()


def tiny_train_settings(folder: Path, style: object, output: Path, **overrides: object) -> Any:
    """:class:`TrainSettings` for a seconds-long CPU training: width 4, 32 px crops, fp32."""
    from painterly.feedforward.training import TrainSettings

    values: dict[str, Any] = dict(
        style=style,
        data=folder,
        output=output,
        iterations=6,
        batch_size=2,
        image_size=32,
        width=4,
        style_size=64,
        checkpoint_every=3,
        log_every=1,
        validate_every=100,
        validation_size=32,
        precision="fp32",
        device="cpu",
        learning_rate=1e-2,
    )
    values.update(overrides)
    return TrainSettings(**values)
