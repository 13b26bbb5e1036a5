"""Distillation: train a smaller (faster) student network to reproduce a trained teacher's output.

The teacher is any painterly model file. The student, a :class:`TransformerNet` of the teacher's
shape at a smaller width, sees random crops of content photos and learns to output what the teacher
outputs for them: an L1 loss on pixels, optionally plus a little of the shared
:class:`painterly.losses.PerceptualLoss` content term (VGG features of the student's output against
those of the teacher's). The pixel loss needs no loss network, so a step costs one teacher forward
pass and one student forward and backward pass: much cheaper than training with the perceptual loss.

The student can start from the teacher's weights (``init="teacher"``): each layer keeps the
channels whose instance-norm scale is largest, so the student starts close to a pruned teacher.
The learning rate follows a cosine decay to zero over ``iterations``. The model file is written at
the end, every ``checkpoint_every`` steps (so that stopping the process at any time leaves a usable
model) and on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F

from painterly.errors import PainterlyError, check_weight
from painterly.feedforward.catalog import ONNX_SUFFIX, resolve_model
from painterly.feedforward.conditional import ConditionalTransformerNet
from painterly.feedforward.data import CropSampler, find_images, refuse_work_folder_over_data
from painterly.feedforward.extract import single_style
from painterly.feedforward.files import check_batch_size, check_seed, refuse_overwriting_inputs
from painterly.feedforward.loop import LossLog, Runtime, TrainProgress, run_loop, run_metadata, workdir
from painterly.feedforward.model_file import (
    check_model_name,
    check_model_output,
    read_model_file,
    write_model_file,
)
from painterly.feedforward.network import TransformerNet, parse_width, shape_channels
from painterly.images import check_output_path

INITS = ("teacher", "random")

#: Distillation reports the same progress as training: losses ``l1`` (and ``perceptual``) and ``total``.
DistillProgress = TrainProgress


@dataclass
class DistillSettings:
    """Every setting of a distillation run."""

    teacher: str | os.PathLike
    data: str | os.PathLike
    output: str | os.PathLike
    #: For a multi-style teacher (e.g. ``zoo``): the style to distill; a single-style teacher needs none.
    teacher_style: str | None = None
    width: int | str = 8
    iterations: int = 2000
    batch_size: int = 8
    image_size: int = 192
    learning_rate: float = 2e-3
    #: Weight of the VGG content term (relu2_2 features of student vs teacher output); 0: pixels only.
    perceptual_weight: float = 0.0
    #: ``teacher``: start from the teacher's strongest channels; ``random``: a fresh network.
    init: str = "teacher"
    seed: int = 0
    #: Stop (and save) after this many seconds of training; None: run all iterations.
    max_seconds: float | None = None
    checkpoint_every: int = 100
    log_every: int = 10
    device: str = "auto"
    precision: str = "auto"
    name: str | None = None
    #: Where the loss log goes (``losses.jsonl``); default ``<output>.distill/``.
    workdir: str | os.PathLike | None = None


@dataclass
class DistillResult:
    output: Path
    steps: int
    seconds: float
    interrupted: bool
    loss: float
    net: TransformerNet = field(repr=False)
    skipped: list[Path] = field(default_factory=list)


def validate_distill_settings(s: DistillSettings) -> None:
    for name in ("iterations", "batch_size", "image_size", "checkpoint_every", "log_every"):
        value = getattr(s, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise PainterlyError(f"{name.replace('_', ' ')} must be a positive whole number, got {value!r}")
    if s.image_size < 32:
        raise PainterlyError(f"image size must be at least 32 px, got {s.image_size}")
    check_weight("learning rate", s.learning_rate)
    check_weight("perceptual weight", s.perceptual_weight)
    if s.learning_rate <= 0:
        raise PainterlyError("learning rate must be positive")
    check_seed(s.seed)
    check_batch_size(s.batch_size, s.image_size)
    if s.init not in INITS:
        raise PainterlyError(f"unknown init {s.init!r} (use one of {', '.join(INITS)})")
    if s.max_seconds is not None and not (
        isinstance(s.max_seconds, int | float) and math.isfinite(s.max_seconds) and s.max_seconds > 0
    ):
        raise PainterlyError(
            f"the time limit (max_seconds) must be a positive, finite number of seconds, "
            f"got {s.max_seconds!r}"
        )
    parse_width(s.width)
    check_output_path(check_model_output(s.output))
    check_model_name(s.name)


def default_workdir(output: str | os.PathLike) -> Path:
    output = Path(output)
    return output.with_name(output.name.split(".")[0] + ".distill")


def _keep(scores: torch.Tensor, count: int) -> torch.Tensor:
    """Indices of the ``count`` largest scores, in their original order."""
    return scores.topk(count).indices.sort().values


@torch.no_grad()
def init_from_teacher(student: TransformerNet, teacher: TransformerNet) -> None:
    """Copy into ``student`` the teacher's channels with the largest instance-norm scales.

    Each layer's output channels are ranked by ``|gamma|`` of the norm that follows them (the
    residual trunk by the sum over the trunk's norms); input channels follow the previous layer's
    choice. Needs a student of the teacher's shape and depth, no wider than the teacher.
    """
    w, tw = student.width, teacher.width
    if student.shape != teacher.shape:
        raise PainterlyError(
            f"cannot start a {student.shape}-shaped student from a {teacher.shape}-shaped teacher"
        )
    if student.residual_blocks != teacher.residual_blocks:
        raise PainterlyError(
            f"cannot start a student of {student.residual_blocks} residual blocks from a teacher of "
            f"{teacher.residual_blocks}"
        )
    if w > tw:
        raise PainterlyError(f"cannot start a width-{w} student from a width-{tw} teacher")
    (e1, e2, e3), (d1, d2) = shape_channels(student.shape, w)

    def gamma(norm: Any) -> torch.Tensor:
        return norm.weight.abs()

    # Nested Sequentials indexed by position: typed Any, their layers' types are known only at run time.
    enc, dec = cast(Any, teacher.encoder), cast(Any, teacher.decoder)
    keep1 = _keep(gamma(enc[0][1]), e1)
    keep2 = _keep(gamma(enc[1][1]), e2)
    trunk = gamma(enc[2][1]).clone()
    for block in cast(Any, teacher.residuals):
        trunk += gamma(block.body[2])
    keep3 = _keep(trunk, e3)
    keep_dec1 = _keep(gamma(dec[0][1][1]), d1)
    keep_dec2 = _keep(gamma(dec[1][1][1]), d2)
    rgb = torch.arange(3)

    def copy_conv(dst: torch.nn.Conv2d, src: torch.nn.Conv2d, out: torch.Tensor, inp: torch.Tensor) -> None:
        dst.weight.copy_(src.weight[out][:, inp])
        dst.bias.copy_(src.bias[out])  # type: ignore[union-attr, index]  # built with biases

    def copy_norm(dst: Any, src: Any, out: torch.Tensor) -> None:
        dst.weight.copy_(src.weight[out])
        dst.bias.copy_(src.bias[out])

    senc, sdec = cast(Any, student.encoder), cast(Any, student.decoder)
    for (s_layer, t_layer), out, inp in (
        ((senc[0], enc[0]), keep1, rgb),
        ((senc[1], enc[1]), keep2, keep1),
        ((senc[2], enc[2]), keep3, keep2),
        ((sdec[0][1], dec[0][1]), keep_dec1, keep3),
        ((sdec[1][1], dec[1][1]), keep_dec2, keep_dec1),
    ):
        copy_conv(s_layer[0][1], t_layer[0][1], out, inp)
        copy_norm(s_layer[1], t_layer[1], out)
    for s_block, t_block in zip(student.residuals, teacher.residuals, strict=True):
        sb, tb = cast(Any, s_block.body), cast(Any, t_block.body)
        copy_conv(sb[0][0][1], tb[0][0][1], keep3, keep3)
        copy_norm(sb[0][1], tb[0][1], keep3)
        copy_conv(sb[1][1], tb[1][1], keep3, keep3)
        copy_norm(sb[2], tb[2], keep3)
    copy_conv(sdec[2][1], dec[2][1], rgb, keep_dec2)


def distill(
    settings: DistillSettings, callback: Callable[[TrainProgress], None] | None = None
) -> DistillResult:
    """Train a student of ``settings.width`` to reproduce ``settings.teacher``; returns when done,
    after ``max_seconds``, or after Ctrl-C / SIGTERM (the model is written in every case)."""
    s = settings
    validate_distill_settings(s)
    teacher_path = resolve_model(s.teacher)
    if teacher_path.suffix == ONNX_SUFFIX:
        raise PainterlyError("the teacher must be a painterly model file (.safetensors), not an ONNX file")
    output = Path(s.output)
    refuse_overwriting_inputs(output, [teacher_path])
    loaded, teacher_meta, _ = read_model_file(teacher_path)
    if isinstance(loaded, ConditionalTransformerNet):
        if s.teacher_style is None:
            raise PainterlyError(
                f"{teacher_path.name} holds several styles ({', '.join(loaded.styles)}): "
                "name the one to distill with --style NAME"
            )
        teacher, teacher_meta = single_style(loaded, teacher_meta, s.teacher_style, teacher_path.name)
    elif s.teacher_style is not None and s.teacher_style != teacher_meta.get("name"):
        raise PainterlyError(
            f"{teacher_path.name} holds one style ({teacher_meta.get('name')!r}): --style is for a "
            f"multi-style teacher; leave it out"
        )
    else:
        teacher = loaded
    refuse_work_folder_over_data(s.workdir or default_workdir(output), s.data)
    files = find_images(s.data)
    refuse_overwriting_inputs(output, files)
    runtime = Runtime(s.device, s.precision)
    device = runtime.device
    sampler = CropSampler(files, s.image_size, seed=s.seed)

    torch.manual_seed(s.seed)
    # The student keeps the teacher's decoder (its upsampling): a nearest-neighbour student of a
    # bilinear teacher would bring back the 4 px grid the teacher was trained without. It keeps the
    # teacher's shape and depth too, so that a compact teacher's student stays cheap at full size.
    student = TransformerNet(
        s.width, residual_blocks=teacher.residual_blocks, upsample=teacher.upsample, shape=teacher.shape
    )
    if s.init == "teacher":
        init_from_teacher(student, teacher)
    teacher = runtime.place(teacher).eval()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    student = runtime.place(student).train()

    perceptual = None
    if s.perceptual_weight > 0:
        from painterly.losses import PerceptualLoss
        from painterly.vgg.weights import load_vgg

        loss_info = teacher_meta.get("loss") or {}
        network = str(loss_info.get("network", "vgg16"))
        vgg = runtime.place(load_vgg(network, last_layer="relu2_2", device=device))
        perceptual = PerceptualLoss(
            vgg, ["relu2_2"], [], content_weight=s.perceptual_weight, style_weight=0.0, tv_weight=0.0
        )

    optimizer = torch.optim.Adam(student.parameters(), lr=s.learning_rate)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, s.iterations) / s.iterations))
    )
    teacher_sha = hashlib.sha256(teacher_path.read_bytes()).hexdigest()
    keep = ("name", "style", "style_sha256", "style_image_size", "style_size", "loss")
    base = {k: teacher_meta[k] for k in keep if k in teacher_meta}
    base["name"] = s.name or teacher_meta.get("name") or teacher_path.stem
    base["distilled_from"] = {
        "teacher": teacher_path.name,
        "teacher_sha256": teacher_sha,
        "teacher_width": teacher.width,
        "teacher_shape": teacher.shape,
        "teacher_residual_blocks": teacher.residual_blocks,
        **({"teacher_style": s.teacher_style} if s.teacher_style is not None else {}),
        "teacher_steps": teacher_meta.get("steps"),
        "teacher_training_seconds": teacher_meta.get("training_seconds"),
        "teacher_training": teacher_meta.get("training"),
    }
    training = {
        "method": "distillation",
        "loss": "l1" + (f" + {s.perceptual_weight} x relu2_2 content" if perceptual else ""),
        "init": s.init,
        "batch_size": s.batch_size,
        "image_size": s.image_size,
        "learning_rate": s.learning_rate,
        "schedule": f"cosine over {s.iterations} steps",
        "seed": s.seed,
        "images": len(files),
        "precision": runtime.precision_name,
        **runtime.hardware(),
    }
    recent: list[float] = []

    def save(step: int, seconds: float) -> str:
        loss = sum(recent) / len(recent) if recent else float("nan")
        metadata = run_metadata({**base, "training": {**training, "final_l1": round(loss, 5)}}, step, seconds)
        write_model_file(output, student, metadata)
        return f"model saved at step {step}"

    def step_function(step: int) -> dict[str, float]:
        batch = runtime.layout(sampler.batch(step, s.batch_size).to(device))
        with torch.no_grad(), runtime.autocast():
            target = teacher(batch).float().clamp(0, 1)
        with runtime.autocast():
            result = student(batch).float()
        pixel = F.l1_loss(result, target)
        total = pixel
        losses = {"l1": pixel.item()}
        if perceptual is not None:
            with runtime.autocast():
                perceptual.set_content(target)
                extra = perceptual(result)["total"]
            total = total + extra.float()
            losses["perceptual"] = float(extra.item())
        losses["total"] = total.item()
        if math.isfinite(losses["total"]):
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            schedule.step()
            recent[:] = (recent + [losses["l1"]])[-s.log_every :]
        return losses

    with workdir(Path(s.workdir) if s.workdir else default_workdir(output)) as folder:
        outcome = run_loop(
            step_function,
            total_steps=s.iterations,
            log=LossLog(folder / "losses.jsonl"),
            log_every=s.log_every,
            periodic=[(s.checkpoint_every, save)],
            callback=callback,
            max_seconds=s.max_seconds,
        )
        student.eval()
        if outcome.step > 0:
            save(outcome.step, outcome.seconds)
    loss = sum(recent) / len(recent) if recent else float("nan")
    skipped = sorted(sampler.bad)
    return DistillResult(output, outcome.step, outcome.seconds, outcome.interrupted, loss, student, skipped)


__all__ = ["DistillProgress", "DistillResult", "DistillSettings", "distill", "init_from_teacher"]
