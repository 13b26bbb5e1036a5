"""Stylizing photos with a trained network: one forward pass per image.

:func:`load_model` gives a :class:`StyleModel` for repeated calls (the web server keeps one);
:func:`stylize` is the one-call form. Bare names such as ``starry_night`` resolve to the models
shipped in ``painterly/models/`` and to those in the folder named by ``$PAINTERLY_MODELS``.

The onnxruntime backend with an exported (or cached) ``.onnx`` file imports no torch: images go to
and from the session as numpy arrays. The torch backend imports torch when a model is loaded.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from painterly.errors import PainterlyError, did_you_mean
from painterly.feedforward.backends import AUTO_TILE_PIXELS, BACKENDS, pick_backend
from painterly.feedforward.catalog import list_models, resolve_model
from painterly.feedforward.mixing import (
    StyleMix,
    apply_strength,
    check_strength,
    mix_vector,
    parse_style_mix,
)
from painterly.feedforward.record import ModelRecord, record_for, resolve_record
from painterly.images import open_image, resize_long_side
from painterly.regions import DEFAULT_FEATHER, check_feather, load_mask, region_alpha
from painterly.settings import MAX_SIZE

if TYPE_CHECKING:
    import torch

    from painterly.images import ImageInput
    from painterly.tuning import Compute, Decision

PRECISIONS = ("auto", "fp32", "fp16", "bf16")

#: Default tile side (the same as :data:`painterly.feedforward.tiling.TILE`, kept here torch-free).
TILE = 1024


def images_to_array(images: list[Image.Image]) -> np.ndarray:
    """RGB PIL images of one size to an (N, 3, H, W) float32 array in 0-1 (one copy per image)."""
    width, height = images[0].size
    batch = np.empty((len(images), 3, height, width), dtype=np.float32)
    for index, image in enumerate(images):
        pixels = np.asarray(image.convert("RGB")).transpose(2, 0, 1)
        np.multiply(pixels, np.float32(1 / 255), out=batch[index], casting="unsafe")
    return batch


def array_to_image(array: np.ndarray) -> Image.Image:
    """A (3, H, W) float array (any values; clamped to 0-1) to an RGB PIL image."""
    pixels = np.clip(array, 0.0, 1.0).transpose(1, 2, 0) * 255.0 + 0.5
    return Image.fromarray(pixels.astype(np.uint8), "RGB")


def _check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise PainterlyError(f"unknown precision {precision!r}{did_you_mean(precision, PRECISIONS)}")
    return precision


def _gpu_autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype on a GPU: half precision unless float32 or bf16 is asked for."""
    import torch

    return {"auto": torch.float16, "fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]


def _stylize_probe(net: Any) -> Any:
    """One stylizing pass, what :func:`painterly.tuning.decide_compute` times per candidate path."""
    import torch

    def run(x: torch.Tensor) -> None:
        with torch.inference_mode():
            net.stylize_tensor(x)

    return run


class StyleModel:
    """A loaded style network, for repeated calls; ``stylize`` may be called from several threads.

    A multi-style model (architecture ``cin``) lists its styles in :attr:`styles`; ``style_mix``
    (``"the_wave:0.7,udnie:0.3"`` or ``{"the_wave": 0.7, "udnie": 0.3}``) picks or blends them, per
    call or as this object's default (the first style if never given). ``strength`` (0-1, default
    1) interpolates the output toward the photo (:mod:`painterly.feedforward.mixing`).
    """

    def __init__(
        self,
        path: str | os.PathLike | ModelRecord,
        *,
        device: str = "auto",
        backend: str = "torch",
        precision: str = "auto",
        onnx_file: str | os.PathLike | None = None,
        style_mix: str | StyleMix | None = None,
        strength: float = 1.0,
    ) -> None:
        #: The model this runs (:mod:`painterly.feedforward.record`): file, metadata, styles, weights.
        self.record = record_for(path)
        self.path = self.record.path
        if self.record.is_onnx:
            backend = "onnxruntime"
        precision = _check_precision(precision)
        backend = pick_backend(backend, device, precision=precision)
        self.backend = backend
        self.onnx: Any = None
        self.metadata: dict[str, Any] = dict(self.record.metadata)
        if backend == "onnxruntime":
            for option, value, honoured in (
                ("device", device, ("auto", "cpu")),
                ("precision", precision, ("auto", "fp32")),
            ):
                if value not in honoured:
                    raise PainterlyError(
                        f"the onnxruntime backend runs float32 on the CPU: {option} {value!r} needs the "
                        "torch backend (--backend torch, with a model file rather than an .onnx export)"
                    )
            if onnx_file is not None:
                from painterly.feedforward.onnx_backend import OnnxNet

                self.onnx = OnnxNet(onnx_file)
                self.metadata = dict(self.onnx.metadata) or self.metadata
            else:
                self.onnx = self.record.onnx_net()
            self.device = None
            self.net: Any = None
        else:
            from painterly.devices import pick_device

            self.device = pick_device(device)
            self.net = self.record.network().to(self.device)
        self.precision = _check_precision(precision)
        #: Per size bucket, how this machine stylizes fastest (:meth:`compute_for`).
        self._decisions: dict[int, Decision] = {}
        self._compute_lock = threading.Lock()
        self._net_format: torch.memory_format | None = None  # the layout of the network's weights
        #: The style names of a multi-style model (empty for a single-style one).
        self.styles: list[str] = list(self.record.styles)
        self.style_mix = self._check_mix(parse_style_mix(style_mix))
        self.strength = check_strength(strength)
        # Tiling swaps the norm layers' statistics for the duration of one image.
        self._tile_lock = threading.Lock()

    @property
    def name(self) -> str:
        return str(self.metadata.get("name") or self.path.stem)

    def __repr__(self) -> str:
        return f"StyleModel({self.name!r}, width={self.metadata.get('width')}, backend={self.backend!r})"

    def _check_mix(self, mix: dict[str, float] | None) -> dict[str, float] | None:
        if mix is None:
            return None
        if not self.styles:
            names = list(mix)
            if len(names) == 1 and names[0] in (self.name, self.metadata.get("style"), self.path.stem):
                return None  # a single-style model asked for its own style
            raise PainterlyError(
                f"model {self.name!r} ({self.path.name}) holds one style and cannot mix styles; "
                "use a multi-style model"
            )
        mix_vector(self.styles, mix)  # checks names and weights
        return mix

    def _weights(self, mix: dict[str, float] | None, batch: int) -> np.ndarray | None:
        """The (batch, S) style-weights input of a multi-style model (None for a single-style one)."""
        if not self.styles:
            return None
        row = np.asarray(mix_vector(self.styles, mix), dtype=np.float32)
        return np.repeat(row[None, :], batch, axis=0)

    def compute_for(self, long_side: int) -> Compute:
        """The autocast dtype and memory format that stylize ``long_side``-px images fastest here.

        On CPUs the choice is measured, as for image optimization (:mod:`painterly.tuning`): a few
        forward passes of this network per candidate path on first use, cached per CPU model, torch
        version, network and size bucket. Measured on a CPU with AMX at 1024x768: bf16 0.77 s
        against float32's 1.22 s, and channels-last, which this module used to force, 28% slower than
        NCHW. ``precision`` other than ``auto`` keeps that dtype; ``$PAINTERLY_MEMORY_FORMAT`` fixes
        the layout; ``$PAINTERLY_CALIBRATE=0`` takes plain NCHW (float32 under ``auto``). On GPUs:
        half precision under ``auto``, NCHW, nothing measured.
        """
        return self.decision_for(long_side).compute

    def decision_for(self, long_side: int) -> Decision:
        """:meth:`compute_for` with how it was chosen (for benchmarks and logs); torch backend only."""
        if self.net is None or self.device is None:
            raise PainterlyError("the onnxruntime backend runs float32 graphs: no compute path to choose")
        import torch

        from painterly.tuning import PATHS, Decision, decide_compute, size_bucket

        bucket = size_bucket(long_side)
        with self._compute_lock:  # one calibration at a time; it changes the network's layout
            decision = self._decisions.get(bucket)
            if decision is None:
                if self.device.type == "cpu":
                    net = self.net
                    decision = decide_compute(
                        self.device,
                        net,
                        long_side,
                        self.precision,
                        task=self._task_name(),
                        probe=_stylize_probe(net),
                    )
                else:
                    dtype = _gpu_autocast_dtype(self.precision)
                    name = {None: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}[dtype]
                    decision = Decision(PATHS[name], "default")
                self._decisions[bucket] = decision
            # Several sizes may want different layouts: the network follows the size at hand (the
            # results are the same in either layout; only the speed differs).
            fmt = decision.path.memory_format
            if self._net_format != fmt:
                self.net.to(memory_format=fmt)
                self._net_format = fmt
        return decision

    def _task_name(self) -> str:
        """The network's part of the calibration cache key: its architecture and size."""
        assert self.net is not None  # torch backend
        parameters = sum(p.numel() for p in self.net.parameters())
        return f"stylize-{self.metadata.get('architecture', type(self.net).__name__)}-{parameters}"

    def _run(self, batch: np.ndarray, tile: int | None, weights: np.ndarray | None = None) -> np.ndarray:
        """(N, 3, H, W) float32 in 0-1 to the clamped results, same shape, as float32."""
        if self.onnx is not None:
            from painterly.feedforward.mixing import STYLE_WEIGHTS

            named = {STYLE_WEIGHTS: weights} if weights is not None else {}
            return self.onnx.stylize_array(batch, **named)
        import torch

        from painterly.feedforward.tiling import stylize_tiled

        assert self.net is not None and self.device is not None
        compute = self.compute_for(tile or max(batch.shape[-2:]))
        x = compute.layout(torch.from_numpy(batch).to(self.device))
        w = None if weights is None else torch.from_numpy(weights).to(self.device)
        extra = () if w is None else (w,)
        with torch.inference_mode(), compute.autocast(self.device):
            if tile is not None:
                with self._tile_lock:
                    result = torch.cat(
                        [
                            stylize_tiled(
                                self.net, item[None], tile, extra=tuple(e[i : i + 1] for e in extra)
                            )
                            for i, item in enumerate(x)
                        ]
                    )
            else:
                result = self.net.stylize_tensor(x, *extra)
            return result.to(device="cpu", dtype=torch.float32).numpy()

    def _tile_for(self, width: int, height: int, tile: int | str | None) -> int | None:
        if tile in (None, 0, "none"):
            return None
        if tile != "auto" and (not isinstance(tile, int) or isinstance(tile, bool) or tile < 64):
            raise PainterlyError(f"tile size must be 'auto', 'none' or at least 64 px, got {tile!r}")
        if self.onnx is not None:
            if tile != "auto":
                raise PainterlyError(
                    "tiling needs the torch backend (onnxruntime paints whole images): use --backend "
                    "torch, with a model file rather than an .onnx export, for --tile"
                )
            return None
        if not isinstance(tile, int):  # "auto"
            return TILE if width * height > AUTO_TILE_PIXELS else None
        return tile

    def stylize(
        self,
        image: ImageInput,
        *,
        size: int | None = None,
        preserve_colors: str = "none",
        tile: int | str | None = "auto",
        style_mix: str | StyleMix | None = None,
        strength: float | None = None,
        mask: ImageInput | None = None,
        feather: float = DEFAULT_FEATHER,
    ) -> Image.Image:
        """Stylize one image (path, PIL image or array); ``size`` is the output's long side (keeps aspect).

        ``style_mix`` and ``strength`` default to this model's own (see the class); ``mask`` and
        ``feather``: see :meth:`stylize_many`."""
        return next(
            self.stylize_many(
                [image],
                size=size,
                preserve_colors=preserve_colors,
                tile=tile,
                style_mix=style_mix,
                strength=strength,
                mask=mask,
                feather=feather,
            )
        )

    def stylize_many(
        self,
        images: Iterable[ImageInput],
        *,
        size: int | None = None,
        preserve_colors: str = "none",
        tile: int | str | None = "auto",
        batch_size: int = 1,
        style_mix: str | StyleMix | None = None,
        strength: float | None = None,
        mask: ImageInput | None = None,
        feather: float = DEFAULT_FEATHER,
    ) -> Iterator[Image.Image]:
        """Stylize images in order; consecutive images of the same size run as one batch.

        ``mask`` (a greyscale image of any size, white inside; see :mod:`painterly.regions`)
        limits the style to a region of every image: outside it the photo is kept, and the edge is
        feathered by a Gaussian of radius ``feather`` px at the output's size."""
        mix = self._check_mix(parse_style_mix(style_mix)) if style_mix is not None else self.style_mix
        amount = self.strength if strength is None else check_strength(strength)
        region = load_mask(mask, "mask") if mask is not None else None
        feather = check_feather(feather)
        if preserve_colors != "none":  # the colour module imports scikit-image: only when needed
            from painterly.color import check_preserve_colors

            check_preserve_colors(preserve_colors)
        if preserve_colors == "histogram":
            raise PainterlyError(
                "a trained network's style is fixed: use preserve_colors='luminance' (or 'none')"
            )
        if size is not None and (not isinstance(size, int) or not 16 <= size <= MAX_SIZE):
            # Unbounded, --size 100000 allocated a 10-gigapixel image and the kernel killed the process.
            raise PainterlyError(f"size must be a whole number of pixels from 16 to {MAX_SIZE}, got {size!r}")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise PainterlyError(f"batch size must be a positive whole number, got {batch_size!r}")
        pending: list[Image.Image] = []

        def flush() -> Iterator[Image.Image]:
            photos = images_to_array(pending)
            result = self._run(
                photos, self._tile_for(*pending[0].size, tile), self._weights(mix, len(pending))
            )
            for source, photo, out in zip(pending, photos, result, strict=True):
                picture = array_to_image(out)
                if preserve_colors == "luminance":
                    from painterly.color import transfer_luminance

                    picture = transfer_luminance(picture, source)
                if amount < 1.0:
                    styled = images_to_array([picture])[0]
                    picture = array_to_image(apply_strength(styled, photo, amount))
                if region is not None:
                    alpha = region_alpha(region, picture.size, feather)[None]  # over the channels
                    styled = images_to_array([picture])[0]
                    picture = array_to_image(photo + alpha * (styled - photo))
                yield picture
            pending.clear()

        for item in images:
            picture = open_image(item, what="input image")
            if size is not None:
                picture = resize_long_side(picture, size)
            if pending and (picture.size != pending[0].size or len(pending) >= batch_size):
                yield from flush()
            pending.append(picture)
        if pending:
            yield from flush()


def load_model(
    name_or_path: str | os.PathLike | ModelRecord,
    device: str = "auto",
    *,
    backend: str = "torch",
    precision: str = "auto",
    style_mix: str | StyleMix | None = None,
    strength: float = 1.0,
) -> StyleModel:
    """Load a model file, an exported ``.onnx`` file, or a shipped / ``$PAINTERLY_MODELS`` model by name.

    A bare name may also be a style of a multi-style model (``udnie`` in ``zoo``): that model is
    loaded with the style as its default mix. ``backend``: ``torch``, ``onnxruntime`` (an exported
    ``.onnx`` file, or the model exported once into the cache) or ``auto``
    (:func:`painterly.feedforward.backends.pick_backend`). ``style_mix`` and ``strength`` become
    the model's defaults (see :class:`StyleModel`). The model is resolved once into a
    :class:`~painterly.feedforward.record.ModelRecord` (which may also be given here).
    """
    record = resolve_record(name_or_path)
    if record.style is not None:  # a style of a multi-style model, by name
        style_mix = _mix_of_a_style(record.style, Path(record.path), style_mix)
    return StyleModel(
        record, device=device, backend=backend, precision=precision, style_mix=style_mix, strength=strength
    )


def _mix_of_a_style(name: str, model: Path, style_mix: str | StyleMix | None) -> StyleMix:
    """The mix of a model named by one of its styles: that style; a mix naming others contradicts
    the name (``-m udnie --style-mix the_wave`` painted the_wave) and is refused, naming the model."""
    mix = parse_style_mix(style_mix)
    if mix is None:
        return {name: 1.0}
    if set(mix) != {name}:
        text = style_mix if isinstance(style_mix, str) else ",".join(f"{k}:{v}" for k, v in mix.items())
        raise PainterlyError(
            f"{name!r} is one style of the multi-style model {model.stem!r}, so a style mix of other "
            f"styles contradicts it: name the model to mix its styles (-m {model.stem} --style-mix {text})"
        )
    return mix


def stylize(image: ImageInput, model: str | os.PathLike | StyleModel, **options: Any) -> Image.Image:
    """One call: ``painterly.feedforward.stylize("photo.jpg", "starry_night", size=1024)``; options
    are :meth:`StyleModel.stylize`'s, ``style_mix="the_wave:0.7,udnie:0.3"`` and ``strength=0.8``
    among them."""
    if not isinstance(model, StyleModel):
        model = load_model(model)
    return model.stylize(image, **options)


__all__ = [
    "AUTO_TILE_PIXELS",
    "BACKENDS",
    "StyleModel",
    "list_models",
    "load_model",
    "resolve_model",
    "stylize",
]
