"""Training a feed-forward network: loss goes down, resume, Ctrl-C, DDP, and bad training data."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from painterly.cli import main
from painterly.feedforward.model_file import read_model_file
from painterly.feedforward.training import TrainSettings, train

from .helpers.images import wavy_photo
from .helpers.models import tiny_train_settings


def _style() -> Image.Image:
    y, x = np.mgrid[0:64, 0:64]
    stripes = ((x + y) // 4 % 2).astype(np.float32)
    return Image.fromarray((np.stack([stripes, 1 - stripes, stripes * 0.5], -1) * 255).astype(np.uint8))


@pytest.fixture
def data(tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "data" / "nested"
    folder.mkdir(parents=True)
    for i in range(4):
        wavy_photo(i).save(folder / f"photo{i}.png")
    (folder / "notes.txt").write_text("not an image, ignored")
    style = tmp_path / "style.png"
    _style().save(style)
    return tmp_path / "data", style


def _settings(data: tuple[Path, Path], output: Path, **overrides: object) -> TrainSettings:
    folder, style = data
    return tiny_train_settings(folder, style, output, **overrides)


def _state(path: Path) -> dict[str, torch.Tensor]:
    return read_model_file(path)[0].state_dict()


def test_loss_decreases(data: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "m.safetensors"
    result = train(_settings(data, out, iterations=40, batch_size=1))
    assert result.steps == 40 and out.is_file()
    log = [json.loads(line) for line in (tmp_path / "m.train" / "losses.jsonl").read_text().splitlines()]
    first = np.mean([e["total"] for e in log[:5]])
    last = np.mean([e["total"] for e in log[-5:]])
    assert last < 0.7 * first
    assert (tmp_path / "m.train" / "val_000040.png").is_file()


def test_resume_continues_the_same_curve(data: tuple[Path, Path], tmp_path: Path) -> None:
    straight = tmp_path / "a" / "m.safetensors"
    straight.parent.mkdir()
    train(_settings(data, straight))

    resumed = tmp_path / "b" / "m.safetensors"
    resumed.parent.mkdir()

    def stop_at_4(progress: object) -> None:
        if progress.step == 4:  # type: ignore[attr-defined]
            raise KeyboardInterrupt  # what Ctrl-C does: a checkpoint is saved, no model

    first = train(_settings(data, resumed), stop_at_4)
    assert first.interrupted and first.steps == 4 and not resumed.exists()
    second = train(_settings(data, resumed, resume=True))
    assert second.steps == 6 and not second.interrupted
    a, b = _state(straight), _state(resumed)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, settings: TrainSettings, report: str) -> None:
    import os

    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    result = train(settings)
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in result.net.state_dict().items()}
    save_file(state, f"{report}.rank{rank}", metadata={"steps": str(result.steps)})


def test_ddp_two_processes_on_cpu(data: tuple[Path, Path], tmp_path: Path) -> None:
    from safetensors import safe_open
    from safetensors.torch import load_file

    out = tmp_path / "ddp.safetensors"
    settings = _settings(data, out, iterations=3)
    report = str(tmp_path / "report")
    torch.multiprocessing.spawn(_ddp_worker, args=(2, _free_port(), settings, report), nprocs=2, join=True)
    saved = _state(out)
    meta = read_model_file(out)[1]
    assert meta["training"]["world_size"] == 2 and meta["steps"] == 3
    for rank in (0, 1):
        with safe_open(f"{report}.rank{rank}", "pt") as handle:
            assert handle.metadata()["steps"] == "3"
        state = load_file(f"{report}.rank{rank}")
        for key in saved:
            torch.testing.assert_close(state[key], saved[key], rtol=0, atol=0)
    # Both ranks stepped: the weights moved away from the initialization.
    init_net = read_model_file(out)[0]
    torch.manual_seed(0)
    from painterly.feedforward.network import TransformerNet

    fresh = TransformerNet(4).state_dict()
    assert any(not torch.equal(fresh[k], init_net.state_dict()[k]) for k in fresh)


def _cli_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("painterly: error:")
    return err


def test_train_empty_data_folder(
    tmp_path: Path, data: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("nothing here")
    err = _cli_error(
        [
            "train",
            "--style",
            str(data[1]),
            "--data",
            str(empty),
            "-o",
            str(tmp_path / "m.safetensors"),
            "--quiet",
        ],
        capsys,
    )
    assert "no images" in err


def test_train_only_corrupt_images(
    tmp_path: Path, data: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    (bad / "b.png").write_bytes(b"")
    err = _cli_error(
        [
            "train",
            "--style",
            str(data[1]),
            "--data",
            str(bad),
            "-o",
            str(tmp_path / "m.safetensors"),
            "--quiet",
        ],
        capsys,
    )
    assert "could be read" in err and "a.jpg" in err and "b.png" in err


def test_corrupt_images_are_skipped(data: tuple[Path, Path], tmp_path: Path) -> None:
    (data[0] / "broken.jpg").write_bytes(b"garbage")
    result = train(_settings(data, tmp_path / "m.safetensors", iterations=2))
    assert result.skipped_images == 1 and result.steps == 2
    assert [p.name for p in result.skipped] == ["broken.jpg"]


def test_train_unwritable_output(
    tmp_path: Path, data: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for output in (tmp_path / "missing" / "m.safetensors", blocker / "m.safetensors"):
        _cli_error(
            ["train", "--style", str(data[1]), "--data", str(data[0]), "-o", str(output), "--quiet"], capsys
        )


def test_train_cli_end_to_end(
    tmp_path: Path, data: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli.safetensors"
    code = main(
        [
            "train",
            "--style",
            str(data[1]),
            "--data",
            str(data[0]),
            "-o",
            str(out),
            "--iterations",
            "2",
            "--batch-size",
            "1",
            "--image-size",
            "32",
            "--width",
            "4",
            "--style-size",
            "64",
            "--quiet",
            "--device",
            "cpu",
        ]
    )
    assert code == 0 and out.is_file()
    assert main(["models", "info", str(out)]) == 0
    info = capsys.readouterr().out
    assert "steps: 2" in info and "style_sha256" in info and "width: 4" in info


def test_time_limit_stops_early_and_writes_the_model(data: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "m.safetensors"
    result = train(_settings(data, out, iterations=100_000, time_limit=0.5))
    assert not result.interrupted and 0 < result.steps < 100_000
    net, meta, _ = read_model_file(out)
    assert meta["steps"] == result.steps
    log = [json.loads(line) for line in (tmp_path / "m.train" / "losses.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == result.steps  # the last window is logged too


def test_each_checkpoint_leaves_a_usable_model_beside_it(data: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "m.safetensors"

    def stop_at_4(progress: object) -> None:
        if progress.step == 4:  # type: ignore[attr-defined]
            raise KeyboardInterrupt

    train(_settings(data, out, checkpoint_every=3), stop_at_4)
    assert not out.exists()
    latest = tmp_path / "m.train" / "latest.safetensors"
    net, meta, extra = read_model_file(latest)
    assert meta["steps"] == 4 and not extra  # the interrupt's checkpoint, without optimizer state
    assert latest.stat().st_size < (tmp_path / "m.train" / "checkpoint.safetensors").stat().st_size / 2


def test_bilinear_upsampling_is_recorded_and_reloaded(data: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "m.safetensors"
    result = train(_settings(data, out, upsample="bilinear", iterations=2))
    net, meta, _ = read_model_file(out)
    from painterly.feedforward.network import TransformerNet

    assert isinstance(net, TransformerNet)
    assert meta["upsample"] == "bilinear" and net.config()["upsample"] == "bilinear"
    modes = {m.mode for m in net.modules() if isinstance(m, torch.nn.Upsample)}
    assert modes == {"bilinear"}
    x = torch.rand(1, 3, 32, 32)
    trained = result.net.eval()
    assert isinstance(trained, TransformerNet)
    torch.testing.assert_close(net.stylize_tensor(x), trained.stylize_tensor(x))


def test_unknown_upsampling_and_bad_time_limit_are_refused(data: tuple[Path, Path], tmp_path: Path) -> None:
    from painterly.errors import PainterlyError

    with pytest.raises(PainterlyError, match="upsampling"):
        train(_settings(data, tmp_path / "a.safetensors", upsample="bicubic"))
    for bad in (-1, 0, 0.0, float("nan"), float("inf"), True, "5"):
        with pytest.raises(PainterlyError, match="time limit"):
            train(_settings(data, tmp_path / "b.safetensors", time_limit=bad))
    assert not (tmp_path / "b.train").exists()


def test_time_limit_is_refused_under_torchrun(
    data: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from painterly.errors import PainterlyError

    # Each rank would stop on its own clock and the others would wait for it for ever.
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(PainterlyError, match="torchrun"):
        train(_settings(data, tmp_path / "m.safetensors", time_limit=5))
    assert not (tmp_path / "m.train").exists()


def test_a_base_model_inside_the_training_folder_is_not_overwritten(
    data: tuple[Path, Path], tmp_path: Path
) -> None:
    from painterly.errors import PainterlyError
    from painterly.feedforward.conditional import ConditionalTransformerNet
    from painterly.feedforward.model_file import write_model_file

    folder = tmp_path / "run"
    folder.mkdir()
    base = folder / "latest.safetensors"  # an earlier run's network, taken as the base of the next
    write_model_file(base, ConditionalTransformerNet(4, ["a", "b"]), {"name": "zoo", "steps": 1})
    before = base.read_bytes()
    with pytest.raises(PainterlyError, match="refusing to overwrite"):
        train(_settings(data, tmp_path / "m.safetensors", base=base, workdir=folder))
    assert base.read_bytes() == before


def test_model_files_without_the_upsample_key_load_as_nearest(tmp_path: Path) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    from painterly.errors import PainterlyError
    from painterly.feedforward.conditional import ConditionalTransformerNet
    from painterly.feedforward.model_file import write_model_file
    from painterly.feedforward.network import TransformerNet

    for net in (TransformerNet(4, 1, "bilinear"), ConditionalTransformerNet(4, ["a", "b"], 1, "bilinear")):
        path = tmp_path / "new.safetensors"
        write_model_file(path, net, {"name": "t", "steps": 1})
        with safe_open(str(path), framework="pt") as handle:
            header = dict(handle.metadata())
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
        (key,) = [k for k, v in header.items() if '"upsample": "bilinear"' in v]
        for value, expected in ((None, "nearest"), ("bicubic", None), (["nearest"], None)):
            document = json.loads(header[key])
            if value is None:
                del document["upsample"]  # as written before the key existed
            else:
                document["upsample"] = value
            old = tmp_path / "old.safetensors"
            save_file(tensors, str(old), metadata={**header, key: json.dumps(document)})
            if expected is None:
                with pytest.raises(PainterlyError, match="upsampling"):
                    read_model_file(old)
                continue
            loaded = read_model_file(old)[0]
            assert loaded.config()["upsample"] == expected
            assert {m.mode for m in loaded.modules() if isinstance(m, torch.nn.Upsample)} == {"nearest"}


def test_a_bilinear_model_exports_to_onnx_and_matches_torch(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    from painterly.feedforward.conditional import ConditionalTransformerNet
    from painterly.feedforward.export import export_onnx
    from painterly.feedforward.model_file import write_model_file
    from painterly.feedforward.network import TransformerNet

    torch.manual_seed(0)
    weights = torch.tensor([[1.0, 0.0], [0.25, 0.75]])
    for net, extra in (
        (TransformerNet(4, 1, "bilinear"), ()),
        (ConditionalTransformerNet(4, ["a", "b"], 1, "bilinear"), (weights,)),
    ):
        path = tmp_path / "m.safetensors"
        write_model_file(path, net, {"name": "t", "steps": 1})
        session = ort.InferenceSession(
            str(export_onnx(path, tmp_path / "m.onnx")), providers=["CPUExecutionProvider"]
        )
        names = [item.name for item in session.get_inputs()]
        loaded = read_model_file(path)[0].eval()
        for height, width in ((32, 32), (24, 44)):  # dynamic sides, not only the traced one
            x = torch.rand(2, 3, height, width)
            with torch.no_grad():
                expected = loaded(x, *extra).numpy()
            got = session.run(None, dict(zip(names, [x.numpy(), *(w.numpy() for w in extra)], strict=True)))[
                0
            ]
            assert got.shape == expected.shape
            np.testing.assert_allclose(got, expected, atol=1e-4)


def test_device_sampler_draws_the_same_crops_as_the_cpu_sampler(data: tuple[Path, Path]) -> None:
    from painterly.feedforward.data import CropSampler, DeviceCropSampler, find_images

    files = find_images(data[0])
    cpu = CropSampler(files, 24, seed=5)
    device = DeviceCropSampler(files, 24, torch.device("cpu"), seed=5)
    a, b = cpu.batch(3, 4), device.batch(3, 4)
    assert b.shape == a.shape == (4, 3, 24, 24)
    same = (a - b).abs().mean().item()
    other = (a - cpu.batch(4, 4)).abs().mean().item()
    assert same < 0.25 * other  # the same photos, boxes and flips; only the resampling differs


def test_device_sampler_at_the_edges_and_on_photos_smaller_than_the_crop(tmp_path: Path) -> None:
    from painterly.feedforward.data import DeviceCropSampler

    rng = np.random.default_rng(0)
    for index, (width, height) in enumerate([(10, 7), (1, 1), (2, 300), (300, 33), (24, 24), (25, 24)]):
        path = tmp_path / f"p{index}.png"
        pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(path)
        sampler = DeviceCropSampler([path], 24, torch.device("cpu"), seed=index)
        for step in range(40):  # boxes all over the photo, at the right and bottom edges too
            batch = sampler.batch(step, 2)
            assert batch.shape == (2, 3, 24, 24) and batch.dtype == torch.float32
            assert bool(torch.isfinite(batch).all()) and batch.min() >= 0 and batch.max() <= 1
        if (width, height) == (1, 1):
            torch.testing.assert_close(batch[0, :, 0, 0], torch.from_numpy(pixels[0, 0] / 255).float())


def test_cpu_training_takes_the_per_machine_compute_choice(
    data: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import painterly.tuning as tuning

    probed: list[tuple[str, int]] = []

    def fake(device: torch.device, net: torch.nn.Module, size: int, *args: object, **kw: object) -> object:
        probe = kw["probe"]
        assert callable(probe)
        probe(torch.rand(1, 3, 18, 30))  # the probe runs a training step's compute on any strip
        probed.append((str(kw["task"]), size))
        return tuning.Decision(tuning.PATHS["bf16-channels-last"], "measured")

    monkeypatch.setattr(tuning, "decide_compute", fake)
    out = tmp_path / "m.safetensors"
    train(_settings(data, out, precision="auto", upsample="bilinear", iterations=2))
    assert probed == [("train-johnson2016-w4-bilinear-vgg16", 32)]
    meta = read_model_file(out)[1]
    assert meta["training"]["precision"] == "bfloat16" and meta["training"]["layout"] == "channels_last"

    probed.clear()
    train(_settings(data, tmp_path / "n.safetensors", precision="fp32", iterations=2))
    assert probed == []  # an explicit precision is kept
