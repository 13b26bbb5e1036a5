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

from .conftest import tiny_train_settings, wavy_photo


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
    assert meta["upsample"] == "bilinear" and net.config()["upsample"] == "bilinear"
    modes = {m.mode for m in net.modules() if isinstance(m, torch.nn.Upsample)}
    assert modes == {"bilinear"}
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(net.stylize_tensor(x), result.net.eval().stylize_tensor(x))


def test_unknown_upsampling_and_bad_time_limit_are_refused(data: tuple[Path, Path], tmp_path: Path) -> None:
    from painterly.errors import PainterlyError

    with pytest.raises(PainterlyError, match="upsampling"):
        train(_settings(data, tmp_path / "a.safetensors", upsample="bicubic"))
    with pytest.raises(PainterlyError, match="time limit"):
        train(_settings(data, tmp_path / "b.safetensors", time_limit=-1))


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
