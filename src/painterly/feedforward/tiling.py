"""Stylizing images too large for memory in overlapping tiles, blended without seams.

Two things make tiles disagree at their borders: instance normalization (each tile would get its
own mean and variance) and the padding at tile edges. The first is removed by computing every
norm layer's statistics once, on the whole image (downscaled if it is very large), and using those
same statistics in every tile. The second is confined to the overlap, where tiles are blended with
linear ramps. Tile origins are multiples of 4, so each tile sees the same stride-2 grid as the
whole image; on an image small enough to run in one piece the tiled result matches it closely.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from painterly.feedforward.network import MULTIPLE, pad_to_multiple

#: Default tile side (px) and overlap on each side (px). 1024 px tiles of the light network need
#: about 0.6 GB of activations.
TILE = 1024
OVERLAP = 64
#: The statistics pass runs on the image downscaled to at most this many pixels.
STATS_PIXELS = 2048 * 2048


@contextlib.contextmanager
def fixed_norm_statistics(
    net: nn.Module, image: torch.Tensor, extra: tuple[torch.Tensor, ...] = ()
) -> Iterator[None]:
    """Inside the block, every InstanceNorm2d of ``net`` normalizes with ``image``'s statistics.

    ``extra``: the network's other inputs (a multi-style network's style weights)."""
    norms = [m for m in net.modules() if isinstance(m, nn.InstanceNorm2d)]
    stats: dict[nn.Module, tuple[torch.Tensor, torch.Tensor]] = {}

    def record(module: nn.Module, inputs: tuple[torch.Tensor], _output: torch.Tensor) -> None:
        x = inputs[0].float()
        stats[module] = (x.mean(dim=(2, 3), keepdim=True), x.var(dim=(2, 3), keepdim=True, unbiased=False))

    handles = [m.register_forward_hook(record) for m in norms]
    try:
        with torch.no_grad():
            pixels = image.shape[-1] * image.shape[-2]
            if pixels > STATS_PIXELS:
                scale = (STATS_PIXELS / pixels) ** 0.5
                image = F.interpolate(image, scale_factor=scale, mode="area")
            net(pad_to_multiple(image)[0], *extra)
    finally:
        for handle in handles:
            handle.remove()

    def fixed(module: nn.InstanceNorm2d, x: torch.Tensor) -> torch.Tensor:
        mean, var = stats[module]
        y = (x.float() - mean) * torch.rsqrt(var + module.eps)
        if module.weight is not None:  # the conditional norm applies its own scale and shift
            y = y * module.weight.view(1, -1, 1, 1) + module.bias.view(1, -1, 1, 1)
        return y.to(x.dtype)

    originals = {m: m.forward for m in norms}
    for module in norms:
        module.forward = fixed.__get__(module)  # type: ignore[method-assign]
    try:
        yield
    finally:
        for module, forward in originals.items():
            module.forward = forward  # type: ignore[method-assign]


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    step = tile - 2 * overlap
    starts = list(range(0, length - tile, step)) + [length - tile]
    return sorted({s - s % MULTIPLE for s in starts})


def _ramp(length: int, overlap: int, at_start: bool, at_end: bool) -> torch.Tensor:
    weight = torch.ones(length)
    ramp = torch.linspace(0, 1, overlap + 2)[1:-1]
    if not at_start and overlap:
        weight[:overlap] = ramp
    if not at_end and overlap:
        weight[-overlap:] = ramp.flip(0)
    return weight


@torch.no_grad()
def stylize_tiled(
    net: nn.Module,
    image: torch.Tensor,
    tile: int = TILE,
    overlap: int = OVERLAP,
    extra: tuple[torch.Tensor, ...] = (),
) -> torch.Tensor:
    """Stylize a (1, 3, H, W) tensor in tiles of ``tile`` px overlapping by ``overlap`` px on each side.

    ``extra``: the network's other inputs (a multi-style network's (1, S) style weights)."""
    tile = max(4 * MULTIPLE, tile - tile % MULTIPLE)
    overlap = min(overlap, tile // 4)
    padded, (h, w) = pad_to_multiple(image)
    H, W = padded.shape[-2:]
    out = torch.zeros((1, 3, H, W), dtype=torch.float32, device=image.device)
    total = torch.zeros((1, 1, H, W), dtype=torch.float32, device=image.device)
    ys, xs = _starts(H, tile, overlap), _starts(W, tile, overlap)
    with fixed_norm_statistics(net, padded, extra):
        for y in ys:
            for x in xs:
                piece = padded[..., y : y + tile, x : x + tile]
                result = net(piece, *extra).float()
                th, tw = piece.shape[-2:]
                wy = _ramp(th, overlap, y == ys[0], y == ys[-1]).to(image.device)
                wx = _ramp(tw, overlap, x == xs[0], x == xs[-1]).to(image.device)
                weight = (wy[:, None] * wx[None, :])[None, None]
                out[..., y : y + th, x : x + tw] += result * weight
                total[..., y : y + th, x : x + tw] += weight
    return (out / total.clamp_min(1e-8))[..., :h, :w].clamp(0, 1)
