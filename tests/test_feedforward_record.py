"""One record per model: resolved once from a name, a style, a path or an .onnx file, and read once."""

from __future__ import annotations

import io
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from painterly.errors import PainterlyError
from painterly.feedforward import model_file
from painterly.feedforward.model_file import write_model_file
from painterly.feedforward.record import ModelRecord, forget, record_for, resolve_record

from .helpers.images import make_photo
from .helpers.models import tiny_cin, tiny_style_net


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """$PAINTERLY_MODELS with a single-style ``tiny`` and a two-style ``duo`` (styles a, b)."""
    folder = tmp_path / "models"
    folder.mkdir()
    write_model_file(folder / "tiny.safetensors", tiny_style_net(), {"name": "tiny", "style": "s.png"})
    write_model_file(folder / "duo.safetensors", tiny_cin(["a", "b"]), {"name": "duo"})
    monkeypatch.setenv("PAINTERLY_MODELS", str(folder))
    monkeypatch.setenv("PAINTERLY_CACHE", str(tmp_path / "cache"))
    forget()
    return folder


def count_header_reads(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Reads of a safetensors header (the model metadata), by file name, from now on."""
    reads: Counter[str] = Counter()
    original = model_file._safetensors_metadata

    def counting(path: Path) -> dict[str, str]:
        reads[Path(path).name] += 1
        return original(path)

    monkeypatch.setattr(model_file, "_safetensors_metadata", counting)
    return reads


def test_a_record_from_a_name(models: Path) -> None:
    record = resolve_record("tiny")
    assert record.path == models / "tiny.safetensors" and record.name == "tiny"
    assert record.metadata["style"] == "s.png" and record.styles == () and record.style is None
    assert record.architecture.name == "johnson2016" and not record.is_onnx
    assert os.fspath(record) == str(record.path)  # a record goes where a model path goes
    with pytest.raises(TypeError):
        record.metadata["name"] = "other"  # type: ignore[index]  # read-only: records are shared


def test_a_record_from_a_style_of_a_multi_style_model(models: Path) -> None:
    from painterly.feedforward import load_model

    record = resolve_record("b")
    assert record.path == models / "duo.safetensors" and record.style == "b"
    assert record.styles == ("a", "b") and record.architecture.name == "cin"
    model = load_model("b", device="cpu")
    assert model.record.style == "b" and model.style_mix == {"b": 1.0} and model.styles == ["a", "b"]
    with pytest.raises(PainterlyError, match="no model file or known model named 'c'"):
        resolve_record("c")


def test_a_record_from_a_path_is_kept_until_the_file_changes(models: Path) -> None:
    path = models / "tiny.safetensors"
    record = resolve_record(path)
    assert record is record_for(path) is resolve_record(record) is resolve_record("tiny")
    write_model_file(path, tiny_style_net(seed=2), {"name": "renamed"})
    changed = record_for(path)
    assert changed is not record and changed.name == "renamed"


def test_a_record_from_an_onnx_file(models: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from painterly.feedforward import export_onnx, load_model

    exported = export_onnx("tiny", tmp_path / "tiny.onnx")
    record = resolve_record(exported)
    assert record.is_onnx and record.name == "tiny" and record.metadata["style"] == "s.png"
    with pytest.raises(PainterlyError, match="only the onnxruntime backend"):
        record.network()
    model = load_model(record)
    assert model.backend == "onnxruntime" and model.onnx is record.onnx_net()
    torch_model = load_model("tiny", device="cpu", backend="torch")
    photo = make_photo(40, 32)
    ours = np.asarray(model.stylize(photo), dtype=np.int16)
    assert np.abs(ours - np.asarray(torch_model.stylize(photo), dtype=np.int16)).max() <= 2


def test_the_weights_are_read_once_for_every_runtime_that_takes_the_record(
    models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from painterly.feedforward import load_model

    reads: list[Path] = []
    original = model_file.read_tensors

    def counting(path: Path) -> dict:
        reads.append(Path(path))
        return original(path)

    monkeypatch.setattr(model_file, "read_tensors", counting)
    first = load_model("tiny", device="cpu", backend="torch")
    second = load_model("tiny", device="cpu", backend="torch", precision="fp32")
    assert reads == [models / "tiny.safetensors"] and first.record is second.record
    assert first.net is not second.net  # each runtime has its own network


def test_one_stylize_through_the_cli_reads_the_model_metadata_once(
    models: Path, tmp_path: Path, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    photo = tmp_path / "photo.png"
    make_photo(40, 32).save(photo)
    reads = count_header_reads(monkeypatch)
    # A style's name: the catalog is searched, the multi-style model found and loaded, one read each.
    code, out, err = run_cli("stylize", photo, "-m", "b", "--backend", "torch", "--device", "cpu")
    assert code == 0, err
    assert Path(out.strip()).name == "photo_b.png"
    assert reads["tiny.safetensors"] == reads["duo.safetensors"] == 1
    assert set(reads.values()) == {1}  # the shipped models are listed too: once each


def test_stylizing_through_the_server_reads_the_model_metadata_once(
    models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("fastapi")
    pytest.importorskip("multipart")
    from fastapi.testclient import TestClient

    from painterly.server import ServerSettings, create_app

    buffer = io.BytesIO()
    make_photo(40, 32).save(buffer, format="PNG")
    settings = ServerSettings(data_dir=tmp_path / "data", devices=("cpu",))
    reads = count_header_reads(monkeypatch)
    with TestClient(create_app(settings), base_url="http://localhost") as client:
        for model in ("tiny", "a", "tiny"):  # a listing and a load per request, a style by its name
            files = {"image": ("photo.png", buffer.getvalue(), "image/png")}
            response = client.post("/api/stylize", files=files, data={"model": model})
            assert response.status_code == 200, response.text
            assert Image.open(io.BytesIO(response.content)).size == (40, 32)
    assert reads["tiny.safetensors"] == reads["duo.safetensors"] == 1
    assert set(reads.values()) == {1}  # the shipped models are listed too: once each


def test_a_record_is_not_a_model_file_of_another_kind(tmp_path: Path) -> None:
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a model")
    with pytest.raises(PainterlyError, match="not a painterly model file"):
        record_for(junk)
    with pytest.raises(PainterlyError, match="model file not found"):
        resolve_record(tmp_path / "missing.safetensors")
    plain = write_model_file(tmp_path / "m.safetensors", tiny_style_net(), {})
    assert isinstance(record_for(plain), ModelRecord) and record_for(plain).name == "m"
