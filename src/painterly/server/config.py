"""Server settings: where data lives, who may call, and how much work and input it accepts."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from painterly.errors import PainterlyError, shown

#: Environment variables read by :meth:`ServerSettings.from_env` (the CLI flags win over them).
TOKEN_ENV = "PAINTERLY_TOKEN"
DATA_ENV = "PAINTERLY_DATA"
#: Host names a server without a token answers to unless told otherwise (DNS-rebinding defence).
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
#: Bounds of ``retention_hours``: a minute (shorter would make the cleaner spin) to ten years.
MIN_RETENTION_HOURS = 1 / 60
MAX_RETENTION_HOURS = 24.0 * 365 * 10


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
    #: ``Host`` names answered; ``None``: loopback names only without a token, any with one; ``*``: any.
    allowed_hosts: tuple[str, ...] | None = None
    #: Serve ``/docs`` and ``/redoc`` (they load their scripts from a CDN, so they are off by default).
    api_docs: bool = False
    #: One worker thread per device; each runs one image optimization at a time.
    devices: tuple[str, ...] = ("auto",)
    #: Jobs waiting (not counting running ones) before new submissions get 429.
    max_queue: int = 8
    #: Largest request body, all files together.
    max_upload_bytes: int = 20 * 1024 * 1024
    #: Largest decoded image accepted (pixels); smaller than the CLI's cap since a server holds several.
    max_pixels: int = 40_000_000
    #: Largest total of the images of one request (pixels, from their headers, before decoding).
    max_request_pixels: int = 200_000_000
    #: Images decoded at once, over all requests (each may briefly take ``max_pixels`` x 4 bytes).
    max_decodes: int = 2
    max_size: int = 1024
    max_iterations: int = 1000
    max_scales: int = 8
    #: Most work per job in megapixel-iterations (long side squared x iterations, summed over scales);
    #: ``None``: ``max_iterations`` at ``max_size`` on one scale.
    max_work: float | None = None
    max_styles: int = 8
    #: Results and records older than this are deleted.
    retention_hours: float = 24.0 * 7
    #: Fast-stylization results kept for download (the oldest beyond this are deleted at once).
    stylize_keep: int = 32
    #: Long side of the preview images sent on the event stream, and the least time between two.
    preview_size: int = 192
    preview_interval: float = 0.4
    #: How long a fast stylization waits for the model's slot; 0: a busy server answers 429 at once.
    stylize_wait: float = 0.0
    #: Live camera (``/api/live``): connections at once, the largest frame (bytes, and pixels from the
    #: JPEG header before decoding) and the most frames a second one connection may send.
    live_max_connections: int = 2
    live_max_frame_bytes: int = 1024 * 1024
    live_max_pixels: int = 1280 * 720
    live_max_fps: int = 30
    #: Seconds without a message before a live connection is closed.
    live_idle_seconds: float = 60.0
    #: Video jobs (``/api/videos``): the largest upload, the input's pixels per frame (from its header),
    #: the longest clip processed (seconds and frames) and the largest output long side.
    video_max_upload_bytes: int = 100 * 1024 * 1024
    video_max_pixels: int = 1920 * 1088
    video_max_seconds: float = 60.0
    video_max_frames: int = 3600
    video_max_size: int = 720

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        self.devices = tuple(self.devices) or ("auto",)
        self.cors_origins = tuple(self.cors_origins)
        if self.allowed_hosts is not None:
            self.allowed_hosts = tuple(h.strip().lower() for h in self.allowed_hosts if h.strip())
        if self.token is not None and not self.token.strip():
            raise PainterlyError("the token must not be blank (leave it unset for no token)")
        for name in (
            "max_queue",
            "max_upload_bytes",
            "max_pixels",
            "max_request_pixels",
            "max_decodes",
            "max_size",
            "max_iterations",
            "max_scales",
            "max_styles",
            "stylize_keep",
            "live_max_connections",
            "live_max_frame_bytes",
            "live_max_pixels",
            "live_max_fps",
            "video_max_upload_bytes",
            "video_max_pixels",
            "video_max_frames",
            "video_max_size",
        ):
            if int(getattr(self, name)) < 1:
                raise PainterlyError(f"{name.replace('_', ' ')} must be at least 1")
        hours = float(self.retention_hours)
        if not MIN_RETENTION_HOURS <= hours <= MAX_RETENTION_HOURS:  # False for nan too
            raise PainterlyError(
                f"retention hours must be between {MIN_RETENTION_HOURS:.4g} (a minute) and "
                f"{MAX_RETENTION_HOURS:g}, got {self.retention_hours!r}"
            )
        for name in ("live_idle_seconds", "video_max_seconds"):
            value = float(getattr(self, name))
            if not (math.isfinite(value) and value > 0):
                raise PainterlyError(f"{name.replace('_', ' ')} must be positive, got {value!r}")
        if self.max_work is None:
            self.max_work = self.max_iterations * self.max_size**2 / 1e6
        if not (math.isfinite(self.max_work) and self.max_work > 0):
            raise PainterlyError(f"max work must be positive and finite, got {self.max_work!r}")

    @property
    def results_dir(self) -> Path:
        return self.data_dir / "results"

    @property
    def uploads_dir(self) -> Path:
        """Uploaded videos while their job waits or runs (deleted when it ends)."""
        return self.data_dir / "uploads"

    @property
    def database(self) -> Path:
        return self.data_dir / "jobs.sqlite3"

    def hosts(self) -> tuple[str, ...] | None:
        """The ``Host`` names to answer, or ``None`` for any."""
        if self.allowed_hosts is None:
            return None if self.token else LOOPBACK_HOSTS
        return None if "*" in self.allowed_hosts else self.allowed_hosts

    def prepare(self) -> None:
        """Create the data folders, private to this user; folders that already exist keep their modes."""
        try:
            for folder in (self.data_dir, self.results_dir, self.uploads_dir):
                if os.path.lexists(folder) and not folder.is_dir():  # mkdir would say just "File exists"
                    where = f" (set by --data or ${DATA_ENV})" if folder == self.data_dir else ""
                    raise PainterlyError(f"data folder {shown(folder)} is a file, not a folder{where}")
                if not folder.is_dir():
                    folder.mkdir(mode=0o700, parents=True)
                    os.chmod(folder, 0o700)  # mkdir's mode is masked by the umask
        except OSError as exc:
            raise PainterlyError(f"cannot use data folder {self.data_dir}: {exc.strerror or exc}") from None
