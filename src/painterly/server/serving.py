"""Running the app in uvicorn, with a shutdown that takes seconds, not the length of a job.

uvicorn, on SIGTERM or Ctrl-C, stops accepting and then waits for open responses to finish before it
runs the app's shutdown; an event stream only finishes when its job does. So the signal first tells
the app (:meth:`ServerState.begin_shutdown`): running jobs stop at their next iteration and keep
their best image as ``interrupted``, and streams send their last event and end.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

#: Seconds uvicorn waits for open responses after a stop request before it cancels them.
GRACEFUL_SECONDS = 5
#: Bytes a WebSocket message may have beyond the largest live frame (control messages are small).
WS_SLACK = 64 * 1024


def uvicorn_config(app: Any, host: str, port: int, *, log_level: str = "info") -> Any:
    """uvicorn's settings for ``app``; benchmarks and tests that run a real server use them too."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        # A WebSocket message larger than a live frame may be is refused before it is buffered.
        ws_max_size=app.state.painterly.settings.live_max_frame_bytes + WS_SLACK,
        # Live frames are JPEGs: compressing them again costs CPU on both ends and saves nothing.
        ws_per_message_deflate=False,
    )


def serve(app: Any, host: str, port: int, *, log_level: str = "info") -> None:
    """Serve ``app`` (from :func:`painterly.server.create_app`) until SIGTERM or Ctrl-C."""
    import uvicorn

    state = app.state.painterly

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            # A signal handler may interrupt a thread that holds the queue's lock: do the work elsewhere.
            threading.Thread(target=state.begin_shutdown, name="painterly-shutdown", daemon=True).start()
            super().handle_exit(sig, frame)

    check_can_listen(host, port)
    Server(uvicorn_config(app, host, port, log_level=log_level)).run()


def check_can_listen(host: str, port: int) -> None:
    """Fail with one line when ``host:port`` cannot be bound (uvicorn logs several, then exits 3)."""
    from painterly.errors import PainterlyError

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind(address)
    except OSError as exc:
        raise PainterlyError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
