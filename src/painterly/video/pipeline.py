"""The video loop: decode, optical flow, paint each frame, measure, encode.

One loop for both methods: a *painter* (:class:`FramePainter`) turns each frame into its
stylized version, given the flow to the previous frame; everything else (time window, size,
rotation, audio, side-by-side comparison, progress, Ctrl-C, the warping error) lives here.
Decoding and the optical flow (which needs only input frames) run a frame or two ahead in one
thread, encoding a frame or two behind in another (:mod:`painterly.video.overlap`), so that they
overlap the painter.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from painterly.errors import PainterlyError
from painterly.video import io
from painterly.video.flow import FlowEstimator, FlowPair
from painterly.video.metrics import WarpingError
from painterly.video.overlap import Ahead, Behind


class FramePainter(Protocol):
    """Stylizes one frame (RGB uint8, H x W x 3) knowing the flow to the previous one (None first)."""

    @property
    def needs_flow(self) -> bool: ...

    def paint(self, frame: np.ndarray, index: int, pair: FlowPair | None) -> np.ndarray: ...


@dataclass
class VideoProgress:
    """Reported after each frame: ``frame`` frames done out of about ``total`` (None if unknown)."""

    frame: int
    total: int | None
    seconds: float
    warping_error: float | None = None


@dataclass
class VideoResult:
    output: Path
    frames: int
    seconds: float
    #: The warping error of the frames written (before encoding), when asked for.
    warping_error: float | None
    interrupted: bool
    #: Width and height as the video is shown: its rotation applied, both halves with ``compare``.
    size: tuple[int, int]
    #: Seconds spent in each stage: decode, flow, paint, measure, encode. Decoding with the flow, and
    #: encoding, run in threads of their own alongside the painter: the stages overlap.
    stages: dict[str, float] = field(default_factory=dict)
    #: How the frames were painted (feed-forward: the runtime chosen, and what the candidates took).
    runtime: str | None = None

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("nan")


#: Longest start or duration accepted, in seconds (some 30 years; FFmpeg's timestamps overflow far above).
MAX_SECONDS = 1e9


@dataclass(frozen=True)
class Window:
    """Which part of the input to process: ``start`` and ``duration`` in seconds, ``max_frames``."""

    start: float = 0.0
    duration: float | None = None
    max_frames: int | None = None

    def check(self) -> None:
        for name, value in (("start", self.start), ("duration", self.duration)):
            # nan/inf and seconds past FFmpeg's 64-bit timestamps raised a traceback further on.
            if value is not None and not (math.isfinite(value) and value <= MAX_SECONDS):
                raise PainterlyError(
                    f"{name} must be a finite number of seconds up to {MAX_SECONDS:g}, got {value}"
                )
        if self.start < 0:
            raise PainterlyError(f"start must not be negative, got {self.start}")
        if self.duration is not None and self.duration <= 0:
            raise PainterlyError(f"duration must be positive, got {self.duration}")
        if self.max_frames is not None and self.max_frames < 1:
            raise PainterlyError(f"max frames must be at least 1, got {self.max_frames}")

    def expected_frames(self, info: io.VideoInfo) -> int | None:
        counts = []
        if info.frames is not None:
            counts.append(max(0, info.frames - round(self.start * float(info.rate))))
        if self.duration is not None:
            counts.append(round(self.duration * float(info.rate)))
        if self.max_frames is not None:
            counts.append(self.max_frames)
        return min(counts) if counts else None


def run(
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    painter: FramePainter,
    *,
    size: int | None = None,
    window: Window = Window(),
    compare: bool = False,
    report: bool = False,
    flow: FlowEstimator | None = None,
    audio: bool = True,
    progress: Callable[[VideoProgress], None] | None = None,
) -> VideoResult:
    """Stylize ``source`` into ``output`` with ``painter``; Ctrl-C keeps the frames done (``interrupted``)."""
    window.check()
    info = io.probe(source)
    io.check_output(output, (info.path,))
    width, height = io.output_size(info.width, info.height, size)
    flow = flow or FlowEstimator()
    meter = WarpingError() if report else None
    reuse_flow = flow.preset == "medium" and flow.scale == 1.0
    total = window.expected_frames(info)
    started = time.perf_counter()
    interrupted = False
    stages = dict.fromkeys(("decode", "flow", "paint", "measure", "encode"), 0.0)
    writer = io.VideoWriter(
        output,
        rate=info.rate,
        width=width,
        height=height,
        rotation=info.rotation,
        audio_from=info.path if info.has_audio and audio else None,
        audio_start=window.start,
        inputs=(info.path,),
        side_by_side=compare,
    )
    need_flow = painter.needs_flow or (meter is not None and reuse_flow)

    def decoded() -> Iterator[tuple[np.ndarray, FlowPair | None]]:
        """Frames and the flow from the previous one, timed (this runs in its own thread)."""
        previous: np.ndarray | None = None
        frames = io.read_frames(
            info,
            size=(width, height),
            start=window.start,
            duration=window.duration,
            max_frames=window.max_frames,
        )
        clock = time.perf_counter()
        for frame in frames:
            clock = _lap(stages, "decode", clock)
            pair = flow.pair(previous, frame) if previous is not None and need_flow else None
            _lap(stages, "flow", clock)
            yield frame, pair
            previous = frame
            clock = time.perf_counter()  # the wait for the painter is nobody's stage

    def encode(item: tuple[np.ndarray, np.ndarray | None]) -> None:
        clock = time.perf_counter()
        writer.write(*item)
        _lap(stages, "encode", clock)

    painted_frames = 0
    try:
        with writer:
            encoder: Behind[tuple[np.ndarray, np.ndarray | None]] = Behind(encode)
            try:
                with Ahead(decoded()) as ahead:
                    for index, (frame, pair) in enumerate(ahead):
                        clock = time.perf_counter()
                        painted = painter.paint(frame, index, pair)
                        clock = _lap(stages, "paint", clock)
                        if meter is not None:
                            meter.add(frame, painted, pair if reuse_flow else None)
                        _lap(stages, "measure", clock)
                        encoder.put((painted, frame if compare else None))
                        painted_frames += 1
                        if progress is not None:
                            progress(
                                VideoProgress(
                                    painted_frames,
                                    total,
                                    time.perf_counter() - started,
                                    meter.value if meter else None,
                                )
                            )
            finally:
                encoder.finish()  # the frames painted so far are written, also after Ctrl-C
            if writer.frames == 0:
                raise PainterlyError(f"no frames in the chosen part of {info.path}")
    except KeyboardInterrupt:
        if not writer.written:  # no frame yet, or a second Ctrl-C while the file was being finished
            raise
        interrupted = True
    return VideoResult(
        output=writer.path,
        frames=writer.frames,
        seconds=time.perf_counter() - started,
        warping_error=meter.value if meter is not None else None,
        interrupted=interrupted,
        size=writer.shown_size,
        stages=stages,
    )


def _lap(stages: dict[str, float], name: str, since: float) -> float:
    now = time.perf_counter()
    stages[name] += now - since
    return now
