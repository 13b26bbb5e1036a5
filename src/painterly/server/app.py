"""The FastAPI app: the HTTP API under ``/api``, the web page at ``/``, OpenAPI docs at ``/docs``.

Every user error is a :class:`~painterly.errors.PainterlyError` and answers 400 with its message;
an over-large request answers 413, a full queue 429 with ``Retry-After``, a missing or wrong token 401.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from contextlib import asynccontextmanager
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from painterly import __version__
from painterly.errors import PainterlyError
from painterly.images import decode_image, resize_long_side
from painterly.server.config import ServerSettings
from painterly.server.jobs import JobManager, QueueFull, Runner
from painterly.server.models import Busy, FastStylizer
from painterly.server.store import FINAL, QUEUED, RUNNING, JobStore

STATIC = Path(str(files("painterly.server") / "static"))
#: Initial ways a client may start an optimization; anything else would be a path on the server.
CLIENT_INITS = ("content", "noise", "style")
#: How often the event stream looks for news, and how long it stays quiet before a keep-alive.
EVENT_POLL = 0.25
KEEPALIVE = 15.0
#: The page loads nothing from elsewhere and runs no inline script.
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; "
    "frame-ancestors 'none'"
)


def create_app(
    settings: ServerSettings | None = None,
    *,
    runner: Runner | None = None,
    stylize_backend: Any | None = None,
) -> FastAPI:
    """Build the app. ``runner`` replaces ``run_transfer`` and ``stylize_backend`` replaces
    :mod:`painterly.feedforward` (tests use fakes); the defaults are the real library."""
    settings = settings or ServerSettings()
    settings.prepare()
    store = JobStore(settings.database, settings.results_dir)
    manager = JobManager(settings, store, runner)
    stylizer = FastStylizer(settings, store, stylize_backend)

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        manager.start()
        try:
            yield
        finally:
            await run_in_threadpool(manager.stop)

    app = FastAPI(
        title="painterly",
        version=__version__,
        lifespan=lifespan,
        description="Neural style transfer: image optimization jobs and fast stylization.",
    )
    app.state.settings = settings
    app.state.store = store
    app.state.manager = manager
    app.state.stylizer = stylizer
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "X-Painterly-Token"],
            expose_headers=["X-Painterly-Job"],
        )

    @app.exception_handler(PainterlyError)
    async def user_error(request: Request, exc: PainterlyError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error.get("loc", ())[1:]) or "request"
            problems.append(f"{where}: {error.get('msg', 'invalid')}")
        return JSONResponse({"detail": "; ".join(problems)}, status_code=400)

    def require_token(request: Request) -> None:
        if settings.token is None:
            return
        supplied = request.headers.get("x-painterly-token") or request.query_params.get("token")
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and credentials:
            supplied = credentials.strip()
        if not supplied or not secrets.compare_digest(supplied.encode(), settings.token.encode()):
            raise HTTPException(401, "missing or wrong token", headers={"WWW-Authenticate": "Bearer"})

    api = APIRouter(prefix="/api", dependencies=[Depends(require_token)])

    def job_or_404(job_id: str) -> dict[str, Any]:
        record = manager.snapshot(job_id) if _plausible_id(job_id) else None
        if record is None:
            raise HTTPException(404, "no such job (it may have been cleaned up)")
        return record

    def public(record: dict[str, Any]) -> dict[str, Any]:
        job_id = record["id"]
        has_result = store.result_path(record) is not None
        out = {
            key: record.get(key)
            for key in (
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
        }
        out["urls"] = {
            "self": f"/api/jobs/{job_id}",
            "events": f"/api/jobs/{job_id}/events",
            "cancel": f"/api/jobs/{job_id}/cancel",
            "result": f"/api/jobs/{job_id}/result" if has_result else None,
        }
        return out

    @api.get("/health")
    def health() -> dict[str, Any]:
        """Liveness, version and queue length."""
        return {
            "status": "ok",
            "version": __version__,
            "queued": manager.queued(),
            "max_queue": settings.max_queue,
            "workers": len(settings.devices),
        }

    @api.get("/config")
    def config() -> dict[str, Any]:
        """The defaults and limits the page shows: the library's own defaults, the server's caps."""
        from painterly.color import PRESERVE_COLORS
        from painterly.optimization import OPTIMIZERS, TransferSettings
        from painterly.presets import PRESETS

        defaults = TransferSettings()
        return {
            "defaults": {
                name: getattr(defaults, name)
                for name in (
                    "size",
                    "iterations",
                    "content_weight",
                    "style_weight",
                    "tv_weight",
                    "preserve_colors",
                    "seed",
                    "init",
                    "optimizer",
                )
            },
            "limits": {
                "max_size": settings.max_size,
                "max_iterations": settings.max_iterations,
                "max_styles": settings.max_styles,
                "max_upload_bytes": settings.max_upload_bytes,
                "max_pixels": settings.max_pixels,
            },
            "choices": {
                "preserve_colors": list(PRESERVE_COLORS),
                "init": list(CLIENT_INITS),
                "optimizer": list(OPTIMIZERS),
                "preset": sorted(PRESETS),
            },
        }

    @api.post("/jobs", status_code=202)
    def submit(
        content: Annotated[UploadFile, File(description="the photo to paint")],
        style: Annotated[list[UploadFile], File(description="one or more style images")],
        style_blend: Annotated[str | None, Form(description="comma-separated weights, one per style")] = None,
        preset: Annotated[str | None, Form()] = None,
        size: Annotated[int | None, Form(description="long side of the result, px")] = None,
        iterations: Annotated[int | None, Form(description="per scale")] = None,
        content_weight: Annotated[float | None, Form()] = None,
        style_weight: Annotated[float | None, Form()] = None,
        tv_weight: Annotated[float | None, Form()] = None,
        preserve_colors: Annotated[str | None, Form(description="none, luminance or histogram")] = None,
        seed: Annotated[int | None, Form()] = None,
        init: Annotated[str | None, Form(description="content, noise or style")] = None,
        optimizer: Annotated[str | None, Form(description="lbfgs or adam")] = None,
        scales: Annotated[int | None, Form()] = None,
    ) -> JSONResponse:
        """Queue an image optimization: 202 with the job, or 429 with Retry-After when the queue is full."""
        from painterly.optimization import iterations_per_scale, make_settings, scale_sizes

        if len(style) > settings.max_styles:
            raise PainterlyError(f"at most {settings.max_styles} style images, got {len(style)}")
        if init is not None and init not in CLIENT_INITS:
            raise PainterlyError(f"init must be one of {', '.join(CLIENT_INITS)}, got {init!r}")
        if scales is not None and scales > 8:
            raise PainterlyError(f"scales must be at most 8, got {scales}")
        options: dict[str, Any] = {
            "size": size,
            "iterations": iterations,
            "content_weight": content_weight,
            "style_weight": style_weight,
            "tv_weight": tv_weight,
            "preserve_colors": preserve_colors,
            "seed": seed,
            "init": init,
            "optimizer": optimizer,
            "scales": scales,
            "style_blend": _parse_blend(style_blend, len(style)),
        }
        options = {key: value for key, value in options.items() if value is not None}
        resolved = make_settings(preset, **options)
        if resolved.size > settings.max_size:
            raise PainterlyError(
                f"size must be at most {settings.max_size} pixels on this server, got {resolved.size}"
            )
        per_scale = max(
            iterations_per_scale(resolved.iterations, len(scale_sizes(resolved.size, resolved.scales)))
        )
        if per_scale > settings.max_iterations:
            raise PainterlyError(
                f"iterations must be at most {settings.max_iterations} here, got {per_scale}"
            )
        if manager.queued() >= settings.max_queue:  # don't decode uploads only to turn them away
            return _queue_full(QueueFull(manager.retry_after()))
        content_image = _read_image(content, "content image", settings.max_pixels)
        style_images = [
            _read_image(f, f"style image {i + 1}", settings.max_pixels) for i, f in enumerate(style)
        ]
        # Only the output size is ever used; a smaller copy keeps the queue's memory bounded.
        content_image = _shrink(content_image, resolved.size)
        style_images = [
            _shrink(image, max(16, round(resolved.size * resolved.style_scale))) for image in style_images
        ]
        if preset is not None:
            options["preset"] = preset
        try:
            job_id = manager.submit(content_image, style_images, options)
        except QueueFull as exc:
            return _queue_full(exc)
        return JSONResponse(
            public(job_or_404(job_id)), status_code=202, headers={"Location": f"/api/jobs/{job_id}"}
        )

    @api.get("/jobs")
    def list_jobs(limit: Annotated[int, Query(ge=1, le=200)] = 20) -> dict[str, Any]:
        """The most recent jobs, newest first (both kinds)."""
        records = []
        for record in store.recent(limit):
            snapshot = manager.snapshot(record["id"]) if record["status"] in (QUEUED, RUNNING) else record
            records.append(public(snapshot or record))
        return {"jobs": records}

    @api.get("/jobs/{job_id}")
    def job_status(job_id: str) -> dict[str, Any]:
        """Status and progress: iteration, scale, losses, fraction done, ETA in seconds."""
        return public(job_or_404(job_id))

    @api.post("/jobs/{job_id}/cancel")
    def cancel(job_id: str) -> dict[str, Any]:
        """Cancel a queued or running job; a running one keeps the best image so far as its result."""
        job_or_404(job_id)
        record = manager.cancel(job_id)
        assert record is not None
        return public(record)

    @api.get("/jobs/{job_id}/result", response_class=FileResponse)
    def result(job_id: str, download: bool = False) -> FileResponse:
        """The result PNG; ``?download=1`` asks the browser to save it."""
        record = job_or_404(job_id)
        path = store.result_path(record)
        if path is None:
            if record["status"] not in FINAL:
                raise HTTPException(409, f"job is {record['status']}; the result is not ready yet")
            raise HTTPException(404, f"job is {record['status']} and has no result")
        return FileResponse(
            path,
            media_type="image/png",
            filename=f"painterly-{job_id}.png" if download else None,
            content_disposition_type="attachment" if download else "inline",
            headers={"Cache-Control": "private, max-age=3600"},
        )

    @api.get("/jobs/{job_id}/events")
    async def events(job_id: str) -> StreamingResponse:
        """Server-sent events: ``progress`` (the job as from GET, plus ``preview``, a small JPEG data URL,
        when the image changed), then one ``end`` when the job is final. The job runs on if you disconnect."""
        await run_in_threadpool(job_or_404, job_id)

        async def stream():  # type: ignore[no-untyped-def]
            yield "retry: 2000\n\n"
            seen: tuple[int, int] | None = (-1, -1)  # (version, preview version); None when final
            quiet_since = time.monotonic()
            while True:
                versions = manager.versions(job_id)
                if versions != seen:
                    record = await run_in_threadpool(manager.snapshot, job_id)
                    if record is None:
                        return
                    event = public(record)
                    final = record["status"] in FINAL
                    preview = manager.preview(job_id) if versions and versions[1] != seen[1] else None
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

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @api.get("/models")
    def models() -> dict[str, Any]:
        """Trained models for fast stylization (empty when none are installed)."""
        return {"models": stylizer.models()}

    @api.post(
        "/stylize",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}, "description": "the stylized image"}},
    )
    def stylize(
        image: Annotated[UploadFile, File(description="the photo")],
        model: Annotated[str, Form(description="a name from GET /api/models")],
        size: Annotated[int | None, Form(description="long side, px")] = None,
        preserve_colors: Annotated[str, Form()] = "none",
    ) -> Response:
        """Fast stylization with a trained model, synchronously. Answers the PNG; the header
        ``X-Painterly-Job`` names the job under which it is also kept in the recent results."""
        photo = _read_image(image, "image", settings.max_pixels)
        try:
            record = stylizer.stylize(photo, model, size=size, preserve_colors=preserve_colors)
        except Busy:
            return JSONResponse(
                {"detail": "the stylizer is busy; try again shortly"},
                status_code=429,
                headers={"Retry-After": "5"},
            )
        path = store.result_path(record)
        assert path is not None
        return Response(
            path.read_bytes(),
            media_type="image/png",
            headers={"X-Painterly-Job": record["id"], "Cache-Control": "no-store"},
        )

    app.include_router(api)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(
            STATIC / "index.html",
            headers={
                "Content-Security-Policy": PAGE_POLICY,
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "no-cache",
            },
        )

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _queue_full(exc: QueueFull) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=429, headers={"Retry-After": str(exc.retry_after)})


def _plausible_id(job_id: str) -> bool:
    return 8 <= len(job_id) <= 64 and all(c.isalnum() or c in "-_" for c in job_id) and job_id.isascii()


def _parse_blend(text: str | None, count: int) -> list[float] | None:
    if text is None or not text.strip():
        return None
    try:
        weights = [float(part) for part in text.replace(";", ",").split(",") if part.strip()]
    except ValueError:
        raise PainterlyError(f"style blend must be comma-separated numbers, got {text!r}") from None
    if len(weights) != count:
        raise PainterlyError(f"{count} style image(s) but {len(weights)} blend weight(s)")
    if any(not (w >= 0) or w == float("inf") for w in weights) or sum(weights) <= 0:
        raise PainterlyError("style blend weights must be non-negative, finite, and not all zero")
    return weights


def _read_image(upload: UploadFile, what: str, max_pixels: int):  # type: ignore[no-untyped-def]
    data = upload.file.read()
    if not data:
        raise PainterlyError(f"{what} is empty")
    return decode_image(data, max_pixels=max_pixels, what=what)


def _shrink(image, long_side: int):  # type: ignore[no-untyped-def]
    return resize_long_side(image, long_side) if max(image.size) > long_side else image


class BodyLimit:
    """Answer 413 to a request body larger than ``limit`` bytes, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.limit
            except ValueError:
                await _send_json(send, 400, "bad Content-Length header")
                return
            if too_big:
                await _send_json(send, 413, self._message())
                return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge(413, self._message())
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _send_json(send, 413, self._message())

    def _message(self) -> str:
        return f"the upload is larger than this server's limit of {self.limit / 1024 / 1024:.1f} MiB"


class _TooLarge(HTTPException):
    """Raised from ``receive``: FastAPI passes HTTP errors from body parsing through as they are."""


async def _send_json(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
