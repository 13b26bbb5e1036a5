"""Training a feed-forward style network with the shared perceptual loss.

The loss is :class:`painterly.losses.PerceptualLoss` (the same object the image optimization
uses), with one style target and per-batch content targets. Defaults follow Johnson et al.:
VGG16, content at relu2_2 (it keeps edges and small structures of the photo; relu3_3 lets the
style repaint more of it), style at relu1_2, relu2_2, relu3_3, relu4_3, Adam at 1e-3.

Distributed training uses PyTorch DistributedDataParallel: launched under ``torchrun``, every
process trains on its own batches (``batch_size`` per process), gradients are averaged by DDP,
and rank 0 alone writes checkpoints, logs, validation images and the model.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image

from painterly.errors import PainterlyError, check_weight
from painterly.feedforward.data import CropSampler, find_images
from painterly.feedforward.files import refuse_overwriting_inputs, require_regular_file
from painterly.feedforward.loop import (
    LossLog,
    Runtime,
    TrainProgress,
    as_loss_dict,
    load_optimizer,
    optimizer_tensors,
    run_loop,
    run_metadata,
    workdir,
)
from painterly.feedforward.model_file import SUFFIX, read_model_file, write_model_file
from painterly.feedforward.network import TransformerNet, parse_width
from painterly.feedforward.settings import TrainSettings
from painterly.images import (
    check_output_path,
    open_image,
    pil_to_tensor,
    resize_long_side,
    save_image,
    tensor_to_pil,
)
from painterly.losses import TOTAL, PerceptualLoss, loss_values
from painterly.vgg.network import check_layers, layer_names
from painterly.vgg.weights import load_vgg


@dataclass
class TrainResult:
    output: Path
    steps: int
    seconds: float
    interrupted: bool
    skipped_images: int
    net: TransformerNet = field(repr=False)
    #: The training images that could not be read (skipped).
    skipped: list[Path] = field(default_factory=list)


def default_workdir(output: str | os.PathLike) -> Path:
    output = Path(output)
    stem = output.name[: -len(SUFFIX)] if output.name.endswith(SUFFIX) else output.name
    return output.with_name(stem + ".train")


def validate_settings(s: TrainSettings) -> None:
    """Fail before any work on a bad setting."""
    for name in (
        "iterations",
        "batch_size",
        "image_size",
        "style_size",
        "checkpoint_every",
        "log_every",
        "validate_every",
        "validation_size",
    ):
        value = getattr(s, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise PainterlyError(f"{name.replace('_', ' ')} must be a positive whole number, got {value!r}")
    if s.image_size < 32:
        raise PainterlyError(f"image size must be at least 32 px, got {s.image_size}")
    for name in ("content_weight", "style_weight", "tv_weight", "learning_rate"):
        check_weight(name.replace("_", " "), getattr(s, name))
    if s.learning_rate <= 0:
        raise PainterlyError("learning rate must be positive")
    parse_width(s.width)
    if not s.content_layers:
        raise PainterlyError("content layers: name at least one layer (for example relu2_2)")
    if not s.style_layers:
        raise PainterlyError("style layers: name at least one layer (for example relu1_2,relu2_2)")
    check_layers(s.network, [*s.content_layers, *s.style_layers])
    output = check_output_path(s.output)
    style = require_regular_file(s.style, "style image")
    validation = [require_regular_file(p, "validation image") for p in s.validation]
    refuse_overwriting_inputs(output, [style, *validation])
    if s.workdir is not None:
        refuse_overwriting_inputs(s.workdir, [style, *validation])


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _deepest(network: str, layers: Sequence[str]) -> str:
    names = layer_names(network)
    return max(layers, key=names.index)


def _default_validation(files: Sequence[Path]) -> list[Image.Image]:
    """Two of the training photos (the first and the middle one that decode)."""
    chosen: list[Image.Image] = []
    for start in sorted({0, len(files) // 2}):
        for path in files[start:]:
            try:
                chosen.append(open_image(path))
                break
            except PainterlyError:
                continue
    return chosen


def train(
    settings: TrainSettings,
    callback: Callable[[TrainProgress], None] | None = None,
) -> TrainResult:
    """Train a network for ``settings.style``; returns when done or after Ctrl-C (checkpoint saved).

    SIGTERM (sent by schedulers and by torchrun when a worker fails) is treated like Ctrl-C.
    Under ``torchrun`` (``WORLD_SIZE`` > 1) this joins the process group and trains with DDP.
    """
    validate_settings(settings)
    runtime = Runtime(settings.device, settings.precision)
    with runtime.process_group():
        return _train(settings, callback, runtime)


def _train(
    s: TrainSettings, callback: Callable[[TrainProgress], None] | None, runtime: Runtime
) -> TrainResult:
    device = runtime.device
    output = Path(s.output)
    folder = Path(s.workdir) if s.workdir else default_workdir(output)
    checkpoint = folder / "checkpoint.safetensors"
    style_path = Path(s.style)
    style_image = open_image(style_path, what="style image")
    files = find_images(s.data)
    refuse_overwriting_inputs(output, files)
    sampler = CropSampler(files, s.image_size, seed=s.seed, rank=runtime.rank)
    validation = [open_image(p, what="validation image") for p in s.validation] or _default_validation(files)
    validation = [resize_long_side(image, s.validation_size) for image in validation]

    torch.manual_seed(s.seed)
    net = TransformerNet(s.width).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=s.learning_rate)
    start_step = 0
    elapsed_before = 0.0
    if s.resume:
        if not checkpoint.is_file():
            raise PainterlyError(f"--resume: no checkpoint at {checkpoint}")
        loaded, meta, others = read_model_file(checkpoint)
        if loaded.width != net.width:
            raise PainterlyError(
                f"--resume: the checkpoint has width {loaded.width}, these settings {net.width}"
            )
        net.load_state_dict(loaded.state_dict())
        load_optimizer(optimizer, {k: v.to(device) for k, v in others.items()}, s.learning_rate)
        start_step = int(meta["steps"])
        elapsed_before = float(meta.get("training_seconds", 0.0))

    layers = [*s.content_layers, *s.style_layers]
    vgg = runtime.place(load_vgg(s.network, last_layer=_deepest(s.network, layers), device=device))
    loss_fn = PerceptualLoss(
        vgg,
        s.content_layers,
        s.style_layers,
        content_weight=s.content_weight,
        style_weight=s.style_weight,
        tv_weight=s.tv_weight,
    )
    style_t = pil_to_tensor(resize_long_side(style_image, s.style_size)).to(device)
    with runtime.autocast():
        loss_fn.set_style([runtime.layout(style_t)])
    scaler = torch.amp.GradScaler(device.type, enabled=runtime.amp_dtype == torch.float16)
    model = runtime.parallel(net)

    base = {
        "name": s.name or style_path.stem,
        "style": style_path.name,
        "style_sha256": _sha256(style_path),
        "style_image_size": list(style_image.size),
        "style_size": s.style_size,
        "loss": {
            "network": s.network,
            "content_layers": list(s.content_layers),
            "style_layers": list(s.style_layers),
            "content_weight": s.content_weight,
            "style_weight": s.style_weight,
            "tv_weight": s.tv_weight,
            "tv_form": "squared",
            "convention": "classic",
        },
        "training": {
            "batch_size": s.batch_size,
            "world_size": runtime.world,
            "image_size": s.image_size,
            "learning_rate": s.learning_rate,
            "seed": s.seed,
            "images": len(files),
            "device": device.type,
            "precision": runtime.precision_name,
        },
    }

    def save_checkpoint(step: int, seconds: float) -> str:
        metadata = run_metadata(base, step, seconds)
        write_model_file(checkpoint, net, metadata, kind="checkpoint", extra=optimizer_tensors(optimizer))
        return f"checkpoint at step {step}"

    def save_validation(step: int, seconds: float = 0.0) -> str:
        net.eval()
        with torch.no_grad():
            tiles = [tensor_to_pil(net.stylize_tensor(pil_to_tensor(img).to(device))) for img in validation]
        net.train()
        sheet = Image.new("RGB", (sum(t.width for t in tiles), max(t.height for t in tiles)), "white")
        x = 0
        for tile in tiles:
            sheet.paste(tile, (x, 0))
            x += tile.width
        return f"validation image {save_image(sheet, folder / f'val_{step:06d}.png')}"

    def step_function(step: int) -> dict[str, float]:
        batch = runtime.layout(sampler.batch(step, s.batch_size).to(device))
        with runtime.autocast():
            loss_fn.set_content(batch)  # each photo's own activations are its content target
            stylized = model(batch)
            terms = loss_fn(runtime.layout(stylized))
        losses = as_loss_dict(loss_values(terms))
        if all(map(_finite, losses.values())):
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(terms[TOTAL]).backward()
            scaler.step(optimizer)
            scaler.update()
        return losses

    periodic = [(s.checkpoint_every, save_checkpoint)]
    if validation:
        periodic.insert(0, (s.validate_every, save_validation))
    net.train()
    with workdir(folder, create=runtime.is_main):
        outcome = run_loop(
            step_function,
            total_steps=s.iterations,
            start_step=start_step,
            elapsed_before=elapsed_before,
            log=LossLog(folder / "losses.jsonl") if runtime.is_main else None,
            log_every=s.log_every,
            periodic=periodic,
            callback=callback,
            is_main=runtime.is_main,
        )
        step, seconds = outcome.step, outcome.seconds
        if runtime.is_main:
            if validation and not outcome.interrupted and step > start_step:
                save_validation(step)
            if step > start_step or not s.resume:
                save_checkpoint(step, seconds)
            if not outcome.interrupted:
                write_model_file(output, net, run_metadata(base, step, seconds))
    if not outcome.interrupted:
        runtime.barrier()
    bad = sorted(sampler.bad)
    return TrainResult(output, step, seconds, outcome.interrupted, len(bad), net, bad)


def _finite(value: float) -> bool:
    return value == value and abs(value) != float("inf")


__all__ = ["TrainProgress", "TrainResult", "TrainSettings", "train"]
