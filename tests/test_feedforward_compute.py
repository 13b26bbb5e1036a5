"""Feed-forward stylizing takes its precision and memory format from the per-machine calibration
(painterly.tuning), like image optimization: plain float32 NCHW when calibration is off, the measured
fastest path when it is on, and the overrides (precision, $PAINTERLY_MEMORY_FORMAT) win."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from painterly.errors import PainterlyError
from painterly.feedforward import load_model
from painterly.feedforward.model_file import write_model_file
from painterly.tuning import cache_file

from .helpers.images import wavy_photo
from .helpers.models import tiny_style_net


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    return write_model_file(tmp_path / "tiny.safetensors", tiny_style_net(), {"name": "tiny", "steps": 0})


@pytest.fixture
def calibrating(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PAINTERLY_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PAINTERLY_CALIBRATE", "1")
    monkeypatch.delenv("PAINTERLY_MEMORY_FORMAT", raising=False)
    monkeypatch.setattr("painterly.tuning.CALIBRATION_SECONDS", 0.05)
    monkeypatch.setattr("painterly.tuning.machine_busy", lambda: False)
    return tmp_path / "cache"


def _fake_timings(monkeypatch: pytest.MonkeyPatch, seconds: dict[str, float]) -> list[str]:
    """Calibration answers ``seconds`` for the paths it is asked about; returns the paths asked."""
    asked: list[str] = []

    def measure(device: Any, network: Any, run: Any, paths: Any, width: int) -> tuple[dict[str, float], int]:
        asked.extend(p.name for p in paths)
        return {p.name: seconds[p.name] for p in paths}, 64

    monkeypatch.setattr("painterly.tuning._measure", measure)
    monkeypatch.setattr("painterly.tuning.cpu_has_fast_bf16", lambda: True)
    return asked


def _weights_layout(model: Any) -> torch.memory_format:
    conv = next(m for m in model.net.modules() if isinstance(m, torch.nn.Conv2d))
    if conv.weight.is_contiguous():
        return torch.contiguous_format
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    return torch.channels_last


def test_without_calibration_the_cpu_path_is_plain_float32_nchw(model_file: Path) -> None:
    """Channels-last used to be forced on CPUs: measured 28% slower for these networks on one CPU."""
    model = load_model(model_file, device="cpu", backend="torch")
    assert model.compute_for(512) == (None, torch.contiguous_format)
    model.stylize(wavy_photo(0, (40, 30)))
    assert _weights_layout(model) == torch.contiguous_format
    bf16 = load_model(model_file, device="cpu", backend="torch", precision="bf16")
    assert bf16.compute_for(512) == (torch.bfloat16, torch.contiguous_format)


def test_the_measured_fastest_path_is_used_and_cached(
    model_file: Path, calibrating: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seconds = {"fp32": 1.0, "fp32-channels-last": 1.3, "bf16": 0.5, "bf16-channels-last": 0.4}
    asked = _fake_timings(monkeypatch, seconds)
    model = load_model(model_file, device="cpu", backend="torch")
    decision = model.decision_for(512)
    assert decision.source == "measured"
    assert model.compute_for(512) == (torch.bfloat16, torch.channels_last)
    assert sorted(asked) == sorted(seconds)
    photo = wavy_photo(1, (400, 300))  # in the 512 px size bucket
    assert model.stylize(photo).size == (400, 300)
    assert _weights_layout(model) == torch.channels_last
    (key,) = json.loads(cache_file().read_text())["entries"]
    assert "|stylize-johnson2016-" in key and key.endswith("|512")

    asked.clear()
    again = load_model(model_file, device="cpu", backend="torch")
    assert again.decision_for(600).source == "cached"  # same machine, network and size bucket
    assert asked == []
    fp32_only = load_model(model_file, device="cpu", backend="torch", precision="fp32")
    assert fp32_only.compute_for(512) == (None, torch.contiguous_format)  # fp32 NCHW is fastest of fp32


def test_memory_format_override_wins(
    model_file: Path, calibrating: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_timings(
        monkeypatch, {"fp32": 0.5, "fp32-channels-last": 2.0, "bf16": 3.0, "bf16-channels-last": 3.0}
    )
    monkeypatch.setenv("PAINTERLY_MEMORY_FORMAT", "channels_last")
    model = load_model(model_file, device="cpu", backend="torch")
    assert model.compute_for(256) == (None, torch.channels_last)


def test_a_real_calibration_times_the_network_and_keeps_the_picture(
    model_file: Path, calibrating: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The probe runs the style network itself; whatever path wins, float32 results are unchanged."""
    calls: list[tuple[int, ...]] = []
    model = load_model(model_file, device="cpu", backend="torch", precision="fp32")
    assert model.net is not None
    original = model.net.stylize_tensor

    def spy(x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(x.shape))
        return original(x, *extra)

    monkeypatch.setattr(model.net, "stylize_tensor", spy)
    photo = wavy_photo(2, (160, 120))
    styled = np.asarray(model.stylize(photo), dtype=np.int16)
    assert model.decision_for(160).source == "measured"
    assert any(shape[-1] == 128 for shape in calls[:-1])  # probe strips as wide as the size bucket
    monkeypatch.setenv("PAINTERLY_CALIBRATE", "0")
    plain = np.asarray(load_model(model_file, device="cpu", backend="torch").stylize(photo), dtype=np.int16)
    assert np.abs(styled - plain).max() <= 1


def test_onnxruntime_has_no_compute_path_to_choose(
    model_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("PAINTERLY_CACHE", str(tmp_path / "cache"))
    model = load_model(model_file, device="cpu", backend="onnxruntime")
    with pytest.raises(PainterlyError, match="onnxruntime"):
        model.decision_for(512)
    assert model.stylize(wavy_photo(3, (40, 30))).size == (40, 30)
