"""``train --init MODEL``: a run that starts from a trained network's weights (any architecture)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from painterly.errors import PainterlyError
from painterly.feedforward.conditional import ConditionalTransformerNet
from painterly.feedforward.model_file import read_model_file, write_model_file
from painterly.feedforward.network import TransformerNet
from painterly.feedforward.training import train, validate_settings
from painterly.feedforward.warm_start import warm_start

from .helpers.files import import_file
from .helpers.models import tiny_cin, tiny_train_settings


def _single(seed: int = 5) -> TransformerNet:
    torch.manual_seed(seed)
    net = TransformerNet(4)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.InstanceNorm2d):
                module.weight.normal_(1.0, 0.5)
                module.bias.normal_(0.0, 0.5)
    return net.eval()


def _one(net: ConditionalTransformerNet, name: str) -> torch.Tensor:
    return net.weights_for({name: 1.0}, 1, torch.device("cpu"))


def test_a_single_style_source_starts_every_style_of_a_multi_style_network() -> None:
    source = _single()
    net = ConditionalTransformerNet(4, ["a", "b"])
    x = torch.rand(1, 3, 32, 40)
    assert not torch.allclose(net.stylize_tensor(x, _one(net, "a")), source.stylize_tensor(x))
    warm_start(net, source)
    for name in ("a", "b"):
        assert torch.allclose(net.stylize_tensor(x, _one(net, name)), source.stylize_tensor(x), atol=1e-5)


def test_a_multi_style_source_gives_named_styles_their_rows_and_new_ones_the_mean() -> None:
    source = tiny_cin(["a", "b"])
    net = ConditionalTransformerNet(4, ["b", "new"])
    warm_start(net, source)
    x = torch.rand(1, 3, 32, 32)
    assert torch.allclose(net.stylize_tensor(x, _one(net, "b")), source.stylize_tensor(x, _one(source, "b")))
    half = torch.tensor([[0.5, 0.5]])
    assert torch.allclose(net.stylize_tensor(x, _one(net, "new")), source.stylize_tensor(x, half), atol=1e-5)
    single = TransformerNet(4)
    warm_start(single, source, "a")
    assert torch.allclose(single.stylize_tensor(x), source.stylize_tensor(x, _one(source, "a")), atol=1e-5)


@pytest.mark.parametrize(
    ("net", "hint"),
    [(TransformerNet(8), "width 8"), (TransformerNet(4, upsample="bilinear"), "upsample bilinear")],
)
def test_a_source_of_another_shape_is_refused_with_the_options_to_set(net: TransformerNet, hint: str) -> None:
    with pytest.raises(PainterlyError, match=f"--init.*{hint}.*--width and --upsample"):
        warm_start(net, _single())


def test_training_from_init_starts_at_the_source_and_records_it(training_data, tmp_path: Path) -> None:
    folder, stripes, dots, _ = training_data
    source = write_model_file(tmp_path / "src.safetensors", _single(), {"name": "src", "steps": 7})
    out = tmp_path / "zoo.safetensors"
    # a learning rate too small to move the weights visibly: the result is the warm start itself
    settings = tiny_train_settings(
        folder, [stripes, dots], out, iterations=1, batch_size=1, init=source, learning_rate=1e-12
    )
    train(settings)
    net, metadata, _ = read_model_file(out)
    init = metadata["training"]["init"]
    assert init["file"] == "src.safetensors" and init["steps"] == 7 and len(init["sha256"]) == 64
    x = torch.rand(1, 3, 32, 32)
    expected = _single().stylize_tensor(x)
    assert torch.allclose(net.stylize_tensor(x, _one(net, "dots")), expected, atol=1e-4)


def test_init_with_base_is_refused(training_data, tmp_path: Path) -> None:
    folder, stripes, _, _ = training_data
    base = write_model_file(tmp_path / "zoo.safetensors", tiny_cin(["a", "b"]), {"name": "zoo"})
    settings = tiny_train_settings(folder, stripes, tmp_path / "m.safetensors", base=base, init=base)
    with pytest.raises(PainterlyError, match="--init and --base"):
        train(settings)


def test_an_init_that_does_not_fit_is_refused_before_any_work(training_data, tmp_path: Path) -> None:
    folder, stripes, _, _ = training_data
    wide = write_model_file(tmp_path / "wide.safetensors", TransformerNet(8), {"name": "wide"})
    settings = tiny_train_settings(folder, stripes, tmp_path / "m.safetensors", init=wide)
    with pytest.raises(PainterlyError, match="--init wide.safetensors: .*width 8.*set --width"):
        validate_settings(settings)
    not_a_model = tmp_path / "photo.safetensors"
    not_a_model.write_bytes(b"not a model")
    with pytest.raises(PainterlyError, match="^--init: "):
        validate_settings(tiny_train_settings(folder, stripes, tmp_path / "m.safetensors", init=not_a_model))


def test_a_resumed_run_keeps_the_record_of_its_init(training_data, tmp_path: Path) -> None:
    folder, stripes, _, _ = training_data
    source = write_model_file(tmp_path / "src.safetensors", _single(), {"name": "src", "steps": 7})
    out = tmp_path / "m.safetensors"
    train(tiny_train_settings(folder, stripes, out, iterations=2, init=source))
    train(tiny_train_settings(folder, stripes, out, iterations=3, resume=True))
    assert read_model_file(out)[1]["training"]["init"]["file"] == "src.safetensors"


def test_a_style_taken_out_of_a_multi_style_model_paints_the_same(tmp_path: Path) -> None:
    scripts = Path(__file__).resolve().parents[1] / "scripts"
    script = import_file(scripts / "extract_style.py", "extract_style_under_test")
    zoo = tmp_path / "zoo.safetensors"
    cin = tiny_cin(["a", "b"])
    sources = [{"name": "b", "file": "b.jpg", "sha256": "f" * 64, "image_size": [8, 8]}]
    write_model_file(zoo, cin, {"name": "zoo", "steps": 7, "style_sources": sources})
    out = tmp_path / "b.safetensors"
    assert script.main([str(zoo), "b", "-o", str(out)]) == 0
    single, meta, _ = read_model_file(out)
    assert isinstance(single, TransformerNet)
    assert meta["name"] == "b" and meta["style_sha256"] == "f" * 64 and meta["extracted_from"]["steps"] == 7
    x = torch.rand(1, 3, 24, 32)
    with torch.no_grad():
        assert torch.allclose(single.eval()(x), cin(x, _one(cin, "b")), atol=1e-5)
        assert not torch.allclose(single(x), cin(x, _one(cin, "a")), atol=1e-3)
    assert script.main([str(zoo), "c", "-o", str(tmp_path / "c.safetensors")]) == 2  # no such style
    assert script.main([str(out), "b", "-o", str(tmp_path / "d.safetensors")]) == 2  # one style already
    assert script.main([str(zoo), "a", "-o", str(zoo)]) == 2  # would overwrite its source
    assert read_model_file(zoo)[1]["name"] == "zoo"
