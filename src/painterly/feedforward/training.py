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

import contextlib
import hashlib
import json
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from painterly.devices import pick_device, pick_precision
from painterly.errors import PainterlyError, check_weight
from painterly.feedforward.data import CropSampler, find_images
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
from painterly.losses import LossParts, PerceptualLoss
from painterly.vgg.network import check_layers, layer_names
from painterly.vgg.weights import load_vgg


@dataclass
class TrainProgress:
    """Reported after every training step (on rank 0 only)."""

    step: int
    total_steps: int
    losses: LossParts
    seconds: float
    #: Steps per second since this run (not the resumed one) started.
    rate: float
    events: list[str] = field(default_factory=list)


@dataclass
class TrainResult:
    output: Path
    steps: int
    seconds: float
    interrupted: bool
    skipped_images: int
    net: TransformerNet = field(repr=False)


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
    check_layers(s.network, [*s.content_layers, *s.style_layers])
    check_output_path(s.output)


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


def _dist_info() -> tuple[int, int, int]:
    """(rank, local rank, world size) from torchrun's environment; (0, 0, 1) when not distributed."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0")), world


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            tensors[f"optimizer/{index}/{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    return tensors


def _load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], lr: float) -> None:
    state = optimizer.state_dict()
    per_param: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer/"):
            _, index, name = key.split("/", 2)
            per_param.setdefault(int(index), {})[name] = value
    state["state"] = per_param
    for group in state["param_groups"]:
        group["lr"] = lr
    optimizer.load_state_dict(state)


def train(
    settings: TrainSettings,
    callback: Callable[[TrainProgress], None] | None = None,
) -> TrainResult:
    """Train a network for ``settings.style``; returns when done or after Ctrl-C (checkpoint saved).

    SIGTERM (sent by schedulers and by torchrun when a worker fails) is treated like Ctrl-C.
    Under ``torchrun`` (``WORLD_SIZE`` > 1) this joins the process group and trains with DDP.
    """
    s = settings
    validate_settings(s)
    rank, local_rank, world = _dist_info()
    distributed = world > 1
    device = pick_device(s.device)
    if distributed:
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        if not torch.distributed.is_initialized():
            torch.distributed.init_process_group(backend)
    try:
        with _sigterm_as_interrupt():
            return _train(s, callback, rank, world, device)
    finally:
        if distributed and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _train(
    s: TrainSettings,
    callback: Callable[[TrainProgress], None] | None,
    rank: int,
    world: int,
    device: torch.device,
) -> TrainResult:
    output = Path(s.output)
    workdir = Path(s.workdir) if s.workdir else default_workdir(output)
    checkpoint = workdir / "checkpoint.safetensors"
    log_path = workdir / "losses.jsonl"
    style_path = Path(s.style)
    style_image = open_image(style_path, what="style image")
    files = find_images(s.data)
    sampler = CropSampler(files, s.image_size, seed=s.seed, rank=rank)
    validation = [open_image(p, what="validation image") for p in s.validation] or _default_validation(files)
    validation = [resize_long_side(image, s.validation_size) for image in validation]
    if rank == 0:
        try:
            workdir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PainterlyError(f"cannot create training folder {workdir}: {exc.strerror or exc}") from None

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
        _load_optimizer(optimizer, {k: v.to(device) for k, v in others.items()}, s.learning_rate)
        start_step = int(meta["steps"])
        elapsed_before = float(meta.get("training_seconds", 0.0))

    vgg = load_vgg(
        s.network, last_layer=_deepest(s.network, [*s.content_layers, *s.style_layers]), device=device
    )
    loss_fn = PerceptualLoss(
        vgg,
        s.content_layers,
        s.style_layers,
        content_weight=s.content_weight,
        style_weight=s.style_weight,
        tv_weight=s.tv_weight,
    )
    amp_dtype = pick_precision(s.precision, device)
    channels_last = device.type == "cpu"
    if channels_last:
        vgg.to(memory_format=torch.channels_last)

    def layout(x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x

    def autocast() -> contextlib.AbstractContextManager:
        return torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None)

    style_t = pil_to_tensor(resize_long_side(style_image, s.style_size)).to(device)
    with autocast():
        loss_fn.set_style([layout(style_t)])
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)

    model: torch.nn.Module = net
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None
        )

    metadata_base = {
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
            "world_size": world,
            "image_size": s.image_size,
            "learning_rate": s.learning_rate,
            "seed": s.seed,
            "images": len(files),
            "device": device.type,
            "precision": str(amp_dtype).replace("torch.", "") if amp_dtype else "float32",
        },
    }

    def metadata(step: int, seconds: float) -> dict[str, Any]:
        from painterly import __version__

        return {
            **metadata_base,
            "steps": step,
            "training_seconds": round(seconds, 1),
            "painterly_version": __version__,
        }

    def save_checkpoint(step: int, seconds: float) -> None:
        write_model_file(
            checkpoint, net, metadata(step, seconds), kind="checkpoint", extra=_optimizer_tensors(optimizer)
        )

    def save_validation(step: int) -> Path:
        net.eval()
        with torch.no_grad():
            tiles = [tensor_to_pil(net.stylize_tensor(pil_to_tensor(img).to(device))) for img in validation]
        net.train()
        sheet = Image.new("RGB", (sum(t.width for t in tiles), max(t.height for t in tiles)), "white")
        x = 0
        for tile in tiles:
            sheet.paste(tile, (x, 0))
            x += tile.width
        return save_image(sheet, workdir / f"val_{step:06d}.png")

    net.train()
    started = time.monotonic()
    step = start_step
    interrupted = False
    log = open(log_path, "a", encoding="utf-8") if rank == 0 else None  # noqa: SIM115
    try:
        while step < s.iterations:
            batch = layout(sampler.batch(step, s.batch_size).to(device))
            with autocast():
                content_features = loss_fn.content_features(batch)
                stylized = model(batch)
                total, parts = loss_fn(layout(stylized), content_features=content_features)
            if not math.isfinite(parts.total):
                raise PainterlyError(
                    f"the loss became {parts.total} at step {step}; lower the learning rate or weights"
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(total).backward()
            scaler.step(optimizer)
            scaler.update()
            step += 1
            if rank != 0:
                continue
            seconds = time.monotonic() - started
            events = []
            if step % s.log_every == 0 or step == s.iterations:
                assert log is not None
                log.write(
                    json.dumps(
                        {
                            "step": step,
                            "content": parts.content,
                            "style": parts.style,
                            "tv": parts.tv,
                            "total": parts.total,
                            "seconds": round(elapsed_before + seconds, 2),
                        }
                    )
                    + "\n"
                )
                log.flush()
            if validation and (step % s.validate_every == 0 or step == s.iterations):
                events.append(f"validation image {save_validation(step)}")
            if step % s.checkpoint_every == 0 and step < s.iterations:
                save_checkpoint(step, elapsed_before + seconds)
                events.append(f"checkpoint at step {step}")
            if callback is not None:
                callback(
                    TrainProgress(
                        step,
                        s.iterations,
                        parts,
                        elapsed_before + seconds,
                        (step - start_step) / max(seconds, 1e-9),
                        events,
                    )
                )
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if log is not None:
            log.close()
    seconds = elapsed_before + time.monotonic() - started
    if rank == 0:
        if step > start_step or not s.resume:
            save_checkpoint(step, seconds)
        if not interrupted:
            write_model_file(output, net, metadata(step, seconds))
    if world > 1 and not interrupted:
        torch.distributed.barrier()
    return TrainResult(output, step, seconds, interrupted, sampler.skipped, net)
