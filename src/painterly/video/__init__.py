"""Stylizing videos without flicker, with either method.

Public API::

    from painterly.video import stylize_video
    result = stylize_video("clip.mp4", "out.mp4", model="starry_night")          # feed-forward
    result = stylize_video("clip.mp4", "out.mp4", style="starry_night.jpg", size=256)  # optimization
    print(result.frames, result.fps, result.warping_error)

Modules: ``io`` (PyAV decode and encode, audio, rotation, atomic output), ``flow`` (DIS optical
flow, occlusion and motion-boundary masks), ``feedforward`` (per-frame network plus flow-guided
blending), ``optimization`` (Ruder et al.'s warm start and temporal loss), ``metrics`` (the
warping error), ``pipeline`` (the frame loop both methods share). Needs the ``video`` extra
(PyAV and OpenCV); importing this package imports neither.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from painterly.errors import PainterlyError

#: The line printed when the extra is missing.
INSTALL_LINE = "pip install 'painterly[video]'"

_LAZY = {
    "stylize_video": "painterly.video.stylize",
    "VideoResult": "painterly.video.pipeline",
    "VideoProgress": "painterly.video.pipeline",
    "warping_error": "painterly.video.metrics",
    "FlowEstimator": "painterly.video.flow",
}

if TYPE_CHECKING:
    from painterly.video.flow import FlowEstimator
    from painterly.video.metrics import warping_error
    from painterly.video.pipeline import VideoProgress, VideoResult
    from painterly.video.stylize import stylize_video


def require_video_extra() -> None:
    """Raise a one-line :class:`PainterlyError` with the install command when PyAV or OpenCV is missing."""
    missing = [
        name
        for module, name in (("av", "av"), ("cv2", "opencv-python-headless"))
        if importlib.util.find_spec(module) is None
    ]
    if missing:
        raise PainterlyError(f"video needs {' and '.join(missing)}: {INSTALL_LINE}")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        require_video_extra()
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'painterly.video' has no attribute {name!r}")


__all__ = [
    "INSTALL_LINE",
    "FlowEstimator",
    "VideoProgress",
    "VideoResult",
    "require_video_extra",
    "stylize_video",
    "warping_error",
]
