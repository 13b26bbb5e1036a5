from pathlib import Path

import pytest
from PIL import Image

from painterly.cli import feedforward as cli_ff


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.png"
    Image.new("RGB", (64, 48)).save(path)
    return path


def test_auto_backend_prefers_onnxruntime_on_cpu(small: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("onnxruntime")
    monkeypatch.setattr(cli_ff, "_has_gpu", lambda: False)
    assert cli_ff.pick_backend([small], None, "auto", "auto") == "onnxruntime"
    assert cli_ff.pick_backend([small], None, "cpu", "none") == "onnxruntime"


def test_auto_backend_uses_torch_for_gpus_tiles_and_huge_images(
    small: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_ff, "_has_gpu", lambda: True)
    assert cli_ff.pick_backend([small], None, "auto", "auto") == "torch"
    monkeypatch.setattr(cli_ff, "_has_gpu", lambda: False)
    assert cli_ff.pick_backend([small], None, "cuda", "auto") == "torch"
    assert cli_ff.pick_backend([small], None, "cpu", 512) == "torch"
    assert cli_ff.pick_backend([small], 4000, "cpu", "auto") == "torch"  # 4000x3000 needs tiles
