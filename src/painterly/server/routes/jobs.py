"""Image optimization jobs: ``/api/jobs`` (submit, list), ``/api/jobs/{id}`` (status, cancel, result,
events). Uploads are decoded by :mod:`painterly.server.uploads` after every setting is checked."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from starlette.datastructures import UploadFile

from painterly.errors import PainterlyError, did_you_mean
from painterly.regions import check_style_masks
from painterly.server.forms import EXTRA_FIELDS, FILE_FIELDS, SETTING_NAMES, parse_job_form
from painterly.server.jobs import QueueFull
from painterly.server.security import shorten
from painterly.server.state import ServerState, get_state
from painterly.server.store import FINAL, QUEUED, RUNNING
from painterly.server.uploads import Upload
from painterly.settings import SERVER_FIELDS

router = APIRouter(prefix="/jobs", tags=["jobs"])
State = Annotated[ServerState, Depends(get_state)]

#: How often the event stream looks for news, and how long it stays quiet before a keep-alive.
EVENT_POLL = 0.25
KEEPALIVE = 15.0
#: After a stop request, how long a stream waits for its job's last word before it ends anyway.
STOP_GRACE = 2.0
#: Result files by suffix (the server names them).
RESULT_TYPES = {".png": "image/png", ".mp4": "video/mp4"}
PUBLIC_FIELDS = (
    "id",
    "kind",
    "status",
    "created",
    "started",
    "finished",
    "options",
    "progress",
    "error",
    "width",
    "height",
    "queue_position",
)


def queue_full(exc: QueueFull) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=429, headers={"Retry-After": str(exc.retry_after)})


def plausible_id(job_id: str) -> bool:
    return 8 <= len(job_id) <= 64 and all(c.isalnum() or c in "-_" for c in job_id) and job_id.isascii()


def job_or_404(state: ServerState, job_id: str) -> dict[str, Any]:
    record = state.manager.snapshot(job_id) if plausible_id(job_id) else None
    if record is None:
        raise HTTPException(404, "no such job (it may have been cleaned up)")
    return record


def public(state: ServerState, record: dict[str, Any]) -> dict[str, Any]:
    """A record as clients see it: no server paths, and the URLs to follow."""
    job_id = record["id"]
    out = {key: record.get(key) for key in PUBLIC_FIELDS}
    out["urls"] = {
        "self": f"/api/jobs/{job_id}",
        "events": f"/api/jobs/{job_id}/events",
        "cancel": f"/api/jobs/{job_id}/cancel",
        "result": f"/api/jobs/{job_id}/result" if state.store.result_path(record) is not None else None,
    }
    return out


_FORM_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["content", "style"],
                    "properties": {
                        "content": {"type": "string", "format": "binary", "description": "the photo"},
                        "style": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "one or more style images",
                        },
                        "mask": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "optional: one region mask per style, in the same order "
                            "(greyscale, white inside, any size; together covering the picture)",
                        },
                        "preset": {"type": "string"},
                        **{f.name: {"type": "string", "description": f.help} for f in SERVER_FIELDS},
                    },
                }
            }
        },
    }
}


@router.post("", status_code=202, openapi_extra=_FORM_SCHEMA)
async def submit(request: Request, state: State) -> JSONResponse:
    """Queue an image optimization: 202 with the job, or 429 with Retry-After when the queue is full.
    Form fields: ``content`` (a file), ``style`` (one or more files), ``mask`` (none, or one file
    per style: each style paints its region), ``preset`` and the settings of ``GET /api/config``'s
    ``fields``."""
    manager, limits = state.manager, state.settings
    if state.stopping.is_set() or manager.queued() >= limits.max_queue:  # before reading the body
        return queue_full(QueueFull(manager.retry_after()))
    form = await request.form(max_files=2 * limits.max_styles + 2, max_fields=len(SETTING_NAMES) + 8)
    try:
        values: dict[str, str] = {}
        files: dict[str, list[UploadFile]] = {name: [] for name in FILE_FIELDS}
        for key, value in form.multi_items():
            if key in FILE_FIELDS:
                if not isinstance(value, UploadFile):
                    raise PainterlyError(f"{key} must be a file upload")
                files[key].append(value)
            elif key in SETTING_NAMES or key in EXTRA_FIELDS:
                if not isinstance(value, str):
                    raise PainterlyError(f"{key} must be text, not a file")
                if key in values:  # size=32&size=99999 took the last one silently
                    raise PainterlyError(f"the form field {shorten(key)} is given more than once")
                values[key] = value
            else:
                known = (*FILE_FIELDS, *EXTRA_FIELDS, *SETTING_NAMES)
                raise PainterlyError(f"unknown form field {shorten(key)}{did_you_mean(key, known)}")
        if len(files["content"]) != 1:
            raise PainterlyError(f"need exactly one content image, got {len(files['content'])}")
        resolved, options = parse_job_form(values, len(files["style"]), limits)
        if files["mask"] and len(files["mask"]) != len(files["style"]):
            raise PainterlyError(
                f"{len(files['style'])} style image(s) but {len(files['mask'])} mask(s): "
                "give one mask per style, in the same order"
            )
        style_side = max(16, round(resolved.size * resolved.style_scale))
        uploads = [Upload(files["content"][0].file, "content image", resolved.size)]
        uploads += [Upload(f.file, f"style image {i + 1}", style_side) for i, f in enumerate(files["style"])]
        uploads += [
            Upload(f.file, f"mask {i + 1}", resolved.size, mask=True) for i, f in enumerate(files["mask"])
        ]
        assert state.decoder is not None
        content, *images = await state.decoder.decode(uploads)
        styles, masks = images[: len(files["style"])], images[len(files["style"]) :]
        if masks:
            check_style_masks(masks, len(styles))
    finally:
        await form.close()
    try:
        job_id = await run_in_threadpool(manager.submit, content, styles, options, masks or None)
    except QueueFull as exc:
        return queue_full(exc)
    record = await run_in_threadpool(job_or_404, state, job_id)
    return JSONResponse(public(state, record), status_code=202, headers={"Location": f"/api/jobs/{job_id}"})


@router.get("")
def list_jobs(state: State, limit: Annotated[int, Query(ge=1, le=200)] = 20) -> dict[str, Any]:
    """The most recent jobs, newest first (both kinds)."""
    records = []
    for record in state.store.recent(limit):
        live = state.manager.snapshot(record["id"]) if record["status"] in (QUEUED, RUNNING) else record
        records.append(public(state, live or record))
    return {"jobs": records}


@router.get("/{job_id}")
def job_status(job_id: str, state: State) -> dict[str, Any]:
    """Status and progress: iteration, scale, losses, fraction done, ETA in seconds."""
    return public(state, job_or_404(state, job_id))


@router.post("/{job_id}/cancel")
def cancel(job_id: str, state: State) -> dict[str, Any]:
    """Cancel a queued or running job; a running one keeps the best image so far as its result."""
    job_or_404(state, job_id)
    record = state.manager.cancel(job_id)
    if record is None:
        raise HTTPException(404, "no such job (it may have been cleaned up)")
    return public(state, record)


@router.get("/{job_id}/result", response_class=FileResponse)
def result(job_id: str, state: State, download: bool = False) -> FileResponse:
    """The result: a PNG, or an MP4 for a video job; ``?download=1`` asks the browser to save it."""
    record = job_or_404(state, job_id)
    path = state.store.result_path(record)
    if path is None:
        if record["status"] not in FINAL:
            raise HTTPException(409, f"job is {record['status']}; the result is not ready yet")
        raise HTTPException(404, f"job is {record['status']} and has no result")
    return FileResponse(
        path,
        media_type=RESULT_TYPES.get(path.suffix, "application/octet-stream"),
        filename=f"painterly-{job_id}{path.suffix}" if download else None,
        content_disposition_type="attachment" if download else "inline",
        headers={"Cache-Control": "private, max-age=3600"},
    )


@router.get("/{job_id}/events")
async def events(job_id: str, state: State) -> StreamingResponse:
    """Server-sent events: ``progress`` (the job as from GET, plus ``preview``, a small JPEG data URL,
    when the image changed), then one ``end`` when the job is final, or when the server stops.
    The job runs on if you disconnect."""
    await run_in_threadpool(job_or_404, state, job_id)
    return StreamingResponse(
        _stream(state, job_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _stream(state: ServerState, job_id: str) -> AsyncIterator[str]:
    manager = state.manager
    yield "retry: 2000\n\n"
    seen: tuple[int, int] | None = (-1, -1)  # (version, preview version); None when final
    quiet_since = time.monotonic()
    while True:
        versions = manager.versions(job_id)
        stopped = state.stopping.is_set() and time.monotonic() - state.stopping_since > STOP_GRACE
        if versions != seen or stopped:
            record = await run_in_threadpool(manager.snapshot, job_id)
            if record is None:
                return
            event = public(state, record)
            final = record["status"] in FINAL or stopped
            if versions and seen and versions[1] != seen[1]:
                preview = manager.preview(job_id)
                if preview:
                    event["preview"] = preview
            yield f"event: {'end' if final else 'progress'}\ndata: {json.dumps(event)}\n\n"
            if final:
                return
            seen = versions
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > KEEPALIVE:
            yield ": keep-alive\n\n"
            quiet_since = time.monotonic()
        await asyncio.sleep(EVENT_POLL)
