"""Start a new training run from a trained network's weights (``train --init MODEL``).

A network trained on one style already knows most of what any style needs: to see the photo's
edges and regions and to paint strokes over them. Dumoulin et al. (2017) found that styles share
almost all of a network's convolutions. So a run may start from another model's weights instead
of random ones and reach a given quality in far fewer steps, which is what makes training
several styles on a CPU possible.

Both architectures have the same convolutions in the same order, and they differ only in their
norms. A single-style norm has one scale and shift; a conditional norm has one row per style.
:func:`warm_start` copies every convolution and fills the new network's norms as follows:

* a single-style source gives its norm parameters to every style's row;
* a multi-style source gives each style its row when it has one of the same name, and the mean
  of its rows otherwise.

The new network keeps its own settings. A source of another width, depth or upsampling is
refused, because its weights would not fit.
"""

from __future__ import annotations

import torch

from painterly.errors import PainterlyError
from painterly.feedforward.conditional import ConditionalInstanceNorm, ConditionalTransformerNet
from painterly.feedforward.network import TransformerNet

Network = TransformerNet | ConditionalTransformerNet


def _shape_of(net: Network) -> dict[str, object]:
    return {
        "width": net.width,
        "residual_blocks": net.residual_blocks,
        "upsample": net.upsample,
        "shape": getattr(net, "shape", "johnson"),
    }


def _is_norm(net: Network, key: str) -> bool:
    """Whether ``key`` of ``net``'s state dict is a norm parameter (not a convolution's)."""
    module = net.get_submodule(key.rsplit(".", 1)[0])
    return isinstance(module, torch.nn.InstanceNorm2d | ConditionalInstanceNorm)


def _norm_rows(value: torch.Tensor, source: Network, styles: list[str]) -> torch.Tensor:
    """One norm parameter of ``source`` as rows for ``styles`` (see the module's notes)."""
    if isinstance(source, TransformerNet):
        return value.unsqueeze(0).expand(len(styles), -1).clone()
    mean = value.mean(dim=0)
    return torch.stack([value[source.styles.index(n)] if n in source.styles else mean for n in styles])


@torch.no_grad()
def warm_start(net: Network, source: Network, name: str | None = None) -> None:
    """Copy ``source``'s weights into ``net`` (see the module's notes); ``net`` keeps its settings.

    ``name``: the style of a single-style ``net``, to pick its row from a multi-style source.
    """
    if _shape_of(net) != _shape_of(source):
        theirs = ", ".join(f"{k} {v}" for k, v in _shape_of(source).items())
        ours = ", ".join(f"{k} {v}" for k, v in _shape_of(net).items())
        raise PainterlyError(
            f"--init: the model's network ({theirs}) does not fit the one these settings make ({ours}); "
            "set --width and --upsample to match it (the shipped models have 5 residual blocks)"
        )
    styles = list(net.styles) if isinstance(net, ConditionalTransformerNet) else [name or ""]
    ours_state, theirs_state = net.state_dict(), source.state_dict()
    pairs = list(zip(ours_state, theirs_state, strict=True))  # same layers, same order
    new_state: dict[str, torch.Tensor] = {}
    for ours, theirs in pairs:
        if _is_norm(net, ours) != _is_norm(source, theirs):
            raise PainterlyError(f"--init: the model's layer {theirs} does not match this network's {ours}")
        value = theirs_state[theirs]
        if _is_norm(net, ours):
            rows = _norm_rows(value, source, styles)
            value = rows if isinstance(net, ConditionalTransformerNet) else rows[0]
        if value.shape != ours_state[ours].shape:
            raise PainterlyError(f"--init: the model's layer {theirs} has shape {tuple(value.shape)}")
        new_state[ours] = value.clone()
    net.load_state_dict(new_state, strict=True)


__all__ = ["warm_start"]
