"""The FastAPI app: builds the shared state, the middleware and the routers (:mod:`.routes`).

Every user error is a :class:`~painterly.errors.PainterlyError` and answers 400 with its message;
an over-large request answers 413, a full queue or a busy stylizer 429 with ``Retry-After``, a missing
or wrong token 401, a foreign ``Host`` 421 and a cross-origin write 403.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.requests import ClientDisconnect

from painterly import __version__
from painterly.errors import PainterlyError
from painterly.server.config import ServerSettings
from painterly.server.jobs import JobManager, Runner
from painterly.server.logs import install_redaction
from painterly.server.models import FastStylizer
from painterly.server.routes import API_ROUTERS, PAGE_ROUTERS
from painterly.server.routes.pages import STATIC
from painterly.server.security import BodyLimit, HostGuard, SecurityHeaders, TokenGate
from painterly.server.state import ServerState
from painterly.server.store import JobStore
from painterly.server.videos import delete_stale_uploads

#: Longest error message sent back (a client's long value must not come back whole).
MAX_DETAIL = 500


def create_app(
    settings: ServerSettings | None = None,
    *,
    runner: Runner | None = None,
    stylize_backend: Any | None = None,
) -> FastAPI:
    """Build the app. ``runner`` replaces ``run_transfer`` and ``stylize_backend`` replaces
    :mod:`painterly.feedforward` (tests use fakes); the defaults are the real library."""
    from painterly.video.runtime import prefer_sleeping_threads

    prefer_sleeping_threads()  # before torch is imported: jobs, live frames and requests share the cores
    settings = settings or ServerSettings()
    settings.prepare()
    store = JobStore(settings.database, settings.results_dir)
    manager = JobManager(settings, store, runner)
    state = ServerState(settings, store, manager, FastStylizer(settings, store, stylize_backend))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.bind_loop()
        delete_stale_uploads(settings)  # their jobs are marked interrupted by manager.start()
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
        docs_url="/docs" if settings.api_docs else None,
        redoc_url="/redoc" if settings.api_docs else None,
    )
    app.state.painterly = state
    # Kept for callers of the previous layout (tests, embedding apps).
    app.state.settings, app.state.store, app.state.manager = settings, store, manager
    app.state.stylizer = state.stylizer
    _add_middleware(app, settings)
    app.add_exception_handler(PainterlyError, _user_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _bad_request)  # type: ignore[arg-type]
    app.add_exception_handler(ClientDisconnect, _client_gone)  # type: ignore[arg-type]
    for router in API_ROUTERS:
        app.include_router(router, prefix="/api")
    for router in PAGE_ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    install_redaction()
    install_redaction("uvicorn.error")  # where uvicorn logs WebSocket handshakes, query string and all
    return app


def _add_middleware(app: FastAPI, settings: ServerSettings) -> None:
    """Innermost first (each ``add_middleware`` wraps the ones before): the body limit, the token
    (checked before the body is read), CORS, the Host/Origin guard, and the headers on everything."""
    app.add_middleware(
        BodyLimit, limit=settings.max_upload_bytes, paths={"/api/videos": settings.video_max_upload_bytes}
    )
    app.add_middleware(TokenGate, token=settings.token)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "X-Painterly-Token"],
            expose_headers=["X-Painterly-Job"],
        )
    app.add_middleware(HostGuard, hosts=settings.hosts(), cors_origins=settings.cors_origins)
    app.add_middleware(
        SecurityHeaders, docs=settings.api_docs, same_origin_resources=not settings.cors_origins
    )


def _clip(text: str) -> str:
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 3] + "..."


async def _user_error(request: Request, exc: PainterlyError) -> JSONResponse:
    return JSONResponse({"detail": _clip(str(exc))}, status_code=400)


async def _client_gone(request: Request, exc: ClientDisconnect) -> Response:
    """A client that hangs up mid-upload: nobody to answer, and no 40-line traceback in the log each time."""
    return Response(status_code=400)


async def _bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ())[1:]) or "request"
        problems.append(f"{where}: {error.get('msg', 'invalid')}")
    return JSONResponse({"detail": _clip("; ".join(problems))}, status_code=400)
