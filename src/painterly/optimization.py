"""Image optimization style transfer (Gatys, Ecker, Bethge 2015).

The pixels of an image are optimized so that its VGG activations match the content photo, its
Gram matrices match the style image(s), with a total-variation smoothness term. Large outputs
are painted coarse to fine: each scale starts from the previous result, upsampled.

:class:`Painter` prepares the loss network and the style targets once and paints any number of
images (frames of a video, a batch of photos); :func:`run_transfer` paints one. Both call back
with a :class:`~painterly.progress.Progress` after every evaluation; the CLI, the web server and
tests all hook that one stream.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from PIL import Image

from painterly import memory
from painterly.color import match_color_histogram, transfer_luminance
from painterly.devices import device_memory, pick_device
from painterly.errors import PainterlyError
from painterly.images import ImageInput, open_image, pil_to_tensor, resize_long_side, tensor_to_pil
from painterly.losses import (
    ContentLoss,
    GramStyleLoss,
    GuidedContentLoss,
    GuidedGramStyleLoss,
    LossCriterion,
    LossTerm,
    PerceptualLoss,
    build_criterion,
    deepest_layer,
    guided_gram,
    keep_weight_map,
    loss_values,
    propagate_mask,
)
from painterly.losses.tiled import TiledLoss, lbfgs_history_for, tiling_for
from painterly.progress import Progress
from painterly.regions import load_mask, load_style_masks
from painterly.schedule import Plateau, Schedule
from painterly.settings import (  # re-exported: the method's settings live in a torch-free module
    INITS,
    OPTIMIZERS,
    POOLINGS,
    TILED_HISTORY_BYTES,
    QualityPlan,
    TransferSettings,
    check_transfer_memory,
    iterations_per_scale,
    make_settings,
    quality_plan,
    scale_sizes,
    validate,
)
from painterly.tuning import Compute, decide_compute
from painterly.vgg.weights import load_vgg

#: Extra loss terms of one paint call: name -> (term, weight).
ExtraTerms = Mapping[str, tuple[LossTerm, float]]


def _resize_to(image: Image.Image, long_side: int, square: bool) -> Image.Image:
    if square:
        return image.resize((long_side, long_side), Image.Resampling.LANCZOS)
    return resize_long_side(image, long_side)


def _initial_image(s: TransferSettings, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    if s.init == "content":
        return content.clone()
    if s.init == "noise":
        generator = torch.Generator().manual_seed(s.seed)
        return torch.rand(content.shape, generator=generator).to(content.device)
    if s.init == "style":
        return F.interpolate(style, size=content.shape[-2:], mode="bilinear", align_corners=False)
    return _given_init(s.init, content)


def _given_init(init: ImageInput, content: torch.Tensor) -> torch.Tensor:
    """A starting image given by the caller, at the content's size (a tensor keeps its precision)."""
    if isinstance(init, torch.Tensor):
        if init.dim() != 4 or init.shape[:2] != (1, 3):
            raise PainterlyError(f"an init tensor must have shape (1, 3, H, W), got {tuple(init.shape)}")
        return F.interpolate(init.float(), size=content.shape[-2:], mode="bicubic", align_corners=False).to(
            content.device
        )
    image = open_image(init, what="init image")
    return pil_to_tensor(image.resize((content.shape[-1], content.shape[-2]), Image.Resampling.LANCZOS)).to(
        content.device
    )


def colour_matched_start(content: torch.Tensor, style: Image.Image) -> torch.Tensor:
    """The photo ``content`` (1, 3, H, W, 0-1) with each RGB channel's histogram matched to the
    painting's: the painting's palette from the first evaluation, so that the coarsest scale spends
    its iterations on strokes rather than on recolouring (scikit-image's ``match_histograms``)."""
    import numpy as np
    from skimage.exposure import match_histograms

    photo = content[0].permute(1, 2, 0).float().cpu().numpy()
    palette = np.asarray(style.convert("RGB"), dtype=np.float32) / 255
    matched = match_histograms(photo, palette, channel_axis=-1)
    tensor = torch.from_numpy(np.ascontiguousarray(matched, dtype=np.float32)).permute(2, 0, 1)[None]
    return tensor.clamp(0, 1).to(content.device)


def upscaled_start(previous: torch.Tensor, content: torch.Tensor, *, detail: bool) -> torch.Tensor:
    """The start of a finer scale: the previous scale's result upsampled (bicubic) to ``content``'s size,
    plus, with ``detail``, the photo's own detail finer than the previous scale could hold (the photo
    minus the photo taken down to the previous size and back up). Without it a scale starts blurred
    and spends its first iterations sharpening; with it the content is in place at once and the
    iterations go to the strokes."""
    size = content.shape[-2:]
    start = F.interpolate(previous, size=size, mode="bicubic", align_corners=False)
    if detail:
        coarse = F.interpolate(content, size=previous.shape[-2:], mode="area")
        start = start + content - F.interpolate(coarse, size=size, mode="bicubic", align_corners=False)
    return start


def _mask_tensor(mask: ImageInput, size: tuple[int, int], what: str) -> torch.Tensor:
    """A (1, 1, H, W) mask in 0-1 at ``size`` (width, height): the mean of its RGB channels."""
    image = open_image(mask, what=what).resize(size, Image.Resampling.BILINEAR)
    return pil_to_tensor(image).mean(1, keepdim=True)


@dataclass
class _Guides:
    """One paint call's masks: the guided style term and its content masks (one per style), and the
    guided content term with its keep mask (``None`` where not asked for)."""

    style: GuidedGramStyleLoss | None = None
    masks: list[Image.Image] = dataclasses.field(default_factory=list)
    content: GuidedContentLoss | None = None
    keep: Image.Image | None = None


class StopTransfer(Exception):
    """Raise from a progress callback to end a run early; the best image so far is kept."""


class _ScaleDone(Exception):
    """The schedule ends the current scale: its loss has flattened or its share of the time is spent."""


@dataclass
class TransferResult:
    """What a run produced: the image (colours already preserved if asked) and how it ended."""

    image: Image.Image
    settings: TransferSettings
    last: Progress | None
    interrupted: bool = False
    seconds: float = 0.0


@dataclass
class _Run:
    """The state of one :meth:`Painter.paint` call across its scales."""

    budget: list[int]
    callback: Callable[[Progress], None] | None
    schedule: Schedule
    best: tuple[float, torch.Tensor] | None = None
    last: Progress | None = None
    interrupted: bool = False
    done_before: int = 0

    def report(self, progress: Progress) -> None:
        self.last = progress
        if self.callback is not None:
            self.callback(progress)


class Painter:
    """Paints any number of images in one style: the loss network and the style targets are
    prepared once (the targets once per scale size), then :meth:`paint` optimizes each image.

    Warm start: ``paint(content, init=previous_result)`` starts from a given image (a path, PIL
    image, array, or a (1, 3, H, W) tensor in 0-1, kept at full precision) instead of
    ``settings.init``.

    Extension point, extra loss terms: ``paint(..., extra_terms={"temporal": (term, weight)})``
    adds named, weighted :class:`~painterly.losses.LossTerm` objects to that call's criterion only
    (a name already in the criterion replaces that term for the call). Set a term's per-image
    target (e.g. the previous frame, warped) on the term before the call. A term's ``forward(image,
    features)`` gets the image being optimized at the current scale's size (resize a target inside
    the term when painting coarse to fine) and the activations of the layers it names in
    ``layers``. Its value appears in every :class:`Progress`'s ``losses`` under its name, and the
    loop, the CLI and the server need no change.

    Spatial control (Gatys et al. 2017): give ``style_masks`` (one per style image, or ``None``
    entries for "the whole style image") here and ``content_masks`` (one per style image) to
    :meth:`paint`: style image i then paints the region of content mask i. Masks are images; white
    is inside. Classic loss convention only. ``paint(keep=mask)`` holds the mask's region closer to
    the photo: the content weight there is ``settings.keep_weight`` times the content weight
    elsewhere, and the style statistics leave it out (see :mod:`painterly.regions` for what a mask
    may be and how it is checked; docs/regions.md for the weights).
    """

    def __init__(
        self,
        settings: TransferSettings,
        style: ImageInput | Sequence[ImageInput],
        *,
        device: str | torch.device | None = None,
        style_masks: Sequence[ImageInput | None] | None = None,
    ) -> None:
        #: The first paint's time limit counts the set-up (weights, calibration) from here.
        self._created: float | None = time.monotonic()
        s = settings
        styles = cast("list[ImageInput]", list(style) if isinstance(style, list | tuple) else [style])
        if not styles:
            raise PainterlyError("need at least one style image")
        self.blend = list(s.style_blend) if s.style_blend is not None else [1.0] * len(styles)
        if len(self.blend) != len(styles):
            raise PainterlyError(f"{len(styles)} style images but {len(self.blend)} blend weights")
        if style_masks is not None and len(style_masks) != len(styles):
            raise PainterlyError(f"{len(styles)} style images but {len(style_masks)} style masks")
        self.settings = s
        self.style_images = [open_image(item, what="style image") for item in styles]
        self.style_masks = (
            [None if m is None else open_image(m, what="style mask") for m in style_masks]
            if style_masks is not None
            else None
        )
        self.device = torch.device(device) if device is not None else pick_device(s.device)
        #: Bytes of memory of the device: sizes above what fits are evaluated in tiles.
        self.memory = device_memory(self.device)
        layers = [*s.content_layers, *s.style_layers]
        vgg = load_vgg(
            s.network,
            source=s.weights,
            convention=s.weights_convention,
            pooling=s.pooling,
            device=self.device,
            last_layer=deepest_layer(s.network, layers),
        )
        self.criterion: PerceptualLoss = build_criterion(
            vgg,
            s.content_layers,
            s.style_layers,
            content_weight=s.content_weight,
            style_weight=s.style_weight,
            tv_weight=s.tv_weight,
            tv_form=s.tv_form,
            convention=s.loss_convention,
        )
        self._computes: dict[int, Compute] = {}
        #: Seconds per megapixel-evaluation from the calibration: the first guess of a time plan.
        self.speed_guess: float | None = None
        #: The precision and memory format in use, measured per machine and size (painterly.tuning).
        self.compute = self.compute_for(s.size)
        self._style_targets: dict[int, dict[str, torch.Tensor]] = {}
        self._guided_targets: dict[int, list[dict[str, torch.Tensor]]] = {}

    def compute_for(self, long_side: int) -> Compute:
        """Make the fastest path for ``long_side`` px on this machine current (measured on first use
        per machine and size bucket, then read from the cache; see :mod:`painterly.tuning`)."""
        if long_side not in self._computes:
            decision = decide_compute(self.device, self.criterion.network, long_side, self.settings.precision)
            self._computes[long_side] = decision.compute
            self.speed_guess = decision.seconds_per_megapixel or self.speed_guess
        self.compute = self._computes[long_side]
        self.criterion.network.to(memory_format=self.compute.memory_format)  # type: ignore[call-overload]
        return self.compute

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return self.compute.dtype

    def _autocast(self) -> Any:
        return self.compute.autocast(self.device)

    def _to_net_layout(self, image: torch.Tensor) -> torch.Tensor:
        return self.compute.layout(image)

    def _style_tensors(self, images: Sequence[Image.Image], long_side: int) -> list[torch.Tensor]:
        side = max(16, round(long_side * self.settings.style_scale))
        return [
            self._to_net_layout(pil_to_tensor(resize_long_side(img, side)).to(self.device)) for img in images
        ]

    def style_targets(self, long_side: int) -> dict[str, torch.Tensor]:
        """The blended Gram targets for an output of ``long_side`` px, computed once per size."""
        if long_side not in self._style_targets:
            with self._autocast():
                tensors = self._style_tensors(self.style_images, long_side)
                self._style_targets[long_side] = self.criterion.style_targets(
                    tensors, self.blend, self._grams_of
                )
        return self._style_targets[long_side]

    def _tiling(self, criterion: LossCriterion, width: int, height: int) -> TiledLoss | None:
        """The tiled evaluation for an image of this size, if it needs one (painterly.losses.tiled)."""
        return tiling_for(criterion, width, height, self.settings.tile_size, self.memory)

    def _grams_of(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """A style image's Grams: in tiles when it is too large to evaluate whole."""
        tiled = self._tiling(self.criterion, image.shape[-1], image.shape[-2])
        if tiled is None:
            return self.criterion.style_grams(image)
        return tiled.grams(image, self.criterion.style_layers)

    @torch.no_grad()
    def guided_style_targets(self, long_side: int) -> list[dict[str, torch.Tensor]]:
        """Per style image, the Gram targets of its masked region (or whole image), once per size."""
        if long_side not in self._guided_targets:
            net = self.criterion.network
            layers = self.criterion.style_layers
            masks = self.style_masks or [None] * len(self.style_images)
            targets = []
            with self._autocast():
                for tensor, mask in zip(
                    self._style_tensors(self.style_images, long_side), masks, strict=True
                ):
                    features = net(tensor, layers)
                    size = (tensor.shape[-1], tensor.shape[-2])
                    guide = (
                        torch.ones(1, 1, size[1], size[0])
                        if mask is None
                        else _mask_tensor(mask, size, "style mask")
                    )
                    guides = propagate_mask(guide.to(self.device), net.arch, layers)
                    targets.append({layer: guided_gram(features[layer], guides[layer]) for layer in layers})
            self._guided_targets[long_side] = targets
        return self._guided_targets[long_side]

    def paint(
        self,
        content: ImageInput,
        *,
        init: ImageInput | None = None,
        callback: Callable[[Progress], None] | None = None,
        iterations: int | None = None,
        extra_terms: ExtraTerms | None = None,
        content_masks: Sequence[ImageInput] | None = None,
        keep: ImageInput | None = None,
        catch_interrupt: bool = False,
    ) -> TransferResult:
        """Paint ``content``, calling ``callback`` with a :class:`Progress` after every evaluation.

        ``iterations`` overrides the settings' (in their units). A callback may raise
        :class:`StopTransfer` to stop early; with ``catch_interrupt``, Ctrl-C (and SIGTERM, where
        the CLI turns it into Ctrl-C) does the same. Either way the result holds the best image
        found so far, at the output size.
        """
        s = self.settings
        started = time.monotonic()
        content_image = open_image(content, what="content image")
        style_images = self.style_images
        if s.preserve_colors == "histogram":
            # Matched to this content: these targets cannot be shared with other images.
            style_images = [match_color_histogram(img, content_image) for img in style_images]
        criterion, guided = self._criterion_for(extra_terms, content_masks, keep)
        torch.manual_seed(s.seed)
        plan = quality_plan(s.quality)
        sizes = scale_sizes(s.size, s.scales, s.quality)
        given = iterations if iterations is not None else s.iterations
        budget = iterations_per_scale(given, len(sizes), s.quality)
        frames = [_resize_to(content_image, long_side, s.square).size for long_side in sizes]
        tilings = [self._tiling(criterion, w, h) for w, h in frames]
        schedule = Schedule(
            # A tiled evaluation costs more per pixel (halo, two passes): planned for what it costs.
            [
                round(w * h * (1 if t is None else t.cost_factor(h, w)))
                for (w, h), t in zip(frames, tilings, strict=True)
            ],
            budget,
            time_limit=s.time_limit,
            stop_early=given is None,  # explicit iterations are run in full
            seconds_per_megapixel=self.speed_guess,
            plateau=lambda: Plateau(plan.window, plan.tolerance, plan.min_iterations),
            started=self._created,
        )
        self._created = None
        run = _Run(budget=budget, callback=callback, schedule=schedule)
        try:
            for scale_index, long_side in enumerate(sizes):
                if scale_index > 0 and schedule.expired:
                    break  # the time limit is up: the best image so far, resized, is the result
                content_t = pil_to_tensor(_resize_to(content_image, long_side, s.square)).to(self.device)
                if budget[scale_index] == 0 and run.best is not None:
                    # A plan's unpainted last scale (``draft``): the coarser painting with the
                    # photo's detail restored, no evaluation at this size.
                    run.best = (math.inf, upscaled_start(run.best[1], content_t, detail=plan.detail_start))
                    continue
                self.compute_for(long_side)
                self._set_targets(content_t, long_side, style_images, guided, tilings[scale_index])
                if run.best is None:
                    start = self._start_image(init, content_t, style_images, long_side, plan)
                else:
                    start = upscaled_start(run.best[1], content_t, detail=plan.detail_start)
                self._optimize_scale(criterion, start, run, scale_index, len(sizes), tilings[scale_index])
        except StopTransfer:
            run.interrupted = True
        except KeyboardInterrupt:
            if not catch_interrupt:
                raise
            run.interrupted = True
        if run.best is None:  # interrupted before the first scale began
            raise KeyboardInterrupt
        result = tensor_to_pil(run.best[1])
        target_size = _resize_to(content_image, s.size, s.square).size
        if result.size != target_size:
            result = result.resize(target_size, Image.Resampling.LANCZOS)
        if s.preserve_colors == "luminance":
            result = transfer_luminance(result, content_image)
        if run.last is not None:
            run.last.tensor = run.best[1]
        return TransferResult(result, s, run.last, run.interrupted, time.monotonic() - started)

    def _set_targets(
        self,
        content_t: torch.Tensor,
        long_side: int,
        style_images: list[Image.Image],
        guided: _Guides,
        tiled: TiledLoss | None = None,
    ) -> None:
        """Content target of this image and scale; style targets (cached unless colour-matched)."""
        with self._autocast():
            if tiled is None:
                self.criterion.set_content(self._to_net_layout(content_t))
            else:
                layers = self.criterion.content_layers
                self.criterion.set_content(
                    content_t, lambda t: tiled.features(t, layers, self._to_net_layout)
                )
            if style_images is self.style_images:
                targets = self.style_targets(long_side)
            else:
                targets = self.criterion.style_targets(
                    self._style_tensors(style_images, long_side), self.blend, self._grams_of
                )
            self._style_term().set_target(targets)
        size = (content_t.shape[-1], content_t.shape[-2])
        arch = self.criterion.network.arch
        keep = None if guided.keep is None else _mask_tensor(guided.keep, size, "keep mask").to(self.device)
        if guided.style is not None:
            if guided.masks:  # a region per style image, each with its own targets
                masks = [_mask_tensor(m, size, "content mask").to(self.device) for m in guided.masks]
                grams = self.guided_style_targets(long_side)
            else:  # a keep mask alone: one region, the blended targets
                masks, grams = [torch.ones(1, 1, size[1], size[0], device=self.device)], [targets]
            if keep is not None:  # the kept region is left out of the style statistics
                masks = [m * (1 - keep) for m in masks]
            weights = self._region_weights(masks) if guided.masks else [float(masks[0].mean())]
            guided.style.set_target(grams, weights)
            guided.style.set_guides([propagate_mask(m, arch, guided.style.layers) for m in masks])
        if guided.content is not None and keep is not None:
            weight_map = keep_weight_map(keep, self.settings.keep_weight)
            guided.content.set_guides(propagate_mask(weight_map, arch, guided.content.layers))

    def _start_image(
        self,
        init: ImageInput | None,
        content_t: torch.Tensor,
        style_images: list[Image.Image],
        long_side: int,
        plan: QualityPlan | None = None,
    ) -> torch.Tensor:
        if init is not None:
            return _given_init(init, content_t)
        if self.settings.init == "style":
            return _initial_image(
                self.settings, content_t, self._style_tensors(style_images[:1], long_side)[0]
            )
        if self.settings.init == "content" and plan is not None and plan.matched_start:
            return colour_matched_start(content_t, style_images[self.blend.index(max(self.blend))])
        return _initial_image(self.settings, content_t, content_t)

    def _optimize_scale(
        self,
        criterion: LossCriterion,
        start: torch.Tensor,
        run: _Run,
        scale_index: int,
        scales: int,
        tiled: TiledLoss | None = None,
    ) -> None:
        """Optimize one scale from ``start``, tracking the best image and reporting progress in ``run``
        (with ``tiled``, the loss and its gradient are evaluated in tiles)."""
        s = self.settings
        image = start.detach().clone().contiguous().requires_grad_(True)
        run.best = (math.inf, image.detach().clone())
        schedule = run.schedule
        iterations = schedule.start_scale(scale_index)
        history = s.lbfgs_history
        if tiled is not None:  # the history of a large image is cut to fit (painterly.settings)
            history = lbfgs_history_for(image.shape[-1] * image.shape[-2], history, TILED_HISTORY_BYTES)
        optimizer = _make_optimizer(s, image, iterations, history)
        evaluations = 0
        counted = 0  # iterations already reported to the schedule

        def time_up() -> None:  # between tiles: a tiled evaluation may take minutes
            if schedule.scale_time_up():
                raise _ScaleDone

        def closure() -> torch.Tensor:
            nonlocal evaluations, counted
            optimizer.zero_grad(set_to_none=True)
            gradient = None
            with self._autocast():
                if tiled is None:
                    losses = criterion(self._to_net_layout(image))
                else:
                    losses, gradient = tiled.evaluate(image, self._to_net_layout, time_up)
            values = loss_values(losses)
            done = _iterations_done(optimizer, image)
            if not math.isfinite(values["total"]):
                raise PainterlyError(
                    f"the loss became {values['total']} at iteration {run.done_before + done + 1}; "
                    "lower the weights or the learning rate"
                )
            total = losses["total"]
            if gradient is None:
                total.backward()
            else:
                image.grad = gradient
            assert image.grad is not None  # set by backward()
            image.grad = image.grad.contiguous()  # L-BFGS flattens it with view()
            evaluations += 1
            schedule.evaluated()
            if run.best is None or values["total"] < run.best[0]:
                run.best = (values["total"], image.detach().clone())
            stop = schedule.scale_time_up()
            while counted < done and not stop:
                counted += 1
                stop = schedule.iteration_done(run.best[0])
            run.report(
                Progress(
                    step=run.done_before + done,
                    total_steps=run.done_before + schedule.iterations_from(scale_index),
                    iteration=done,
                    iterations=schedule.planned_iterations(scale_index),
                    scale=scale_index + 1,
                    scales=scales,
                    size=(image.shape[-1], image.shape[-2]),
                    losses=values,
                    tensor=image.detach(),
                    evaluations=evaluations,
                    eta_seconds=schedule.eta(),
                )
            )
            if stop:
                raise _ScaleDone
            return total

        try:
            if s.optimizer == "lbfgs":
                _run_lbfgs(optimizer, closure, iterations)
            else:
                for _ in range(iterations):
                    optimizer.step(closure)  # type: ignore[arg-type]
            finished = _iterations_done(optimizer, image) + (s.optimizer == "lbfgs")
        except _ScaleDone:
            finished = max(counted, 1)
        if run.last is not None and run.callback is not None and run.best is not None:
            # The closing report of a scale: its iterations done, holding the best image.
            run.report(
                dataclasses.replace(
                    run.last,
                    step=run.done_before + finished,
                    total_steps=run.done_before + finished + schedule.iterations_from(scale_index + 1),
                    iteration=finished,
                    iterations=finished,
                    tensor=run.best[1],
                    eta_seconds=schedule.eta(from_scale=scale_index + 1),
                )
            )
        run.done_before += finished

    def _style_term(self) -> GramStyleLoss:
        term = self.criterion.terms["style"]
        assert isinstance(term, GramStyleLoss)
        return term

    def _region_weights(self, masks: Sequence[torch.Tensor]) -> list[float]:
        """Each region's weight: its blend weight (relative to the mean) times its share of the picture.

        A region's Gram is per unit of its area, so its gradient at a pixel is 1/area of the whole
        image's: weighting by area gives every pixel the style pressure of an unmasked painting.
        """
        total = sum(self.blend)
        if total <= 0:
            raise PainterlyError("need at least one style image with a positive blend weight")
        mean = total / len(self.blend)
        return [weight / mean * float(mask.mean()) for weight, mask in zip(self.blend, masks, strict=True)]

    def _criterion_for(
        self,
        extra_terms: ExtraTerms | None,
        content_masks: Sequence[ImageInput] | None,
        keep: ImageInput | None,
    ) -> tuple[LossCriterion, _Guides]:
        """This call's criterion: the painter's, plus extra terms, with guided style if masked and
        guided content if a region is kept. The masks are opened and checked here, before any work."""
        extra = dict(extra_terms or {})
        guided = _Guides()
        if content_masks is not None:
            if len(content_masks) != len(self.style_images):
                raise PainterlyError(
                    f"{len(self.style_images)} style images but {len(content_masks)} content masks"
                )
            if self.criterion.convention != "classic":
                raise PainterlyError("style masks need the classic loss convention")
            guided.masks = load_style_masks(content_masks, len(self.style_images))
            guided.style = GuidedGramStyleLoss(self._style_term().layer_weights)
            extra["style"] = (guided.style, self.criterion.weights["style"])
        if keep is not None:
            guided.keep = load_mask(keep)
            if guided.style is None and "style" in self.criterion.terms:
                if self.criterion.convention != "classic":
                    raise PainterlyError("a keep mask needs the classic loss convention")
                guided.style = GuidedGramStyleLoss(self._style_term().layer_weights)
                extra["style"] = (guided.style, self.criterion.weights["style"])
            if "content" in self.criterion.terms:
                base = self.criterion.terms["content"]
                assert isinstance(base, ContentLoss)
                guided.content = GuidedContentLoss(base)
                extra["content"] = (guided.content, self.criterion.weights["content"])
        if not extra:
            return self.criterion, guided
        return self.criterion.with_terms(extra), guided


def run_transfer(
    content: ImageInput,
    style: ImageInput | Sequence[ImageInput],
    settings: TransferSettings,
    callback: Callable[[Progress], None] | None = None,
    *,
    masks: Sequence[ImageInput] | None = None,
    keep: ImageInput | None = None,
    catch_interrupt: bool = False,
) -> TransferResult:
    """Run an image optimization, calling ``callback`` with a :class:`Progress` after every evaluation.

    ``masks`` (one per style, in order) paint each style into its region, ``keep`` holds a region
    closer to the photo (see :class:`Painter`); both are checked before the loss network loads.
    A callback may raise :class:`StopTransfer` to stop early; with ``catch_interrupt``, Ctrl-C
    does the same. Either way the result holds the best image found so far, at the output size.
    One :class:`Painter`, used once.
    """
    started = time.monotonic()
    content_image = open_image(content, what="content image")
    check_transfer_memory(
        *content_image.size,
        settings,
        memory.available_memory(),
        pick_device(settings.device).type,
        whole=masks is not None or keep is not None,
    )
    styles = list(style) if isinstance(style, list | tuple) else [style]
    if masks is not None:
        masks = load_style_masks(masks, len(styles))
    if keep is not None:
        keep = load_mask(keep)
    painter = Painter(settings, style)
    result = painter.paint(
        content_image, callback=callback, content_masks=masks, keep=keep, catch_interrupt=catch_interrupt
    )
    result.seconds = time.monotonic() - started
    return result


def _iterations_done(optimizer: torch.optim.Optimizer, image: torch.Tensor) -> int:
    state = optimizer.state.get(image, {})
    if isinstance(optimizer, torch.optim.LBFGS):
        # n_iter counts the iteration whose line search is running; the one before it is done.
        return max(0, state.get("n_iter", 0) - 1)
    return int(state.get("step", 0))


#: The first L-BFGS step of each scale, in 0-1 pixel units (RMS): about one grey level.
FIRST_STEP = 1 / 255


def _run_lbfgs(
    optimizer: torch.optim.Optimizer,
    closure: Callable[[], torch.Tensor],
    iterations: int,
    *,
    first_step: float = FIRST_STEP,
) -> None:
    """Run ``iterations`` L-BFGS iterations whose first trial step is ``first_step`` (RMS, pixels).

    torch's first trial step is ``grad / |grad|_1``: about 1e-5 per pixel for a 256 px image, while
    the strong-Wolfe search accepts about a grey level (measured on the default run: 0.004-0.005
    RMS at every scale). Growing there cost 3 to 5 extra evaluations at the start of every scale,
    5 at 512 px: about 11 s of a 70 s default run on a 2-core CPU. Under bf16/fp16 autocast the
    tiny step is worse than slow: the loss is a staircase at that scale, the search ends where the
    curvature is still negative, L-BFGS rejects the pair (y.s < 0) and its next step is ``-grad``
    itself (about 1e8 pixel units, then inf and NaN).

    So the first iteration runs alone with its learning rate scaled to a step of ``first_step``,
    then the rest. The second ``step`` call begins by evaluating the point the first one ended at,
    which the first call's line search has already evaluated: that value is reused, not recomputed.
    """
    group = optimizer.param_groups[0]
    lr = group["lr"]
    params: list[torch.Tensor] = group["params"]
    pixels = sum(p.numel() for p in params)
    last: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def remembering() -> torch.Tensor:
        last.clear()  # the previous point's copies go before the new ones are made
        loss = closure()
        grad = params[0].grad
        assert grad is not None  # the closure sets it
        last[:] = [(params[0].detach().clone(), loss.detach(), grad.detach().clone())]
        return loss

    def reusing() -> torch.Tensor:
        if last and torch.equal(last[0][0], params[0].detach()):
            _, loss, grad = last.pop()
            params[0].grad = grad
            return loss
        last.clear()
        return closure()

    if iterations < 1:
        return
    # The trial step is lr * grad / |grad|_1, whose RMS is about lr / pixels for a dense gradient.
    group.update(max_iter=1, lr=lr * first_step * pixels)
    optimizer.step(remembering)  # type: ignore[arg-type]  # the stubs want a float; torch takes a Tensor
    group.update(max_iter=iterations - 1, lr=lr)
    if iterations > 1:
        optimizer.step(reusing)  # type: ignore[arg-type]
    last.clear()


def _make_optimizer(
    s: TransferSettings, image: torch.Tensor, iterations: int, history: int | None = None
) -> torch.optim.Optimizer:
    if s.optimizer == "lbfgs":
        # A strong-Wolfe line search: from a photo, the style loss has directions of negative
        # curvature where L-BFGS without it takes wild steps.
        return torch.optim.LBFGS(
            [image],
            lr=s.learning_rate or 1.0,
            max_iter=iterations,
            max_eval=iterations * 2 + 20,
            history_size=history or s.lbfgs_history,
            tolerance_grad=-1.0,
            tolerance_change=-1.0,
            line_search_fn="strong_wolfe",
        )
    # Adam's step is in pixel units: 0.02 of the 0-1 range is about 5 grey levels per step.
    return torch.optim.Adam([image], lr=s.learning_rate or 0.02)


def transfer(
    content: ImageInput,
    style: ImageInput | Sequence[ImageInput],
    *,
    callback: Callable[[Progress], None] | None = None,
    preset: str | None = None,
    masks: Sequence[ImageInput] | None = None,
    keep: ImageInput | None = None,
    **options: Any,
) -> Image.Image:
    """Paint ``content`` in the style of ``style`` (one image or a list) and return a PIL image.

    ``content`` and each style may be a path, a PIL image or an array. ``options`` are the fields
    of :class:`TransferSettings` (``size``, ``iterations``, ``style_weight``, ``keep_weight``,
    ...); ``preset`` names a bundle of them. ``callback`` receives a :class:`Progress` after every
    iteration. ``masks``: one region mask per style (greyscale images of any size, white inside),
    each style painting its region; ``keep``: a mask of a region to hold closer to the photo.
    """
    settings = make_settings(preset, **options)
    return run_transfer(content, style, settings, callback, masks=masks, keep=keep).image


__all__ = [
    "INITS",
    "ExtraTerms",
    "Painter",
    "OPTIMIZERS",
    "POOLINGS",
    "iterations_per_scale",
    "validate",
    "StopTransfer",
    "TransferResult",
    "TransferSettings",
    "make_settings",
    "run_transfer",
    "scale_sizes",
    "transfer",
]
