"""``painterly serve``: the web UI and HTTP API (see :mod:`painterly.server`)."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import ipaddress
import math
import os
import sys
from pathlib import Path
from typing import Any

from painterly.errors import PainterlyError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def _default(name: str) -> object:
    from painterly.server.config import ServerSettings

    return next(f.default for f in dataclasses.fields(ServerSettings) if f.name == name)


def register(subparsers: argparse._SubParsersAction) -> None:
    from painterly.server.config import DATA_ENV, TOKEN_ENV

    parser = subparsers.add_parser(
        "serve",
        help="start the web UI and HTTP API",
        description="Serve the web page and the HTTP API. Binds to 127.0.0.1 unless told otherwise; "
        "any other address needs a token.",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default: {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT})")
    parser.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help=f"folder for job records and results (default: ${DATA_ENV} or ~/.local/share/painterly/server)",
    )
    parser.add_argument("--token", help=f"require this token on every API call (default: ${TOKEN_ENV})")
    parser.add_argument(
        "--allow-remote-without-token",
        action="store_true",
        help="bind a non-loopback --host without a token (anyone who can reach it can use it)",
    )
    parser.add_argument(
        "--allow-host",
        action="append",
        metavar="NAME",
        help="answer requests for this Host name (default: loopback names without a token, any with one; "
        "'*' for any); repeatable",
    )
    parser.add_argument(
        "--device",
        action="append",
        metavar="DEVICE",
        help="run one worker on DEVICE (auto, cpu, cuda, cuda:1, mps); repeat for one worker per device",
    )
    parser.add_argument(
        "--max-queue",
        type=int,
        metavar="N",
        help=f"waiting jobs before new ones get 429 (default: {_default('max_queue')})",
    )
    parser.add_argument(
        "--max-upload-mb",
        type=float,
        metavar="MB",
        help=f"largest request (default: {_default('max_upload_bytes') // 2**20})",  # type: ignore[operator]
    )
    parser.add_argument(
        "--max-size",
        type=int,
        metavar="PX",
        help=f"largest output size allowed (default: {_default('max_size')})",
    )
    parser.add_argument(
        "--max-iterations",
        type=int,
        metavar="N",
        help=f"most iterations per scale allowed (default: {_default('max_iterations')})",
    )
    parser.add_argument(
        "--max-video-mb",
        type=float,
        metavar="MB",
        help=f"largest video upload (default: {_default('video_max_upload_bytes') // 2**20})",  # type: ignore[operator]
    )
    parser.add_argument(
        "--max-video-seconds",
        type=float,
        metavar="S",
        help=f"longest video accepted (default: {_default('video_max_seconds'):g})",
    )
    parser.add_argument(
        "--max-live",
        type=int,
        metavar="N",
        help=f"live camera connections at once (default: {_default('live_max_connections')})",
    )
    parser.add_argument(
        "--retention-hours",
        type=float,
        metavar="H",
        help=f"delete results older than this (default: {_default('retention_hours'):g})",
    )
    parser.add_argument(
        "--cors-origin",
        action="append",
        metavar="ORIGIN",
        help="allow cross-origin calls from ORIGIN (default: none, CORS off); repeatable",
    )
    parser.add_argument(
        "--api-docs",
        action="store_true",
        help="serve interactive API docs at /docs and /redoc (they load scripts from a CDN)",
    )
    parser.set_defaults(handler=run)


def settings_from_args(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from painterly.server.config import TOKEN_ENV, ServerSettings

    token = args.token
    if token is not None and not token.strip():
        raise PainterlyError("--token must not be blank")
    options: dict[str, Any] = {
        "token": token or os.environ.get(TOKEN_ENV) or None,
        "devices": tuple(args.device or ("auto",)),
        "cors_origins": tuple(args.cors_origin or ()),
        "api_docs": bool(args.api_docs),
    }
    if args.allow_host:
        options["allowed_hosts"] = tuple(args.allow_host)
    if args.data is not None:
        options["data_dir"] = args.data
    if args.max_upload_mb is not None:
        if not (math.isfinite(args.max_upload_mb) and 0 < args.max_upload_mb <= 1024 * 1024):
            raise PainterlyError(f"--max-upload-mb must be a positive number, got {args.max_upload_mb}")
        options["max_upload_bytes"] = max(1, int(args.max_upload_mb * 2**20))
    if args.max_video_mb is not None:
        if not (math.isfinite(args.max_video_mb) and 0 < args.max_video_mb <= 1024 * 1024):
            raise PainterlyError(f"--max-video-mb must be a positive number, got {args.max_video_mb}")
        options["video_max_upload_bytes"] = max(1, int(args.max_video_mb * 2**20))
    for name in ("max_queue", "max_size", "max_iterations", "retention_hours"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    if args.max_video_seconds is not None:
        options["video_max_seconds"] = args.max_video_seconds
    if args.max_live is not None:
        options["live_max_connections"] = args.max_live
    return ServerSettings(**options)


def run(args: argparse.Namespace) -> int:
    from painterly.server import INSTALL_HINT

    missing = [name for name in ("fastapi", "uvicorn", "multipart") if importlib.util.find_spec(name) is None]
    if missing:
        raise PainterlyError(f"painterly serve needs {', '.join(missing)}; install them with: {INSTALL_HINT}")
    if not 0 < args.port < 65536:
        raise PainterlyError(f"port must be between 1 and 65535, got {args.port}")
    settings = settings_from_args(args)
    if not _is_loopback(args.host) and not settings.token:
        if not args.allow_remote_without_token:
            raise PainterlyError(
                f"serving on {args.host} needs a token (--token or $PAINTERLY_TOKEN); "
                "to serve it to your network without one, add --allow-remote-without-token"
            )
        print(
            f"painterly: warning: serving on {args.host} without a token; anyone who can reach it can use it "
            "(it answers only to loopback host names unless you add --allow-host NAME)",
            file=sys.stderr,
        )
    if not any(importlib.util.find_spec(name) for name in ("websockets", "wsproto")):
        print(
            f"painterly: warning: the Live tab needs the websockets package; install it with: {INSTALL_HINT}",
            file=sys.stderr,
        )
    from painterly.server import create_app
    from painterly.server.serving import serve

    app = create_app(settings)
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"painterly: serving on http://{host}:{args.port}/ (data in {settings.data_dir})", file=sys.stderr)
    serve(app, args.host, args.port)
    return 0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
