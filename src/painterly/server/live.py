"""Live camera frames: checked, decoded, stylized, steadied in time and encoded, all in memory.

A browser sends JPEG frames of its camera over a WebSocket (:mod:`painterly.server.routes.live`);
each one is checked from its header (a JPEG, at most ``live_max_pixels``) before it is decoded,
stylized by a trained model and blended with the previous output along the optical flow
(:class:`painterly.video.feedforward.FeedForwardPainter`, the video work's temporal stabilization),
and the result goes back as a JPEG. Nothing is written to disk. The flow is computed at a reduced
size (:data:`FLOW_LONG_SIDE`): it costs a fraction of the network and the field is smooth anyway.
Without OpenCV (the ``video`` extra) frames are stylized one by one, without stabilization.
The network runs on the runtime measured fastest for the connection's frame size
(:meth:`LiveModels.fastest`: onnxruntime, or torch in float32 or bf16).
"""

from __future__ import annotations

import importlib.util
import io
import json
import threading
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from painterly.errors import PainterlyError, did_you_mean
from painterly.server.models import FastStylizer, style_owners

#: Long side of the frames the optical flow is computed on (the flow is scaled back up). Measured on
#: 30 frames of vtest.mp4 at 320x240 (starry_night, strength 0.6): DIS medium at 112 px costs about
#: half of 160 px and steadies as well (warping error 0.0013 against 0.0015; 0.0025 unsteadied).
FLOW_LONG_SIDE = 112
#: Default steadiness of the live page: the video ``temporal_strength`` (input smoothing 0.6, output
#: blend 0.3; 0 turns it off). Below the video default (0.7): a live picture follows the camera with
#: less trailing, and 0.6 is the value ``benchmarks/bench_live.py`` measured.
DEFAULT_STRENGTH = 0.6
MAX_STRENGTH = 0.95
#: Shortest side of a frame (the networks' downsampling needs room).
MIN_SIDE = 16
JPEG_QUALITY = 82


class FrameRefused(PainterlyError):
    """A frame that is not a JPEG, too large, or corrupt: answered with an error, the connection stays."""


def can_stabilize() -> bool:
    """Temporal stabilization needs OpenCV (the ``video`` extra)."""
    return importlib.util.find_spec("cv2") is not None


def decode_frame(data: bytes, *, max_bytes: int, max_pixels: int) -> np.ndarray:
    """A JPEG frame to RGB uint8 (H, W, 3); its size is checked from the header before decoding."""
    if len(data) > max_bytes:
        raise FrameRefused(f"a frame may have at most {max_bytes:,} bytes, got {len(data):,}")
    if not data.startswith(b"\xff\xd8\xff"):
        raise FrameRefused("a frame must be a JPEG image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=["JPEG"])
            width, height = image.size
            if width * height > max_pixels:
                raise FrameRefused(f"a frame may have at most {max_pixels:,} pixels, got {width}x{height}")
            if min(width, height) < MIN_SIDE:
                raise FrameRefused(
                    f"a frame must be at least {MIN_SIDE} px on each side, got {width}x{height}"
                )
            image.load()
            return np.asarray(image.convert("RGB"))
    except FrameRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise FrameRefused("the frame is too large to decode") from None
    except (Image.UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise FrameRefused(f"the frame is not a readable JPEG: {str(exc)[:80]}") from None


def encode_frame(frame: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


class LiveModels:
    """The trained models live connections may use, loaded once each and shared (their ``stylize``
    is thread-safe). Names are looked up in the stylizer's list: a client never supplies a path."""

    def __init__(self, stylizer: FastStylizer, device: str) -> None:
        self.stylizer = stylizer
        self.device = device
        self._loaded: dict[str, Any] = {}
        self._lock = threading.Lock()

    def listing(self) -> list[dict[str, Any]]:
        return self.stylizer.models()

    def styles(self, name: str) -> list[str]:
        """The styles of a multi-style model (empty for a single-style one)."""
        for entry in self.listing():
            if entry["name"] == name and isinstance(entry.get("styles"), list):
                return [str(style) for style in entry["styles"]]
        return []

    def check(self, name: object) -> str:
        """``name`` if it is a model, or a style of a multi-style model (the library loads ``udnie``
        as the zoo with that style); else one line naming what there is."""
        listing = self.listing()
        names = [str(entry["name"]) for entry in listing]
        styles = style_owners(
            (str(entry["name"]), [str(s) for s in entry.get("styles") or []]) for entry in listing
        )
        if not isinstance(name, str) or (name not in names and name not in styles):
            shown = repr(name)[:60]
            hint = did_you_mean(name, [*names, *styles]) if isinstance(name, str) else ""
            of_styles = ""
            for owner in sorted(set(styles.values())):
                of_styles += f"; styles of {owner}: {', '.join(s for s, o in styles.items() if o == owner)}"
            available = ", ".join(names) or "none"
            raise PainterlyError(f"unknown model {shown}{hint}; models: {available}{of_styles}")
        return name

    def get(self, name: str, device: str | None = None) -> Any:
        """The loaded model ``name`` on ``device`` (default: the server's first device)."""
        device = device or self.device
        with self._lock:  # one load per model, even when two connections ask at once
            key = f"{name}@{device}"
            if key not in self._loaded:
                backend = self.stylizer.backend
                if backend is None:
                    raise PainterlyError("no trained-model support in this install")
                policy = getattr(backend, "pick_backend", None)
                if policy is None:
                    self._loaded[key] = backend.load_model(name, device=device)
                else:  # the library's runtime policy, as for the Fast tab: onnxruntime on CPUs
                    self._loaded[key] = backend.load_model(
                        name, device=device, backend=policy("auto", device)
                    )
            return self._loaded[key]

    def fastest(self, name: str, width: int, height: int, device: str | None = None) -> Any:
        """The model ``name`` on ``device`` (default: the server's first device), loaded with the
        runtime measured fastest for frames of that size.

        :func:`painterly.video.runtime.choose_runtime` times the candidates (onnxruntime, torch
        float32, torch bf16 where the CPU has it) on the first frame of a size, once per process; the
        loaded candidates stay in this cache. A stand-in backend without the library's runtime
        policy gets :meth:`get`.
        """
        device = device or self.device
        library = self.stylizer.backend
        if library is None or getattr(library, "pick_backend", None) is None:
            return self.get(name, device)
        from painterly.video.runtime import choose_runtime

        def load(model: str, device: str, *, backend: str, precision: str, **options: Any) -> Any:
            key = f"{model}@{device}/{backend}/{precision}"
            with self._lock:
                if key not in self._loaded:
                    self._loaded[key] = library.load_model(
                        model, device=device, backend=backend, precision=precision, **options
                    )
                return self._loaded[key]

        return choose_runtime(name, width, height, device=device, loader=load).model


#: Largest control message, in characters.
MAX_CONTROL_TEXT = 2048
#: Deepest nesting of a control message's JSON (``{"blend": {...}}`` needs 2). Python's ``json``
#: recurses once per level: 1000 ``[`` under the size cap raised RecursionError in the ASGI app.
MAX_CONTROL_DEPTH = 4
#: Longest whole number in a control message (``float()`` of a 400-digit one raises OverflowError).
MAX_CONTROL_DIGITS = 20


def _nesting(text: str) -> int:
    """The deepest ``[``/``{`` nesting of JSON text, outside strings (stops counting past the limit)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_CONTROL_DEPTH:
                break
        elif char in "]}":
            depth -= 1
    return deepest


def _refuse_constant(name: str) -> Any:
    raise PainterlyError(f"control messages may not hold {name}: use finite numbers")


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_CONTROL_DIGITS:
        raise PainterlyError(f"numbers in control messages may have at most {MAX_CONTROL_DIGITS} digits")
    return int(text)


def parse_control(text: object) -> dict[str, Any]:
    """A client's control message, parsed with bounded work: at most :data:`MAX_CONTROL_TEXT`
    characters nested at most :data:`MAX_CONTROL_DEPTH` deep, no NaN or Infinity, no huge integers,
    a JSON object with ``"type": "config"``; anything else is one :class:`PainterlyError`."""
    if not isinstance(text, str):
        raise PainterlyError("control messages must be text")
    if len(text) > MAX_CONTROL_TEXT:
        raise PainterlyError(f"control messages may have at most {MAX_CONTROL_TEXT} characters")
    if _nesting(text) > MAX_CONTROL_DEPTH:
        raise PainterlyError(f"control messages may nest at most {MAX_CONTROL_DEPTH} levels deep")
    try:
        message = json.loads(text, parse_constant=_refuse_constant, parse_int=_bounded_int)
    except (ValueError, RecursionError):  # RecursionError: cannot happen past the depth check
        raise PainterlyError("control messages must be JSON") from None
    if not isinstance(message, dict) or message.get("type") != "config":
        raise PainterlyError('the only control message is {"type": "config", ...}')
    return message


def check_blend(blend: object, styles: list[str]) -> dict[str, float]:
    """A client's blend (weights in the order of ``styles``, or ``{style: weight}``) as a style mix."""
    if len(styles) < 2:
        raise PainterlyError("this model has a single style: there is nothing to blend")
    if isinstance(blend, list):
        if len(blend) != len(styles):
            raise PainterlyError(f"blend needs {len(styles)} weights (one per style), got {len(blend)}")
        pairs = list(zip(styles, blend, strict=True))
    elif isinstance(blend, dict):
        unknown = [str(name)[:40] for name in blend if name not in styles]
        if unknown:
            raise PainterlyError(f"unknown style {unknown[0]!r} in blend; styles: {', '.join(styles)}")
        pairs = list(blend.items())
    else:
        raise PainterlyError("blend must be a list of weights or a {style: weight} object")
    mix: dict[str, float] = {}
    for name, weight in pairs:
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 <= weight <= 1e6:
            raise PainterlyError("blend weights must be numbers of at least 0")
        mix[str(name)] = float(weight)
    if sum(mix.values()) <= 0:
        raise PainterlyError("blend weights must not all be zero")
    return mix


class _Mixed:
    """A multi-style model seen as one style mix (what :class:`FeedForwardPainter` calls)."""

    def __init__(self, model: Any, mix: dict[str, float]) -> None:
        self.model = model
        self.mix = mix

    def stylize(self, image: Any, **options: Any) -> Any:
        return self.model.stylize(image, style_mix=self.mix, **options)


class LivePainter:
    """One connection's painter: its model, and the temporal blending state between its frames."""

    def __init__(
        self,
        model: Any,
        strength: float = DEFAULT_STRENGTH,
        style_mix: dict[str, float] | None = None,
        fastest: Callable[[int, int], Any] | None = None,
    ) -> None:
        """``fastest(width, height)``, when given, supplies the model to use for frames of that size
        (:meth:`LiveModels.fastest`); ``model`` paints until the first frame arrives."""
        if not 0.0 <= strength <= MAX_STRENGTH:
            raise PainterlyError(f"temporal strength must be between 0 and {MAX_STRENGTH}, got {strength}")
        self.style_mix = style_mix
        self.strength = strength
        self.stabilized = strength > 0 and can_stabilize()
        self._fastest = fastest
        self._size: tuple[int, int] | None = None
        self._painter: Any = None
        self._flow: Any = None
        self._previous: np.ndarray | None = None
        self.frames = 0
        self._use(model)

    def _use(self, model: Any) -> None:
        if self.style_mix is not None:
            model = _Mixed(model, self.style_mix)
        self.model = model
        if self.stabilized:
            if self._painter is None:
                from painterly.video.feedforward import FeedForwardPainter

                self._painter = FeedForwardPainter(model, self.strength)
            else:  # the blending state stays: only the runtime changes
                self._painter.model = model

    def paint(self, frame: np.ndarray) -> np.ndarray:
        """Stylize one RGB frame; the previous output, warped along the flow, steadies it."""
        height, width = frame.shape[:2]
        if self._fastest is not None and self._size != (width, height):
            self._size = (width, height)
            self._use(self._fastest(width, height))
        if not self.stabilized:
            return np.asarray(self.model.stylize(frame, tile="none").convert("RGB"))
        pair = None
        previous = self._previous
        if previous is not None and previous.shape == frame.shape:
            pair = self._flow_for(frame).pair(previous, frame)
        painted: np.ndarray = self._painter.paint(frame, self.frames, pair)
        self._previous = frame
        self.frames += 1
        return painted

    def _flow_for(self, frame: np.ndarray) -> Any:
        scale = min(1.0, max(0.1, FLOW_LONG_SIDE / max(frame.shape[:2])))
        if self._flow is None or self._flow.scale != scale:
            from painterly.video.flow import FlowEstimator

            self._flow = FlowEstimator("medium", scale)
        return self._flow
