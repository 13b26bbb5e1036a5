"""Per-machine speed choices, measured rather than assumed: the precision and memory format that run a
network fastest on the machine at hand.

Why measure: one machine's table does not carry to another. On a CPU with native bf16, bf16 autocast
in channels-last runs VGG19 about twice as fast as plain float32; on an AVX2-only CPU channels-last
float32 was measured 2.3x *slower* than the plain NCHW float32 a straightforward port uses. So on first
use at a size, :func:`decide_compute` times a few forward+backward passes of each candidate path on a
strip of the run's width and keeps the fastest, preferring the plain path (float32, NCHW) unless another
is clearly faster (:data:`CLEARLY_FASTER`). The timings are cached in ``compute.json`` in the painterly
cache folder, keyed by device model, CPU flags, torch version, thread count, task and size bucket, so a
second run measures nothing. Feed-forward stylizing takes the same choice for its style network, timed
with forward passes only (:meth:`painterly.feedforward.inference.StyleModel.compute_for`).

Overrides: the ``precision`` setting (``fp32``/``bf16``/``fp16`` restrict the candidates to that dtype),
``$PAINTERLY_MEMORY_FORMAT`` (``channels_last`` or ``contiguous``) and ``$PAINTERLY_CALIBRATE=0``, which
skips timing and takes the plain path (float32, or the dtype asked for, in NCHW).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import platform
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from painterly.cache import cache_dir
from painterly.devices import cpu_has_fast_bf16
from painterly.errors import PainterlyError, did_you_mean

#: Another path replaces the plain one only when it is at least this much faster (plain/other >= 1.08).
CLEARLY_FASTER = 1.08
#: The same when the timings were taken on a busy machine (noisy: measured 1.27x for a path that is
#: 9% slower at full frame), so that only large gains, such as native bf16's, leave the plain path.
CLEARLY_FASTER_WHEN_BUSY = 1.3
#: About how long a first calibration may take, all candidates together (seconds). Thin strips
#: understate what a path gains on a whole frame (measured at 512 px on a CPU with AMX: bf16 1.12x
#: faster on a 2-second budget's strips, 2.44x on a 6-second budget's, about 2x on whole frames).
CALIBRATION_SECONDS = 6.0
#: Sizes (long side, px) below which nothing is measured: runs this small are quick on any path.
SMALLEST_CALIBRATED = 128
MEMORY_FORMATS = ("auto", "contiguous", "channels_last")
CACHE_FILE = "compute.json"
#: 2: the loss probe's content term on one layer (timings of version 1 misjudged bf16 channels-last).
CACHE_VERSION = 2
#: The flags worth printing next to a CPU's name: the ones that decide which kernels run.
SPEED_FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_bf16",
    "avx512_fp16",
    "avx_vnni",
    "amx_bf16",
    "amx_tile",
    "asimd",
    "bf16",
    "sve",
    "sve2",
)


@dataclass(frozen=True)
class ComputePath:
    """One way to run a network: an autocast dtype (None: float32) and a memory format."""

    name: str
    dtype: torch.dtype | None
    channels_last: bool

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format


PATHS = {
    p.name: p
    for p in (
        ComputePath("fp32", None, False),
        ComputePath("fp32-channels-last", None, True),
        ComputePath("bf16", torch.bfloat16, False),
        ComputePath("bf16-channels-last", torch.bfloat16, True),
        ComputePath("fp16", torch.float16, False),
        ComputePath("fp16-channels-last", torch.float16, True),
    )
}
_DTYPE_NAMES = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


class Compute(NamedTuple):
    """What :func:`choose_compute` answers: the autocast dtype (None: plain float32) and memory format."""

    dtype: torch.dtype | None
    memory_format: torch.memory_format

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager[Any]:
        """Autocast to :attr:`dtype` on ``device``, or a no-op for float32."""
        return torch.autocast(device.type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None)

    def layout(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` in :attr:`memory_format` (a no-op when it already is)."""
        return tensor.contiguous(memory_format=self.memory_format)


@dataclass
class Decision:
    """A chosen path, how it was chosen, and the timings behind it (seconds per probe pass)."""

    path: ComputePath
    source: str  # "measured", "cached", "default" (calibration off or not applicable) or "small"
    seconds: dict[str, float] = field(default_factory=dict)
    key: str = ""
    #: Pixels of the probe strip the timings are for (0 when nothing was timed).
    probe_pixels: int = 0

    @property
    def seconds_per_megapixel(self) -> float | None:
        """The chosen path's probe time per megapixel: a first guess of a run's speed."""
        if not self.probe_pixels or self.path.name not in self.seconds:
            return None
        return self.seconds[self.path.name] / (self.probe_pixels / 1e6)

    @property
    def compute(self) -> Compute:
        return Compute(self.path.dtype, self.path.memory_format)

    def describe(self) -> str:
        """One line for logs and benchmarks: the path, why, and the timings relative to the plain one."""
        text = f"{self.path.name} ({self.source})"
        if self.seconds:
            plain = "fp32" if "fp32" in self.seconds else _plain_for(self.path.dtype).name
            base = self.seconds.get(plain) or min(self.seconds.values())
            parts = [
                f"{name} {base / s:.2f}x" for name, s in sorted(self.seconds.items(), key=lambda kv: kv[1])
            ]
            text += f"; speed vs {plain}: " + ", ".join(parts)
        return text


# -- the machine -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CpuInfo:
    model: str
    flags: frozenset[str]

    @property
    def speed_flags(self) -> list[str]:
        return [f for f in SPEED_FLAGS if f in self.flags]

    @property
    def flags_hash(self) -> str:
        return hashlib.sha1(" ".join(sorted(self.flags)).encode()).hexdigest()[:10]


def cpu_info() -> CpuInfo:
    """The CPU's model name and feature flags (``/proc/cpuinfo`` on Linux; the model only elsewhere)."""
    model, flags = "", ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name in ("model name", "hardware", "cpu model") and not model:
                model = value.strip()
            elif name in ("flags", "features") and not flags:
                flags = value.strip()
    return CpuInfo(model or platform.processor() or platform.machine() or "unknown", frozenset(flags.split()))


def machine_key(device: torch.device) -> str:
    """What the timings depend on, apart from the task and the size."""
    threads = torch.get_num_threads()
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        name = torch.cuda.get_device_name(index)
        major, minor = torch.cuda.get_device_capability(index)
        return f"cuda {name} sm{major}{minor}|torch {torch.__version__}|cuda {torch.version.cuda}"
    info = cpu_info()
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "")  # a cap changes which kernels run
    return (
        f"{device.type} {info.model}|flags {info.flags_hash}{'|isa ' + isa if isa else ''}"
        f"|torch {torch.__version__}|threads {threads}"
    )


def machine_busy() -> bool:
    """True when more threads want to run than the machine has cores (1-minute load average).

    Timings taken then are unreliable (OpenMP threads wait on descheduled peers), so such a calibration
    is cached as provisional and repeated on a later, quieter run.
    """
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):
        return False
    return load > (os.cpu_count() or 1) + 0.5


def size_bucket(size: int) -> int:
    """The calibrated size nearest to ``size`` (long side): a power of two from 128 to 4096."""
    return 2 ** min(12, max(7, round(math.log2(max(size, 1)))))


# -- the choice ------------------------------------------------------------------------------------


def _plain_for(dtype: torch.dtype | None) -> ComputePath:
    return PATHS[_DTYPE_NAMES[dtype]]


def _forced_format(memory_format: str | None) -> str:
    value = memory_format or os.environ.get("PAINTERLY_MEMORY_FORMAT") or "auto"
    value = value.strip().lower().replace("-", "_")
    if value not in MEMORY_FORMATS:
        raise PainterlyError(
            f"unknown memory format {value!r}{did_you_mean(value, MEMORY_FORMATS)} "
            f"(PAINTERLY_MEMORY_FORMAT: {', '.join(MEMORY_FORMATS)})"
        )
    return value


def calibration_enabled() -> bool:
    return os.environ.get("PAINTERLY_CALIBRATE", "1").strip().lower() not in ("0", "no", "off", "false")


def candidates(
    device: torch.device, precision: str = "auto", memory_format: str | None = None
) -> list[ComputePath]:
    """The paths worth timing here, the plain one first.

    ``auto`` tries float32 everywhere and bf16 only where the device claims native bf16 (emulated bf16
    convolutions are tens of times slower). fp16 is never automatic: Caffe-scale activations come close
    to its range.
    """
    from painterly.settings import PRECISIONS

    if precision not in PRECISIONS:
        raise PainterlyError(f"unknown precision {precision!r}{did_you_mean(precision, PRECISIONS)}")
    if precision == "auto":
        dtypes: list[torch.dtype | None] = [None]
        if (device.type == "cpu" and cpu_has_fast_bf16()) or (
            device.type == "cuda" and torch.cuda.is_bf16_supported()
        ):
            dtypes.append(torch.bfloat16)
    else:
        dtypes = [{"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]]
    fmt = _forced_format(memory_format)
    layouts = {"auto": [False, True], "contiguous": [False], "channels_last": [True]}[fmt]
    return [p for d in dtypes for p in PATHS.values() if p.dtype == d and p.channels_last in layouts]


def pick(
    seconds: Mapping[str, float], allowed: Sequence[ComputePath], margin: float = CLEARLY_FASTER
) -> ComputePath:
    """The fastest allowed path, unless the plain one (first) is within ``margin`` of it."""
    timed = [p for p in allowed if p.name in seconds]
    if not timed:
        return allowed[0]
    fastest = min(timed, key=lambda p: seconds[p.name])
    # Plain is float32 NCHW under auto, and the asked-for dtype in NCHW otherwise.
    plain = next((p for p in timed if not p.channels_last and p.dtype is None), None) or next(
        (p for p in timed if not p.channels_last), timed[0]
    )
    if seconds[plain.name] < margin * seconds[fastest.name]:
        return plain
    return fastest


def decide_compute(
    device: torch.device,
    network: nn.Module,
    size: int,
    precision: str = "auto",
    *,
    memory_format: str | None = None,
    task: str | None = None,
    probe: Callable[[torch.Tensor], Any] | None = None,
    layers: Iterable[str] | None = None,
) -> Decision:
    """The path to run ``network`` at ``size`` (long side, px) on ``device``: see :func:`choose_compute`.

    ``task`` names the workload in the cache key (default: the network's ``arch`` and ``loss``);
    ``probe(x)`` runs one pass on an input strip ``x`` (default: VGG features of ``layers``, their Gram
    matrices and a backward pass, what image optimization does). The network is left in the chosen
    memory format.
    """
    allowed = candidates(device, precision, memory_format)
    bucket = size_bucket(size)
    task = task or f"{getattr(network, 'arch', type(network).__name__)}-loss"
    if len(allowed) == 1 or not calibration_enabled() or size < SMALLEST_CALIBRATED or device.type == "mps":
        source = "small" if size < SMALLEST_CALIBRATED else "default"
        decision = Decision(allowed[0], source)
    else:
        key = f"{machine_key(device)}|{task}|{bucket}"
        entries = _read_cache()
        entry = entries.get(key, {})
        seconds = dict(entry.get("seconds", {}))
        if entry.get("busy") and not machine_busy():
            seconds = {}  # measured while other work competed for the CPU: measure again, now it is quiet
        rows = int(entry.get("probe", [0])[0]) if seconds else 0
        busy = bool(entry.get("busy"))
        missing = [p for p in allowed if p.name not in seconds]
        if missing:
            run = probe or _loss_probe(network, layers)
            # All allowed paths in one run: timings of different runs are not comparable.
            measured, new_rows = _measure(device, network, run, allowed, bucket)
            kept = {k: v for k, v in seconds.items() if k not in measured} if new_rows == rows else {}
            seconds, rows, busy = {**kept, **measured}, new_rows, machine_busy()
            entries[key] = {
                "seconds": seconds,
                "probe": [rows, bucket],
                "measured": time.strftime("%F %T"),
                "busy": busy,
            }
            _write_cache(entries)
        decision = Decision(
            pick(seconds, allowed, CLEARLY_FASTER_WHEN_BUSY if busy else CLEARLY_FASTER),
            ("measured" if missing else "cached") + (" on a busy machine" if busy else ""),
            seconds,
            key,
            rows * bucket,
        )
    network.to(memory_format=decision.path.memory_format)  # type: ignore[call-overload]  # stubs lack it
    return decision


def choose_compute(
    device: torch.device,
    network: nn.Module,
    size: int,
    precision: str = "auto",
    *,
    memory_format: str | None = None,
    task: str | None = None,
    probe: Callable[[torch.Tensor], Any] | None = None,
) -> Compute:
    """The (autocast dtype or None, memory format) that runs ``network`` fastest at ``size`` on ``device``.

    Measured once per machine, torch version, task and size bucket (a couple of seconds), then read from
    the cache. ``precision``: ``auto`` or a dtype to keep; ``memory_format``: ``auto``, ``contiguous`` or
    ``channels_last`` (default: ``$PAINTERLY_MEMORY_FORMAT`` or ``auto``).
    """
    return decide_compute(
        device, network, size, precision, memory_format=memory_format, task=task, probe=probe
    ).compute


# -- measuring -------------------------------------------------------------------------------------

DEFAULT_PROBE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1")
#: The probe's content layer (the default run's); its other layers get Gram terms only.
DEFAULT_PROBE_CONTENT_LAYER = "relu4_2"


def _loss_probe(network: nn.Module, layers: Iterable[str] | None) -> Callable[[torch.Tensor], None]:
    """What image optimization does per evaluation: features, Gram matrices, a loss, its gradient."""
    from painterly.losses import gram_matrix

    names = getattr(network, "names", [])
    wanted = list(layers) if layers is not None else [n for n in DEFAULT_PROBE_LAYERS if n in names]
    wanted = wanted or [names[-1]]

    # The content term on one deep layer only, as a run has it. A float32 feature term on every layer
    # (this probe's former form) hid channels-last bf16's gain: on a 2-core Xeon with AMX, at 512 px,
    # it timed bf16 NCHW 0.69 s and bf16 channels-last 0.62 s, where a run's evaluations take 0.64 s
    # and 0.26 s (the float32 gradients of the big shallow layers, added into bf16 channels-last ones).
    content = DEFAULT_PROBE_CONTENT_LAYER if DEFAULT_PROBE_CONTENT_LAYER in wanted else wanted[-1]

    def run(x: torch.Tensor) -> None:
        image = x.detach().requires_grad_(True)
        features = network(image, wanted)
        total = sum(gram_matrix(f).square().mean() for f in features.values())
        total = total + features[content].float().square().mean()
        assert isinstance(total, torch.Tensor)
        total.backward()

    return run


def inference_probe(network: nn.Module) -> Callable[[torch.Tensor], None]:
    """One forward pass without autograd, what stylizing with a feed-forward network costs: pass it
    as ``probe`` to :func:`choose_compute` (with a ``task`` naming the network)."""

    def run(x: torch.Tensor) -> None:
        with torch.inference_mode():
            network(x)

    return run


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_paths(
    device: torch.device,
    network: nn.Module,
    run: Callable[[torch.Tensor], Any],
    paths: Sequence[ComputePath],
    shape: tuple[int, ...],
    repeats: int = 2,
    inputs: Callable[[tuple[int, ...]], torch.Tensor] | None = None,
) -> dict[str, float]:
    """Seconds per ``run(x)`` for each path: the minimum of ``repeats`` passes after a warm-up.

    ``x`` has ``shape`` (random 0-1 values unless ``inputs`` makes it), on ``device``, in the path's
    memory format, and ``run`` is called under the path's autocast with ``network`` in that format.
    Passes of different paths are interleaved so that a burst of load elsewhere hits them alike; a path
    whose warm-up is four times slower than the fastest one (emulated kernels) is not timed further.
    """
    generator = torch.Generator().manual_seed(0)
    make = inputs or (lambda size: torch.rand(size, generator=generator))

    def once(path: ComputePath) -> float:
        network.to(memory_format=path.memory_format)  # type: ignore[call-overload]  # stubs lack it
        x = make(shape).to(device).contiguous(memory_format=path.memory_format)
        _sync(device)
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=path.dtype or torch.float32, enabled=path.dtype is not None):
            run(x)
        _sync(device)
        return time.perf_counter() - start

    warm = {p.name: once(p) for p in paths}
    fastest_warm = min(warm.values())
    timed = [p for p in paths if p == paths[0] or warm[p.name] <= 4 * fastest_warm]
    best = {p.name: warm[p.name] for p in paths if p not in timed}
    for _ in range(repeats):
        for p in timed:
            best[p.name] = min(best.get(p.name, math.inf), once(p))
    return best


def _measure(
    device: torch.device,
    network: nn.Module,
    run: Callable[[torch.Tensor], Any],
    paths: Sequence[ComputePath],
    width: int,
) -> tuple[dict[str, float], int]:
    """:func:`time_paths` on a ``width``-wide strip whose height makes the whole take about
    :data:`CALIBRATION_SECONDS` (from a pilot pass of the plain path); returns the timings and rows."""
    pilot_rows = 16
    pilot = time_paths(device, network, run, paths[:1], (1, 3, pilot_rows, width), repeats=1)[paths[0].name]
    per_pass = CALIBRATION_SECONDS / (3 * len(paths))
    rows = int(pilot_rows * per_pass / max(pilot, 1e-6)) // 16 * 16
    rows = max(16, min(rows, (width * 3 // 4) // 16 * 16))
    return time_paths(device, network, run, paths, (1, 3, rows, width)), rows


# -- the cache -------------------------------------------------------------------------------------


def cache_file() -> Path:
    return cache_dir() / CACHE_FILE


def _read_cache() -> dict[str, Any]:
    try:
        data = json.loads(cache_file().read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
        return {}
    entries = data.get("entries")
    return entries if isinstance(entries, dict) else {}


def _write_cache(entries: Mapping[str, Any]) -> None:
    """Best effort: an unwritable cache only means measuring again next time."""
    from painterly.atomic import atomic_write

    path = cache_file()
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as handle:
            handle.write(json.dumps({"version": CACHE_VERSION, "entries": entries}, indent=1).encode())


__all__ = [
    "CLEARLY_FASTER",
    "CLEARLY_FASTER_WHEN_BUSY",
    "Compute",
    "ComputePath",
    "CpuInfo",
    "Decision",
    "PATHS",
    "cache_file",
    "calibration_enabled",
    "candidates",
    "choose_compute",
    "cpu_info",
    "decide_compute",
    "inference_probe",
    "machine_busy",
    "machine_key",
    "pick",
    "size_bucket",
    "time_paths",
]
