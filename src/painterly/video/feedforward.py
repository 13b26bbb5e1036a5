"""Feed-forward video stylization: a style network per frame, steadied by flow-guided blending.

A network answers tiny changes of its input (noise, compression, a shift by a pixel) with
different strokes, so frames stylized one by one flicker. :class:`TemporalBlend` pulls the
previous *output* onto the current frame along the optical flow and mixes it in where the flow is
trustworthy: ``out = s + strength * valid * (warped_previous - s)``, the inference-time remedy of
the feed-forward video papers (Huang et al. 2017; Gao et al. 2018). Where something new appears
(occlusions, motion boundaries, the frame's edges) the fresh stylization is used as it is.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import cv2
import numpy as np

from painterly.errors import PainterlyError
from painterly.video.flow import FlowPair, warp

if TYPE_CHECKING:
    from painterly.feedforward.inference import StyleModel

#: Default ``temporal_strength``: the share of the warped previous output kept where it is valid.
#: Chosen on benchmarks/bench_video.py (cup.mp4, 640x480): the warping error falls below half of
#: per-frame stylization while the per-frame style strength stays within a few percent.
DEFAULT_STRENGTH = 0.6


def check_strength(strength: float) -> float:
    if not 0.0 <= strength < 1.0:
        raise PainterlyError(f"temporal strength must be at least 0 and below 1, got {strength}")
    return float(strength)


class TemporalBlend:
    """Mixes each new stylized frame with the previous output warped along the flow (float state)."""

    def __init__(self, strength: float = DEFAULT_STRENGTH, feather: int = 2) -> None:
        self.strength = check_strength(strength)
        self.feather = feather
        self._previous: np.ndarray | None = None

    def __call__(self, stylized: np.ndarray, pair: FlowPair | None) -> np.ndarray:
        """``stylized``: the current frame's RGB uint8; ``pair``: flows to the previous frame (or None)."""
        current = stylized.astype(np.float32)
        if self._previous is not None and pair is not None and self.strength > 0:
            weight = pair.valid
            if self.feather:  # soften the seams around occlusions
                weight = cv2.erode(weight, np.ones((2 * self.feather + 1,) * 2, np.uint8))
                weight = cv2.blur(weight, (2 * self.feather + 1,) * 2)
            weight = (self.strength * weight)[..., None]
            current += weight * (warp(self._previous, pair.backward) - current)
        self._previous = current
        return np.clip(current + 0.5, 0, 255).astype(np.uint8)

    def reset(self) -> None:
        self._previous = None


class FeedForwardPainter:
    """Paints frames with a trained style network, then blends them in time."""

    def __init__(self, model: StyleModel, temporal_strength: float = DEFAULT_STRENGTH) -> None:
        self.model = model
        self.blend = TemporalBlend(temporal_strength)
        #: Seconds inside the network (the rest of ``paint`` is the blending).
        self.network_seconds = 0.0

    @property
    def needs_flow(self) -> bool:
        return self.blend.strength > 0

    def paint(self, frame: np.ndarray, index: int, pair: FlowPair | None) -> np.ndarray:
        started = time.perf_counter()
        stylized = np.asarray(self.model.stylize(frame, tile="none"))
        self.network_seconds += time.perf_counter() - started
        return self.blend(stylized, pair)
