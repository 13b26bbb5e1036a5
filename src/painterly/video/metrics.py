"""The temporal warping error of Lai et al. 2018 ("Learning Blind Video Temporal Consistency").

For consecutive frames t, t+1 the output frame t+1 is warped back to t with the optical flow of
the *input* frames (so a network cannot hide flicker by blurring its own motion), and the squared
RGB difference (0-1 range, summed over the three channels) is averaged over the pixels where the
flow is consistent. The figure is the mean over all pairs. It is computed the way
``shared/tools/video_score.py`` does (DIS medium preset on grayscale, at the output's size,
Sundaram et al.'s consistency check without the motion-boundary term), so that the two agree on
the same frames; that tool reads the encoded file, ``--report`` the frames before encoding.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from painterly.video.flow import FlowEstimator, FlowPair, consistent, gray, warp


def pair_error(previous: np.ndarray, current: np.ndarray, forward: np.ndarray, valid: np.ndarray) -> float:
    """Warping error of one pair: ``current`` warped back along ``forward`` against ``previous``."""
    a = previous.astype(np.float32) / 255 if previous.dtype == np.uint8 else previous.astype(np.float32)
    b = current.astype(np.float32) / 255 if current.dtype == np.uint8 else current.astype(np.float32)
    difference = ((a - warp(b, forward)) ** 2).sum(-1)
    return float(difference[valid].sum() / max(int(valid.sum()), 1))


class WarpingError:
    """Accumulates the warping error frame by frame, alongside a stylization loop.

    :meth:`add` takes each input frame with its output frame; a :class:`FlowPair` already computed
    with the same flow settings (DIS medium, full resolution) is reused instead of recomputed.
    """

    def __init__(self) -> None:
        self.flow = FlowEstimator("medium", 1.0)
        self.errors: list[float] = []
        self._previous: tuple[np.ndarray, np.ndarray] | None = None

    def add(self, frame: np.ndarray, output: np.ndarray, pair: FlowPair | None = None) -> None:
        if self._previous is not None:
            previous_frame, previous_output = self._previous
            if pair is None:
                a, b = gray(previous_frame), gray(frame)
                forward, backward = self.flow.flow(a, b), self.flow.flow(b, a)
            else:
                forward, backward = pair.forward, pair.backward
            valid = consistent(forward, backward)
            self.errors.append(pair_error(previous_output, output, forward, valid))
        self._previous = (frame, output)

    @property
    def value(self) -> float:
        """Mean over the pairs seen so far (NaN before two frames)."""
        return float(np.mean(self.errors)) if self.errors else float("nan")


def warping_error(inputs: Iterable[np.ndarray], outputs: Iterable[np.ndarray]) -> float:
    """The warping error of ``outputs`` (RGB frames) given the ``inputs`` they were made from."""
    meter = WarpingError()
    for frame, output in zip(inputs, outputs, strict=True):
        meter.add(frame, output)
    return meter.value
