"""The backend policy (torch or onnxruntime) that the CLI, load_model and the server share."""

from pathlib import Path

import pytest

from painterly.errors import PainterlyError
from painterly.feedforward import backends


def test_auto_backend_prefers_onnxruntime_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("onnxruntime")
    monkeypatch.setattr(backends, "has_gpu", lambda: False)
    assert backends.pick_backend("auto", "auto", "auto", [(64, 48)]) == "onnxruntime"
    assert backends.pick_backend("auto", "cpu", "none", [(64, 48)]) == "onnxruntime"


def test_auto_backend_uses_torch_for_gpus_tiles_and_huge_images(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backends, "has_gpu", lambda: True)
    assert backends.pick_backend("auto", "auto", "auto", [(64, 48)]) == "torch"
    monkeypatch.setattr(backends, "has_gpu", lambda: False)
    assert backends.pick_backend("auto", "cuda", "auto") == "torch"
    assert backends.pick_backend("auto", "cpu", 512) == "torch"
    assert backends.pick_backend("auto", "cpu", "auto", [(4000, 3000)]) == "torch"  # needs tiles
    assert backends.pick_backend("torch", "cpu") == "torch"
    with pytest.raises(PainterlyError, match="did you mean 'torch'"):
        backends.pick_backend("torhc")


def test_server_takes_the_librarys_backend_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's FastStylizer asks the library's policy: onnxruntime on a CPU-only machine."""
    pytest.importorskip("onnxruntime")
    from painterly import feedforward
    from painterly.server.config import ServerSettings
    from painterly.server.models import FastStylizer

    monkeypatch.setattr(backends, "has_gpu", lambda: False)
    monkeypatch.setenv("PAINTERLY_CACHE", str(tmp_path / "cache"))
    stylizer = FastStylizer(ServerSettings(), store=None, backend=feedforward)  # type: ignore[arg-type]
    assert stylizer._load("starry_night").backend == "onnxruntime"
