"""Distillation: a narrower student learns to reproduce a teacher; init from the teacher; CLI errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from painterly.cli import main
from painterly.errors import PainterlyError
from painterly.feedforward.distill import DistillSettings, distill, init_from_teacher
from painterly.feedforward.model_file import read_metadata, read_model_file, write_model_file
from painterly.feedforward.network import TransformerNet

from .helpers.images import wavy_photo
from .helpers.models import tiny_style_net


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):
        wavy_photo(i).save(data / f"p{i}.png")
    teacher = write_model_file(
        tmp_path / "teacher.safetensors",
        tiny_style_net(seed=3),
        {"name": "tiny", "style": "s.png", "steps": 7},
    )
    return teacher, data


def test_student_learns_the_teacher(setup: tuple[Path, Path], tmp_path: Path) -> None:
    teacher, data = setup
    out = tmp_path / "student.safetensors"
    settings = DistillSettings(
        teacher, data, out, width=2, iterations=20, batch_size=2, image_size=32,
        learning_rate=1e-2, init="random", precision="fp32", device="cpu", log_every=5, checkpoint_every=10,
    )  # fmt: skip
    result = distill(settings)
    assert result.steps == 20 and not result.interrupted and out.is_file()
    losses = [json.loads(line)["l1"] for line in (tmp_path / "student.distill" / "losses.jsonl").open()]
    assert losses[-1] < losses[0] * 0.8
    net, meta, _ = read_model_file(out)
    assert net.width == 2 and meta["steps"] == 20 and meta["name"] == "tiny"
    # The student itself moved towards the teacher: on a photo it never saw, its output is much
    # closer to the teacher's than that of the network it started from (seed 0, random init).
    teacher_net = read_model_file(teacher)[0]
    torch.manual_seed(0)
    start = TransformerNet(2).eval()
    photo = torch.from_numpy(np.asarray(wavy_photo(9, (48, 40)), np.float32) / 255).permute(2, 0, 1)[None]
    wanted = teacher_net.stylize_tensor(photo)
    before = (start.stylize_tensor(photo) - wanted).abs().mean()
    after = (net.stylize_tensor(photo) - wanted).abs().mean()
    assert after < 0.7 * before
    assert meta["training"]["method"] == "distillation" and meta["training"]["cpu_count"] >= 1
    assert meta["distilled_from"]["teacher_width"] == 4 and meta["distilled_from"]["teacher_steps"] == 7


def test_init_from_teacher_keeps_the_strongest_channels() -> None:
    teacher = tiny_style_net(4, seed=3)
    same = TransformerNet(4)
    init_from_teacher(same, teacher)  # full width: a permutation of the teacher, same function
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(same.eval()(x), teacher(x), atol=1e-5)
    distinct_norm_scales(teacher, seed=0)
    small = TransformerNet(2)
    init_from_teacher(small, teacher)
    kept = teacher.encoder[0][1].weight.abs().topk(2).indices.sort().values  # type: ignore[index]
    assert torch.equal(small.encoder[0][0][1].weight, teacher.encoder[0][0][1].weight[kept])  # type: ignore[index]
    assert torch.equal(small.encoder[0][1].bias, teacher.encoder[0][1].bias[kept])  # type: ignore[index]
    last = teacher.decoder[1][1][1].weight.abs().topk(2).indices.sort().values  # type: ignore[index]
    assert torch.equal(small.decoder[2][1].weight, teacher.decoder[2][1].weight[:, last])  # type: ignore[index]
    with pytest.raises(PainterlyError, match="width-8 student"):
        init_from_teacher(TransformerNet(8), teacher)


def test_distill_cli(setup: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    teacher, data = setup
    out = tmp_path / "cli.safetensors"
    argv = ["distill", "--teacher", str(teacher), "--data", str(data), "-o", str(out), "--width", "2"]
    code = main([*argv, "--iterations", "3", "--batch-size", "1", "--image-size", "32", "--quiet"])
    assert code == 0 and "3 steps" in capsys.readouterr().out
    assert read_metadata(out)["width"] == 2
    assert main([*argv[:4], str(tmp_path / "missing"), *argv[5:], "--quiet"]) == 2
    assert "data folder not found" in capsys.readouterr().err
    assert main([*argv, "--width", "9", "--iterations", "1", "--quiet"]) == 2
    assert "width-9 student" in capsys.readouterr().err


def distill_briefly(tmp_path: Path, teacher: TransformerNet, width: int) -> Path:
    """Two steps of distilling ``teacher`` into a student of ``width`` on one photo; the student's file."""
    data = tmp_path / "data"
    data.mkdir()
    wavy_photo(0).save(data / "p0.png")
    path = write_model_file(tmp_path / "teacher.safetensors", teacher, {"name": "t", "steps": 1})
    out = tmp_path / "student.safetensors"
    settings = DistillSettings(
        path, data, out, width=width, iterations=2, batch_size=1, image_size=32,
        precision="fp32", device="cpu", checkpoint_every=10,
    )  # fmt: skip
    distill(settings)
    return out


def distinct_norm_scales(net: torch.nn.Module, seed: int) -> None:
    """Random instance-norm scales, so that "the strongest channels" is well defined."""
    with torch.no_grad():
        generator = torch.Generator().manual_seed(seed)
        for module in net.modules():
            if isinstance(module, torch.nn.InstanceNorm2d):
                module.weight.copy_(torch.rand(module.weight.shape, generator=generator) + 0.1)


def test_student_keeps_the_teachers_upsampling(tmp_path: Path) -> None:
    out = distill_briefly(tmp_path, TransformerNet(2, upsample="bilinear"), width=2)
    assert read_metadata(out)["upsample"] == "bilinear"


def test_compact_teacher_gives_a_compact_student(tmp_path: Path) -> None:
    teacher = TransformerNet(8, upsample="bilinear", shape="compact")
    distinct_norm_scales(teacher, seed=1)
    same = TransformerNet(8, upsample="bilinear", shape="compact")
    init_from_teacher(same, teacher)  # full width: the same function
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(same.eval()(x), teacher.eval()(x), atol=1e-5)
    with pytest.raises(PainterlyError, match="compact-shaped teacher"):
        init_from_teacher(TransformerNet(4), teacher)
    small = TransformerNet(4, upsample="bilinear", shape="compact")
    init_from_teacher(small, teacher)  # the compact shape's counts: 4 of 8 channels, decoder 1 of 2
    kept = teacher.encoder[0][1].weight.abs().topk(4).indices.sort().values  # type: ignore[index]
    assert torch.equal(small.encoder[0][0][1].weight, teacher.encoder[0][0][1].weight[kept])  # type: ignore[index]
    last = teacher.decoder[1][1][1].weight.abs().topk(1).indices.sort().values  # type: ignore[index]
    assert torch.equal(small.decoder[2][1].weight, teacher.decoder[2][1].weight[:, last])  # type: ignore[index]
    # A teacher of another depth than the shape's default: the student keeps the teacher's depth.
    shallow = TransformerNet(8, residual_blocks=3, upsample="bilinear", shape="compact")
    student, meta, _ = read_model_file(distill_briefly(tmp_path, shallow, width=4))
    assert meta["shape"] == "compact" and meta["width"] == 4 and meta["residual_blocks"] == 3
    assert student.decoder[2][1].in_channels == 1  # the narrow decoder: max(1, 4 // 8)
    assert meta["distilled_from"]["teacher_shape"] == "compact"
    assert meta["distilled_from"]["teacher_residual_blocks"] == 3
