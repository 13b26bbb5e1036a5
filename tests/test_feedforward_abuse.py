"""Bad input and abuse on the feed-forward commands (issue 10): one line, exit 2, nothing overwritten
or left behind, no hangs; and the ONNX cache (issue 7): used, verified, rebuilt, never in /tmp."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from painterly.feedforward.model_file import write_model_file

from .helpers.images import wavy_photo
from .helpers.models import tiny_style_net


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    return write_model_file(
        tmp_path / "tiny.safetensors", tiny_style_net(), {"name": "tiny", "style": "s.png", "steps": 0}
    )


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    wavy_photo(0, (40, 30)).save(path)
    return path


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    for i in range(2):
        wavy_photo(i).save(folder / f"p{i}.png")
    return folder


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PAINTERLY_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _error(run_cli, *args: object) -> str:
    code, _, err = run_cli(*args)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("painterly") and " error: " in lines[0], err
    return lines[0]


def _safetensors(path: Path, header: bytes) -> Path:
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    return path


# -- outputs never overwrite inputs ---------------------------------------------------------------


def test_train_refuses_to_overwrite_its_style_image(run_cli, tmp_path: Path, data: Path) -> None:
    style = tmp_path / "s.safetensors"  # a PNG under a model name: the output suffix check passes
    wavy_photo(5).save(style, format="PNG")
    before = style.read_bytes()
    err = _error(
        run_cli, "train", "--style", style, "--data", data, "-o", style, "--quiet", "--device", "cpu"
    )
    assert "overwrite" in err and style.read_bytes() == before
    assert not (tmp_path / "s.png.train").exists() and not (tmp_path / "s.train").exists()


def test_distill_refuses_to_overwrite_its_teacher(run_cli, model_file: Path, data: Path) -> None:
    before = model_file.read_bytes()
    argv = ["distill", "--teacher", model_file, "--data", data, "-o", model_file, "--quiet"]
    assert "overwrite" in _error(run_cli, *argv)
    assert model_file.read_bytes() == before
    link = model_file.with_name("link.safetensors")
    link.symlink_to(model_file)
    assert "overwrite" in _error(run_cli, "distill", "--teacher", link, "--data", data, "-o", model_file)
    assert model_file.read_bytes() == before


def test_export_refuses_to_overwrite_the_model(run_cli, model_file: Path) -> None:
    before = model_file.read_bytes()
    assert "overwrite" in _error(run_cli, "export", model_file, "--onnx", model_file)
    assert model_file.read_bytes() == before


# -- bad model files: one line, no traceback --------------------------------------------------------


def _onnx_file(path: Path, metadata: str | None, with_input: bool = True) -> Path:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    out = helper.make_tensor_value_info("stylized", TensorProto.FLOAT, ["n", 3, "h", "w"])
    if with_input:
        image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, "h", "w"])
        graph = helper.make_graph(
            [helper.make_node("Identity", ["image"], ["stylized"])], "g", [image], [out]
        )
    else:
        value = helper.make_tensor("v", TensorProto.FLOAT, [1, 3, 1, 1], [0.5, 0.5, 0.5])
        graph = helper.make_graph(
            [helper.make_node("Constant", [], ["stylized"], value=value)], "g", [], [out]
        )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if metadata is not None:
        entry = model.metadata_props.add()
        entry.key, entry.value = "painterly", metadata
    onnx.save(model, str(path))
    return path


def test_onnx_models_with_bad_metadata_or_no_input(run_cli, tmp_path: Path, photo: Path) -> None:
    pytest.importorskip("onnxruntime")
    bad_json = _onnx_file(tmp_path / "badjson.onnx", "{not json")
    no_input = _onnx_file(tmp_path / "noinput.onnx", '{"name": "x"}', with_input=False)
    nested = _onnx_file(tmp_path / "nested.onnx", "[" * 100_000 + "]" * 100_000)
    for path, words in (
        (bad_json, "not valid JSON"),
        (no_input, "no (N, 3, H, W) image input"),
        (nested, "JSON"),
    ):
        assert words in _error(run_cli, "stylize", photo, "--model", path, "-o", tmp_path / "o.png")
        assert words in _error(run_cli, "models", "info", path)
    assert not (tmp_path / "o.png").exists()


def test_format_version_must_be_a_number(run_cli, tmp_path: Path, photo: Path) -> None:
    from safetensors.numpy import save_file

    document = {"architecture": "johnson2016", "width": 4, "format_version": "abc"}
    path = tmp_path / "v.safetensors"
    metadata = {"format": "painterly-feedforward", "kind": "model", "painterly": json.dumps(document)}
    save_file({"x": np.zeros(1, np.float32)}, str(path), metadata=metadata)
    assert "format_version" in _error(run_cli, "stylize", photo, "--model", path, "--backend", "torch")
    assert "format_version" in _error(run_cli, "models", "info", path)


def test_deeply_nested_headers_and_models_list_skips_bad_files(
    run_cli, tmp_path: Path, photo: Path, model_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    deep = (
        b'{"__metadata__": {"format": "painterly-feedforward"}, "x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    )
    _safetensors(folder / "deep.safetensors", deep)
    inner = json.dumps({"format": "painterly-feedforward", "painterly": "[" * 50_000 + "]" * 50_000})
    _safetensors(folder / "inner.safetensors", b'{"__metadata__": ' + inner.encode() + b"}")
    (folder / "good.safetensors").write_bytes(model_file.read_bytes())
    for name in ("deep", "inner"):
        path = folder / f"{name}.safetensors"
        assert "painterly: error:" in _error(run_cli, "stylize", photo, "--model", path, "--backend", "torch")
        _error(run_cli, "models", "info", path)
    monkeypatch.setenv("PAINTERLY_MODELS", str(folder))
    code, out, err = run_cli("models", "list")
    assert code == 0 and "good.safetensors" in out and "deep.safetensors" not in out
    warnings = err.strip().splitlines()
    assert len(warnings) == 2 and all(line.startswith("painterly: warning: skipping") for line in warnings)


def test_models_list_gives_a_campaigns_total_steps(run_cli, tmp_path: Path, monkeypatch) -> None:
    # A campaign resumed from its own stash counts `steps` from the resume; the list shows the total.
    folder = tmp_path / "models"
    folder.mkdir()
    write_model_file(
        folder / "resumed.safetensors", tiny_style_net(), {"steps": 7981, "campaign_steps": 10000}
    )
    write_model_file(folder / "plain.safetensors", tiny_style_net(), {"steps": 12})
    monkeypatch.setenv("PAINTERLY_MODELS", str(folder))
    code, out, _ = run_cli("models", "list")
    rows = {line.split()[0]: line for line in out.splitlines()}
    assert code == 0 and "10000 steps" in rows["resumed"] and "12 steps" in rows["plain"]


def test_a_reader_that_leaves_ends_the_listing_quietly(tmp_path: Path, model_file: Path) -> None:
    # `painterly models list | head -1`: the pipe closes before painterly writes; no traceback.
    env = {**os.environ, "PAINTERLY_MODELS": str(model_file.parent)}
    env.pop("PYTHONUNBUFFERED", None)  # as in a shell: the listing waits in the buffer until exit
    command = [sys.executable, "-m", "painterly", "models", "list"]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # long before the child has imported anything
    err = child.stderr.read().decode()
    assert child.wait(timeout=120) == 141 and err == "", err


def test_a_reader_that_leaves_a_long_help_ends_quietly() -> None:
    # `painterly transfer --help | head`: more than a pipe buffer (4 KiB), and argparse's SystemExit.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    command = [sys.executable, "-m", "painterly", "transfer", "--help"]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()
    err = child.stderr.read().decode()
    assert child.wait(timeout=120) == 141 and err == "", err


def test_a_folder_or_a_fifo_as_model_or_input(run_cli, tmp_path: Path, photo: Path, model_file: Path) -> None:
    for backend in ("torch", "onnxruntime"):
        assert "folder" in _error(run_cli, "stylize", photo, "--model", tmp_path, "--backend", backend)
    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)
    script = "import sys; from painterly.cli import main; sys.exit(main(sys.argv[1:]))"
    for argv in (["stylize", str(fifo), "--model", str(model_file)], ["models", "info", str(fifo)]):
        run = subprocess.run(
            [sys.executable, "-c", script, *argv], capture_output=True, text=True, timeout=60
        )
        assert run.returncode == 2 and "not a regular file" in run.stderr, run.stderr
        assert len(run.stderr.strip().splitlines()) == 1


# -- images ----------------------------------------------------------------------------------------


def _png_header(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width`` x ``height`` pixels, with no pixel data: a decompression bomb."""
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


def test_decompression_bomb_on_the_default_backend(
    run_cli, tmp_path: Path, model_file: Path, cache: Path
) -> None:
    bomb = _png_header(tmp_path / "bomb.png", 30_000, 30_000)
    assert "decompression bomb" in _error(run_cli, "stylize", bomb, "--model", model_file)


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_tiny_and_thin_images(run_cli, tmp_path: Path, model_file: Path, cache: Path, backend: str) -> None:
    if backend == "onnxruntime":
        pytest.importorskip("onnxruntime")
    for width, height in ((1, 1), (2, 3), (4, 4), (5, 1), (1, 100_000)):
        source = tmp_path / f"in_{width}x{height}.png"
        Image.new("RGB", (width, height), (200, 30, 30)).save(source)
        target = tmp_path / f"out_{width}x{height}.png"
        code, _, err = run_cli("stylize", source, "--model", model_file, "--backend", backend, "-o", target)
        assert code == 0, err
        assert Image.open(target).size == (width, height)


def test_stylize_checks_every_input_before_writing(run_cli, tmp_path: Path, model_file: Path) -> None:
    names = []
    for i in range(2):
        wavy_photo(i, (40, 30)).save(tmp_path / f"a{i}.png")
        names.append(tmp_path / f"a{i}.png")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    out = tmp_path / "out"
    out.mkdir()
    assert "broken.png" in _error(run_cli, "stylize", *names, broken, "--model", model_file, "-o", out)
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("value", ["0", "-1"])
def test_stylize_batch_size_must_be_positive(run_cli, photo: Path, model_file: Path, value: str) -> None:
    code, _, err = run_cli("stylize", photo, "--model", model_file, "--batch-size", value)
    assert code == 2 and "--batch-size" in err and len(err.strip().splitlines()) == 1


def test_stylize_size_is_capped_before_any_resize(
    run_cli, tmp_path: Path, photo: Path, model_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--size 100000`` resized a photo to 10 gigapixels and the kernel killed the process (rc 137)."""
    from painterly.feedforward import inference

    def no_resize(*args: object) -> None:
        raise AssertionError("resized before checking the size")

    monkeypatch.setattr(inference, "resize_long_side", no_resize)
    out = tmp_path / "o.png"
    assert "size" in _error(run_cli, "stylize", photo, "--model", model_file, "--size", "100000", "-o", out)
    assert not out.exists()


def test_sigterm_during_write_leaves_no_temporary_file(tmp_path: Path, photo: Path, model_file: Path) -> None:
    script = """
import os, signal, sys
from PIL import Image
from painterly.cli import main
original = Image.Image.save
def save(self, fp, *args, **kwargs):
    original(self, fp, *args, **kwargs)
    os.kill(os.getpid(), signal.SIGTERM)  # the write is done, the rename is not
Image.Image.save = save
sys.exit(main(sys.argv[1:]))
"""
    target = tmp_path / "out" / "o.png"
    target.parent.mkdir()
    argv = ["stylize", str(photo), "--model", str(model_file), "--backend", "torch", "-o", str(target)]
    run = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True, timeout=120)
    assert run.returncode == 130, run.stderr
    assert list(target.parent.iterdir()) == []


# -- training options -----------------------------------------------------------------------------


def test_train_option_errors_leave_nothing_behind(run_cli, tmp_path: Path, data: Path) -> None:
    style = tmp_path / "s.png"
    wavy_photo(5).save(style)
    out = tmp_path / "m.safetensors"
    base = ["train", "--style", style, "--data", data, "-o", out, "--quiet", "--device", "cpu"]
    assert "layer" in _error(run_cli, *base, "--content-layers", ",")
    assert "precision" in _error(run_cli, *base, "--precision", "fp33")
    assert not (tmp_path / "m.train").exists() and not out.exists()


def test_distill_option_errors_leave_nothing_behind(
    run_cli, tmp_path: Path, data: Path, model_file: Path
) -> None:
    out = tmp_path / "student.safetensors"
    base = ["distill", "--teacher", model_file, "--data", data, "-o", out, "--quiet", "--device", "cpu"]
    for value in ("nan", "inf", "0", "-1"):
        assert "--max-minutes" in _error(run_cli, *base, "--max-minutes", value)
    assert "precision" in _error(run_cli, *base, "--precision", "fp33")
    assert not (tmp_path / "student.distill").exists() and not out.exists()


def test_seed_out_of_torch_range_is_one_line(run_cli, tmp_path: Path, data: Path, model_file: Path) -> None:
    """``torch.manual_seed(10**30)`` raised a bare ValueError: a traceback from train and distill."""
    style = tmp_path / "s.png"
    wavy_photo(5).save(style)
    out = tmp_path / "out.safetensors"
    train = ["train", "--style", style, "--data", data, "-o", out, "--quiet", "--device", "cpu"]
    distill = ["distill", "--teacher", model_file, "--data", data, "-o", out, "--quiet", "--device", "cpu"]
    for base in (train, distill):
        for value in (str(10**30), str(-(10**30))):
            assert "seed" in _error(run_cli, *base, "--iterations", "1", "--seed", value)
    assert not out.exists() and not (tmp_path / "out.train").exists()
    assert not (tmp_path / "out.distill").exists()


def test_absurd_crop_and_batch_sizes_are_refused_before_any_work(
    run_cli, tmp_path: Path, data: Path, model_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--image-size 1000000`` (train) got the process killed by the kernel and left ``NAME.train/``;
    ``--batch-size 1000000000`` (distill) ran on, holding a core, and left ``NAME.distill/``."""
    from painterly.feedforward import distill, training

    def no_sampler(*args: object, **kwargs: object) -> None:
        raise AssertionError("started loading crops")

    monkeypatch.setattr(training, "CropSampler", no_sampler)
    monkeypatch.setattr(distill, "CropSampler", no_sampler)
    style = tmp_path / "s.png"
    wavy_photo(5).save(style)
    out = tmp_path / "out.safetensors"
    train = ["train", "--style", style, "--data", data, "-o", out, "--quiet", "--device", "cpu"]
    dist = ["distill", "--teacher", model_file, "--data", data, "-o", out, "--quiet", "--device", "cpu"]
    for base in (train, dist):
        assert "image size" in _error(run_cli, *base, "--image-size", "1000000", "--batch-size", "1")
        assert "--batch-size" in _error(run_cli, *base, "--image-size", "64", "--batch-size", "1000000000")
    assert not out.exists() and not (tmp_path / "out.train").exists()
    assert not (tmp_path / "out.distill").exists()


def test_corrupt_training_images_are_summarized_once(run_cli, tmp_path: Path, data: Path) -> None:
    for name in ("x1.jpg", "x2.png", "x3.webp"):
        (data / name).write_bytes(b"not an image")
    style = tmp_path / "s.png"
    wavy_photo(5).save(style)
    argv = ["train", "--style", style, "--data", data, "-o", tmp_path / "m.safetensors", "--quiet"]
    options = ["--iterations", "1", "--batch-size", "1", "--image-size", "32", "--width", "4"]
    code, _, err = run_cli(*argv, *options, "--style-size", "64", "--device", "cpu", "--precision", "fp32")
    assert code == 0, err
    assert err.strip().splitlines() == [
        "painterly: warning: skipped 3 unreadable images: x1.jpg, x2.png, x3.webp"
    ]


# -- the ONNX cache -------------------------------------------------------------------------------


def _count_exports(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    from painterly.feedforward import export

    calls: list[Path] = []
    original = export.onnx_bytes

    def counting(path: Path, **options: object) -> bytes:
        calls.append(Path(path))
        return original(path, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(export, "onnx_bytes", counting)
    return calls


def test_onnx_cache_is_used_verified_and_rebuilt(
    model_file: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("onnxruntime")
    from painterly.feedforward import load_model

    calls = _count_exports(monkeypatch)
    picture = wavy_photo(1, (40, 30))
    first = np.asarray(load_model(model_file, backend="onnxruntime").stylize(picture))
    cached = list((cache / "onnx").glob("tiny-*.onnx"))
    assert len(calls) == 1 and len(cached) == 1
    again = np.asarray(load_model(model_file, backend="onnxruntime").stylize(picture))
    assert len(calls) == 1 and np.array_equal(first, again)  # served from the cache: no second export
    cached[0].write_bytes(cached[0].read_bytes()[:500])  # a truncated cache entry
    rebuilt = np.asarray(load_model(model_file, backend="onnxruntime").stylize(picture))
    assert len(calls) == 2 and np.array_equal(first, rebuilt)
    assert cached[0].stat().st_size > 10_000


def test_unusable_cache_leaves_no_temporary_folders(
    model_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("onnxruntime")
    from painterly.feedforward import load_model

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("PAINTERLY_CACHE", str(blocker))
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    model = load_model(model_file, backend="onnxruntime")
    assert model.stylize(wavy_photo(1, (40, 30))).size == (40, 30)
    assert list(temp.iterdir()) == [] and blocker.read_text() == "x"


# -- probe leftovers: model output suffix, control characters in names, a bad $PAINTERLY_MODELS -------


def test_train_and_distill_require_a_safetensors_output(
    run_cli, tmp_path: Path, data: Path, model_file: Path
) -> None:
    style = tmp_path / "s.png"
    wavy_photo(5).save(style)
    out = tmp_path / "t.txt"
    err = _error(run_cli, "train", "--style", style, "--data", data, "-o", out, "--quiet", "--device", "cpu")
    assert ".safetensors" in err and "t.txt" in err
    err = _error(run_cli, "distill", "--teacher", model_file, "--data", data, "-o", out, "--quiet")
    assert ".safetensors" in err
    assert not out.exists() and not (tmp_path / "t.train").exists() and not (tmp_path / "t.distill").exists()


def test_model_names_with_control_characters_are_refused_and_escaped(
    run_cli, tmp_path: Path, data: Path, model_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    style = tmp_path / "s.png"
    wavy_photo(5).save(style)
    out = tmp_path / "m.safetensors"
    base = ["train", "--style", style, "--data", data, "-o", out, "--quiet", "--device", "cpu"]
    assert "control characters" in _error(run_cli, *base, "--name", "a\nb")
    argv = ["distill", "--teacher", model_file, "--data", data, "-o", out, "--quiet"]
    assert "control characters" in _error(run_cli, *argv, "--name", "a\x1b[2Jb")
    assert not out.exists()
    # a model written by another tool (or an older painterly) may still hold one: shown escaped
    (tmp_path / "zoo").mkdir()
    forged = write_model_file(
        tmp_path / "zoo" / "forged.safetensors",
        tiny_style_net(),
        {"name": "a\nsteps: 999", "style": "s\x1b[31m.png", "steps": 0},
    )
    code, shown_info, _ = run_cli("models", "info", forged)
    assert code == 0 and "a\\nsteps: 999" in shown_info and "\x1b" not in shown_info
    assert not any(line.startswith("steps: 999") for line in shown_info.splitlines())
    monkeypatch.setenv("PAINTERLY_MODELS", str(forged.parent))
    code, listing, _ = run_cli("models", "list")
    assert code == 0 and "\x1b" not in listing and "forged" in listing


@pytest.mark.parametrize("kind", ["file", "missing"])
def test_an_unusable_models_folder_is_reported_once(
    run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    target = tmp_path / "models"
    if kind == "file":
        target.write_text("not a folder")
    monkeypatch.setenv("PAINTERLY_MODELS", str(target))
    code, _, err = run_cli("models", "list")
    lines = [line for line in err.splitlines() if "PAINTERLY_MODELS" in line]
    assert code == 0 and len(lines) == 1, err
    assert ("is not a folder" if kind == "file" else "does not exist") in lines[0]
    code, _, again = run_cli("models", "list")
    assert code == 0 and "PAINTERLY_MODELS" not in again
