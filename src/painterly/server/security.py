"""ASGI middleware that guards every request before any route (or body parsing) sees it.

Outermost first: :class:`SecurityHeaders` (CSP, nosniff, no framing, no referrer on every response),
:class:`HostGuard` (``Host`` allow-list against DNS rebinding; no cross-origin writes),
then CORS when configured, :class:`TokenGate` (401 before the body is read) and :class:`BodyLimit`.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable
from urllib.parse import urlsplit

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The page loads nothing from elsewhere and runs no inline script.
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
#: FastAPI's /docs and /redoc (only with ``--api-docs``) load their scripts and styles from a CDN.
DOCS_POLICY = (
    "default-src 'self'; img-src 'self' data: https://fastapi.tiangolo.com; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; font-src https://fonts.gstatic.com; "
    "worker-src blob:; connect-src 'self'; frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs", "/redoc")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def shorten(text: str, limit: int = 60) -> str:
    """A client's value, safe to echo: repr'd (control characters escaped) and cut."""
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 4] + "...'"


async def send_json(
    send: Send, status: int, detail: str, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def refuse(
    scope: Scope, send: Send, status: int, detail: str, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """Answer ``status`` to an HTTP request or a WebSocket handshake (the handshake is refused before
    it is accepted: with an HTTP answer where the server supports it, else with close code 1008)."""
    if scope["type"] != "websocket":
        await send_json(send, status, detail, headers)
        return
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": 1008, "reason": detail[:120]})
        return
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "websocket.http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "websocket.http.response.body", "body": body})


class SecurityHeaders:
    """Adds the page's security headers to every HTTP response, errors and API answers included."""

    def __init__(self, app: ASGIApp, *, docs: bool = False, same_origin_resources: bool = True) -> None:
        self.app = app
        self.docs = docs
        self.same_origin_resources = same_origin_resources

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = DOCS_POLICY if self.docs and scope["path"] in DOCS_PATHS else PAGE_POLICY
        extra = [
            (b"content-security-policy", policy.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
        ]
        if self.same_origin_resources:
            extra.append((b"cross-origin-resource-policy", b"same-origin"))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {key.lower() for key, _ in message.get("headers", [])}
                message = {
                    **message,
                    "headers": [
                        *message.get("headers", []),
                        *((key, value) for key, value in extra if key not in present),
                    ],
                }
            await send(message)

        await self.app(scope, receive, with_headers)


def host_name(host: str) -> str:
    """``example.com:8000`` -> ``example.com``; ``[::1]:8000`` -> ``::1``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    if host.count(":") == 1:
        return host.partition(":")[0]
    return host


class HostGuard:
    """Answers only to allowed ``Host`` names, and refuses writes (POST and the like) and WebSocket
    handshakes from other origins.

    A page elsewhere can make a browser send a form POST here (cross-site request forgery), open a
    WebSocket here (browsers do not apply the same-origin policy to WebSockets) or point its own name
    at 127.0.0.1 (DNS rebinding); none gets through without a token this way.
    """

    def __init__(self, app: ASGIApp, *, hosts: tuple[str, ...] | None, cors_origins: tuple[str, ...]) -> None:
        self.app = app
        self.hosts = None if hosts is None else frozenset(host_name(h) for h in hosts)
        self.cors_origins = frozenset(o.rstrip("/").lower() for o in cors_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = _header(scope, b"host") or ""
        if self.hosts is not None and host_name(host) not in self.hosts:
            await refuse(
                scope,
                send,
                421 if scope["type"] == "http" else 403,
                f"this server does not answer to the host name {shorten(host_name(host))}; "
                "start it with --allow-host NAME to allow it",
            )
            return
        writes = scope["type"] == "websocket" or scope.get("method", "GET") not in SAFE_METHODS
        if writes and not self._same_origin(scope, host):
            await refuse(scope, send, 403, "cross-origin requests may not change anything on this server")
            return
        await self.app(scope, receive, send)

    def _same_origin(self, scope: Scope, host: str) -> bool:
        origin = _header(scope, b"origin")
        if origin is None:
            # Browsers send Origin on every cross-origin POST; Sec-Fetch-Site covers the rest.
            return _header(scope, b"sec-fetch-site") not in ("cross-site", "same-site")
        origin = origin.strip().lower().rstrip("/")
        if origin in self.cors_origins:
            return True
        if origin == "null":
            return False
        return urlsplit(origin).netloc == host.strip().lower()


class TokenGate:
    """401 for ``/api`` calls (WebSocket handshakes included) without the token, answered before the
    request body is read."""

    def __init__(self, app: ASGIApp, *, token: str | None) -> None:
        self.app = app
        self.token = token.encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.token is None
            or scope["type"] not in ("http", "websocket")
            or scope.get("method") == "OPTIONS"  # CORS preflights carry no credentials
            or not (scope["path"] == "/api" or scope["path"].startswith("/api/"))
        ):
            await self.app(scope, receive, send)
            return
        supplied = supplied_token(scope)
        if not supplied or not secrets.compare_digest(supplied.encode(), self.token):
            await refuse(scope, send, 401, "missing or wrong token", [(b"www-authenticate", b"Bearer")])
            return
        await self.app(scope, receive, send)


_TOKEN_PARAM = re.compile(r"(?:^|&)token=([^&]*)")


def supplied_token(scope: Scope) -> str | None:
    """``Authorization: Bearer``, else ``X-Painterly-Token``, else ``?token=``."""
    scheme, _, credentials = (_header(scope, b"authorization") or "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    header = _header(scope, b"x-painterly-token")
    if header:
        return header.strip()
    from urllib.parse import unquote_plus

    match = _TOKEN_PARAM.search(scope.get("query_string", b"").decode("latin-1"))
    return unquote_plus(match.group(1)) if match else None


class BodyLimit:
    """Answer 413 to a request body larger than ``limit`` bytes, declared or streamed; ``paths`` gives
    other limits to some paths (video uploads)."""

    def __init__(self, app: ASGIApp, limit: int, paths: dict[str, int] | None = None) -> None:
        self.app = app
        self.default = limit
        self.paths = dict(paths or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.paths.get(scope["path"].rstrip("/"), self.default)
        await _Limited(self.app, limit)(scope, receive, send)


class _Limited:
    """One request under one limit."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = _header(scope, b"content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await send_json(send, 400, "bad Content-Length header")
                return
            if int(declared) > self.limit:
                await send_json(send, 413, self._message())
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
                await send_json(send, 413, self._message())

    def _message(self) -> str:
        return f"the upload is larger than this server's limit of {self.limit / 1024 / 1024:.1f} MiB"


class _TooLarge(HTTPException):
    """Raised from ``receive``: FastAPI passes HTTP errors from body parsing through as they are."""
