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

import dataclasses
import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image

from painterly.errors import PainterlyError, check_weight, did_you_mean
from painterly.feedforward.architectures import DEFAULT as SINGLE
from painterly.feedforward.catalog import resolve_model
from painterly.feedforward.conditional import ARCHITECTURE as CIN
from painterly.feedforward.conditional import ConditionalTransformerNet
from painterly.feedforward.data import (
    CropSampler,
    DeviceCropSampler,
    find_images,
    refuse_work_folder_over_data,
)
from painterly.feedforward.equivariance import GRID
from painterly.feedforward.files import (
    check_batch_size,
    check_seed,
    refuse_overwriting_inputs,
    require_regular_file,
)
from painterly.feedforward.loop import (
    LoopOutcome,
    LossLog,
    Runtime,
    TrainProgress,
    load_optimizer,
    optimizer_tensors,
    run_loop,
    run_metadata,
    workdir,
)
from painterly.feedforward.mixing import check_style_names
from painterly.feedforward.model_file import (
    SUFFIX,
    check_model_name,
    check_model_output,
    read_metadata,
    read_model_file,
    write_model_file,
)
from painterly.feedforward.network import (
    MULTIPLE,
    RESIDUAL_BLOCKS,
    SHAPE_BLOCKS,
    TransformerNet,
    check_shape,
    check_upsample,
    pad_to_multiple,
    parse_width,
)
from painterly.feedforward.objective import TrainStep, build_objective, style_rows
from painterly.feedforward.settings import TrainSettings
from painterly.feedforward.warm_start import warm_start
from painterly.images import (
    check_output_path,
    open_image,
    pil_to_tensor,
    resize_long_side,
    save_image,
    tensor_to_pil,
)
from painterly.losses.coarse import check_factor, coarse_weights
from painterly.vgg.network import check_layers, layer_names
from painterly.vgg.weights import load_vgg


@dataclass
class TrainResult:
    output: Path
    steps: int
    seconds: float
    interrupted: bool
    skipped_images: int
    #: A :class:`TransformerNet`, or a :class:`ConditionalTransformerNet` for several styles.
    net: torch.nn.Module = field(repr=False)
    #: The training images that could not be read (skipped).
    skipped: list[Path] = field(default_factory=list)


#: In the training folder: the checkpoint (network and optimizer state) to resume from.
CHECKPOINT = "checkpoint.safetensors"
#: In the training folder: the network at the last checkpoint, as a model file.
LATEST = "latest.safetensors"


def default_workdir(output: str | os.PathLike) -> Path:
    output = Path(output)
    stem = output.name[: -len(SUFFIX)] if output.name.endswith(SUFFIX) else output.name
    return output.with_name(stem + ".train")


def validate_settings(s: TrainSettings) -> None:
    """Fail before any work on a bad setting."""
    _check_numbers(s)
    check_seed(s.seed)
    check_upsample(s.upsample)
    check_shape(s.shape)
    check_batch_size(s.batch_size, s.image_size)
    parse_width(s.width)
    if not s.content_layers:
        raise PainterlyError("content layers: name at least one layer (for example relu2_2)")
    if not s.style_layers:
        raise PainterlyError("style layers: name at least one layer (for example relu1_2,relu2_2)")
    check_layers(s.network, [*s.content_layers, *s.style_layers])
    _check_files(s)


def _check_numbers(s: TrainSettings) -> None:
    """Counts, sizes, weights, learning rate and time limit."""
    for name in (
        "iterations",
        "batch_size",
        "image_size",
        "style_size",
        "checkpoint_every",
        "log_every",
        "validate_every",
        "validation_size",
        "equivariance_shift",
    ):
        value = getattr(s, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise PainterlyError(f"{name.replace('_', ' ')} must be a positive whole number, got {value!r}")
    if s.image_size < 32 or s.image_size % MULTIPLE:
        raise PainterlyError(
            f"image size must be a multiple of {MULTIPLE} px from 32 up (the network halves it twice), "
            f"got {s.image_size}"
        )
    if not GRID <= s.equivariance_shift <= s.image_size // 4:
        raise PainterlyError(
            f"equivariance shift must be from {GRID} to a quarter of the image size ({s.image_size // 4}), "
            f"got {s.equivariance_shift}"
        )
    for name in (
        "content_weight",
        "style_weight",
        "tv_weight",
        "learning_rate",
        "temporal_weight",
        "equivariance_weight",
    ):
        check_weight(name.replace("_", " "), getattr(s, name))
    if s.learning_rate <= 0:
        raise PainterlyError("learning rate must be positive")
    for factor, multiplier in coarse_weights(s.coarse_style).items():
        check_factor(factor, s.image_size, s.style_size)
        check_weight(f"coarse style weight of factor {factor}", multiplier)
    if len(set(s.coarse_style)) != len(s.coarse_style):
        raise PainterlyError(f"coarse style factors repeat: {list(s.coarse_style)}")
    if s.time_limit is not None and (
        not isinstance(s.time_limit, int | float)
        or isinstance(s.time_limit, bool)
        or not 0 < s.time_limit < 1e9
    ):
        raise PainterlyError(
            f"time limit must be a positive, finite number of seconds (under 1e9), got {s.time_limit!r}"
        )


def _check_files(s: TrainSettings) -> None:
    """The output, the style, base, init and validation files, and what may not be overwritten."""
    output = check_output_path(check_model_output(s.output))
    check_model_name(s.name)
    styles = [require_regular_file(p, "style image") for p in s.style_paths()]
    if not styles:
        raise PainterlyError("name at least one style image")
    architecture = architecture_for(s)
    _check_shape_fits(s, architecture)
    inputs = [*styles]
    if s.base is not None:
        base = require_regular_file(s.base, "base model")
        if len(styles) != 1:
            raise PainterlyError("--base adds one style at a time: give exactly one --style")
        meta = read_metadata(base)
        if meta.get("architecture") != CIN:
            raise PainterlyError(
                f"--base {base}: styles can only be added to a multi-style (cin) model, "
                f"not to a {meta.get('architecture') or 'single-style'} one"
            )
        if style_name(styles[0]) in meta.get("styles", []):
            raise PainterlyError(f"--base {base} already has a style named {style_name(styles[0])!r}")
        inputs.append(base)
    elif architecture == CIN:
        check_style_names([style_name(p) for p in styles])
    _check_style_weight_scales(s.style_weight_scales, [style_name(p) for p in styles])
    if s.init is not None:
        if s.base is not None:
            raise PainterlyError("--init and --base: --base already gives the network its weights; use one")
        init = require_regular_file(s.init, "--init model")
        _check_init(init, s)
        inputs.append(init)
    validation = [require_regular_file(p, "validation image") for p in s.validation]
    refuse_overwriting_inputs(output, [*inputs, *validation])
    if s.workdir is not None:
        refuse_overwriting_inputs(s.workdir, [*inputs, *validation])
    # Every checkpoint rewrites these two files in the training folder: e.g. a --base taken from an
    # earlier run's latest.safetensors, with that run's --workdir again, would be replaced.
    folder = Path(s.workdir) if s.workdir else default_workdir(output)
    for name in (CHECKPOINT, LATEST):
        refuse_overwriting_inputs(folder / name, [*inputs, *validation])
    refuse_work_folder_over_data(folder, s.data)


def _check_style_weight_scales(scales: Mapping[str, float] | None, names: list[str]) -> None:
    """Refuse per-style scales of styles this run does not train, and scales that are not positive."""
    for name, scale in (scales or {}).items():
        if name not in names:
            raise PainterlyError(
                f"style weight scale for {name!r}: this run trains no style of that name "
                f"(its styles: {', '.join(names)})"
            )
        if isinstance(scale, bool) or not isinstance(scale, int | float):
            raise PainterlyError(f"style weight scale for {name!r} must be a number, got {scale!r}")
        if check_weight(f"style weight scale for {name!r}", scale) <= 0:
            raise PainterlyError(f"style weight scale for {name!r} must be positive, got {scale}")


def _check_init(path: Path, s: TrainSettings) -> None:
    """Refuse an ``--init`` file that is not a model file or whose network does not fit these settings."""
    try:
        meta = read_metadata(path)
    except PainterlyError as exc:
        raise PainterlyError(f"--init: {exc}") from None
    shape = meta.get("shape", "johnson")
    blocks = meta.get("residual_blocks", SHAPE_BLOCKS.get(shape, RESIDUAL_BLOCKS))
    theirs = (meta.get("width"), blocks, meta.get("upsample", "nearest"), shape)
    ours = (parse_width(s.width), SHAPE_BLOCKS[s.shape], s.upsample, s.shape)
    if theirs != ours:
        raise PainterlyError(
            f"--init {path.name}: its network (width {theirs[0]}, {theirs[1]} residual blocks, {theirs[2]} "
            f"upsampling, {theirs[3]} shape) does not fit these settings' (width {ours[0]}, {ours[1]}, "
            f"{ours[2]}, {ours[3]}): set --width, --upsample and --shape to match it"
        )


def architecture_for(s: TrainSettings) -> str:
    """``cin`` for several styles or a base model, ``johnson2016`` for one style, or as set."""
    count = len(s.style_paths())
    if s.architecture == "auto":
        return CIN if count > 1 or s.base is not None else SINGLE
    if s.architecture not in (SINGLE, CIN):
        raise PainterlyError(
            f"unknown architecture {s.architecture!r}{did_you_mean(s.architecture, (SINGLE, CIN))}"
        )
    if s.architecture == SINGLE and (count > 1 or s.base is not None):
        raise PainterlyError(f"architecture {SINGLE} holds one style; use cin (or auto) for several")
    return s.architecture


def _check_shape_fits(s: TrainSettings, architecture: str) -> None:
    if s.shape != "johnson" and architecture == CIN:
        raise PainterlyError(
            f"the {s.shape} shape is for single-style networks; multi-style ones are johnson-shaped"
        )


def style_name(path: str | os.PathLike) -> str:
    """A style's name in a multi-style model: its file name without the suffix."""
    return Path(path).stem


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
    settings = _with_model_paths(settings)
    validate_settings(settings)
    runtime = Runtime(settings.device, settings.precision)
    if settings.time_limit is not None and runtime.world > 1:
        raise PainterlyError(
            "--time-limit stops each process on its own clock: not with torchrun; use --iterations"
        )
    with runtime.process_group():
        return _train(settings, callback, runtime)


def _with_model_paths(s: TrainSettings) -> TrainSettings:
    """``base`` and ``init`` as files: a shipped or ``$PAINTERLY_MODELS`` name (e.g. ``zoo``) is found."""

    def found(value: str | os.PathLike | None, option: str) -> str | None:
        if value is None:
            return None
        try:
            return str(resolve_model(value))
        except PainterlyError as exc:
            raise PainterlyError(f"{option}: {exc}") from None

    return dataclasses.replace(s, base=found(s.base, "--base"), init=found(s.init, "--init"))


def _build_net(
    s: TrainSettings, architecture: str, style_paths: list[Path], device: torch.device
) -> tuple[TransformerNet | ConditionalTransformerNet, list[int], dict[str, object]]:
    """The network to train, the indices of the styles this run trains, and metadata of a base or init."""
    torch.manual_seed(s.seed)
    if s.base is not None:
        loaded, base_meta, _ = read_model_file(s.base)
        assert isinstance(loaded, ConditionalTransformerNet)
        index = loaded.add_style(style_name(style_paths[0]))
        loaded.to(device).train_only_style(index)
        base_path = Path(s.base)
        base_info = {
            "file": base_path.name,
            "sha256": _sha256(base_path),
            "styles": list(base_meta.get("styles", [])),
            "steps": base_meta.get("steps"),
            "training_seconds": base_meta.get("training_seconds"),
        }
        return loaded, [index], {"base": base_info, "style_sources": list(base_meta.get("style_sources", []))}
    names = [style_name(p) for p in style_paths]
    net: TransformerNet | ConditionalTransformerNet
    if architecture == CIN:
        net = ConditionalTransformerNet(s.width, names, upsample=s.upsample)
    else:
        net = TransformerNet(s.width, upsample=s.upsample, shape=s.shape)
    extra: dict[str, object] = {}
    if s.init is not None:
        source, source_meta, _ = read_model_file(s.init)
        warm_start(net, source, names[0])
        init_path = Path(s.init)
        extra["init"] = {
            "file": init_path.name,
            "sha256": _sha256(init_path),
            "name": source_meta.get("name"),
            "steps": source_meta.get("steps"),
            "training_seconds": source_meta.get("training_seconds"),
        }
    return net.to(device), list(range(len(names))), extra


def _resume(
    checkpoint: Path,
    net: TransformerNet | ConditionalTransformerNet,
    optimizer: torch.optim.Optimizer,
    s: TrainSettings,
    device: torch.device,
) -> tuple[int, float, object, dict[str, object]]:
    """Load the checkpoint into ``net`` and ``optimizer``: (steps done, seconds spent, its init record,
    its metadata)."""
    if not checkpoint.is_file():
        raise PainterlyError(f"--resume: no checkpoint at {checkpoint}")
    loaded, meta, others = read_model_file(checkpoint)
    if loaded.config() != net.config():
        raise PainterlyError(
            f"--resume: the checkpoint's network ({_describe(loaded.config())}) is not the one "
            f"these settings make ({_describe(net.config())})"
        )
    net.load_state_dict(loaded.state_dict())
    load_optimizer(optimizer, {k: v.to(device) for k, v in others.items()}, s.learning_rate)
    training = meta.get("training")
    init = training.get("init") if isinstance(training, dict) else None
    return int(meta["steps"]), float(meta.get("training_seconds", 0.0)), init, meta


def _loss_history(
    previous: Mapping[str, object], current: Mapping[str, object], start_step: int
) -> list[object]:
    """The loss blocks a resumed run trained with before this one's: the checkpoint's history plus,
    when the loss or a style image (its SHA-256; a multi-style model's style sources) changed at
    this resume, its last block with the step it ended at."""
    history = previous.get("loss_history")
    kept = list(history) if isinstance(history, list) else []
    if previous.get("loss") is None:
        return kept
    # what the checkpoint recorded (an older one may lack the style's SHA-256: not a change)
    old = {k: previous[k] for k in ("loss", "style_sha256", "style_sources") if k in previous}
    if any(current.get(k) != v for k, v in old.items()):
        kept.append({"until_step": start_step, **old})
    return kept


def _train(
    s: TrainSettings, callback: Callable[[TrainProgress], None] | None, runtime: Runtime
) -> TrainResult:
    """One run, from the parts: data, network, optimizer, loss network, objective, step, outputs."""
    device = runtime.device
    output = Path(s.output)
    folder = Path(s.workdir) if s.workdir else default_workdir(output)
    style_paths = [Path(p) for p in s.style_paths()]
    style_images = [open_image(p, what="style image") for p in style_paths]
    files, sampler, validation = _open_data(s, runtime, output)

    net, trained, extra_meta = _build_net(s, architecture_for(s), style_paths, device)
    init_info = extra_meta.pop("init", None)
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=s.learning_rate)
    start_step, elapsed_before = 0, 0.0
    resumed: dict[str, object] = {}
    if s.resume:
        start_step, elapsed_before, resumed_init, resumed = _resume(
            folder / CHECKPOINT, net, optimizer, s, device
        )
        init_info = init_info or resumed_init  # the run began from it, even if not named again

    deepest = _deepest(s.network, [*s.content_layers, *s.style_layers])
    vgg = runtime.place(load_vgg(s.network, last_layer=deepest, device=device))
    _choose_cpu_compute(runtime, net, vgg, s)
    names = _trained_names(net, trained, style_paths)
    objective = build_objective(s, runtime, vgg, style_images, trained, names)
    step_function = TrainStep(s, runtime, net, sampler, objective, optimizer, trained)
    metadata = _metadata_base(
        s, runtime, output, style_paths, style_images, extra_meta, objective.scales, len(files), init_info
    )
    if history := _loss_history(resumed, metadata, start_step):
        metadata["loss_history"] = history  # a recipe changed along the way: what each part trained with
    outputs = _RunOutputs(folder, net, optimizer, metadata, validation, trained)

    net.train()
    with workdir(folder, create=runtime.is_main):
        outcome = run_loop(
            step_function,
            total_steps=s.iterations,
            start_step=start_step,
            elapsed_before=elapsed_before,
            log=LossLog(folder / "losses.jsonl", append=s.resume) if runtime.is_main else None,
            log_every=s.log_every,
            periodic=outputs.periodic(s),
            callback=callback,
            max_seconds=s.time_limit,
            is_main=runtime.is_main,
        )
        if runtime.is_main:
            outputs.finish(output, outcome, start_step, resumed=s.resume)
    if not outcome.interrupted:
        runtime.barrier()
    bad = sorted(sampler.bad)
    return TrainResult(output, outcome.step, outcome.seconds, outcome.interrupted, len(bad), net, bad)


def _open_data(
    s: TrainSettings, runtime: Runtime, output: Path
) -> tuple[list[Path], CropSampler, list[Image.Image]]:
    """The training photos, their crop sampler and the validation images (resized)."""
    files = find_images(s.data)
    refuse_overwriting_inputs(output, files)
    sampler: CropSampler
    if runtime.device.type == "cpu":
        sampler = CropSampler(files, s.image_size, seed=s.seed, rank=runtime.rank)
    else:
        sampler = DeviceCropSampler(files, s.image_size, runtime.device, seed=s.seed, rank=runtime.rank)
    validation = [open_image(p, what="validation image") for p in s.validation] or _default_validation(files)
    return files, sampler, [resize_long_side(image, s.validation_size) for image in validation]


def _coarse_record(coarse_style: Sequence[int] | Mapping[int, float]) -> list[int] | dict[str, float]:
    """The model file's record of ``--coarse-style``: the factors, or each factor's multiplier
    where one is not 1."""
    weights = coarse_weights(coarse_style)
    if all(multiplier == 1.0 for multiplier in weights.values()):
        return list(weights)
    return {str(factor): multiplier for factor, multiplier in weights.items()}


def _trained_names(
    net: TransformerNet | ConditionalTransformerNet, trained: Sequence[int], style_paths: Sequence[Path]
) -> list[str]:
    if isinstance(net, ConditionalTransformerNet):
        return [net.styles[i] for i in trained]
    return [style_name(style_paths[0])]


def _metadata_base(
    s: TrainSettings,
    runtime: Runtime,
    output: Path,
    style_paths: Sequence[Path],
    style_images: Sequence[Image.Image],
    extra_meta: dict[str, object],
    scales: Mapping[str, float],
    images: int,
    init_info: object,
) -> dict[str, object]:
    """What the model files of this run record besides steps and seconds (:func:`run_metadata`)."""
    # recorded when the term is on and wider than the grid, so that a resume that widens it shows in
    # loss_history (the grid's shift leaves the block as older models have it)
    wide_shift = bool(s.equivariance_weight) and s.equivariance_shift != GRID
    sources = [
        {
            "name": style_name(path),
            "file": path.name,
            "sha256": _sha256(path),
            "image_size": list(image.size),
            "style_size": s.style_size,
        }
        for path, image in zip(style_paths, style_images, strict=True)
    ]
    if architecture_for(s) == CIN:
        identity: dict[str, object] = {
            "name": s.name or output.name.removesuffix(SUFFIX),
            **extra_meta,
            "style_sources": [*extra_meta.get("style_sources", []), *sources],  # type: ignore[misc]
        }
    else:
        identity = {
            "name": s.name or style_paths[0].stem,
            "style": style_paths[0].name,
            "style_sha256": sources[0]["sha256"],
            "style_image_size": sources[0]["image_size"],
        }
    return {
        **identity,
        "style_size": s.style_size,
        "loss": {
            "network": s.network,
            "content_layers": list(s.content_layers),
            "style_layers": list(s.style_layers),
            "content_weight": s.content_weight,
            "style_weight": s.style_weight,
            **({"style_weight_scales": dict(scales)} if scales else {}),
            **({"coarse_style": _coarse_record(s.coarse_style)} if s.coarse_style else {}),
            "tv_weight": s.tv_weight,
            "tv_form": "squared",
            "convention": "classic",
            **({"equivariance_shift": s.equivariance_shift} if wide_shift else {}),
        },
        "training": {
            "batch_size": s.batch_size,
            "world_size": runtime.world,
            "image_size": s.image_size,
            "learning_rate": s.learning_rate,
            "seed": s.seed,
            "images": images,
            "device": runtime.device.type,
            "hardware": runtime.hardware(),
            "precision": runtime.precision_name,
            "layout": "channels_last" if runtime.channels_last else "contiguous",
            "temporal_weight": s.temporal_weight,
            "equivariance_weight": s.equivariance_weight,
            "equivariance_shift": s.equivariance_shift,
            "trained_parameters": "new style's norm parameters only" if s.base is not None else "all",
            "init": init_info,
        },
    }


class _RunOutputs:
    """What a run writes in its folder (checkpoints, validation sheets) and, at the end, the model."""

    def __init__(
        self,
        folder: Path,
        net: TransformerNet | ConditionalTransformerNet,
        optimizer: torch.optim.Optimizer,
        metadata: Mapping[str, object],
        validation: Sequence[Image.Image],
        trained: Sequence[int],
    ) -> None:
        self.folder = folder
        self.net = net
        self.optimizer = optimizer
        self.metadata = metadata
        self.validation = list(validation)
        self.trained = list(trained)

    def periodic(self, s: TrainSettings) -> list[tuple[int, Callable[[int, float], str | None]]]:
        """The tasks :func:`run_loop` runs every N steps: validation sheet (if any images), checkpoint."""
        tasks: list[tuple[int, Callable[[int, float], str | None]]] = [
            (s.checkpoint_every, self.save_checkpoint)
        ]
        if self.validation:
            tasks.insert(0, (s.validate_every, self.save_validation))
        return tasks

    def save_checkpoint(self, step: int, seconds: float) -> str:
        metadata = run_metadata(self.metadata, step, seconds)
        extra = optimizer_tensors(self.optimizer)
        write_model_file(self.folder / CHECKPOINT, self.net, metadata, kind="checkpoint", extra=extra)
        # The network alone, usable as a model while training goes on (a third of the checkpoint's
        # size: no optimizer state), e.g. to fetch from a machine that may be taken back.
        write_model_file(self.folder / LATEST, self.net, metadata)
        return f"checkpoint at step {step}"

    def save_validation(self, step: int, seconds: float = 0.0) -> str:
        """One row per trained style, the validation images side by side: ``val_<step>.png``."""
        net = self.net
        device = next(net.parameters()).device
        net.eval()
        with torch.no_grad():
            rows = [[self._paint(img, index, device) for img in self.validation] for index in self.trained]
        net.train()
        width = max(sum(t.width for t in row) for row in rows)
        height = max(t.height for t in rows[0])
        sheet = Image.new("RGB", (width, height * len(rows)), "white")
        for y, row in enumerate(rows):
            x = 0
            for tile in row:
                sheet.paste(tile, (x, y * height))
                x += tile.width
        return f"validation image {save_image(sheet, self.folder / f'val_{step:06d}.png')}"

    def _paint(self, image: Image.Image, index: int, device: torch.device) -> Image.Image:
        x = pil_to_tensor(image).to(device)
        net = self.net
        if isinstance(net, ConditionalTransformerNet):
            return tensor_to_pil(net.stylize_tensor(x, style_rows(net, [index], device)))
        return tensor_to_pil(net.stylize_tensor(x))

    def finish(self, output: Path, outcome: LoopOutcome, start_step: int, *, resumed: bool) -> None:
        """After the loop (rank 0): a last validation sheet, a checkpoint, the model unless interrupted."""
        step, seconds = outcome.step, outcome.seconds
        if self.validation and not outcome.interrupted and step > start_step:
            self.save_validation(step)
        if step > start_step or not resumed:
            self.save_checkpoint(step, seconds)
        if not outcome.interrupted:
            write_model_file(output, self.net, run_metadata(self.metadata, step, seconds))


def _choose_cpu_compute(
    runtime: Runtime, net: TransformerNet | ConditionalTransformerNet, vgg: torch.nn.Module, s: TrainSettings
) -> None:
    """Precision and layout of a CPU training (``precision`` auto) from what this machine measures
    (:mod:`painterly.tuning`).

    The same per-machine choice as image optimization and stylizing: on CPUs with native bf16, bf16
    autocast in channels-last is usually fastest; on AVX2-only CPUs channels-last float32 can be
    slower than plain NCHW. The probe is one training step's compute without the optimizer: the
    network, the loss network's style layers, Gram matrices, the backward pass.
    """
    if runtime.device.type != "cpu" or s.precision != "auto" or runtime.distributed:
        return  # GPUs: bf16/fp16 autocast in channels-last; an explicit precision; DDP ranks alike
    from painterly.losses import gram_matrix
    from painterly.tuning import decide_compute

    layers = list(s.style_layers)

    def probe(x: torch.Tensor) -> None:
        x, _ = pad_to_multiple(x)
        if isinstance(net, ConditionalTransformerNet):
            y = net(x, net.weights_for(None, x.shape[0], x.device))
        else:
            y = net(x)
        features = vgg(y, layers)
        total = sum(gram_matrix(f).float().square().mean() for f in features.values())
        assert isinstance(total, torch.Tensor)
        total.backward()

    config = net.config()
    task = f"train-{config['architecture']}-w{config['width']}-{config.get('upsample')}-{s.network}"
    decision = decide_compute(
        runtime.device, torch.nn.ModuleList([net, vgg]), s.image_size, task=task, probe=probe
    )
    net.zero_grad(set_to_none=True)  # the probe's gradients
    runtime.amp_dtype = decision.path.dtype
    runtime.channels_last = decision.path.channels_last


def _describe(config: dict[str, object]) -> str:
    return ", ".join(f"{key} {value}" for key, value in sorted(config.items()))


__all__ = ["TrainProgress", "TrainResult", "TrainSettings", "train"]
