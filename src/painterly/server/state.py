"""The one object routes share: settings, the job store, the queue, the stylizer and the gates."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

from fastapi import Request

from painterly.server.config import ServerSettings
from painterly.server.jobs import JobManager
from painterly.server.live import LiveModels
from painterly.server.models import FastStylizer
from painterly.server.store import JobStore
from painterly.server.uploads import Decoder


@dataclass
class ServerState:
    """Everything a request may need: ``app.state.painterly`` holds it, routes ask :func:`get_state`."""

    settings: ServerSettings
    store: JobStore
    manager: JobManager
    stylizer: FastStylizer
    #: Set when the process is asked to stop: event streams end and running jobs are interrupted.
    stopping: threading.Event = field(default_factory=threading.Event)
    stopping_since: float = 0.0
    #: Created on the server's event loop (:meth:`bind_loop`): asyncio objects belong to one loop.
    decoder: Decoder | None = None
    stylize_gate: asyncio.Semaphore | None = None
    #: Live camera: the models (loaded once, shared), one frame painted at a time over all
    #: connections, and how many connections are open (changed on the event loop only).
    live_models: LiveModels = field(init=False)
    live_gate: asyncio.Semaphore | None = None
    live_connections: int = 0

    def __post_init__(self) -> None:
        self.live_models = LiveModels(self.stylizer, self.settings.devices[0])

    def bind_loop(self) -> None:
        s = self.settings
        self.decoder = Decoder(s.max_decodes, s.max_pixels, s.max_request_pixels)
        self.stylize_gate = asyncio.Semaphore(1)
        self.live_gate = asyncio.Semaphore(1)

    def begin_shutdown(self) -> None:
        """The first thing on SIGTERM, before uvicorn waits for open connections to finish."""
        if not self.stopping.is_set():
            self.stopping_since = time.monotonic()
            self.stopping.set()
            self.manager.interrupt_all()


def get_state(request: Request) -> ServerState:
    """FastAPI dependency: the app's shared state."""
    state: ServerState = request.app.state.painterly
    return state
