"""Fast stylization with trained models: ``GET /api/models`` and ``POST /api/stylize``.

One stylization runs at a time; a request that finds it busy gets 429 with ``Retry-After`` at once,
before its upload is read (waiting would hold a server thread per waiting client). Results are kept
for download under a quota (``ServerSettings.stylize_keep``), the oldest deleted first.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import UploadFile

from painterly.errors import PainterlyError, did_you_mean
from painterly.feedforward.mixing import check_strength, parse_style_mix
from painterly.numbers import parse_decimal, parse_whole
from painterly.server.models import Busy
from painterly.server.routes.openapi import MODEL_FIELD, multipart_body
from painterly.server.security import shorten
from painterly.server.state import ServerState, get_state
from painterly.server.uploads import Upload

router = APIRouter(tags=["stylize"])
State = Annotated[ServerState, Depends(get_state)]

#: A trained network's style is fixed, so histogram matching (which changes the style image) is not offered.
STYLIZE_COLORS = ("none", "luminance")
#: Shortest side of an image to stylize (the networks' padding and downsampling need room).
MIN_SIDE = 16
#: Seconds a busy client is told to wait.
BUSY_RETRY = 2
MAX_MODEL_NAME = 200
#: Longest ``style_mix`` accepted (the stylizer's own cap); longer is refused before it is parsed.
MAX_STYLE_MIX = 1000


@router.get("/models")
def models(state: State) -> dict[str, Any]:
    """Trained models for fast stylization (empty when none are installed)."""
    return {"models": state.stylizer.models()}


def _busy() -> JSONResponse:
    return JSONResponse(
        {"detail": "the stylizer is busy; try again shortly"},
        status_code=429,
        headers={"Retry-After": str(BUSY_RETRY)},
    )


def _form_text(form: Any, name: str, default: str | None = None) -> str | None:
    value = form.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise PainterlyError(f"{name} must be text, not a file")
    return value


#: The form fields of ``POST /api/stylize``; any other is refused, as by ``POST /api/jobs``.
STYLIZE_FIELDS = ("image", "model", "size", "preserve_colors", "style_mix", "strength")


def _parse_size(text: str | None, max_size: int) -> int | None:
    if text is None or not text.strip():
        return None
    return parse_whole(text, "size", minimum=MIN_SIDE, maximum=max_size, unit="px")


def _parse_style_mix(text: str | None) -> str | None:
    """The mix text, its syntax checked by the library now (its style names are checked against the
    model's when it runs); blank means none."""
    if text is None or not text.strip():
        return None
    if len(text) > MAX_STYLE_MIX:
        raise PainterlyError(f"style_mix is too long (at most {MAX_STYLE_MIX} characters)")
    parse_style_mix(text)
    return text


def _parse_strength(text: str | None) -> float:
    """0 (the photo) to 1 (the painting); blank means 1."""
    if text is None or not text.strip():
        return 1.0
    try:
        value = parse_decimal(text, "strength")
    except PainterlyError:
        value = math.nan
    if not math.isfinite(value):
        raise PainterlyError(f"strength must be a number from 0 to 1, got {shorten(text)}")
    return check_strength(value)


_STYLIZE_SCHEMA = multipart_body(
    ("image", "model"),
    {
        "image": {"type": "string", "format": "binary", "description": "the photo"},
        "model": MODEL_FIELD,
        "size": {"type": "integer", "description": "long side, px"},
        "preserve_colors": {"type": "string", "enum": list(STYLIZE_COLORS)},
        "style_mix": {
            "type": "string",
            "maxLength": MAX_STYLE_MIX,
            "description": "a multi-style model's blend, e.g. the_wave:0.7,udnie:0.3",
        },
        "strength": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": 1,
            "description": "0 = the photo, 1 = the full painting",
        },
    },
)


@router.post(
    "/stylize",
    response_class=Response,
    openapi_extra=_STYLIZE_SCHEMA,
    responses={200: {"content": {"image/png": {}}, "description": "the stylized image"}},
)
async def stylize(request: Request, state: State) -> Response:
    """Fast stylization with a trained model, synchronously. Answers the PNG; the header
    ``X-Painterly-Job`` names the job under which it is also kept among the recent results."""
    gate = state.stylize_gate
    assert gate is not None and state.decoder is not None
    if gate.locked() or state.stopping.is_set():  # before the upload is read
        return _busy()
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise PainterlyError("send the photo and fields as multipart/form-data (curl -F image=@photo.jpg)")
    form = await request.form(max_files=1, max_fields=8)
    try:
        for key in form:
            if key not in STYLIZE_FIELDS:
                raise PainterlyError(f"unknown form field {shorten(key)}{did_you_mean(key, STYLIZE_FIELDS)}")
            if len(form.getlist(key)) > 1:
                raise PainterlyError(f"the form field {shorten(key)} is given more than once")
        model = _form_text(form, "model")
        if not model:
            raise PainterlyError("model is missing: name one from GET /api/models")
        if len(model) > MAX_MODEL_NAME:
            raise PainterlyError(f"unknown model {shorten(model)}")
        colors = _form_text(form, "preserve_colors", "none") or "none"
        if colors not in STYLIZE_COLORS:
            raise PainterlyError(
                f"preserve_colors must be one of {', '.join(STYLIZE_COLORS)} for a trained model, "
                f"got {shorten(colors)}"
            )
        size = _parse_size(_form_text(form, "size"), state.settings.max_size)
        style_mix = _parse_style_mix(_form_text(form, "style_mix"))
        strength = _parse_strength(_form_text(form, "strength"))
        upload = form.get("image")
        if not isinstance(upload, UploadFile):
            raise PainterlyError("image is missing: send the photo as the file field 'image'")
        long_side = size or state.settings.max_size
        (photo,) = await state.decoder.decode([Upload(upload.file, "image", long_side)])
    finally:
        await form.close()
    width, height = photo.size  # as decoded: already brought down to the long side asked for
    scale = (size or max(width, height)) / max(width, height)
    if round(min(width, height) * scale) < MIN_SIDE:
        raise PainterlyError(
            f"at a long side of {size or max(width, height)} px the image's shorter side would be under "
            f"{MIN_SIDE} px; use a less elongated image (or a larger size)"
        )
    if gate.locked():  # taken while this upload was read; no await between this check and the acquire
        return _busy()
    async with gate:
        try:
            record = await run_in_threadpool(
                state.stylizer.stylize,
                photo,
                model,
                size=size,
                preserve_colors=colors,
                style_mix=style_mix,
                strength=strength,
            )
        except Busy:
            return _busy()
    await run_in_threadpool(state.store.keep_newest, "stylize", state.settings.stylize_keep)
    path = state.store.result_path(record)
    if path is None:
        raise PainterlyError("the result was deleted before it could be sent; try again")
    return Response(
        path.read_bytes(),
        media_type="image/png",
        headers={"X-Painterly-Job": record["id"], "Cache-Control": "no-store"},
    )
