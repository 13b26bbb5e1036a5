"""Tiny generated clips: textures, a moving square, H.264 with an AAC tone, and what a run left behind.

Needs av and cv2: import it after the test module's own ``pytest.importorskip`` of both.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")
cv2 = pytest.importorskip("cv2")


def texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth random texture (blurred noise), something optical flow can lock onto."""
    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 255, (height, width, 3)).astype(np.float32)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), 2.0) * 3 - 255, 0, 255).astype(np.uint8)


def square_frames(count: int = 12, size: tuple[int, int] = (64, 48), step: int = 2) -> list[np.ndarray]:
    """A textured square moving right over a textured background."""
    width, height = size
    background = texture(height, width, 0)
    patch = texture(16, 16, 1) // 2 + 120
    frames = []
    for i in range(count):
        frame = background.copy()
        x = 4 + step * i
        frame[12:28, x : x + 16] = patch
        frames.append(frame)
    return frames


def make_clip(
    path: Path,
    frames: list[np.ndarray],
    rate: int = 12,
    audio: bool = True,
    rotation: int = 0,
    video: bool = True,
) -> Path:
    """Encode frames as H.264 (and a 440 Hz sine as AAC) with PyAV."""
    with av.open(str(path), "w") as container:
        if video:
            stream = container.add_stream("libx264", rate=rate)
            stream.height, stream.width = frames[0].shape[:2]
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": "10"}
            if rotation:
                stream.set_display_rotation(rotation)
        if audio:
            sound = container.add_stream("aac", rate=16000)
            sound.layout = "mono"
        if video:
            for i, image in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                frame.pts, frame.time_base = i, Fraction(1, rate)
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        if audio:
            total = int(16000 * len(frames) / rate)
            wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(total) / 16000)).astype(np.float32)
            for start in range(0, total, 1024):
                chunk = av.AudioFrame.from_ndarray(
                    wave[None, start : start + 1024], format="flt", layout="mono"
                )
                chunk.sample_rate, chunk.pts = 16000, start
                container.mux(sound.encode(chunk))
            container.mux(sound.encode(None))
    return path


def gradient_clip(
    path: Path, *, seconds: float = 1.0, fps: int = 10, size: tuple[int, int] = (64, 48)
) -> Path:
    """A moving gradient with a 440 Hz sine tone (AAC): a clip whose audio must survive."""
    width, height = size
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = container.add_stream("aac", rate=22050)
        audio.layout = "mono"
        y, x = np.mgrid[0:height, 0:width]
        for index in range(round(seconds * fps)):
            shift = index * 3
            frame = np.stack(
                [(x + shift) * 255 // (width + shift), y * 255 // height, np.full_like(x, 128)], -1
            ).astype(np.uint8)
            container.mux(video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(video.encode(None))
        samples = np.sin(2 * np.pi * 440 * np.arange(round(seconds * 22050)) / 22050).astype(np.float32)
        for start in range(0, len(samples), 1024):
            chunk = samples[start : start + 1024][None, :]
            piece = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            piece.sample_rate, piece.pts, piece.time_base = 22050, start, Fraction(1, 22050)
            container.mux(audio.encode(piece))
        container.mux(audio.encode(None))
    return path


def leftovers(folder: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)
