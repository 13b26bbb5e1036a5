"""Video decoding and encoding with PyAV (its wheels carry FFmpeg, so no system ffmpeg is needed).

:func:`probe` checks a file and describes it, :func:`read_frames` yields RGB frames of a time
window, and :class:`VideoWriter` encodes MP4 (H.264), MOV/MKV (H.264), WebM (VP9 or VP8) or GIF
into a temporary file next to the output that is renamed into place only when complete, copying
the input's audio track and rotation alongside. Every failure a user can cause becomes a
:class:`~painterly.errors.PainterlyError` before the output exists.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import av
import av.error
import cv2
import numpy as np

from painterly.errors import PainterlyError
from painterly.outputs import check_not_an_input, check_output_path

#: Output suffix -> (FFmpeg muxer, kind). ``kind`` picks the codecs.
FORMATS = {
    ".mp4": ("mp4", "h264"),
    ".m4v": ("mp4", "h264"),
    ".mov": ("mov", "h264"),
    ".mkv": ("matroska", "h264"),
    ".webm": ("webm", "vp9"),
    ".gif": ("gif", "gif"),
}
#: Audio codecs each muxer takes as they are (copied packet by packet, no re-encoding).
_REMUXABLE_AUDIO = {
    "mp4": {"aac", "mp3", "alac"},
    "mov": {"aac", "mp3", "alac", "pcm_s16le"},
    "matroska": {"aac", "mp3", "opus", "vorbis", "flac", "pcm_s16le"},
    "webm": {"opus", "vorbis"},
}
#: Audio encoder for each muxer when the input's codec cannot be copied.
_AUDIO_ENCODER = {"mp4": "aac", "mov": "aac", "matroska": "libopus", "webm": "libopus"}
#: Quality of the H.264 and VP9 encoders (constant rate factor; lower is better, larger files).
CRF = 18


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` learns about a video file (sizes are as stored, before rotation)."""

    path: Path
    width: int
    height: int
    rate: Fraction
    frames: int | None
    duration: float | None
    rotation: int
    codec: str
    has_audio: bool


def _open(path: Path) -> Any:
    try:
        return av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise PainterlyError(f"not a readable video file: {path} ({_reason(exc)})") from None


def _reason(exc: Exception) -> str:
    return str(getattr(exc, "strerror", None) or exc).split("\n")[0]


def check_input(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if not path.exists():
        raise PainterlyError(f"input video not found: {path}")
    if path.is_dir():
        raise PainterlyError(f"input video is a folder, not a file: {path}")
    if not stat.S_ISREG(path.stat().st_mode):
        # Opening a FIFO blocks until a writer comes: refuse pipes and devices instead of hanging.
        raise PainterlyError(f"input video is not a regular file (a pipe or device?): {path}")
    return path


def probe(path: str | os.PathLike[str]) -> VideoInfo:
    """Open ``path``, check it has a decodable video stream, decode its first frame; describe it."""
    path = check_input(path)
    with _open(path) as container:
        if not container.streams.video:
            raise PainterlyError(f"no video stream in {path}")
        stream = container.streams.video[0]
        codec = stream.codec_context.name if stream.codec_context else "unknown"
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate or rate <= 0:
            raise PainterlyError(f"cannot tell the frame rate of {path}")
        try:
            first = next(container.decode(stream), None)
        except av.error.FFmpegError as exc:
            raise PainterlyError(
                f"cannot decode the video stream ({codec}) of {path}: {_reason(exc)}"
            ) from None
        if first is None:
            raise PainterlyError(f"the video stream of {path} has no frames")
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        frames = stream.frames or (round(duration * rate) if duration else None)
        return VideoInfo(
            path=path,
            width=first.width,
            height=first.height,
            rate=Fraction(rate),
            frames=frames or None,
            duration=duration,
            rotation=int(round(first.rotation or 0)) % 360,
            codec=codec,
            has_audio=bool(container.streams.audio),
        )


#: Largest output long side (8K): beyond it frames take gigabytes and encoders refuse them.
MAX_SIDE = 8192


def output_size(width: int, height: int, size: int | None) -> tuple[int, int]:
    """The frame size to process: the long side at ``size`` (aspect kept), both sides even.

    Even sides because H.264 and VP9 in 4:2:0 need them; the rounding changes at most one pixel.
    """
    if size is not None:
        if not 16 <= size <= MAX_SIDE:  # --size 100000 ran for minutes toward an out-of-memory kill
            raise PainterlyError(f"size must be from 16 to {MAX_SIDE} px, got {size}")
        scale = size / max(width, height)
        width, height = max(2, round(width * scale)), max(2, round(height * scale))
    return width - width % 2, height - height % 2


def read_frames(
    info: VideoInfo,
    *,
    size: tuple[int, int] | None = None,
    start: float = 0.0,
    duration: float | None = None,
    max_frames: int | None = None,
) -> Iterator[np.ndarray]:
    """RGB uint8 frames (H, W, 3), as stored (unrotated), from ``start`` seconds on, resized to ``size``."""
    end = None if duration is None else start + duration
    count = 0
    with _open(info.path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if start > 0 and stream.time_base is not None:
            with contextlib.suppress(av.error.FFmpegError):
                container.seek(int(start / stream.time_base), stream=stream, backward=True)
        try:
            for frame in container.decode(stream):
                time = frame.time if frame.time is not None else count / float(info.rate)
                if time < start - 0.5 / float(info.rate):
                    continue
                if (end is not None and time >= end - 1e-6) or (
                    max_frames is not None and count >= max_frames
                ):
                    break
                image = frame.to_ndarray(format="rgb24")
                if size is not None and (image.shape[1], image.shape[0]) != size:
                    image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
                count += 1
                yield image
        except av.error.FFmpegError as exc:
            raise PainterlyError(f"cannot decode {info.path} after {count} frames: {_reason(exc)}") from None


def upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """Apply a display rotation (degrees counter-clockwise, as FFmpeg's display matrix) to pixels."""
    turns = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(image, turns)) if turns else image


def check_output(path: str | os.PathLike[str], inputs: tuple[Path, ...] = ()) -> tuple[Path, str, str]:
    """Validate an output path before any work: a known suffix, a writable folder, not an input."""
    path = Path(path)
    suffix = path.suffix.lower()
    if not suffix and path.name.lower() in FORMATS:  # "-o .mp4": a suffix with no name before it
        raise PainterlyError(f"the output {path} has no name before its extension: e.g. out{path.name}")
    if suffix not in FORMATS:
        raise PainterlyError(
            f"unknown video format {suffix or '(none)'!r} for {path}: use {', '.join(FORMATS)}"
        )
    check_output_path(path)  # the check every command makes: folder, writable, not a folder
    check_not_an_input(path, inputs)
    muxer, kind = FORMATS[suffix]
    return path, muxer, _video_codec(kind)


def _video_codec(kind: str) -> str:
    available = av.codecs_available
    choices = {"h264": ["libx264"], "vp9": ["libvpx-vp9", "libvpx"], "gif": ["gif"]}[kind]
    for name in choices:
        if name in available:
            return name
    hint = " (write .webm instead)" if kind == "h264" else ""
    raise PainterlyError(f"this PyAV build has no {kind} encoder ({' or '.join(choices)}){hint}")


class _AudioCopy:
    """Copies the input's first audio track for a time window, interleaved with the video as it grows.

    Remuxes packets when the output container accepts the codec, otherwise decodes and re-encodes.
    """

    def __init__(self, source: Path, output: Any, muxer: str, start: float) -> None:
        self.input = av.open(str(source), metadata_errors="ignore")
        self.istream = self.input.streams.audio[0]
        self.start = start
        self.remux = self.istream.codec_context.name in _REMUXABLE_AUDIO.get(muxer, set())
        if self.remux:
            self.ostream = output.add_stream_from_template(self.istream)
        else:
            rate = 48000 if _AUDIO_ENCODER[muxer] == "libopus" else self.istream.codec_context.sample_rate
            self.ostream = output.add_stream(_AUDIO_ENCODER[muxer], rate=rate)
            self.ostream.layout = "stereo" if self.istream.codec_context.channels > 1 else "mono"
            fmt = self.ostream.codec_context.codec.audio_formats[0].name
            self.resampler = av.AudioResampler(format=fmt, layout=self.ostream.layout.name, rate=rate)
        if start > 0:
            with contextlib.suppress(av.error.FFmpegError):
                time_base = cast(Fraction, self.istream.time_base)  # an opened stream has one
                self.input.seek(int(start / time_base), stream=self.istream, backward=True)
        self.packets = self.input.demux(self.istream)
        self.pending: Any = None
        self.samples = 0

    def advance(self, output: Any, until: float) -> None:
        """Mux audio up to ``until`` seconds of output time."""
        while True:
            packet = self.pending or next(self.packets, None)
            self.pending = None
            if packet is None:
                return
            if packet.pts is None or packet.dts is None and self.remux:
                continue
            time = float(packet.pts * packet.time_base) - self.start
            if time >= until:
                self.pending = packet
                return
            if time < -1e-3:
                continue
            if self.remux:
                shift = int(round(self.start / packet.time_base))
                packet.pts -= shift
                packet.dts -= shift  # type: ignore[operator]  # None was skipped above when remuxing
                packet.stream = self.ostream
                output.mux(packet)
            else:
                for frame in packet.decode():
                    self._encode(output, frame)

    def _encode(self, output: Any, frame: Any) -> None:
        for piece in self.resampler.resample(frame):
            piece.pts = self.samples
            piece.time_base = Fraction(1, self.ostream.codec_context.sample_rate)
            self.samples += piece.samples
            output.mux(self.ostream.encode(piece))

    def finish(self, output: Any) -> None:
        if not self.remux:
            with contextlib.suppress(ValueError):
                for piece in self.resampler.resample(None):
                    piece.pts = self.samples
                    self.samples += piece.samples
                    output.mux(self.ostream.encode(piece))
            output.mux(self.ostream.encode(None))
        self.input.close()


class VideoWriter:
    """Encodes RGB frames into a temporary file, renamed to ``path`` by :meth:`close` when complete.

    Used as a context manager: an exception discards the temporary file, except Ctrl-C
    (``KeyboardInterrupt``) after at least one frame, which finishes a playable video of the frames
    written so far. ``rotation`` is kept as display metadata where the container has it (MP4, MOV,
    MKV) and applied to the pixels otherwise (WebM, GIF, and side-by-side comparisons).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        rate: Fraction,
        width: int,
        height: int,
        rotation: int = 0,
        audio_from: Path | None = None,
        audio_start: float = 0.0,
        inputs: tuple[Path, ...] = (),
        side_by_side: bool = False,
    ) -> None:
        self.path, self.muxer, codec = check_output(path, inputs)
        self.rate = Fraction(rate).limit_denominator(100000)
        self.side_by_side = side_by_side
        self.rotation_in_metadata = self.muxer in ("mp4", "mov", "matroska") and not side_by_side
        self.rotation = rotation
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        os.close(fd)
        self.tmp = Path(tmp)
        self.frames = 0
        #: Whether the finished file has been renamed into place (:meth:`close`).
        self.written = False
        self.audio: _AudioCopy | None = None
        try:
            # GIF: the last frame lasts as long as the others (FFmpeg's default is 0.04 s).
            gif = {"final_delay": str(max(1, round(100 / float(rate))))} if self.muxer == "gif" else {}
            self.container = av.open(tmp, mode="w", format=self.muxer, options=gif)
        except av.error.FFmpegError as exc:
            self.tmp.unlink(missing_ok=True)
            raise PainterlyError(f"cannot write {self.path}: {_reason(exc)}") from None
        try:
            w, h = width * (2 if side_by_side else 1), height
            if rotation % 180 == 90 and not self.rotation_in_metadata:
                w, h = h, w
                if side_by_side:
                    w, h = 2 * height, width
            stream = self.container.add_stream(codec, rate=self.rate if codec != "gif" else None)
            self.stream = cast("av.VideoStream", stream)  # a video codec's name: a video stream
            if codec == "gif":
                self.stream.time_base = Fraction(1, 100)
                self.stream.codec_context.time_base = Fraction(1, 100)
            self.stream.width, self.stream.height = w, h
            #: Width and height as a player shows the video (the stored size turned by metadata rotation).
            self.shown_size = (h, w) if self.rotation_in_metadata and rotation % 180 == 90 else (w, h)
            self.stream.pix_fmt = "rgb8" if codec == "gif" else "yuv420p"
            self.stream.options = _encoder_options(codec)
            if self.rotation_in_metadata and rotation:
                self.stream.set_display_rotation(rotation)
            if audio_from is not None and self.muxer != "gif":
                try:
                    self.audio = _AudioCopy(audio_from, self.container, self.muxer, audio_start)
                except (av.error.FFmpegError, ValueError, IndexError, KeyError) as exc:
                    warnings.warn(f"the audio track is not copied: {_reason(exc)}", stacklevel=2)
                    self.audio = None
        except BaseException:
            self._discard()
            raise

    def write(self, frame: np.ndarray, original: np.ndarray | None = None) -> None:
        """Encode one RGB uint8 frame (as stored); with ``side_by_side``, ``original`` goes on the left."""
        if self.side_by_side:
            if original is None:
                raise ValueError("side_by_side needs the original frame")
            if not self.rotation_in_metadata:  # each half upright, then side by side (not stacked)
                original, frame = upright(original, self.rotation), upright(frame, self.rotation)
            frame = np.concatenate([original, frame], axis=1)
        elif not self.rotation_in_metadata:
            frame = upright(frame, self.rotation)
        picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        if self.stream.codec_context.name == "gif":
            picture.pts = round(self.frames * 100 / self.rate)
            picture.time_base = Fraction(1, 100)
        else:
            picture.pts = self.frames
            picture.time_base = 1 / self.rate
        self.container.mux(self.stream.encode(picture))
        self.frames += 1
        if self.audio is not None:
            self.audio.advance(self.container, self.frames / float(self.rate))

    def close(self) -> Path:
        """Flush the encoders, finish the file, and rename it into place."""
        try:
            self.container.mux(self.stream.encode(None))
            if self.audio is not None:
                self.audio.advance(self.container, self.frames / float(self.rate))
                self.audio.finish(self.container)
            self.container.close()
            os.chmod(self.tmp, 0o644)
            os.replace(self.tmp, self.path)
            self.written = True
        except av.error.FFmpegError as exc:
            self._discard()
            raise PainterlyError(f"cannot write {self.path}: {_reason(exc)}") from None
        except BaseException:
            self._discard()
            raise
        return self.path

    def _discard(self) -> None:
        with contextlib.suppress(Exception):
            self.container.close()
        with contextlib.suppress(Exception):
            if self.audio is not None:
                self.audio.input.close()
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is None or (kind is KeyboardInterrupt and self.frames > 0):
            self.close()
        else:
            self._discard()


def _encoder_options(codec: str) -> dict[str, object]:
    if codec == "libx264":
        return {"crf": str(CRF), "preset": "veryfast"}
    if codec == "libvpx-vp9":
        return {"crf": str(CRF + 12), "b": "0", "deadline": "realtime", "cpu-used": "8", "row-mt": "1"}
    if codec == "libvpx":
        return {"crf": "10", "b": "2M", "deadline": "realtime", "cpu-used": "8"}
    return {}
