import subprocess
import sys

import numpy as np
import pytest

import painterly


def test_import_loads_no_torch_and_no_model() -> None:
    code = "import sys, painterly; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_public_api_names() -> None:
    for name in (
        "transfer",
        "run_transfer",
        "Progress",
        "StopTransfer",
        "PainterlyError",
        "stylize",
        "load_model",
    ):
        assert getattr(painterly, name) is not None
    with pytest.raises(AttributeError):
        painterly.not_a_thing  # noqa: B018


def test_transfer_accepts_arrays_and_returns_pil() -> None:
    rng = np.random.default_rng(0)
    photo = rng.random((24, 32, 3)).astype(np.float32)
    painting = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    out = painterly.transfer(photo, painting, size=32, iterations=2, precision="fp32")
    assert out.mode == "RGB" and out.size == (32, 24)
