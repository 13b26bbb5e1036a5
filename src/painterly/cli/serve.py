"""``painterly serve``: the web UI and HTTP API (see :mod:`painterly.server`)."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import ipaddress
import os
import sys
from pathlib import Path

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
        description="Serve the web page and the HTTP API (OpenAPI docs at /docs). Binds to 127.0.0.1 unless "
        "told otherwise; set a token before exposing it to a network.",
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
        help=f"largest request (default: {_default('max_upload_bytes') // 2**20})",
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
        help=f"most iterations allowed (default: {_default('max_iterations')})",
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
    parser.set_defaults(handler=run)


def settings_from_args(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from painterly.server.config import TOKEN_ENV, ServerSettings

    options: dict[str, object] = {
        "token": args.token or os.environ.get(TOKEN_ENV) or None,
        "devices": tuple(args.device or ("auto",)),
        "cors_origins": tuple(args.cors_origin or ()),
    }
    if args.data is not None:
        options["data_dir"] = args.data
    if args.max_upload_mb is not None:
        options["max_upload_bytes"] = int(args.max_upload_mb * 2**20)
    for name in ("max_queue", "max_size", "max_iterations", "retention_hours"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
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
        print(
            f"painterly: warning: serving on {args.host} without a token; anyone who can reach it can use it "
            "(set --token or $PAINTERLY_TOKEN)",
            file=sys.stderr,
        )
    import uvicorn

    from painterly.server import create_app

    app = create_app(settings)
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"painterly: serving on http://{host}:{args.port}/ (data in {settings.data_dir})", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
