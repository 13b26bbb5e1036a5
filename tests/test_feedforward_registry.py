"""The architecture catalog: files name their network kind, old files load as the default, and a
new kind with a second input goes through loading and ONNX export unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from painterly.errors import PainterlyError
from painterly.feedforward import architectures
from painterly.feedforward.model_file import read_metadata, read_model_file, write_model_file
from painterly.feedforward.network import TransformerNet

from .helpers.models import tiny_style_net


class WeightedNet(TransformerNet):
    """A stand-in for a multi-style network: a second input (style weights) scales the output."""

    def forward(self, x: torch.Tensor, style_weights: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().forward(x) * style_weights.sum(dim=1).view(-1, 1, 1, 1)

    def config(self) -> dict[str, object]:
        return {**super().config(), "architecture": "test-weighted"}


def _inputs(net: torch.nn.Module) -> list[architectures.OnnxInput]:
    return [
        *architectures.get("johnson2016").onnx_inputs(net),
        architectures.OnnxInput("style_weights", torch.ones(1, 2), {0: "batch"}),
    ]


@pytest.fixture
def weighted_kind(monkeypatch: pytest.MonkeyPatch) -> architectures.Architecture:
    monkeypatch.setattr(architectures, "_CATALOG", dict(architectures._CATALOG))
    return architectures.register(
        architectures.Architecture("test-weighted", lambda meta: WeightedNet(int(meta["width"])), _inputs)
    )


def _rewrite_document(path: Path, change: dict[str, object], drop: tuple[str, ...] = ()) -> None:
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(path), "pt") as handle:
        header = handle.metadata()
    document = {k: v for k, v in json.loads(header["painterly"]).items() if k not in drop}
    header["painterly"] = json.dumps({**document, **change})
    save_file(load_file(str(path)), str(path), metadata=header)


def test_files_name_their_architecture_and_old_files_load_as_the_default(tmp_path: Path) -> None:
    path = write_model_file(tmp_path / "m.safetensors", tiny_style_net(), {"name": "m"})
    assert read_metadata(path)["architecture"] == "johnson2016"
    _rewrite_document(path, {}, drop=("architecture",))
    assert "architecture" not in read_metadata(path)
    net, _, _ = read_model_file(path)
    assert type(net) is TransformerNet and net.width == 4
    _rewrite_document(path, {"architecture": "johnson2061"})
    with pytest.raises(PainterlyError, match="did you mean 'johnson2016'"):
        read_model_file(path)
    _rewrite_document(path, {"architecture": "johnson2016", "width": "wide"})
    with pytest.raises(PainterlyError, match="width"):
        read_model_file(path)


def test_a_new_kind_with_two_inputs_loads_and_exports(
    weighted_kind: architectures.Architecture, tmp_path: Path
) -> None:
    pytest.importorskip("onnxruntime")
    from painterly.feedforward.export import export_onnx
    from painterly.feedforward.onnx_backend import OnnxNet

    torch.manual_seed(0)
    path = write_model_file(tmp_path / "w.safetensors", WeightedNet(4), {"name": "w"})
    net, meta, _ = read_model_file(path)
    assert isinstance(net, WeightedNet) and meta["architecture"] == "test-weighted"
    onnx_net = OnnxNet(export_onnx(path, tmp_path / "w.onnx"))
    assert onnx_net.extra_inputs == ["style_weights"]
    image = np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32)
    with pytest.raises(PainterlyError, match="style_weights"):
        onnx_net.stylize_array(image)
    half = onnx_net.stylize_array(image, style_weights=np.array([[0.25, 0.25]], np.float32))
    with torch.no_grad():
        wanted = net(torch.from_numpy(image), torch.tensor([[0.25, 0.25]])).clamp(0, 1).numpy()
    np.testing.assert_allclose(half, wanted, atol=1e-4)
