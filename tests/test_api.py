import subprocess
import sys

import numpy as np
import pytest

import painterly


def test_import_loads_no_torch_and_no_model() -> None:
    code = "import sys, painterly; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_public_api_names_resolve_to_the_documented_objects() -> None:
    import inspect

    from painterly.errors import PainterlyError as Error
    from painterly.feedforward.inference import load_model, stylize
    from painterly.optimization import StopTransfer, run_transfer, transfer
    from painterly.progress import Progress

    expected = {
        "transfer": transfer,
        "run_transfer": run_transfer,
        "Progress": Progress,
        "StopTransfer": StopTransfer,
        "PainterlyError": Error,
        "stylize": stylize,
        "load_model": load_model,
    }
    for name, obj in expected.items():
        assert getattr(painterly, name) is obj, name
        assert name in painterly.__all__
    assert issubclass(painterly.PainterlyError, Exception) and issubclass(painterly.StopTransfer, Exception)
    assert list(inspect.signature(painterly.transfer).parameters)[:2] == ["content", "style"]
    with pytest.raises(AttributeError, match="no attribute 'not_a_thing'"):
        painterly.not_a_thing  # noqa: B018


def test_every_lazy_name_resolves() -> None:
    for name in painterly.__all__:
        assert hasattr(painterly, name), name


def test_transfer_accepts_arrays_and_returns_pil() -> None:
    rng = np.random.default_rng(0)
    photo = rng.random((24, 32, 3)).astype(np.float32)
    painting = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    out = painterly.transfer(photo, painting, size=32, iterations=2, precision="fp32")
    assert out.mode == "RGB" and out.size == (32, 24)


@pytest.mark.parametrize(
    ("regions", "device", "refused"),
    [
        ((), "cpu", False),  # tiles fit
        (("keep",), "cpu", True),  # a keep mask's terms need the whole image
        (("masks",), "cpu", True),  # so do style masks'
        ((), "mps", True),  # the painter does not tile by itself on MPS
        (("keep",), "cuda", False),  # a CUDA GPU's memory is torch's to report
    ],
)
def test_the_library_refuses_an_output_beyond_memory_before_loading_the_network(
    monkeypatch: pytest.MonkeyPatch, regions: tuple[str, ...], device: str, refused: bool
) -> None:
    # A 2048 px run needs ~12 GiB whole (~16 GiB square) and far less in tiles: with 8 GiB the
    # tiled CPU run goes on, the others are refused before VGG loads, in the library's words.
    import torch
    from PIL import Image

    from painterly import memory, optimization

    def painter_built(*args: object, **kwargs: object) -> None:
        raise AssertionError("the loss network was asked for")

    monkeypatch.setattr(memory, "available_memory", lambda: 8 * 2**30)
    monkeypatch.setattr(optimization, "Painter", painter_built)
    monkeypatch.setattr(optimization, "pick_device", lambda name: torch.device(device))
    photo = Image.new("RGB", (64, 48), "white")
    mask = Image.new("L", (64, 48), 255)
    given = {"keep": mask} if "keep" in regions else {"masks": [mask]} if "masks" in regions else {}
    for square in (False, True):
        settings = painterly.make_settings(size=2048, square=square)
        if refused:
            with pytest.raises(painterly.PainterlyError, match=r"GiB of memory.*; try size \d+ or less$"):
                painterly.run_transfer(photo, photo, settings, **given)
        else:
            with pytest.raises(AssertionError, match="loss network"):
                painterly.run_transfer(photo, photo, settings, **given)
    monkeypatch.setattr(memory, "available_memory", lambda: 64 * 2**30)
    with pytest.raises(AssertionError, match="loss network"):  # with room, the same run goes on
        painterly.run_transfer(photo, photo, painterly.make_settings(size=2048), **given)
