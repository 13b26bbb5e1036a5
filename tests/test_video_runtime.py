"""The measured choice of runtime for frame streams, and the threads that overlap the video stages."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from typing import Any

import numpy as np
import pytest

from painterly.errors import PainterlyError
from painterly.video import runtime as rt
from painterly.video.overlap import Ahead, Behind


class SlowModel:
    """Stands in for a StyleModel: ``stylize`` takes ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.calls = 0

    def stylize(self, image: np.ndarray, **options: Any) -> np.ndarray:
        self.calls += 1
        time.sleep(self.seconds)
        return image


@pytest.fixture(autouse=True)
def fresh_decisions():
    rt.forget()
    yield
    rt.forget()


def cpu_policy(backend: str = "auto", device: str = "auto", *rest: Any) -> str:
    """The library's policy on a CPU-only machine with onnxruntime installed."""
    return "onnxruntime" if backend == "auto" else backend


def loader_with(speeds: dict[tuple[str, str], float], loads: list[tuple[str, str]]):
    def load(model: str, device: str, *, backend: str, precision: str, **options: Any) -> SlowModel:
        loads.append((backend, precision))
        return SlowModel(speeds[(backend, precision)])

    return load


def slow(model: object) -> SlowModel:
    assert isinstance(model, SlowModel)
    return model


def test_the_fastest_runtime_is_chosen_and_remembered(monkeypatch) -> None:
    monkeypatch.setattr(rt, "cpu_claims_bf16", lambda: True)
    monkeypatch.setattr(
        "painterly.feedforward.backends.pick_backend", lambda b="auto", d="auto", *a: "onnxruntime"
    )
    speeds = {("onnxruntime", "auto"): 0.03, ("torch", "fp32"): 0.04, ("torch", "bf16"): 0.01}
    loads: list[tuple[str, str]] = []
    choice = rt.choose_runtime("m", 64, 48, device="cpu", loader=loader_with(speeds, loads))
    assert choice.runtime == rt.Runtime("torch", "bf16")
    assert slow(choice.model).seconds == 0.01 and slow(choice.model).calls == 1 + rt.ROUNDS
    assert set(choice.seconds) == {"onnxruntime", "torch fp32", "torch bf16"}
    assert "torch bf16" in choice.describe() and "onnxruntime" in choice.describe()
    assert len(loads) == 3
    again = rt.choose_runtime("m", 60, 40, device="cpu", loader=loader_with(speeds, loads))  # same bucket
    assert again.runtime == rt.Runtime("torch", "bf16") and loads[3:] == [("torch", "bf16")]
    assert slow(again.model).calls == 0  # nothing measured the second time
    rt.choose_runtime("m", 640, 480, device="cpu", loader=loader_with(speeds, loads))  # another size
    assert len(loads) == 7


def test_the_default_stays_unless_another_is_clearly_faster() -> None:
    first, second = rt.Runtime("onnxruntime"), rt.Runtime("torch", "fp32")
    assert rt.pick({first: 1.05, second: 1.0}, [first, second]) == first
    assert rt.pick({first: 1.5, second: 1.0}, [first, second]) == second
    assert rt.pick({first: 0.9, second: 1.0}, [first, second]) == first


def test_an_explicit_backend_or_a_gpu_measures_nothing(monkeypatch) -> None:
    monkeypatch.setattr(rt, "cpu_claims_bf16", lambda: True)
    assert rt.candidates("cpu", "torch") == [rt.Runtime("torch")]
    assert rt.candidates("cuda", "auto") == [rt.Runtime("torch")]
    loads: list[tuple[str, str]] = []
    choice = rt.choose_runtime(
        "m", 64, 48, device="cpu", backend="torch", loader=loader_with({("torch", "auto"): 0.0}, loads)
    )
    assert choice.seconds == {} and loads == [("torch", "auto")] and slow(choice.model).calls == 0
    with pytest.raises(PainterlyError, match="unknown backend"):
        rt.candidates("cpu", "tensorflow")


def test_without_native_bf16_it_is_not_a_candidate(monkeypatch) -> None:
    monkeypatch.setattr(rt, "cpu_claims_bf16", lambda: False)
    monkeypatch.setattr(
        "painterly.feedforward.backends.pick_backend", lambda b="auto", d="auto", *a: "onnxruntime"
    )
    assert rt.candidates("cpu") == [rt.Runtime("onnxruntime"), rt.Runtime("torch", "fp32")]


def test_ahead_keeps_order_bounds_memory_and_hands_over_errors() -> None:
    produced: list[int] = []

    def items():
        for i in range(10):
            produced.append(i)
            yield i

    with Ahead(items(), depth=2) as ahead:
        assert next(ahead) == 0
        time.sleep(0.2)
        assert len(produced) <= 4  # one handed over, two waiting, one blocked in put
        assert list(ahead) == list(range(1, 10))

    def failing():
        yield 1
        raise PainterlyError("cannot decode frame 2")

    with Ahead(failing()) as ahead:
        assert next(ahead) == 1
        with pytest.raises(PainterlyError, match="frame 2"):
            next(ahead)


def test_ahead_stops_its_thread_when_left_early() -> None:
    closed = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    with Ahead(endless(), depth=1) as ahead:
        assert next(ahead) == 0
    assert closed.is_set()
    assert not any(t.name == "painterly-decode" and t.is_alive() for t in threading.enumerate())


def test_behind_consumes_in_order_and_raises_the_consumers_error() -> None:
    seen: list[int] = []

    def slowly(item: int) -> None:
        time.sleep(0.01)
        seen.append(item)

    behind: Behind[int] = Behind(slowly)
    for i in range(8):
        behind.put(i)
    behind.finish()
    assert seen == list(range(8))

    def consume(item: int) -> None:
        if item == 2:
            raise OSError("disk full")
        seen.append(item)

    seen.clear()
    failing: Behind[int] = Behind(consume, depth=1)
    with pytest.raises(OSError, match="disk full"):
        for i in range(50):
            failing.put(i)
        failing.finish()
    assert seen == [0, 1]


def test_sleeping_threads_are_asked_for_before_torch_only() -> None:
    script = (
        "import os, sys\n"
        "from painterly.video.runtime import prefer_sleeping_threads as p\n"
        "first = p(); policy = os.environ.get('OMP_WAIT_POLICY')\n"
        "import torch\n"
        "print(first, policy, p(), 'torch' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert out.stdout.split() == ["True", "PASSIVE", "False", "True"], out.stderr
    env["OMP_WAIT_POLICY"] = "ACTIVE"  # a user's choice stays
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert out.stdout.split() == ["True", "ACTIVE", "False", "True"], out.stderr
