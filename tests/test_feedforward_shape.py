"""The network's shapes: johnson (Johnson et al.'s proportions) and compact (narrow decoder)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from painterly.errors import PainterlyError
from painterly.feedforward.model_file import read_model_file, write_model_file
from painterly.feedforward.network import SHAPES, TransformerNet
from painterly.feedforward.training import train

from .helpers.images import wavy_photo
from .helpers.models import tiny_train_settings


def _count(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_the_compact_shape_is_the_small_cpu_network() -> None:
    compact = TransformerNet(32, shape="compact", upsample="bilinear")
    johnson = TransformerNet(32, upsample="bilinear")
    assert 130_000 < _count(compact) < 150_000  # about 140k weights, as the reference network
    assert _count(johnson) > 10 * _count(compact)
    assert compact.residual_blocks == 6 and johnson.residual_blocks == 5
    convs = [m for m in compact.decoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 4, 3]
    x = torch.rand(1, 3, 36, 52)
    assert compact.stylize_tensor(x).shape == x.shape


def test_the_shape_is_recorded_and_reloaded(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = TransformerNet(8, shape="compact", upsample="bilinear").eval()
    path = write_model_file(tmp_path / "c.safetensors", net, {"name": "c", "steps": 1})
    loaded, meta, _ = read_model_file(path)
    assert meta["shape"] == "compact" and isinstance(loaded, TransformerNet) and loaded.shape == "compact"
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(loaded.stylize_tensor(x), net.stylize_tensor(x))
    # a johnson-shaped file does not name its shape: files written before the key load as before
    plain = write_model_file(tmp_path / "j.safetensors", TransformerNet(4), {"name": "j", "steps": 1})
    assert "shape" not in read_model_file(plain)[1] and read_model_file(plain)[0].shape == "johnson"


def test_an_unknown_shape_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PainterlyError, match="shape"):
        TransformerNet(4, shape="compakt")
    net = TransformerNet(4, shape="compact")
    path = write_model_file(tmp_path / "c.safetensors", net, {"name": "c", "steps": 1})
    from safetensors.torch import load_file, save_file

    from painterly.feedforward.model_file import read_metadata

    meta = read_metadata(path)
    import json

    meta["shape"] = "huge"
    save_file(load_file(path), str(path), metadata={"painterly": json.dumps(meta)})
    with pytest.raises(PainterlyError, match="shape"):
        read_model_file(path)


def test_the_cli_offers_the_network_shapes() -> None:
    from painterly.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    shape = next(a for a in commands.choices["train"]._actions if a.dest == "shape")
    assert shape.choices is not None and tuple(shape.choices) == SHAPES


@pytest.fixture
def data(tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "data"
    folder.mkdir()
    for i in range(3):
        wavy_photo(i).save(folder / f"photo{i}.png")
    y, x = np.mgrid[0:48, 0:48]
    style = tmp_path / "style.png"
    Image.fromarray((((x + y) // 4 % 2)[..., None] * [255, 40, 200]).astype(np.uint8)).save(style)
    return folder, style


def test_a_compact_network_trains_and_resumes(data: tuple[Path, Path], tmp_path: Path) -> None:
    folder, style = data
    out = tmp_path / "c.safetensors"
    train(tiny_train_settings(folder, style, out, shape="compact", width=8, iterations=2))
    net, meta, _ = read_model_file(out)
    assert meta["shape"] == "compact" and meta["steps"] == 2 and net.residual_blocks == 6
    result = train(
        tiny_train_settings(folder, style, out, shape="compact", width=8, iterations=3, resume=True)
    )
    assert result.steps == 3
    # --init from a network of the other shape is refused before any work
    johnson = write_model_file(tmp_path / "j.safetensors", TransformerNet(8), {"name": "j", "steps": 1})
    with pytest.raises(PainterlyError, match="shape"):
        train(
            tiny_train_settings(
                folder, style, tmp_path / "x.safetensors", shape="compact", width=8, init=johnson
            )
        )


def test_the_compact_shape_is_single_style_only(data: tuple[Path, Path], tmp_path: Path) -> None:
    folder, style = data
    other = tmp_path / "other.png"
    wavy_photo(9).save(other)
    with pytest.raises(PainterlyError, match="single-style"):
        train(tiny_train_settings(folder, [style, other], tmp_path / "m.safetensors", shape="compact"))
    with pytest.raises(PainterlyError, match="shape"):
        train(tiny_train_settings(folder, style, tmp_path / "m.safetensors", shape="wide"))


def test_a_compact_model_exports_to_onnx_and_matches_torch(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    from painterly.feedforward.export import export_onnx

    torch.manual_seed(0)
    path = write_model_file(
        tmp_path / "c.safetensors",
        TransformerNet(8, shape="compact", upsample="bilinear"),
        {"name": "c", "steps": 1},
    )
    session = ort.InferenceSession(
        str(export_onnx(path, tmp_path / "c.onnx")), providers=["CPUExecutionProvider"]
    )
    loaded = read_model_file(path)[0].eval()
    x = torch.rand(1, 3, 40, 28)
    with torch.no_grad():
        expected = loaded(x).numpy()
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(got, expected, atol=1e-4)
