"""``POST /api/videos``: queue a video job (an uploaded clip, a trained model); the job is then
followed, cancelled and downloaded under ``/api/jobs/{id}`` like an image job."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from painterly.errors import PainterlyError
from painterly.server.jobs import QueueFull
from painterly.server.routes.jobs import job_or_404, public, queue_full
from painterly.server.routes.openapi import MODEL_FIELD, multipart_body
from painterly.server.security import shorten
from painterly.server.state import ServerState, get_state
from painterly.server.videos import (
    VideoTask,
    inspect_clip,
    output_side,
    parse_options,
    save_upload,
    upload_suffix,
    video_support,
)

router = APIRouter(tags=["videos"])
State = Annotated[ServerState, Depends(get_state)]

_VIDEO_SCHEMA = multipart_body(
    ("video", "model"),
    {
        "video": {"type": "string", "format": "binary", "description": "the clip"},
        "model": MODEL_FIELD,
        "size": {"type": "integer", "description": "long side of the output, px"},
        "temporal_strength": {"type": "number", "description": "0 (off) to 0.95"},
    },
)


@router.post("/videos", status_code=202, openapi_extra=_VIDEO_SCHEMA)
async def submit_video(request: Request, state: State) -> JSONResponse:
    """Queue a video: 202 with the job (kind ``video``); its result is an MP4 with the clip's audio.
    501 when this server has no video support, 429 with Retry-After when the queue is full."""
    missing = video_support()
    if missing:
        return JSONResponse({"detail": missing}, status_code=501)
    manager, s = state.manager, state.settings
    if state.stopping.is_set() or manager.queued() >= s.max_queue:  # before reading the body
        return queue_full(QueueFull(manager.retry_after()))
    form = await request.form(max_files=1, max_fields=8)
    try:
        values: dict[str, str] = {}
        upload: UploadFile | None = None
        for key, value in form.multi_items():
            if key == "video" and isinstance(value, UploadFile):
                upload = value
            elif isinstance(value, str) and key != "video":
                if key in values:  # as /api/stylize and /api/jobs: never silently the last one
                    raise PainterlyError(f"the form field {shorten(key)} is given more than once")
                values[key] = value
            else:
                raise PainterlyError(f"form field {key[:40]!r} has the wrong kind (file or text)")
        if upload is None:
            raise PainterlyError("video is missing: send the clip as the file field 'video'")
        options = parse_options(values, s, state.live_models)
        path = await run_in_threadpool(save_upload, upload.file, s, upload_suffix(upload.filename))
    finally:
        await form.close()
    try:
        if path.stat().st_size == 0:
            raise PainterlyError("the video is empty")
        clip = await run_in_threadpool(inspect_clip, path, s)
        if clip.seconds is not None and clip.seconds > s.video_max_seconds + 0.5:
            raise PainterlyError(
                f"the video is {clip.seconds:.1f} s long, more than this server's limit of "
                f"{s.video_max_seconds:g} s"
            )
        options["size"] = output_side(options["size"], clip, s)
        options["input"] = {"width": clip.width, "height": clip.height, "seconds": clip.seconds}
        task = VideoTask(path, options, clip, state.live_models, s)
        job_id = await run_in_threadpool(manager.submit_task, "video", options, task)
    except QueueFull as exc:
        path.unlink(missing_ok=True)
        return queue_full(exc)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    record = await run_in_threadpool(job_or_404, state, job_id)
    return JSONResponse(public(state, record), status_code=202, headers={"Location": f"/api/jobs/{job_id}"})
