"""Optical flow between frames (OpenCV's DIS: no weights to download) and where to trust it.

Conventions: a flow ``f`` from frame A to frame B is an (H, W, 2) float32 array of (dx, dy) such
that pixel ``p`` of A is seen at ``p + f(p)`` in B. :func:`warp` samples an image of B at those
positions, giving B's content aligned to A.

The reliability masks follow Ruder, Dosovitskiy and Brox 2016 (after Sundaram et al. 2010): a
pixel is *occluded* (or disoccluded) when going there and back does not return to the start,
``|f + b|^2 > 0.01 (|f|^2 + |b|^2) + 0.5``, and lies on a *motion boundary* when the flow changes
fast, ``|grad u|^2 + |grad v|^2 > 0.01 |f|^2 + 0.002``. Neither kind of pixel may be copied from
the previous frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from painterly.errors import PainterlyError

PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}
#: Shortest side DIS works on: below 12 px (for a 64x48 clip at half size, or any 2x2 clip) OpenCV
#: raises "The input image must have either width or height >= 12"; smaller frames are enlarged.
MIN_SIDE = 16
#: Below this short side DIS needs the image at most twice as long as wide (see :func:`flow_size`).
NARROW = 32


def flow_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """The (width, height) DIS runs at for frames of that size: ``scale`` of it, each side at least
    :data:`MIN_SIDE`, and a short side under :data:`NARROW` stretched to half the long side or to
    :data:`NARROW` (DIS crashes the process with a segmentation fault on narrow small images such as
    20x100 or 24x96; 0 of 368 shapes from 2 px to 1380 px, aspect 1 to 20, crashed once stretched,
    202 did before). The flow's vectors are scaled back by :meth:`FlowEstimator._full`."""
    w, h = max(MIN_SIDE, round(width * scale)), max(MIN_SIDE, round(height * scale))
    short, long = min(w, h), max(w, h)
    if short < NARROW and long > 2 * short:
        need = min(NARROW, (long + 1) // 2)
        w, h = (max(w, need), h) if w < h else (w, max(h, need))
    return w, h


def gray(image: np.ndarray) -> np.ndarray:
    """An RGB uint8 frame to the single channel DIS works on."""
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


_grids: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}


def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (x, y) of an image of that size; kept, since every frame of a video needs them."""
    found = _grids.get((height, width))
    if found is None:
        gx, gy = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
        gx.setflags(write=False)
        gy.setflags(write=False)
        if len(_grids) >= 8:
            _grids.clear()
        found = _grids[(height, width)] = (gx, gy)
    return found


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample ``image`` (of frame B) at ``p + flow(p)``: B's content aligned to frame A.

    Bilinear (bicubic measured no better on cup.mp4); positions outside the frame take the nearest
    edge pixel (the masks exclude them).
    """
    gx, gy = _grid(*flow.shape[:2])
    return cv2.remap(
        image, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def consistent(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Boolean mask over frame A: where the flow A->B is trustworthy (not occluded, inside B).

    ``forward`` is A->B and ``backward`` B->A; the backward flow is read at where each pixel lands.
    """
    h, w = forward.shape[:2]
    gx, gy = _grid(h, w)
    x, y = gx + forward[..., 0], gy + forward[..., 1]
    back = cv2.remap(backward, x, y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=np.nan)
    gap = ((forward + back) ** 2).sum(-1)
    bound = 0.01 * ((forward**2).sum(-1) + (back**2).sum(-1)) + 0.5
    inside = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    with np.errstate(invalid="ignore"):
        return (gap <= bound) & inside & np.isfinite(gap)


def motion_boundaries(flow: np.ndarray) -> np.ndarray:
    """Boolean mask of pixels where the flow field changes abruptly (Ruder et al.'s criterion)."""
    du = np.gradient(flow[..., 0])
    dv = np.gradient(flow[..., 1])
    change = du[0] ** 2 + du[1] ** 2 + dv[0] ** 2 + dv[1] ** 2
    return change > 0.01 * (flow**2).sum(-1) + 0.002


@dataclass
class FlowPair:
    """The flows between a previous frame and the current one, and the current frame's valid mask.

    ``backward``: current -> previous (to pull the previous output onto the current frame);
    ``forward``: previous -> current; ``valid``: pixels of the current frame that the previous one
    shows (consistent and off motion boundaries), as float32 0/1.
    """

    forward: np.ndarray
    backward: np.ndarray
    valid: np.ndarray
    _maps: tuple[np.ndarray, np.ndarray] | None = field(default=None, init=False, repr=False, compare=False)

    def pull(self, image: np.ndarray) -> np.ndarray:
        """:func:`warp` of a previous frame's ``image`` onto the current frame along ``backward``.

        The sampling positions are converted once per pair to OpenCV's fixed-point maps (1/32 px),
        which remap about twice as fast; a video pulls two images per pair (its steadied input and
        its output).
        """
        if self._maps is None:
            gx, gy = _grid(*self.backward.shape[:2])
            self._maps = cv2.convertMaps(gx + self.backward[..., 0], gy + self.backward[..., 1], cv2.CV_16SC2)
        return cv2.remap(image, *self._maps, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


class FlowEstimator:
    """DIS optical flow, forward and backward, optionally at a reduced resolution for speed.

    ``scale`` < 1 computes the flow on frames shrunk by that factor and scales the vectors back
    up: flow fields are smooth, so a half-resolution flow costs a quarter and loses little.
    """

    def __init__(self, preset: str = "medium", scale: float = 1.0) -> None:
        if preset not in PRESETS:
            raise PainterlyError(f"unknown flow preset {preset!r}: use {', '.join(PRESETS)}")
        if not 0.1 <= scale <= 1.0:
            raise PainterlyError(f"flow scale must be between 0.1 and 1, got {scale}")
        self.preset = preset
        self.scale = scale
        self._dis = cv2.DISOpticalFlow_create(PRESETS[preset])  # type: ignore[attr-defined]  # not in cv2's stubs

    def _prepare(self, frame: np.ndarray) -> np.ndarray:
        """The gray frame at the flow's resolution: ``scale`` of the frame, each side at least
        :data:`MIN_SIDE` (tiny frames are enlarged; :meth:`_full` brings the vectors back)."""
        g = gray(frame) if frame.ndim == 3 else frame
        h, w = g.shape
        size = flow_size(w, h, self.scale)
        if size != (w, h):
            shrink = size[0] <= w and size[1] <= h
            g = cv2.resize(g, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        return g

    def _full(self, flow: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        if flow.shape[:2] == shape:
            return flow
        h, w = shape
        fx, fy = w / flow.shape[1], h / flow.shape[0]
        big = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
        big[..., 0] *= fx
        big[..., 1] *= fy
        return big

    def flow(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The flow from frame ``a`` to frame ``b`` (RGB or gray), at full resolution."""
        return self._full(self._dis.calc(self._prepare(a), self._prepare(b), None), a.shape[:2])

    def pair(self, previous: np.ndarray, current: np.ndarray) -> FlowPair:
        """Both flows between two frames and the current frame's valid mask."""
        pa, pc = self._prepare(previous), self._prepare(current)
        forward = self._dis.calc(pa, pc, None)
        backward = self._dis.calc(pc, pa, None)
        valid = consistent(backward, forward) & ~motion_boundaries(backward)
        shape = previous.shape[:2]
        mask = valid.astype(np.float32)
        if mask.shape != shape:
            mask = cv2.resize(mask, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
        return FlowPair(self._full(forward, shape), self._full(backward, shape), mask)
