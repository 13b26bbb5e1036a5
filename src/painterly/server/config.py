"""Server settings: where data lives, who may call, and how much work and input it accepts."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from painterly.errors import PainterlyError

#: Environment variables read by :meth:`ServerSettings.from_env` (the CLI flags win over them).
TOKEN_ENV = "PAINTERLY_TOKEN"
DATA_ENV = "PAINTERLY_DATA"


def default_data_dir() -> Path:
    """``$PAINTERLY_DATA``, else ``$XDG_DATA_HOME/painterly/server`` (``~/.local/share/...``)."""
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV])
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "painterly" / "server"


@dataclass
class ServerSettings:
    """Everything ``painterly serve`` can be told. Defaults are safe for a laptop."""

    data_dir: Path = field(default_factory=default_data_dir)
    #: Required on every ``/api`` call when set (``Authorization: Bearer ...`` or ``?token=``).
    token: str | None = None
    #: Origins allowed by CORS; empty means CORS is off (same-origin only).
    cors_origins: tuple[str, ...] = ()
    #: One worker thread per device; each runs one image optimization at a time.
    devices: tuple[str, ...] = ("auto",)
    #: Jobs waiting (not counting running ones) before new submissions get 429.
    max_queue: int = 8
    #: Largest request body, all files together.
    max_upload_bytes: int = 20 * 1024 * 1024
    #: Largest decoded image accepted (pixels); smaller than the CLI's cap since a server holds several.
    max_pixels: int = 40_000_000
    max_size: int = 1024
    max_iterations: int = 1000
    max_styles: int = 8
    #: Results and records older than this are deleted.
    retention_hours: float = 24.0 * 7
    #: Long side of the preview images sent on the event stream, and the least time between two.
    preview_size: int = 192
    preview_interval: float = 0.4
    #: How long a fast stylization waits for its turn before answering 429.
    stylize_wait: float = 30.0

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        self.devices = tuple(self.devices) or ("auto",)
        self.cors_origins = tuple(self.cors_origins)
        for name in (
            "max_queue",
            "max_upload_bytes",
            "max_pixels",
            "max_size",
            "max_iterations",
            "max_styles",
        ):
            if int(getattr(self, name)) < 1:
                raise PainterlyError(f"{name.replace('_', ' ')} must be at least 1")
        if self.retention_hours <= 0:
            raise PainterlyError("retention must be positive")

    @property
    def results_dir(self) -> Path:
        return self.data_dir / "results"

    @property
    def database(self) -> Path:
        return self.data_dir / "jobs.sqlite3"

    def prepare(self) -> None:
        """Create the data folders (private to this user), or fail with a clear message."""
        try:
            self.results_dir.mkdir(parents=True, exist_ok=True)
            os.chmod(self.data_dir, 0o700)
        except OSError as exc:
            raise PainterlyError(f"cannot use data folder {self.data_dir}: {exc.strerror or exc}") from None
