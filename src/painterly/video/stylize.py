"""``stylize_video``: the library's one call for both methods."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from painterly.errors import PainterlyError
from painterly.settings import BYTES_PER_PIXEL
from painterly.video.feedforward import DEFAULT_STRENGTH, FeedForwardPainter
from painterly.video.flow import FlowEstimator
from painterly.video.pipeline import FramePainter, VideoProgress, VideoResult, Window, run

if TYPE_CHECKING:
    from painterly.feedforward.inference import StyleModel

#: Flow for the feed-forward path is computed at this fraction of the frame size: a quarter of the
#: cost of full resolution (measured 16 ms against 62 ms per pair at 640x480) for a smooth field.
FEEDFORWARD_FLOW_SCALE = 0.5
#: DIS preset of the feed-forward path: on 20 frames of cup.mp4 (640x480, flow at half size, strength
#: 0.5) "fast" steadied as well as "medium" (warping error 0.00420 against 0.00452; per-frame 0.01066)
#: for about a third of the flow's time; "ultrafast" was less steady (0.00630).
FEEDFORWARD_FLOW_PRESET = "fast"
#: Memory a trained network needs per frame pixel, at most: peak RSS grew by 400 bytes a pixel with
#: torch and 290 with onnxruntime between 256 and 1024 px frames (starry_night, no tiling, which is
#: how video frames are painted), rounded up for the frames and flows in flight.
FEEDFORWARD_BYTES_PER_PIXEL = 512


def stylize_video(
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    model: str | os.PathLike[str] | StyleModel | None = None,
    style: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
    size: int | None = None,
    start: float = 0.0,
    duration: float | None = None,
    max_frames: int | None = None,
    temporal_strength: float = DEFAULT_STRENGTH,
    compare: bool = False,
    report: bool = False,
    audio: bool = True,
    flow_scale: float | None = None,
    device: str = "auto",
    backend: str = "auto",
    progress: Callable[[VideoProgress], None] | None = None,
    style_mix: str | Mapping[str, float] | None = None,
    **optimization: Any,
) -> VideoResult:
    """Stylize the video ``source`` into ``output`` (.mp4, .webm, .gif, .mov, .mkv).

    Give either ``model`` (a trained network: name, file or :class:`StyleModel`) or ``style``
    (one or more style images, for image optimization; its options, such as ``iterations``,
    ``temporal_weight`` or ``workdir``, go in ``**optimization``). ``size`` is the long side of the
    output (default: the input's). ``style_mix`` blends the styles of a multi-style model given by
    name or file (``"the_wave:0.7,udnie:0.3"``). With ``temporal_strength=0`` (feed-forward) or
    ``temporal_weight=0`` (optimization) every frame is stylized on its own.
    """
    if (model is None) == (style is None):
        raise PainterlyError("give either a model (feed-forward) or a style image (optimization)")
    window = Window(start, duration, max_frames)
    window.check()
    _check_before_work(
        source, output, size, device, FEEDFORWARD_BYTES_PER_PIXEL if model is not None else BYTES_PER_PIXEL
    )
    painter: FramePainter
    runtime: str | None = None
    if model is not None:
        if optimization:
            raise PainterlyError(f"options for the optimization path only: {', '.join(sorted(optimization))}")
        from painterly.feedforward.inference import StyleModel

        if isinstance(model, StyleModel):
            if style_mix is not None:
                raise PainterlyError("style_mix: give it to load_model(..., style_mix=...) instead")
            loaded = model
        else:
            loaded, runtime = _fastest(model, source, size, device, backend, style_mix)
        painter = FeedForwardPainter(loaded, temporal_strength)
        flow = FlowEstimator(
            FEEDFORWARD_FLOW_PRESET, FEEDFORWARD_FLOW_SCALE if flow_scale is None else flow_scale
        )
    else:
        if style_mix is not None:
            raise PainterlyError("style_mix is for a multi-style model, not for style images")
        from painterly.video.optimization import OptimizationPainter

        styles = [style] if isinstance(style, str | os.PathLike) else list(style or [])
        run_key = {
            "source": os.path.abspath(source),
            "start": start,
            "size": size,
            "styles": [os.path.abspath(item) for item in styles],
        }
        painter = OptimizationPainter(styles, output=output, device=device, run_key=run_key, **optimization)
        flow = FlowEstimator("medium", 1.0 if flow_scale is None else flow_scale)
    result = run(
        source,
        output,
        painter,
        size=size,
        window=window,
        compare=compare,
        report=report,
        flow=flow,
        audio=audio,
        progress=progress,
    )
    result.runtime = runtime
    return result


def _check_before_work(
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    size: int | None,
    device: str,
    bytes_per_pixel: int,
) -> None:
    """What can be known from the input's header, checked before any model is loaded or timed: the
    input is a video, the output can be written and is not the input, the frames fit in memory."""
    from painterly.memory import available_memory
    from painterly.settings import check_memory
    from painterly.video import io

    info = io.probe(source)
    io.check_output(output, (info.path,))
    width, height = io.output_size(info.width, info.height, size)
    if str(device).startswith(("auto", "cpu")):  # a GPU's memory is known to torch only
        check_memory(width, height, available_memory(), bytes_per_pixel, what="video frame", tile_size=0)


def _fastest(
    model: str | os.PathLike[str],
    source: str | os.PathLike[str],
    size: int | None,
    device: str,
    backend: str,
    style_mix: str | Mapping[str, float] | None = None,
) -> tuple[StyleModel, str]:
    """``model`` loaded with the runtime that paints this video's frames fastest here (measured)."""
    from painterly.video import io
    from painterly.video.runtime import choose_runtime

    info = io.probe(source)
    width, height = io.output_size(info.width, info.height, size)
    mix: dict[str, Any] = {} if style_mix is None else {"style_mix": style_mix}
    choice = choose_runtime(model, width, height, device=device, backend=backend, **mix)
    return choice.model, choice.describe()
