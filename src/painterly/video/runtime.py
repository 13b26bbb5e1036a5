"""The fastest way to run a style network on a stream of frames of one size, measured on this machine.

A video or the live camera runs one network on hundreds of frames of the same size, so timing the
candidate runtimes on a frame of that size (a second or two) pays back within a few frames. On a
CPU the candidates are onnxruntime in float32 (the library's choice for single images), torch in
float32 and, where the CPU has native bf16 (AVX512-BF16 or AMX), torch under bf16 autocast. On a
2-core Xeon with AMX at 640x480 they took about 218, 181 and 105 ms a frame; on CPUs without native
bf16, onnxruntime usually wins. bf16 moves pixels by about a level on average: invisible in a moving
picture, and the temporal blending is computed in float32 anyway. Nothing here depends on which
model is shipped: every candidate is loaded through :func:`painterly.feedforward.inference.load_model`.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from painterly.feedforward.inference import StyleModel

#: Another runtime replaces the first candidate only when it is at least this much faster (timings
#: on a shared machine jitter by a few percent).
CLEARLY_FASTER = 1.1
#: Timed passes per candidate, after one warm-up pass (the minimum counts: it is the least disturbed).
ROUNDS = 2
#: Decisions are kept per model, device and frame size rounded to this many pixels.
SIZE_STEP = 32


@dataclass(frozen=True)
class Runtime:
    """A backend (``torch`` or ``onnxruntime``) and a precision (``auto``, ``fp32``, ``bf16``)."""

    backend: str
    precision: str = "auto"

    @property
    def label(self) -> str:
        return self.backend if self.precision == "auto" else f"{self.backend} {self.precision}"


@dataclass
class Choice:
    """The runtime picked, the model loaded with it, and what each candidate took (seconds a frame)."""

    runtime: Runtime
    model: StyleModel
    seconds: dict[str, float]

    def describe(self) -> str:
        if len(self.seconds) < 2:
            return self.runtime.label
        timed = ", ".join(f"{name} {1000 * s:.0f} ms" for name, s in self.seconds.items())
        return f"{self.runtime.label} (fastest measured: {timed})"


_decisions: dict[tuple[str, str, int, int], Runtime] = {}
_described: dict[tuple[str, str, int, int], str] = {}
_lock = threading.Lock()
log = logging.getLogger(__name__)


def prefer_sleeping_threads() -> bool:
    """Ask OpenMP (torch's CPU thread pool) to let waiting threads sleep instead of spinning.

    By default they spin at every barrier, which is fast on an idle machine and ruinous on a shared
    one: with a few other processes running (load average about 6 on 2 cores), torch bf16 took
    2.35 s for a 640x480 frame spinning and 0.23 s passive (onnxruntime, whose threads no longer
    spin either: 0.33 s). OpenMP reads the setting once, when torch is first imported, so this works
    only before that (it says whether it could) and never overrides a user's ``OMP_WAIT_POLICY``.
    """
    if "torch" in sys.modules:
        return False
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return True


def cpu_claims_bf16() -> bool:
    """Whether the CPU advertises native bf16 (read from /proc/cpuinfo, so torch need not be imported)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def candidates(device: str, backend: str = "auto") -> list[Runtime]:
    """The runtimes worth timing for ``device``, the library's own choice first.

    An explicit ``backend`` or a non-CPU device leaves one candidate: nothing to measure.
    """
    from painterly.feedforward.backends import pick_backend

    chosen = pick_backend(backend, device)
    if backend != "auto" or chosen != "onnxruntime":
        return [Runtime(chosen)]
    found = [Runtime("onnxruntime"), Runtime("torch", "fp32")]
    if cpu_claims_bf16():
        found.append(Runtime("torch", "bf16"))
    return found


def choose_runtime(
    model: str | os.PathLike[str],
    width: int,
    height: int,
    *,
    device: str = "auto",
    backend: str = "auto",
    loader: Callable[..., StyleModel] | None = None,
    **load: Any,
) -> Choice:
    """Load ``model`` with the runtime that stylizes ``width`` x ``height`` frames fastest here.

    The decision is kept for the process (per model, device and size), so a second video or live
    connection at that size loads the winner directly. ``loader(model, device, backend=...,
    precision=..., **load)`` loads a model (default: the library's ``load_model``, given the model's
    :class:`~painterly.feedforward.record.ModelRecord`, resolved once; a server passes its own cache).
    """
    from painterly.feedforward.inference import load_model as library_loader

    load_model: Callable[..., StyleModel] = loader or library_loader
    options = candidates(device, backend)
    label = Path(os.fspath(model)).stem
    key = (
        str(Path(model).resolve()) if Path(model).exists() else str(model),
        device,
        *_bucket(width, height),
    )
    if loader is None:  # the library's: every candidate runtime gets the one record of the model
        from painterly.feedforward.record import resolve_record

        model = resolve_record(model)
    with _lock:
        known = _decisions.get(key)
    if known is not None or len(options) == 1:
        runtime = known or options[0]
        loaded = load_model(model, device, backend=runtime.backend, precision=runtime.precision, **load)
        return Choice(runtime, loaded, {})
    models = {r: load_model(model, device, backend=r.backend, precision=r.precision, **load) for r in options}
    seconds = time_runtimes(models, width, height)
    best = pick(seconds, options)
    choice = Choice(best, models[best], {r.label: seconds[r] for r in options})
    with _lock:
        _decisions[key] = best
        _described[key] = f"{label} at {width}x{height}: {choice.describe()}"
    log.info("runtime for %s", _described[key])
    return choice


def time_runtimes(models: dict[Runtime, StyleModel], width: int, height: int) -> dict[Runtime, float]:
    """Seconds a frame for each loaded model: one warm-up pass each, then :data:`ROUNDS` interleaved
    rounds (so that a burst of load from elsewhere hits every candidate alike), the minimum kept."""
    frame = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    for loaded in models.values():
        loaded.stylize(frame, tile="none")
    best = dict.fromkeys(models, float("inf"))
    for _ in range(ROUNDS):
        for runtime, loaded in models.items():
            started = time.perf_counter()
            loaded.stylize(frame, tile="none")
            best[runtime] = min(best[runtime], time.perf_counter() - started)
    return best


def pick(seconds: dict[Runtime, float], options: list[Runtime]) -> Runtime:
    """The fastest candidate, unless the first (the library's default) is within :data:`CLEARLY_FASTER`."""
    fastest = min(options, key=lambda r: seconds[r])
    return options[0] if seconds[options[0]] <= CLEARLY_FASTER * seconds[fastest] else fastest


def _bucket(width: int, height: int) -> tuple[int, int]:
    return -(-width // SIZE_STEP), -(-height // SIZE_STEP)


def measured() -> list[str]:
    """What was measured in this process, one line per model and size (for benchmarks and logs)."""
    with _lock:
        return list(_described.values())


def forget() -> None:
    """Drop the decisions kept so far (tests; after a change of machine load)."""
    with _lock:
        _decisions.clear()
        _described.clear()
