"""The loss of a large image and its gradient, evaluated in overlapping tiles: memory bounded by a
tile, not by the picture.

Why it is exact. A VGG activation depends only on the pixels in its receptive field. A tile is the
image cut to a *region*: the tile's *core* widened on each side by a *halo*. Evaluated alone, the
region's activations are wrong only near the region's cut edges (the convolutions' zero padding sees
zeros where the image goes on); that wrong band grows by one activation per 3x3 convolution and
halves (rounded up) at each pooling. :func:`halo_for` counts it: for VGG19 up to ``relu5_1`` it is
5 activations at stride 16 = 80 px (``relu4_2``: 5 at stride 8 = 40 px; ``relu3_1``: 3 at stride 4 =
12 px). With a halo that wide, the core's activations are the whole image's, bit for bit up to the
order of float sums. Where a region ends at the image's border it is not cut: the zero padding and
the ceil-mode pooling's last window there are the whole image's own. Tile and halo sizes are
multiples of the deepest layer's stride (16 for ``relu5_1``), so the pooling grid of every region
lines up with the image's.

The terms. Content and TV are sums over positions: each tile adds its core's part. A Gram matrix is
a sum over positions too, but a layer's style loss is not: it is a function of the whole Gram. So:

- pass 1 (no graph kept): each style layer's Gram summed over all tiles' cores;
- the style loss of those Grams and its gradient ``D = dL/dG`` (a C x C matrix per layer);
- pass 2, tile by tile, with a graph: ``<D, G_tile>`` (``G_tile`` the core's share of the Gram) has
  the gradient ``(D + D^T) F / (C H W)``, exactly the whole loss's gradient with respect to the core's
  activations ``F``; with the content and TV parts of the core it is back-propagated to the region's
  pixels (core and halo: the core's activations depend on the halo's pixels), and added into the
  image's gradient.

The sum of the tiles' losses is the whole image's loss; the sum of their gradients is its gradient.
Peak memory is one region's graph plus a few image-sized tensors (the image, its gradient, the
content targets); time is the two passes over the regions, the halo included (see
:meth:`TiledLoss.cost_factor`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

from painterly.errors import PainterlyError
from painterly.losses.container import TOTAL, LossCriterion
from painterly.losses.content import ContentLoss, content_error
from painterly.losses.gram import gram_matrix
from painterly.losses.guides import GuidedGramStyleLoss
from painterly.losses.style import GramStyleLoss
from painterly.losses.tv import PowerTVLoss, SquaredTVLoss
from painterly.settings import DEFAULT_TILE_SIZE, needs_tiles
from painterly.vgg.layers import layer_names
from painterly.vgg.network import VGG

#: The default core of a tile (px, a side): 512 + 2 x 80 px of halo is a 672 px region.
DEFAULT_TILE = DEFAULT_TILE_SIZE

#: The time of a region pixel in a tiled evaluation against a pixel of a whole-image one: pass 2 is a
#: forward and backward pass like the whole image's, pass 1 one more forward pass (a third in theory);
#: smaller convolutions and per-tile work add to it. benchmarks/bench_large.py measured 1.8 (4K, 512 px
#: tiles) and 2.4 (1024x576) on a busy 2-core EPYC.
REGION_PIXEL_COST = 1.8
#: An asked-for tile size whose evaluation costs more than this many whole-image ones is refused:
#: ``--tile-size 1`` on a 256 px picture made 256 tiles, each mostly halo (about 200x the work, a
#: run that looked hung).
MAX_TILED_COST = 40.0

#: What a tiled evaluation does to each region before the network sees it (e.g. a memory layout).
Prepare = Callable[[torch.Tensor], torch.Tensor]


def layer_stride(arch: str, layer: str) -> int:
    """Input pixels per activation of ``layer``: 2 to the number of poolings up to it."""
    names = layer_names(arch)
    return 2 ** sum(1 for name in names[: names.index(layer) + 1] if name.startswith("pool"))


def alignment(arch: str, layers: Sequence[str]) -> int:
    """The stride that tile offsets must be multiples of, so that every pooling grid lines up."""
    return max((layer_stride(arch, layer) for layer in layers), default=1)


def halo_for(arch: str, layers: Sequence[str]) -> int:
    """The halo (px) that keeps the core's activations of ``layers`` exact: the width of the band that
    a region's cut edge spoils at each layer, in input pixels, rounded up to :func:`alignment`."""
    if not layers:
        return 0
    names = layer_names(arch)
    deepest = max(names.index(layer) for layer in layers)
    spoiled, stride, need = 0, 1, 0
    for name in names[: deepest + 1]:
        if name.startswith("conv"):
            spoiled += 1  # a 3x3 convolution reads one activation beyond the band
        elif name.startswith("pool"):
            spoiled, stride = -(-spoiled // 2), stride * 2
        if name in layers:
            need = max(need, spoiled * stride)
    align = alignment(arch, layers)
    return -(-need // align) * align


@dataclass(frozen=True)
class Span:
    """One tile's extent along one axis: its core [start, end) and its region [lo, hi) (core + halo)."""

    start: int
    end: int
    lo: int
    hi: int

    def core_at(self, stride: int) -> slice:
        """The core's activations at ``stride``, in the region's own coordinates."""
        return slice(self.start // stride - self.lo // stride, -(-self.end // stride) - self.lo // stride)

    def core_in_image(self, stride: int) -> slice:
        """The core's activations at ``stride``, in the whole image's coordinates."""
        return slice(self.start // stride, -(-self.end // stride))


def spans(length: int, core: int, halo: int) -> list[Span]:
    """Cores of ``core`` px (the last one shorter) covering ``length``, each with its halo, clipped."""
    return [
        Span(start, min(start + core, length), max(0, start - halo), min(length, start + core + halo))
        for start in range(0, length, core)
    ]


@dataclass(frozen=True)
class Tile:
    rows: Span
    cols: Span

    def region(self, image: torch.Tensor) -> torch.Tensor:
        return image[..., self.rows.lo : self.rows.hi, self.cols.lo : self.cols.hi]

    def core_at(self, features: torch.Tensor, stride: int) -> torch.Tensor:
        return features[..., self.rows.core_at(stride), self.cols.core_at(stride)]

    def core_in_image(self, features: torch.Tensor, stride: int) -> torch.Tensor:
        return features[..., self.rows.core_in_image(stride), self.cols.core_in_image(stride)]


def _identity(image: torch.Tensor) -> torch.Tensor:
    return image


class TiledLoss:
    """The loss of a :class:`~painterly.losses.LossCriterion` of content, Gram style and TV terms, and
    its gradient, evaluated tile by tile (see the module's notes).

    ``tile`` is the core's side in px, rounded up to a multiple of the deepest layer's stride.
    :meth:`evaluate` returns the same named losses as ``criterion(image)`` and the image's gradient.
    """

    def __init__(self, criterion: LossCriterion, tile: int = DEFAULT_TILE) -> None:
        problem = unsupported(criterion)
        if problem:
            raise PainterlyError(f"a tiled evaluation cannot take {problem}")
        assert criterion.vgg is not None  # unsupported() checked it
        self.criterion = criterion
        self.network: VGG = criterion.vgg
        arch = self.network.arch
        self.layers = criterion.layers  # evaluated: the layers of the weighted terms
        # The geometry holds for every term's layers (targets may be asked for those of weight 0).
        every = list(dict.fromkeys(layer for _, term in criterion.items() for layer in term.layers))
        self.strides = {layer: layer_stride(arch, layer) for layer in every}
        self.align = alignment(arch, every)
        self.halo = halo_for(arch, every)
        self.tile = max(self.align, -(-int(tile) // self.align) * self.align)

    def tiles(self, height: int, width: int) -> list[Tile]:
        return [
            Tile(rows, cols)
            for rows in spans(height, self.tile, self.halo)
            for cols in spans(width, self.tile, self.halo)
        ]

    def cost_factor(self, height: int, width: int) -> float:
        """About how much one tiled evaluation costs against a whole-image one of the same size: the
        regions' pixels over the image's, times :data:`REGION_PIXEL_COST`."""
        area = sum((t.rows.hi - t.rows.lo) * (t.cols.hi - t.cols.lo) for t in self.tiles(height, width))
        return area / (height * width) * REGION_PIXEL_COST

    def _shape_at(self, size: int, layer: str) -> int:
        return -(-size // self.strides[layer])

    # -- no-graph passes: targets and pass 1 -------------------------------------------------------

    @torch.no_grad()
    def features(
        self, image: torch.Tensor, layers: Sequence[str], prepare: Prepare = _identity
    ) -> dict[str, torch.Tensor]:
        """The whole image's activations of ``layers``, assembled from the tiles' cores (content
        targets; they take C x H x W / stride^2 floats each, not the network's whole graph)."""
        height, width = image.shape[-2:]
        out: dict[str, torch.Tensor] = {}
        for tile in self.tiles(height, width):
            features = self.network(prepare(tile.region(image)), layers)
            for layer in layers:
                stride = self.strides.get(layer) or layer_stride(self.network.arch, layer)
                core = tile.core_at(features[layer], stride)
                if layer not in out:
                    shape = (*core.shape[:2], -(-height // stride), -(-width // stride))
                    out[layer] = torch.empty(shape, dtype=core.dtype, device=core.device)
                tile.core_in_image(out[layer], stride).copy_(core)
        return out

    @torch.no_grad()
    def grams(
        self,
        image: torch.Tensor,
        layers: Sequence[str],
        prepare: Prepare = _identity,
        between_tiles: Callable[[], None] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Each layer's Gram matrix of the whole image (as :func:`~painterly.losses.gram_matrix`),
        summed over the tiles' cores: pass 1, and style targets of large style images."""
        height, width = image.shape[-2:]
        strides = {layer: layer_stride(self.network.arch, layer) for layer in layers}
        sums: dict[str, torch.Tensor] = {}
        for tile in self.tiles(height, width):
            features = self.network(prepare(tile.region(image)), layers)
            for layer in layers:
                part = self._gram_share(
                    tile.core_at(features[layer], strides[layer]), height, width, strides[layer]
                )
                sums[layer] = part if layer not in sums else sums[layer] + part
            if between_tiles is not None:
                between_tiles()
        return sums

    @staticmethod
    def _gram_share(core: torch.Tensor, height: int, width: int, stride: int) -> torch.Tensor:
        """A core's share of the whole layer's Gram: normalized by the whole layer's positions."""
        positions = -(-height // stride) * -(-width // stride)
        return gram_matrix(core) * (core.shape[-2] * core.shape[-1] / positions)

    # -- the loss and its gradient -----------------------------------------------------------------

    def evaluate(
        self,
        image: torch.Tensor,
        prepare: Prepare = _identity,
        between_tiles: Callable[[], None] | None = None,
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The weighted losses (``{name: value, ..., "total": sum}``, detached) of ``image`` and the
        gradient of ``"total"`` with respect to it (float32, the image's shape). ``between_tiles`` is
        called after each tile of both passes (it may raise to abandon the evaluation: time is up)."""
        image = image.detach()
        height, width = image.shape[-2:]
        values = {name: torch.zeros((), device=image.device) for name, _ in self.criterion.items()}
        style_name, style, slopes = self._style_slopes(image, prepare, values, between_tiles)
        grad = torch.zeros(image.shape, dtype=torch.float32, device=image.device)
        for tile in self.tiles(height, width):
            region = tile.region(image).clone().requires_grad_(True)
            features = self.network(prepare(region), self.layers) if self.layers else {}
            surrogate = torch.zeros((), device=image.device)
            for name, term in self.criterion.items():
                weight = self.criterion.weights[name]
                if not weight:
                    continue
                if name == style_name:
                    assert isinstance(style, GramStyleLoss)
                    for layer in style.layers:
                        stride = self.strides[layer]
                        share = self._gram_share(tile.core_at(features[layer], stride), height, width, stride)
                        surrogate = surrogate + (slopes[layer] * share).sum()
                    continue
                value = self._local_value(term, tile, region, features, (height, width)) * weight
                values[name] = values[name] + value.detach()
                surrogate = surrogate + value
            if surrogate.requires_grad:
                surrogate.backward()
                assert region.grad is not None
                tile.region(grad).add_(region.grad)
            if between_tiles is not None:
                between_tiles()
        values[TOTAL] = torch.stack(list(values.values())).sum()
        return values, grad

    def _style_slopes(
        self,
        image: torch.Tensor,
        prepare: Prepare,
        values: dict[str, torch.Tensor],
        between_tiles: Callable[[], None] | None,
    ) -> tuple[str | None, GramStyleLoss | None, dict[str, torch.Tensor]]:
        """Pass 1: the style term's value from the whole Grams, and ``dL/dG`` per layer (weighted)."""
        for name, term in self.criterion.items():
            weight = self.criterion.weights[name]
            if isinstance(term, GramStyleLoss) and weight:
                grams = self.grams(image, term.layers, prepare, between_tiles)
                height, width = image.shape[-2:]
                slopes = {}
                for layer, layer_weight in term.layer_weights.items():
                    gram = grams[layer].detach().float().requires_grad_(True)
                    positions = self._shape_at(height, layer) * self._shape_at(width, layer)
                    with torch.enable_grad():
                        score = term.gram_score(layer, gram, positions, height * width) * (
                            layer_weight * weight
                        )
                        (slopes[layer],) = torch.autograd.grad(score, gram)
                    values[name] = values[name] + score.detach()
                return name, term, slopes
        return None, None, {}

    def _local_value(
        self,
        term: torch.nn.Module,
        tile: Tile,
        region: torch.Tensor,
        features: Mapping[str, torch.Tensor],
        size: tuple[int, int],
    ) -> torch.Tensor:
        """A content or TV term's part from one tile's core (unweighted by the term's global weight)."""
        if isinstance(term, ContentLoss):
            total = torch.zeros((), device=region.device)
            for layer, layer_weight in term.layer_weights.items():
                if layer not in term.targets:
                    raise PainterlyError("the content loss has no target: set it before evaluating")
                target = term.targets[layer]
                stride = self.strides[layer]
                error = content_error(
                    tile.core_at(features[layer], stride), tile.core_in_image(target, stride), "sum"
                )
                if term.reduction == "mean":
                    error = error / target.numel()
                total = total + layer_weight * error
            return total
        # TV: the differences whose top-left pixel is in the core (they read one pixel further on).
        height, width = size
        rows = slice(tile.rows.start - tile.rows.lo, min(tile.rows.end + 1, height) - tile.rows.lo)
        cols = slice(tile.cols.start - tile.cols.lo, min(tile.cols.end + 1, width) - tile.cols.lo)
        assert isinstance(term, SquaredTVLoss | PowerTVLoss)
        return term(region[..., rows, cols], {})


def unsupported(criterion: LossCriterion) -> str | None:
    """Why ``criterion`` cannot be evaluated in tiles (None: it can). Tiles take content, Gram style
    (classic or Keras, one image at a time) and TV terms; masked style and extra terms need the whole
    image."""
    if criterion.vgg is None:
        return "a loss without a loss network"
    for name, term in criterion.items():
        if isinstance(term, GuidedGramStyleLoss):
            return f"the masked style term {name!r}"
        if isinstance(term, GramStyleLoss):
            if term.image_weights is not None:
                return "per-image style weights"
        elif not isinstance(term, ContentLoss | SquaredTVLoss | PowerTVLoss):
            return f"the loss term {name!r} ({type(term).__name__})"
    styles = [name for name, term in criterion.items() if isinstance(term, GramStyleLoss)]
    if len(styles) > 1:
        return "more than one style term"
    return None


def tiling_for(
    criterion: LossCriterion, width: int, height: int, tile_size: int | None, available: int | None
) -> TiledLoss | None:
    """The tiled evaluation of a ``width`` x ``height`` image, or None for the whole image (see
    :func:`painterly.settings.needs_tiles`). Automatic tiling leaves a loss that tiles cannot take
    (:func:`unsupported`) to the whole image; asked-for tiling refuses it."""
    if not needs_tiles(width, height, available, tile_size):
        return None
    problem = unsupported(criterion)
    if problem is None:
        tiled = TiledLoss(criterion, tile_size or DEFAULT_TILE)
        cost = tiled.cost_factor(height, width)
        if tile_size is not None and cost > MAX_TILED_COST:
            count = len(tiled.tiles(height, width))
            raise PainterlyError(
                f"--tile-size {tile_size} cuts a {width}x{height} image into {count} "
                f"tiles, each mostly its {tiled.halo} px halo: about {cost:.0f}x the work of one "
                f"evaluation; use --tile-size {DEFAULT_TILE} (or 0 for none)"
            )
        return tiled
    if tile_size is None:
        return None
    raise PainterlyError(f"--tile-size cannot be used with {problem}")


def lbfgs_history_for(pixels: int, requested: int, budget: int) -> int:
    """L-BFGS history pairs that fit in ``budget`` bytes for an RGB float32 image of ``pixels``
    (each pair is two image-sized vectors); at least 3, at most ``requested``."""
    per_pair = 2 * 3 * 4 * pixels
    return max(1, min(requested, max(3, math.floor(budget / per_pair))))


__all__ = [
    "DEFAULT_TILE",
    "REGION_PIXEL_COST",
    "Span",
    "Tile",
    "TiledLoss",
    "alignment",
    "halo_for",
    "layer_stride",
    "lbfgs_history_for",
    "spans",
    "tiling_for",
    "unsupported",
]
