"""Model files, stylizing, tiling, ONNX export and parity, the shipped model, and CLI errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from painterly.cli import main
from painterly.errors import PainterlyError
from painterly.feedforward import list_models, load_model, stylize
from painterly.feedforward.catalog import SHIPPED_DIR
from painterly.feedforward.model_file import read_metadata, read_model_file, write_model_file
from painterly.feedforward.tiling import stylize_tiled

from .helpers.images import wavy_photo
from .helpers.models import tiny_style_net

SHARED_IMAGES = Path(__file__).parents[2] / "shared" / "images"


def _photo(size: tuple[int, int] = (70, 53), seed: int = 0) -> Image.Image:
    return wavy_photo(seed, size, frequencies=(3, 9))


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    return write_model_file(
        tmp_path / "tiny.safetensors", tiny_style_net(), {"name": "tiny", "style": "s.png", "steps": 0}
    )


def test_model_file_round_trip(model_file: Path) -> None:
    net, meta, others = read_model_file(model_file)
    assert meta["width"] == 4 and meta["name"] == "tiny" and meta["architecture"] == "johnson2016"
    assert others == {}
    for key, value in tiny_style_net().state_dict().items():
        assert torch.equal(net.state_dict()[key], value)


def test_stylize_keeps_size_and_aspect(model_file: Path) -> None:
    model = load_model(model_file, device="cpu")
    photo = _photo((70, 53))
    assert model.stylize(photo).size == (70, 53)  # not a multiple of 4: padded and cropped
    assert model.stylize(photo, size=40).size == (40, 30)
    assert model.stylize(np.asarray(photo)).size == (70, 53)
    kept = model.stylize(photo, preserve_colors="luminance")
    assert kept.size == (70, 53)
    assert stylize(photo, model).size == (70, 53)
    with pytest.raises(PainterlyError, match="colour mode"):
        model.stylize(photo, preserve_colors="bogus")


def test_batching_matches_single_images(model_file: Path) -> None:
    model = load_model(model_file, device="cpu")
    photos = [_photo((48, 40), seed) for seed in range(3)]
    batched = list(model.stylize_many(photos, batch_size=3))
    single = [model.stylize(p) for p in photos]
    for a, b in zip(batched, single, strict=True):
        assert np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).max() <= 1


def test_tiled_matches_untiled() -> None:
    net = tiny_style_net()
    image = torch.from_numpy(np.asarray(_photo((300, 220)), np.float32) / 255).permute(2, 0, 1)[None]
    whole = net.stylize_tensor(image)
    tiled = stylize_tiled(net, image, tile=128, overlap=32)
    difference = (whole - tiled).abs()
    assert tiled.shape == whole.shape
    # Per-tile instance norm would give a mean error of about 0.05 here (max 0.37).
    assert difference.mean() < 5e-3 and difference.max() < 0.1


def test_onnx_export_and_parity(model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("onnxruntime")
    onnx_path = tmp_path / "tiny.onnx"
    assert main(["export", str(model_file), "--onnx", str(onnx_path)]) == 0
    torch_model = load_model(model_file, device="cpu")
    onnx_model = load_model(onnx_path)
    assert onnx_model.backend == "onnxruntime" and onnx_model.metadata["name"] == "tiny"
    for size in ((70, 53), (128, 96)):  # dynamic height and width
        photo = _photo(size)
        a = np.asarray(torch_model._run(_tensor(photo), None))
        b = np.asarray(onnx_model._run(_tensor(photo), None))
        np.testing.assert_allclose(a, b, atol=1e-4)
    out = tmp_path / "out.png"
    (tmp_path / "in.png").write_bytes(b"")
    _photo().save(tmp_path / "in.png")
    code = main(
        [
            "stylize",
            str(tmp_path / "in.png"),
            "--model",
            str(model_file),
            "--backend",
            "onnxruntime",
            "-o",
            str(out),
        ]
    )
    assert code == 0 and Image.open(out).size == (70, 53)


def _tensor(image: Image.Image) -> np.ndarray:
    return np.ascontiguousarray((np.asarray(image, np.float32) / 255).transpose(2, 0, 1)[None])


def test_stylize_cli_folder_never_overwrites(model_file: Path, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        _photo(seed=i).save(photos / f"p{i}.jpg")
    assert main(["stylize", str(photos), "--model", str(model_file)]) == 0
    assert sorted(p.name for p in photos.iterdir()) == ["p0.jpg", "p0_tiny.png", "p1.jpg", "p1_tiny.png"]
    out = tmp_path / "out"
    out.mkdir()
    assert (
        main(["stylize", str(photos / "p*.jpg"), "--model", str(model_file), "-o", str(out), "--size", "32"])
        == 0
    )
    assert Image.open(out / "p0_tiny.png").size == (32, 24)


def _cli_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("painterly: error:")
    return err


def test_bad_model_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    photo = tmp_path / "p.png"
    _photo().save(photo)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(os.urandom(200))
    other = tmp_path / "other.safetensors"
    save_file({"x": torch.zeros(2)}, str(other))
    mismatch = tmp_path / "mismatch.safetensors"
    write_model_file(mismatch, tiny_style_net(4), {"name": "m"})
    from safetensors.torch import load_file

    tensors = load_file(str(mismatch))
    from safetensors import safe_open

    with safe_open(str(mismatch), "pt") as handle:
        header = handle.metadata()
    header["painterly"] = header["painterly"].replace('"width": 4', '"width": 8')
    save_file(tensors, str(mismatch), metadata=header)
    for path, words in (
        (garbage, "not a painterly model"),
        (other, "not a painterly feed-forward model"),
        (mismatch, "do not match"),
        (tmp_path / "missing.safetensors", "not found"),
    ):
        err = _cli_error(["stylize", str(photo), "--model", str(path)], capsys)
        assert words in err
    assert "not a painterly" in _cli_error(["models", "info", str(garbage)], capsys)
    monkeypatch.setenv("PAINTERLY_MODELS", str(tmp_path))
    assert "did you mean 'mismatch'" in _cli_error(["stylize", str(photo), "--model", "mismach"], capsys)


def test_unwritable_output(model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photo = tmp_path / "p.png"
    _photo().save(photo)
    _cli_error(
        ["stylize", str(photo), "--model", str(model_file), "-o", str(tmp_path / "no" / "x.png")], capsys
    )
    _cli_error(["stylize", str(photo), "--model", str(model_file), "-o", str(photo)], capsys)
    _cli_error(["export", str(model_file), "--onnx", str(tmp_path / "no" / "x.onnx")], capsys)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        if not os.access(locked, os.W_OK):  # root ignores permission bits
            _cli_error(
                ["stylize", str(photo), "--model", str(model_file), "-o", str(locked / "x.png")], capsys
            )
    finally:
        locked.chmod(0o755)


def test_shipped_model_is_listed_and_loads() -> None:
    shipped = [m for m in list_models() if m["source"] == "shipped"]
    if not shipped:
        pytest.skip("no shipped model in this checkout")
    entry = next(m for m in shipped if m["name"] == "starry_night")
    assert {"name", "path", "style", "width"} <= set(entry)
    assert Path(entry["path"]).stat().st_size < 5_000_000
    meta = read_metadata(entry["path"])
    assert meta["steps"] > 0 and meta["style"] == "starry_night.jpg"
    model = load_model("starry_night", device="cpu")
    assert model.stylize(_photo((64, 48))).size == (64, 48)


ZOO_STYLES = ["the_wave", "starry_night", "the_scream", "composition_vii", "udnie", "woman_with_hat"]


def test_shipped_zoo_holds_six_styles_each_usable_by_name() -> None:
    if not any(m["name"] == "zoo" and m["source"] == "shipped" for m in list_models()):
        pytest.skip("no shipped zoo in this checkout")
    meta = read_metadata(SHIPPED_DIR / "zoo.safetensors")
    assert meta["architecture"] == "cin" and meta["styles"] == ZOO_STYLES
    assert [s["name"] for s in meta["style_sources"]] == ZOO_STYLES
    assert all(len(s["sha256"]) == 64 for s in meta["style_sources"])
    photo = _photo((64, 48))
    # "udnie" alone is the zoo with that style; any name but starry_night (a model of its own)
    paintings = {
        name: np.asarray(load_model(name, device="cpu").stylize(photo), np.float32)
        for name in ZOO_STYLES
        if name != "starry_night"
    }
    zoo = load_model("zoo", device="cpu")
    assert np.array_equal(paintings["udnie"], np.asarray(zoo.stylize(photo, style_mix="udnie:1"), np.float32))
    names = list(paintings)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert np.abs(paintings[a] - paintings[b]).mean() > 2, (a, b)  # six styles, not one


def test_user_models_folder(model_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAINTERLY_MODELS", str(model_file.parent))
    assert any(m["name"] == "tiny" and m["source"] == "user" for m in list_models())
    assert load_model("tiny", device="cpu").name == "tiny"


def test_onnx_multiple_matches_the_network() -> None:
    from painterly.feedforward import inference, network, onnx_backend, tiling

    assert onnx_backend.MULTIPLE == network.MULTIPLE and inference.TILE == tiling.TILE


_TORCH_FREE = """
import sys
import painterly.cli.stylize, painterly.cli.models, painterly.feedforward, painterly.feedforward.onnx_backend
import painterly.feedforward.catalog, painterly.feedforward.backends, painterly.feedforward.architectures
from painterly.feedforward.model_file import read_metadata
read_metadata(sys.argv[1])
assert "torch" not in sys.modules, "torch imported by the feed-forward modules"
import painterly.images
if "torch" in sys.modules:
    print("images-imports-torch")
    raise SystemExit(0)
from painterly.feedforward.inference import list_models, load_model
from PIL import Image
list_models()
model = load_model(sys.argv[2])
assert model.stylize(Image.new("RGB", (30, 22), "red")).size == (30, 22)
assert "torch" not in sys.modules, "torch imported on the onnxruntime path"
print("ok")
"""


def test_onnxruntime_path_imports_no_torch(model_file: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    import subprocess
    import sys

    onnx_path = tmp_path / "tiny.onnx"
    assert main(["export", str(model_file), "--onnx", str(onnx_path)]) == 0
    run = subprocess.run(
        [sys.executable, "-c", _TORCH_FREE, str(model_file), str(onnx_path)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-2000:]
    if "images-imports-torch" in run.stdout:
        pytest.skip("painterly.images still imports torch at module level")
    assert run.stdout.strip() == "ok"


@pytest.mark.slow
def test_shipped_model_paints_a_real_photo(tmp_path: Path) -> None:
    photo = SHARED_IMAGES / "tubingen.jpg"
    if not photo.is_file() or not any(m["name"] == "starry_night" for m in list_models()):
        pytest.skip("needs ../shared/images and the shipped model")
    out = tmp_path / "t.png"
    assert main(["stylize", str(photo), "--model", "starry_night", "--size", "256", "-o", str(out)]) == 0
    result = np.asarray(Image.open(out), np.float32)
    source = np.asarray(Image.open(photo).convert("RGB").resize(Image.open(out).size), np.float32)
    assert np.abs(result - source).mean() > 10  # clearly repainted
