"""The training loop every feed-forward trainer shares: ``train``, ``distill`` and the next ones.

A trainer supplies one function, ``step(step) -> {loss name: value}`` (a 'total' among them), and
its periodic tasks (checkpoints, validation images); this module does the rest the same way for
all: device, precision and memory layout (:class:`Runtime`), DistributedDataParallel under
torchrun, SIGTERM handled like Ctrl-C, the JSON-lines loss log (whatever loss names arrive),
progress reports, a time limit, optimizer state in checkpoints and the common metadata.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch

from painterly.devices import pick_device, pick_precision
from painterly.errors import PainterlyError
from painterly.feedforward.signals import sigterm_as_interrupt

#: A step function: runs training step ``step`` (0-based), returns its losses by name.
StepFunction = Callable[[int], Mapping[str, float]]
#: A periodic task: (every N steps, function of (step, seconds) returning a message or None).
Periodic = tuple[int, Callable[[int, float], str | None]]
_Module = TypeVar("_Module", bound=torch.nn.Module)


@dataclass
class TrainProgress:
    """Reported after every step (on rank 0 only): the losses under whatever names the trainer uses."""

    step: int
    total_steps: int
    losses: dict[str, float]
    seconds: float
    #: Steps per second since this run (not the resumed one) started.
    rate: float
    events: list[str] = field(default_factory=list)


@dataclass
class LoopOutcome:
    step: int
    seconds: float
    interrupted: bool
    #: Mean of each loss over the last logging window (empty if no step ran).
    losses: dict[str, float]


class Runtime:
    """Where and how a trainer computes: device, autocast dtype, channels-last layout, DDP rank."""

    def __init__(self, device: str = "auto", precision: str = "auto") -> None:
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.device = pick_device(device)
        if self.distributed and self.device.type == "cuda":
            self.device = torch.device("cuda", self.local_rank)
        self.amp_dtype = pick_precision(precision, self.device)
        #: Convolutions are faster in channels-last on CPUs (oneDNN's native layout) and on CUDA
        #: GPUs with tensor cores (cuDNN's NHWC kernels for bf16/fp16).
        self.channels_last = self.device.type in ("cpu", "cuda")
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed crop size: pick the fastest kernels once

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def precision_name(self) -> str:
        return str(self.amp_dtype).replace("torch.", "") if self.amp_dtype else "float32"

    @contextlib.contextmanager
    def process_group(self) -> Iterator[None]:
        """Joins torchrun's process group for the block (nothing when not distributed)."""
        if not self.distributed:
            yield
            return
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        if not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        try:
            yield
        finally:
            if torch.distributed.is_initialized():
                torch.distributed.destroy_process_group()

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        enabled = self.amp_dtype is not None
        return torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32, enabled=enabled)

    def layout(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def place(self, module: _Module) -> _Module:
        """Move ``module`` to the device, in the layout the device prefers."""
        module = module.to(self.device)
        if self.channels_last:
            module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # stubs lack it
        return module

    def parallel(self, net: torch.nn.Module) -> torch.nn.Module:
        """``net`` wrapped in DistributedDataParallel under torchrun, else ``net`` itself."""
        if not self.distributed:
            return net
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(net, device_ids=device_ids)

    def barrier(self) -> None:
        if self.distributed and torch.distributed.is_initialized():
            torch.distributed.barrier()

    def hardware(self) -> dict[str, Any]:
        """What the run ran on, for the model's metadata."""
        cpu = platform.processor() or platform.machine()
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as handle:
                for line in handle:
                    if line.startswith("model name"):
                        cpu = line.split(":", 1)[1].strip()
                        break
        except OSError:
            pass
        info: dict[str, Any] = {"device": self.device.type, "cpu": cpu, "cpu_count": os.cpu_count()}
        info["torch_threads"] = torch.get_num_threads()
        if self.device.type == "cuda":
            info["gpu"] = torch.cuda.get_device_name(self.device)
        return info


@contextlib.contextmanager
def workdir(path: Path, create: bool = True) -> Iterator[Path]:
    """Create the run's folder for the block; if the block fails and left it empty, remove it again."""
    existed = path.is_dir()
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PainterlyError(f"cannot create folder {path}: {exc.strerror or exc}") from None
    try:
        yield path
    except BaseException:
        if create and not existed and path.is_dir() and not any(path.iterdir()):
            path.rmdir()
        raise


class LossLog:
    """``losses.jsonl``: one JSON object per logged step, with every loss name that arrives.

    The file is opened at the first write, so a run that fails before its first step leaves none.
    ``append``: a resumed run continues the log; a new run (the default) starts it afresh, so two
    runs' steps never mix in one file.
    """

    def __init__(self, path: Path, *, append: bool = False) -> None:
        self.path = path
        self.append = append
        self._handle: Any = None

    def write(self, step: int, losses: Mapping[str, float], seconds: float) -> None:
        if self._handle is None:
            mode = "a" if self.append else "w"
            self._handle = open(self.path, mode, encoding="utf-8")  # noqa: SIM115 - closed in close()
        record = {"step": step, **losses, "seconds": round(seconds, 2)}
        self._handle.write(json.dumps(record) + "\n")
        self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def run_loop(
    step_function: StepFunction,
    *,
    total_steps: int,
    start_step: int = 0,
    elapsed_before: float = 0.0,
    log: LossLog | None = None,
    log_every: int = 10,
    periodic: Sequence[Periodic] = (),
    callback: Callable[[TrainProgress], None] | None = None,
    max_seconds: float | None = None,
    is_main: bool = True,
) -> LoopOutcome:
    """Run steps ``start_step`` .. ``total_steps - 1``; stop early on Ctrl-C, SIGTERM or the time limit.

    The loss log gets each loss's mean over the window since the previous entry. Periodic tasks
    run on rank 0 after every N-th step but the last (the trainer finishes the run itself). A
    non-finite 'total' stops the run with :class:`PainterlyError` before anything is saved.
    """
    started = time.monotonic()
    step = start_step
    interrupted = False
    window = _Window()
    last_means: dict[str, float] = {}
    try:
        with sigterm_as_interrupt():
            while step < total_steps:
                losses = dict(step_function(step))
                _check_finite(losses, step)
                step += 1
                window.add(losses)
                if not is_main:
                    continue
                seconds = time.monotonic() - started
                if step % log_every == 0 or step == total_steps:
                    last_means = window.flush(log, step, elapsed_before + seconds)
                events = _run_periodic(periodic, step, total_steps, elapsed_before + seconds)
                if callback is not None:
                    rate = (step - start_step) / max(seconds, 1e-9)
                    callback(TrainProgress(step, total_steps, losses, elapsed_before + seconds, rate, events))
                if max_seconds is not None and seconds >= max_seconds:
                    if window:
                        last_means = window.flush(log, step, elapsed_before + seconds)
                    break
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if log is not None:
            log.close()
    if window:
        last_means = window.flush(None, step, 0.0)
    return LoopOutcome(step, elapsed_before + time.monotonic() - started, interrupted, last_means)


def _check_finite(losses: Mapping[str, float], step: int) -> None:
    """A non-finite total stops the run (before anything is saved)."""
    total = losses.get("total", 0.0)
    if not math.isfinite(total):
        raise PainterlyError(
            f"the loss became {total} at step {step}; lower the learning rate or the weights"
        )


def _run_periodic(periodic: Sequence[Periodic], step: int, total_steps: int, seconds: float) -> list[str]:
    """The tasks due after ``step`` (none after the last step); their messages."""
    events = []
    for every, task in periodic:
        if step % every == 0 and step < total_steps:
            message = task(step, seconds)
            if message:
                events.append(message)
    return events


class _Window:
    """Each loss's values since the last log entry."""

    def __init__(self) -> None:
        self.values: dict[str, list[float]] = {}

    def __bool__(self) -> bool:
        return bool(self.values)

    def add(self, losses: Mapping[str, float]) -> None:
        for name, value in losses.items():
            self.values.setdefault(name, []).append(value)

    def flush(self, log: LossLog | None, step: int, seconds: float) -> dict[str, float]:
        """The means of the window, written to ``log`` (if any); the window starts afresh."""
        means = {name: sum(values) / len(values) for name, values in self.values.items()}
        self.values.clear()
        if log is not None:
            log.write(step, means, seconds)
        return means


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """The optimizer's per-parameter state as named tensors, for a safetensors checkpoint."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            tensors[f"optimizer/{index}/{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    return tensors


def load_optimizer(optimizer: torch.optim.Optimizer, tensors: Mapping[str, torch.Tensor], lr: float) -> None:
    """Restore what :func:`optimizer_tensors` saved, with the learning rate ``lr``."""
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


def run_metadata(base: Mapping[str, Any], step: int, seconds: float) -> dict[str, Any]:
    """``base`` plus what every trained model file records: steps, seconds, painterly version."""
    from painterly import __version__

    return {**base, "steps": step, "training_seconds": round(seconds, 1), "painterly_version": __version__}
