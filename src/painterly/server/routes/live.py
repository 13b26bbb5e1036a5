"""``/api/live``: the camera tab's WebSocket. JPEG frames in, stylized JPEG frames out.

Protocol (one connection):

- the server, once connected: ``{"type": "ready", "models": [...], "model": NAME, "limits": {...}}``;
- the client, any time: ``{"type": "config", "model": NAME, "temporal_strength": 0.6}`` (text):
  switches the style (answered ``{"type": "config", ...}``, or ``{"type": "error", ...}``); for a multi-style
  model (its listing has ``styles``), ``"blend": [w1, w2, ...]`` (or ``{style: weight}``) mixes them;
- the client: a frame, a JPEG as a binary message; the server answers with the stylized JPEG
  (binary), or ``{"type": "dropped", "reason": ...}`` when it skipped the frame, or
  ``{"type": "error", "detail": ...}`` when the frame was refused.

Frames are dropped, never queued: the client sends the next frame when the answer to the last one
came; a frame that arrives while another waits replaces it (the waiting one is answered
``dropped``/``stale``), and frames faster than ``live_max_fps`` are answered ``dropped``/``rate``.
The token, ``Host`` and ``Origin`` checks are the middleware's, as for every ``/api`` path; the
route adds the caps: connections at once, message size, messages a second, idle time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from collections import deque
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from painterly.errors import PainterlyError
from painterly.numbers import quoted
from painterly.server.live import (
    DEFAULT_STRENGTH,
    MAX_CONTROL_TEXT,
    FrameRefused,
    LivePainter,
    check_blend,
    decode_frame,
    encode_frame,
    parse_control,
)
from painterly.server.state import ServerState

log = logging.getLogger("painterly.server")
router = APIRouter(tags=["live"])

#: Largest text (control) message.
MAX_TEXT = MAX_CONTROL_TEXT
#: A client sending more messages than this many times ``live_max_fps`` in a second is cut off.
FLOOD_FACTOR = 3
#: WebSocket close codes: policy violation, message too big, going away, try again later.
POLICY, TOO_BIG, GOING_AWAY, TRY_LATER = 1008, 1009, 1001, 1013


async def _deny(websocket: WebSocket, status: int, detail: str) -> None:
    """Refuse the handshake: an HTTP answer where the server supports it, else close ``TRY_LATER``."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(JSONResponse({"detail": detail}, status_code=status))
    else:
        await websocket.close(TRY_LATER, detail[:120])


class _Connection:
    """The state of one live connection: the waiting frame, the painter, the rate counters."""

    def __init__(self, websocket: WebSocket, state: ServerState) -> None:
        self.websocket = websocket
        self.state = state
        self.settings = state.settings
        self.send_lock = asyncio.Lock()
        self.waiting: bytes | None = None
        self.arrived = asyncio.Event()
        self.recent: deque[float] = deque()
        self.last_frame = 0.0
        self.model_name: str | None = None
        self.strength = DEFAULT_STRENGTH
        self.painter: LivePainter | None = None
        self.closed = False

    async def send(self, payload: dict[str, Any] | bytes) -> None:
        async with self.send_lock:
            if self.closed:
                return
            if isinstance(payload, bytes):
                await self.websocket.send_bytes(payload)
            else:
                await self.websocket.send_text(json.dumps(payload))

    async def close(self, code: int, reason: str) -> None:
        async with self.send_lock:
            if not self.closed:
                self.closed = True
                with contextlib.suppress(Exception):
                    await self.websocket.close(code, reason[:120])

    # -- receiving --------------------------------------------------------------------------------

    async def receive_loop(self) -> None:
        s = self.settings
        while not self.closed:
            try:
                message = await asyncio.wait_for(self.websocket.receive(), s.live_idle_seconds)
            except TimeoutError:
                await self.close(POLICY, "idle for too long")
                return
            if message["type"] == "websocket.disconnect":
                self.closed = True
                self.arrived.set()
                return
            now = time.monotonic()
            self.recent.append(now)
            while self.recent and now - self.recent[0] > 1.0:
                self.recent.popleft()
            if len(self.recent) > FLOOD_FACTOR * s.live_max_fps + 10:
                await self.close(POLICY, "too many messages")
                return
            if message.get("bytes") is not None:
                await self._frame(message["bytes"], now)
            elif message.get("text") is not None:
                await self._text(message["text"])

    async def _frame(self, data: bytes, now: float) -> None:
        if len(data) > self.settings.live_max_frame_bytes:
            await self.close(TOO_BIG, f"frames may have at most {self.settings.live_max_frame_bytes} bytes")
            return
        if now - self.last_frame < 1.0 / self.settings.live_max_fps:
            await self.send({"type": "dropped", "reason": "rate"})
            return
        self.last_frame = now
        if self.waiting is not None:  # the client did not wait for the answer: keep the newest
            await self.send({"type": "dropped", "reason": "stale"})
        self.waiting = data
        self.arrived.set()

    async def _text(self, text: str) -> None:
        try:
            await self._configure(parse_control(text))
        except PainterlyError as exc:
            await self.send({"type": "error", "detail": str(exc)})

    async def _configure(self, message: dict[str, Any], announce: bool = True) -> None:
        unknown = set(message) - {"type", "model", "temporal_strength", "blend"}
        if unknown:
            shown = ", ".join(quoted(str(name), 40) for name in sorted(map(str, unknown))[:3])  # escaped
            raise PainterlyError(f"unknown config field(s): {shown}")
        models = self.state.live_models
        name = models.check(message.get("model", self.model_name))
        mix = None
        if message.get("blend") is not None:
            mix = check_blend(message["blend"], await run_in_threadpool(models.styles, name))
        strength = message.get("temporal_strength", self.strength)
        if not isinstance(strength, int | float) or isinstance(strength, bool):
            raise PainterlyError("temporal_strength must be a number")
        model = await run_in_threadpool(models.get, name)
        self.painter = LivePainter(model, float(strength), mix, functools.partial(models.fastest, name))
        self.model_name, self.strength = name, float(strength)
        if announce:
            await self.send(
                {
                    "type": "config",
                    "model": name,
                    "temporal_strength": self.strength,
                    "stabilized": self.painter.stabilized,
                    "blend": mix,
                }
            )

    # -- painting ---------------------------------------------------------------------------------

    async def paint_loop(self) -> None:
        gate = self.state.live_gate
        assert gate is not None
        while True:
            await self.arrived.wait()
            self.arrived.clear()
            if self.closed or self.state.stopping.is_set():
                return
            data, self.waiting = self.waiting, None
            if data is None:
                continue
            if self.painter is None:
                try:
                    await self._configure({"type": "config"}, announce=False)  # the default model
                except PainterlyError as exc:
                    await self.send({"type": "error", "detail": str(exc)})
                    continue
            painter = self.painter
            assert painter is not None
            try:
                async with gate:  # one frame at a time over all connections: they share the CPU
                    if self.waiting is not None:  # a newer frame came while this one waited
                        await self.send({"type": "dropped", "reason": "stale"})
                        continue
                    answer = await run_in_threadpool(self._process, painter, data)
            except FrameRefused as exc:
                await self.send({"type": "error", "detail": str(exc)})
                continue
            except Exception:  # a model's failure must not leave the client waiting forever
                log.exception("live frame failed")
                await self.send({"type": "error", "detail": "internal error while painting the frame"})
                continue
            await self.send(answer)

    def _process(self, painter: LivePainter, data: bytes) -> bytes:
        s = self.settings
        frame = decode_frame(data, max_bytes=s.live_max_frame_bytes, max_pixels=s.live_max_pixels)
        return encode_frame(painter.paint(frame))


@router.websocket("/live")
async def live(websocket: WebSocket) -> None:
    """The live camera: see the module's docstring for the protocol."""
    state: ServerState = websocket.app.state.painterly
    s = state.settings
    if state.stopping.is_set():
        await _deny(websocket, 503, "the server is stopping")
        return
    listing = await run_in_threadpool(state.live_models.listing)
    if not listing:
        await _deny(websocket, 404, "no trained models are installed on this server")
        return
    if state.live_connections >= s.live_max_connections:
        await _deny(websocket, 429, f"at most {s.live_max_connections} live connections at once; try later")
        return
    state.live_connections += 1
    try:
        await websocket.accept()
        connection = _Connection(websocket, state)
        connection.model_name = str(listing[0]["name"])
        await connection.send(
            {
                "type": "ready",
                "models": listing,
                "model": connection.model_name,
                "temporal_strength": DEFAULT_STRENGTH,
                "limits": {
                    "max_frame_bytes": s.live_max_frame_bytes,
                    "max_pixels": s.live_max_pixels,
                    "max_fps": s.live_max_fps,
                },
            }
        )
        painting = asyncio.create_task(connection.paint_loop())
        try:
            await connection.receive_loop()
        except WebSocketDisconnect:
            connection.closed = True
        finally:
            connection.arrived.set()
            painting.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await painting
            await connection.close(GOING_AWAY, "bye")
    finally:
        state.live_connections -= 1
