"""Image optimization style transfer (Gatys, Ecker, Bethge 2015).

The pixels of an image are optimized so that its VGG activations match the content photo, its
Gram matrices match the style image(s), with a total-variation smoothness term. Large outputs
are painted coarse to fine: each scale starts from the previous result, upsampled.

:func:`run_transfer` calls back with a :class:`~painterly.progress.Progress` after every evaluation;
the CLI, the web server and tests all hook that one stream.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from painterly.color import match_color_histogram, transfer_luminance
from painterly.devices import pick_device, pick_precision
from painterly.errors import PainterlyError
from painterly.images import ImageInput, open_image, pil_to_tensor, resize_long_side, tensor_to_pil
from painterly.losses import PerceptualLoss
from painterly.progress import Progress
from painterly.settings import (  # re-exported: the method's settings live in a torch-free module
    INITS,
    OPTIMIZERS,
    POOLINGS,
    TransferSettings,
    iterations_per_scale,
    make_settings,
    scale_sizes,
    validate,
)
from painterly.vgg.weights import load_vgg


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
    init = open_image(s.init, what="init image")
    return pil_to_tensor(init.resize((content.shape[-1], content.shape[-2]), Image.Resampling.LANCZOS)).to(
        content.device
    )


class StopTransfer(Exception):
    """Raise from a progress callback to end a run early; the best image so far is kept."""


@dataclass
class TransferResult:
    """What a run produced: the image (colours already preserved if asked) and how it ended."""

    image: Image.Image
    settings: TransferSettings
    last: Progress | None
    interrupted: bool = False
    seconds: float = 0.0


def run_transfer(
    content: ImageInput,
    style: ImageInput | Sequence[ImageInput],
    settings: TransferSettings,
    callback: Callable[[Progress], None] | None = None,
    *,
    catch_interrupt: bool = False,
) -> TransferResult:
    """Run an image optimization, calling ``callback`` with a :class:`Progress` after every evaluation.

    A callback may raise :class:`StopTransfer` to stop early; with ``catch_interrupt``, Ctrl-C
    does the same. Either way the result holds the best image found so far, at the output size.
    """
    s = settings
    started = time.monotonic()
    styles = list(style) if isinstance(style, list | tuple) else [style]
    if not styles:
        raise PainterlyError("need at least one style image")
    blend = list(s.style_blend) if s.style_blend is not None else [1.0] * len(styles)
    if len(blend) != len(styles):
        raise PainterlyError(f"{len(styles)} style images but {len(blend)} blend weights")
    content_image = open_image(content, what="content image")
    style_images = [open_image(item, what="style image") for item in styles]
    if s.preserve_colors == "histogram":
        style_images = [match_color_histogram(img, content_image) for img in style_images]

    device = pick_device(s.device)
    autocast_dtype = pick_precision(s.precision, device)
    torch.manual_seed(s.seed)
    loss_fn = PerceptualLoss(
        load_vgg(
            s.network, source=s.weights, convention=s.weights_convention, pooling=s.pooling, device=device
        ),
        s.content_layers,
        s.style_layers,
        content_weight=s.content_weight,
        style_weight=s.style_weight,
        tv_weight=s.tv_weight,
        tv_form=s.tv_form,
        convention=s.loss_convention,
    )
    if device.type == "cpu":
        loss_fn.vgg.to(memory_format=torch.channels_last)

    def autocast() -> torch.autocast:
        return torch.autocast(
            device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None
        )

    def to_net_layout(image: torch.Tensor) -> torch.Tensor:
        # oneDNN's convolutions are fastest in channels-last on the CPU (measured 2.27 s vs 2.5 s).
        return image.contiguous(memory_format=torch.channels_last) if device.type == "cpu" else image

    sizes = scale_sizes(s.size, s.scales)
    budget = iterations_per_scale(s.iterations, len(sizes))
    target_size = _resize_to(content_image, s.size, s.square).size
    best: tuple[float, torch.Tensor] | None = None
    last: Progress | None = None
    interrupted = False
    done_before = 0
    try:
        for scale_index, long_side in enumerate(sizes):
            content_t = pil_to_tensor(_resize_to(content_image, long_side, s.square)).to(device)
            style_side = max(16, round(long_side * s.style_scale))
            style_ts = [
                to_net_layout(pil_to_tensor(resize_long_side(img, style_side)).to(device))
                for img in style_images
            ]
            with autocast():
                loss_fn.set_content(to_net_layout(content_t))
                loss_fn.set_style(style_ts, blend, image_pixels=content_t.shape[-1] * content_t.shape[-2])
            if best is None:
                start = _initial_image(s, content_t, style_ts[0])
            else:
                start = F.interpolate(best[1], size=content_t.shape[-2:], mode="bicubic", align_corners=False)
            image = start.detach().clone().contiguous().requires_grad_(True)
            best = (math.inf, image.detach().clone())
            iterations = budget[scale_index]
            optimizer = _make_optimizer(s, image, iterations)
            evaluations = 0

            def closure() -> torch.Tensor:
                nonlocal best, last, evaluations
                optimizer.zero_grad(set_to_none=True)
                with autocast():
                    total, parts = loss_fn(to_net_layout(image))
                if not torch.isfinite(total.detach()):
                    raise PainterlyError(
                        f"the loss became {total.detach().item()} at iteration {last.step if last else 0}; "
                        "lower the weights or the learning rate"
                    )
                total.backward()
                image.grad = image.grad.contiguous()  # L-BFGS flattens it with view()
                evaluations += 1
                if parts.total < best[0]:
                    best = (parts.total, image.detach().clone())
                done = _iterations_done(optimizer, image)
                last = Progress(
                    step=done_before + done,
                    total_steps=sum(budget),
                    iteration=done,
                    iterations=iterations,
                    scale=scale_index + 1,
                    scales=len(sizes),
                    size=(content_t.shape[-1], content_t.shape[-2]),
                    losses=parts,
                    tensor=image.detach(),
                    evaluations=evaluations,
                )
                if callback is not None:
                    callback(last)
                return total

            if s.optimizer == "lbfgs":
                optimizer.step(closure)
            else:
                for _ in range(iterations):
                    optimizer.step(closure)
            finished = _iterations_done(optimizer, image) + (s.optimizer == "lbfgs")
            if last is not None and callback is not None:
                # The closing report of a scale: all its iterations done, holding the best image.
                last = dataclasses.replace(
                    last, step=done_before + finished, iteration=finished, tensor=best[1]
                )
                callback(last)
            done_before += iterations
    except StopTransfer:
        interrupted = True
    except KeyboardInterrupt:
        if not catch_interrupt:
            raise
        interrupted = True
    assert best is not None
    result = tensor_to_pil(best[1])
    if result.size != target_size:
        result = result.resize(target_size, Image.Resampling.LANCZOS)
    if s.preserve_colors == "luminance":
        result = transfer_luminance(result, content_image)
    if last is not None:
        last.tensor = best[1]
    return TransferResult(result, s, last, interrupted, time.monotonic() - started)


def _iterations_done(optimizer: torch.optim.Optimizer, image: torch.Tensor) -> int:
    state = optimizer.state.get(image, {})
    if isinstance(optimizer, torch.optim.LBFGS):
        # n_iter counts the iteration whose line search is running; the one before it is done.
        return max(0, state.get("n_iter", 0) - 1)
    return int(state.get("step", 0))


def _make_optimizer(s: TransferSettings, image: torch.Tensor, iterations: int) -> torch.optim.Optimizer:
    if s.optimizer == "lbfgs":
        # A strong-Wolfe line search: from a photo, the style loss has directions of negative
        # curvature where L-BFGS without it takes wild steps.
        return torch.optim.LBFGS(
            [image],
            lr=s.learning_rate or 1.0,
            max_iter=iterations,
            max_eval=iterations * 2 + 20,
            history_size=s.lbfgs_history,
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
    **options: Any,
) -> Image.Image:
    """Paint ``content`` in the style of ``style`` (one image or a list) and return a PIL image.

    ``content`` and each style may be a path, a PIL image or an array. ``options`` are the fields
    of :class:`TransferSettings` (``size``, ``iterations``, ``style_weight``, ...); ``preset``
    names a bundle of them. ``callback`` receives a :class:`Progress` after every iteration.
    """
    return run_transfer(content, style, make_settings(preset, **options), callback).image


__all__ = [
    "INITS",
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
