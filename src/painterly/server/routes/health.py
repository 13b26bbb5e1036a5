"""``/api/health`` and ``/api/config``: liveness, and what the page needs to build its forms."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from painterly import __version__
from painterly.presets import PRESETS
from painterly.server.live import can_stabilize
from painterly.server.routes.stylize import STYLIZE_COLORS
from painterly.server.state import ServerState, get_state
from painterly.server.videos import video_support
from painterly.settings import config_schema

router = APIRouter(tags=["server"])

#: The page offers these time budgets for a painting (issue 9): the ``time_limit`` setting, in seconds.
TIME_LIMIT_SUGGESTIONS = (
    {"label": "about 1 minute", "value": 60},
    {"label": "about 3 minutes", "value": 180},
    {"label": "about 10 minutes", "value": 600},
)
State = Annotated[ServerState, Depends(get_state)]


@router.get("/health")
def health(state: State) -> dict[str, Any]:
    """Liveness, version and queue length."""
    return {
        "status": "stopping" if state.stopping.is_set() else "ok",
        "version": __version__,
        "queued": state.manager.queued(),
        "max_queue": state.settings.max_queue,
        "workers": len(state.settings.devices),
    }


@router.get("/config")
def config(state: State) -> dict[str, Any]:
    """The settings a job may set (``fields``: name, kind, default, choices, help, group, minimum,
    maximum, from the library's one declaration, with this server's caps applied; ``time_limit`` also
    has ``suggestions``, the budgets the page offers), the limits, and the shorthand ``defaults``
    and ``choices`` maps."""
    s = state.settings
    missing_video = video_support()
    caps = {"size": s.max_size, "iterations": s.max_iterations, "scales": s.max_scales}
    fields = []
    for entry in config_schema():
        cap = caps.get(entry["name"])
        if cap is not None:
            entry["maximum"] = cap if entry["maximum"] is None else min(entry["maximum"], cap)
        if entry["name"] == "time_limit":
            entry["suggestions"] = [dict(item) for item in TIME_LIMIT_SUGGESTIONS]
        fields.append(entry)
    return {
        "fields": fields,
        "defaults": {f["name"]: f["default"] for f in fields},
        "choices": {f["name"]: f["choices"] for f in fields if f["choices"]},
        "presets": sorted(PRESETS),
        "limits": {
            "max_size": s.max_size,
            "max_iterations": s.max_iterations,
            "max_scales": s.max_scales,
            "max_work": s.max_work,
            "max_styles": s.max_styles,
            "max_upload_bytes": s.max_upload_bytes,
            "max_pixels": s.max_pixels,
        },
        "stylize": {"preserve_colors": list(STYLIZE_COLORS)},
        "live": {
            "max_connections": s.live_max_connections,
            "max_fps": s.live_max_fps,
            "max_pixels": s.live_max_pixels,
            "max_frame_bytes": s.live_max_frame_bytes,
            "stabilized": can_stabilize(),
        },
        "video": {
            "available": missing_video is None,
            "reason": missing_video,
            "max_seconds": s.video_max_seconds,
            "max_frames": s.video_max_frames,
            "max_size": s.video_max_size,
            "max_pixels": s.video_max_pixels,
            "max_upload_bytes": s.video_max_upload_bytes,
        },
    }
