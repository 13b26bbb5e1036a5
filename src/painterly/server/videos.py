"""Video jobs: an uploaded clip stylized by a trained model, with its audio, as an MP4.

The upload is copied into the server's private uploads folder (PyAV reads files), checked from its
container header (a video stream, at most ``video_max_pixels`` a frame, at most ``video_max_seconds``)
before any frame is decoded, and queued as a :class:`~painterly.server.jobs.JobTask`: the same
queue, records, event stream and retention as image jobs. The work is the library's
:func:`painterly.video.stylize_video` (temporal stabilization, audio, atomic output); its progress
callback feeds the job's progress (frames done, frames/s, ETA) and preview. The upload is deleted
when the job ends, whether it ran or not.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from PIL import Image

from painterly.errors import PainterlyError
from painterly.numbers import parse_decimal, parse_whole, quoted
from painterly.server.config import ServerSettings
from painterly.server.jobs import JobContext, TaskOutcome, new_job_id
from painterly.server.live import MAX_STRENGTH, LiveModels

#: Output long side when the client names none: the input's, up to this.
DEFAULT_SIZE = 480


def video_support() -> str | None:
    """None when video jobs can run here, else why not (with the install line)."""
    missing = [
        name
        for module, name in (("av", "av"), ("cv2", "opencv-python-headless"))
        if importlib.util.find_spec(module) is None
    ]
    if missing:
        return f"video needs {' and '.join(missing)} on the server: pip install 'painterly[video]'"
    return None


@dataclass(frozen=True)
class ClipInfo:
    width: int
    height: int
    seconds: float | None
    rate: float


def inspect_clip(path: Path, settings: ServerSettings) -> ClipInfo:
    """The clip's size, length and rate from its container header, nothing decoded; caps enforced."""
    import av
    import av.error

    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, ValueError, OSError):
        raise PainterlyError("the upload is not a video file PyAV can read") from None
    with container:
        if not container.streams.video:
            raise PainterlyError("the upload has no video stream")
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        rate = float(stream.average_rate or stream.guessed_rate or 0)
        seconds = None
        if stream.duration is not None and stream.time_base is not None:
            seconds = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            seconds = container.duration / av.time_base
    if not width or not height:
        raise PainterlyError("the video stream does not say its frame size")
    if width * height > settings.video_max_pixels:
        raise PainterlyError(
            f"the video is {width}x{height} = {width * height:,} pixels a frame, more than this server's "
            f"limit of {settings.video_max_pixels:,}"
        )
    return ClipInfo(width, height, seconds, rate)


def parse_options(values: dict[str, str], settings: ServerSettings, models: LiveModels) -> dict[str, Any]:
    """``model``, ``size`` (long side of the output; None: see :func:`output_side`) and
    ``temporal_strength`` from form strings."""
    unknown = set(values) - {"model", "size", "temporal_strength"}
    if unknown:
        shown = ", ".join(quoted(name, 40) for name in sorted(unknown)[:3])  # control characters escaped
        raise PainterlyError(f"unknown form field(s): {shown}")
    model = models.check(values.get("model") or "")
    size_text = values.get("size") or ""
    size = None
    if size_text.strip():
        size = parse_whole(size_text, "size", minimum=16, maximum=settings.video_max_size, unit="px")
    strength_text = values.get("temporal_strength") or ""
    from painterly.video.feedforward import DEFAULT_STRENGTH as VIDEO_STRENGTH  # needs OpenCV: only here

    strength = VIDEO_STRENGTH  # the library's and the CLI's default, not the live page's
    if strength_text.strip():
        strength = parse_decimal(strength_text, "temporal_strength", minimum=0.0, maximum=MAX_STRENGTH)
    return {"model": model, "size": size, "temporal_strength": strength}


def output_side(requested: int | None, clip: ClipInfo, settings: ServerSettings) -> int:
    """The output's long side: as asked, else the input's, never above :data:`DEFAULT_SIZE` or the cap."""
    if requested is not None:
        return requested
    return max(16, min(DEFAULT_SIZE, settings.video_max_size, max(clip.width, clip.height)))


def save_upload(source: BinaryIO, settings: ServerSettings, suffix: str) -> Path:
    """Copy the upload into the private uploads folder, under a random name (never the client's)."""
    path = settings.uploads_dir / f"{new_job_id()}{suffix}"
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "wb") as handle:
        source.seek(0)
        shutil.copyfileobj(source, handle, 1024 * 1024)
    return path


def upload_suffix(filename: str | None) -> str:
    """A known video suffix from the client's file name (only to help the demuxer), else ``.bin``."""
    suffix = Path(filename or "").suffix.lower()
    return suffix if suffix in (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".gif", ".ogv") else ".bin"


class VideoTask:
    """One queued video job: the saved upload and what to do with it."""

    def __init__(
        self,
        upload: Path,
        options: dict[str, Any],
        clip: ClipInfo,
        models: LiveModels,
        settings: ServerSettings,
    ) -> None:
        self.upload = upload
        self.options = options
        self.clip = clip
        self.models = models
        self.settings = settings

    def discard(self) -> None:
        self.upload.unlink(missing_ok=True)

    def run(self, context: JobContext) -> TaskOutcome:
        from painterly.video import stylize_video
        from painterly.video.io import output_size

        width, height = output_size(self.clip.width, self.clip.height, self.options["size"])
        # The runtime measured fastest for frames of this size (once per process and size).
        model = watched(self.models.fastest(self.options["model"], width, height, context.device))
        name = f"{context.job_id}.mp4"
        seconds = self.settings.video_max_seconds
        max_frames = self.settings.video_max_frames

        def progress(update: Any) -> None:
            if context.cancelled():
                # The library's interruption: the frames done so far become a playable video.
                raise KeyboardInterrupt
            total = update.total
            elapsed = max(update.seconds, 1e-6)
            fps = update.frame / elapsed
            fraction = min(1.0, update.frame / total) if total else None
            eta = (total - update.frame) / fps if total and fps > 0 else None
            context.report(
                {
                    "frame": update.frame,
                    "total_frames": total,
                    "fps": round(fps, 2),
                    "fraction": fraction,
                    "elapsed": round(elapsed, 2),
                    "eta": None if eta is None else round(max(0.0, eta), 1),
                },
                model.latest,
            )

        try:
            result = stylize_video(
                self.upload,
                context.results_dir / name,
                model=model,
                size=self.options["size"],
                duration=seconds,
                max_frames=max_frames,
                temporal_strength=self.options["temporal_strength"],
                progress=progress,
            )
        except KeyboardInterrupt:  # ours (see ``progress``), before any frame was written
            raise PainterlyError("stopped before the first frame was painted") from None
        width, height = result.size
        return TaskOutcome(
            result=result.output.name, width=width, height=height, interrupted=result.interrupted
        )


@functools.cache
def _watched_class() -> type:
    """:class:`StyleModel` that keeps its latest output for the job's preview (made on first use:
    the inference module is imported only when a video runs)."""
    from painterly.feedforward.inference import StyleModel

    class Watched(StyleModel):
        latest_image: Image.Image | None = None

        def stylize(self, image: Any, **options: Any) -> Image.Image:
            picture = super().stylize(image, **options)
            self.latest_image = picture
            return picture

        def latest(self) -> Image.Image | None:
            return self.latest_image

    return Watched


def watched(model: Any) -> Any:
    """A view of a loaded :class:`StyleModel` (the same network, no copy) that remembers its last
    output, for the job's preview."""
    view: Any = object.__new__(_watched_class())
    view.__dict__.update(model.__dict__)
    return view


def delete_stale_uploads(settings: ServerSettings) -> int:
    """At startup: uploads left by a previous process (their jobs were marked interrupted)."""
    removed = 0
    with contextlib.suppress(OSError):
        for path in settings.uploads_dir.iterdir():
            path.unlink(missing_ok=True)
            removed += 1
    return removed
