"""The per-machine speed choice: cached, reused, overridable. No test here depends on what is faster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from painterly.errors import PainterlyError
from painterly.tuning import (
    CACHE_VERSION,
    CLEARLY_FASTER,
    DEFAULT_PROBE_CONTENT_LAYER,
    PATHS,
    _loss_probe,
    cache_file,
    candidates,
    choose_compute,
    cpu_info,
    decide_compute,
    machine_key,
    pick,
    size_bucket,
)

CPU = torch.device("cpu")


class TinyNet(nn.Module):
    arch = "tiny"

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class SpyProbe:
    """Counts the passes the calibration times; each pass is a real (tiny) forward and backward."""

    def __init__(self, net: nn.Module) -> None:
        self.net = net
        self.calls = 0
        self.shapes: list[tuple[int, ...]] = []

    def __call__(self, x: torch.Tensor) -> None:
        self.calls += 1
        self.shapes.append(tuple(x.shape))
        self.net(x.requires_grad_(True)).float().square().mean().backward()


@pytest.fixture
def calibrating(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PAINTERLY_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PAINTERLY_CALIBRATE", "1")
    monkeypatch.delenv("PAINTERLY_MEMORY_FORMAT", raising=False)
    monkeypatch.setattr("painterly.tuning.CALIBRATION_SECONDS", 0.05)  # small strips, a quick test
    monkeypatch.setattr("painterly.tuning.machine_busy", lambda: False)
    return tmp_path / "cache"


def test_first_call_measures_and_caches_second_call_measures_nothing(calibrating: Path) -> None:
    net = TinyNet()
    spy = SpyProbe(net)
    first = decide_compute(CPU, net, 256, probe=spy, task="tiny-test")
    assert first.source == "measured"
    assert spy.calls >= 2 + len(candidates(CPU))  # a pilot, then a warm-up (at least) per path
    assert {x[-1] for x in spy.shapes} == {256}  # strips as wide as the size bucket
    entries = json.loads(cache_file().read_text())["entries"]
    assert list(entries) == [first.key]
    assert set(entries[first.key]["seconds"]) == {p.name for p in candidates(CPU)}

    calls = spy.calls
    second = decide_compute(CPU, net, 256, probe=spy, task="tiny-test")
    assert spy.calls == calls
    assert second.source == "cached"
    assert second.path == first.path
    assert second.seconds == pytest.approx(first.seconds)


def test_the_key_changes_with_the_size_bucket_and_task_not_within_a_bucket(calibrating: Path) -> None:
    net = TinyNet()
    spy = SpyProbe(net)
    a = decide_compute(CPU, net, 256, probe=spy, task="tiny-test")
    calls = spy.calls
    same_bucket = decide_compute(CPU, net, 300, probe=spy, task="tiny-test")
    assert spy.calls == calls and same_bucket.key == a.key
    b = decide_compute(CPU, net, 512, probe=spy, task="tiny-test")
    assert spy.calls > calls and b.key != a.key
    other_task = decide_compute(CPU, net, 512, probe=spy, task="other-task")
    assert other_task.key != b.key
    assert len(json.loads(cache_file().read_text())["entries"]) == 3


def test_the_cached_timings_decide(calibrating: Path) -> None:
    """A cache that says channels-last is twice as fast gives channels-last, without measuring."""
    net = TinyNet()
    key = f"{machine_key(CPU)}|tiny-test|512"
    cache_file().parent.mkdir(parents=True)
    cache_file().write_text(
        json.dumps(
            {
                "version": CACHE_VERSION,
                "entries": {key: {"seconds": {"fp32": 2.0, "fp32-channels-last": 1.0}}},
            }
        )
    )
    spy = SpyProbe(net)
    compute = choose_compute(CPU, net, 512, "fp32", probe=spy, task="tiny-test")
    assert spy.calls == 0
    assert compute == (None, torch.channels_last)
    assert net.conv.weight.is_contiguous(memory_format=torch.channels_last)  # left in the chosen format


def test_a_calibration_under_load_is_repeated_once_the_machine_is_quiet(
    calibrating: Path, monkeypatch
) -> None:
    net = TinyNet()
    spy = SpyProbe(net)
    monkeypatch.setattr("painterly.tuning.machine_busy", lambda: True)
    decide_compute(CPU, net, 256, "fp32", probe=spy, task="tiny-test")
    calls = spy.calls
    still_busy = decide_compute(CPU, net, 256, "fp32", probe=spy, task="tiny-test")
    assert still_busy.source == "cached on a busy machine"
    assert spy.calls == calls
    monkeypatch.setattr("painterly.tuning.machine_busy", lambda: False)
    assert decide_compute(CPU, net, 256, "fp32", probe=spy, task="tiny-test").source == "measured"
    assert spy.calls > calls
    calls = spy.calls
    assert decide_compute(CPU, net, 256, "fp32", probe=spy, task="tiny-test").source == "cached"
    assert spy.calls == calls


def test_timings_from_a_busy_machine_need_a_larger_gain(calibrating: Path, monkeypatch) -> None:
    """Noisy timings (1.2x here) do not move a run off the plain path; a quiet 1.2x does."""
    net = TinyNet()
    key = f"{machine_key(CPU)}|tiny-test|512"
    cache_file().parent.mkdir(parents=True)
    seconds = {"fp32": 1.2, "fp32-channels-last": 1.0}
    for busy, expected in ((True, torch.contiguous_format), (False, torch.channels_last)):
        entry = {"seconds": seconds, "probe": [16, 512], "busy": busy}
        cache_file().write_text(json.dumps({"version": CACHE_VERSION, "entries": {key: entry}}))
        monkeypatch.setattr("painterly.tuning.machine_busy", lambda busy=busy: busy)
        spy = SpyProbe(net)
        assert choose_compute(CPU, net, 512, "fp32", probe=spy, task="tiny-test") == (None, expected)
        assert spy.calls == 0


def test_a_corrupt_cache_is_measured_again(calibrating: Path) -> None:
    cache_file().parent.mkdir(parents=True)
    cache_file().write_text("{not json")
    net = TinyNet()
    spy = SpyProbe(net)
    assert decide_compute(CPU, net, 256, "fp32", probe=spy, task="tiny-test").source == "measured"
    assert spy.calls > 0
    assert json.loads(cache_file().read_text())["version"] == CACHE_VERSION


def test_calibrate_0_takes_the_plain_path_without_measuring(calibrating: Path, monkeypatch) -> None:
    monkeypatch.setenv("PAINTERLY_CALIBRATE", "0")
    net = TinyNet()
    spy = SpyProbe(net)
    assert choose_compute(CPU, net, 512, probe=spy, task="tiny-test") == (None, torch.contiguous_format)
    assert choose_compute(CPU, net, 512, "bf16", probe=spy) == (torch.bfloat16, torch.contiguous_format)
    assert spy.calls == 0
    assert not cache_file().exists()


def test_overrides_win(calibrating: Path, monkeypatch) -> None:
    net = TinyNet()
    spy = SpyProbe(net)
    monkeypatch.setenv("PAINTERLY_MEMORY_FORMAT", "channels_last")
    assert choose_compute(CPU, net, 512, "fp32", probe=spy) == (None, torch.channels_last)
    assert choose_compute(CPU, net, 512, "bf16", probe=spy) == (torch.bfloat16, torch.channels_last)
    assert spy.calls == 0  # one candidate left: nothing to time
    assert choose_compute(CPU, net, 512, "fp32", memory_format="contiguous", probe=spy) == (
        None,
        torch.contiguous_format,
    )
    monkeypatch.setenv("PAINTERLY_MEMORY_FORMAT", "channels-first")
    with pytest.raises(PainterlyError, match="memory format"):
        choose_compute(CPU, net, 512, probe=spy)
    with pytest.raises(PainterlyError, match="precision"):
        choose_compute(CPU, net, 512, "fp64", memory_format="auto", probe=spy)


def test_small_sizes_are_not_measured(calibrating: Path) -> None:
    net = TinyNet()
    spy = SpyProbe(net)
    decision = decide_compute(CPU, net, 64, probe=spy)
    assert (decision.source, decision.path.name, spy.calls) == ("small", "fp32", 0)


def test_the_plain_path_wins_unless_another_is_clearly_faster() -> None:
    auto = [PATHS["fp32"], PATHS["fp32-channels-last"], PATHS["bf16"], PATHS["bf16-channels-last"]]
    nearly = 1.0 / CLEARLY_FASTER + 0.01
    assert pick({"fp32": 1.0, "fp32-channels-last": nearly}, auto).name == "fp32"
    assert pick({"fp32": 1.0, "fp32-channels-last": 0.5, "bf16-channels-last": 0.4}, auto).name == (
        "bf16-channels-last"
    )
    assert pick({"fp32": 1.0, "fp32-channels-last": 3.0, "bf16-channels-last": 2.0}, auto).name == "fp32"
    # With a dtype asked for, the plain path is that dtype in NCHW.
    bf16 = [PATHS["bf16"], PATHS["bf16-channels-last"]]
    assert pick({"bf16": 1.0, "bf16-channels-last": nearly}, bf16).name == "bf16"
    assert pick({"bf16": 1.0, "bf16-channels-last": 0.5}, bf16).name == "bf16-channels-last"


def test_candidates_follow_the_precision_setting() -> None:
    assert [p.name for p in candidates(CPU, "fp32", "auto")] == ["fp32", "fp32-channels-last"]
    assert [p.name for p in candidates(CPU, "fp16", "contiguous")] == ["fp16"]
    auto = [p.name for p in candidates(CPU, "auto", "auto")]
    assert auto[0] == "fp32" and all(not name.startswith("fp16") for name in auto)


def test_size_buckets_and_cpu_description() -> None:
    assert [size_bucket(s) for s in (100, 256, 300, 400, 512, 700, 1024, 9000)] == [
        128,
        256,
        256,
        512,
        512,
        512,
        1024,
        4096,
    ]
    info = cpu_info()
    assert info.model and len(info.flags_hash) == 10
    assert set(info.speed_flags) <= info.flags


class LayeredNet(nn.Module):
    """Three 'layers' of features, each kept so that a test can read the gradient it received."""

    names = ["relu1_1", DEFAULT_PROBE_CONTENT_LAYER, "relu5_1"]

    def __init__(self) -> None:
        super().__init__()
        self.kept: dict[str, torch.Tensor] = {}

    def forward(self, x: torch.Tensor, wanted: list[str]) -> dict[str, torch.Tensor]:
        out = {}
        for i, name in enumerate(wanted):
            feature = (x * (i + 1)).repeat(1, 2, 1, 1)
            feature.retain_grad()
            self.kept[name] = feature
            out[name] = feature
        return out


def test_the_loss_probe_has_a_feature_term_on_the_content_layer_only() -> None:
    """A run's loss: Gram terms on every layer, the content term on one deep layer. A feature term on
    every layer (the probe's former form) made bf16 channels-last look 2.4x slower than it runs."""
    from painterly.losses import gram_matrix

    net = LayeredNet()
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    _loss_probe(net, None)(x)
    for name, feature in net.kept.items():
        alone = feature.detach().clone().requires_grad_(True)
        expected = gram_matrix(alone).square().mean()
        if name == DEFAULT_PROBE_CONTENT_LAYER:
            expected = expected + alone.square().mean()
        expected.backward()
        assert feature.grad is not None and alone.grad is not None
        torch.testing.assert_close(feature.grad, alone.grad, msg=name)
