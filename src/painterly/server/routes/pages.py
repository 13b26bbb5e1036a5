"""The web page: ``/`` and its files under ``/static`` (plain HTML, CSS and JavaScript, no build step)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC = Path(str(files("painterly.server") / "static"))

router = APIRouter(include_in_schema=False)


@router.get("/")
def index() -> FileResponse:
    """The page; its security headers (CSP and the rest) come from the middleware, as on every response."""
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})
