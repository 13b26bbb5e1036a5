"""The coarse Gram style term (``train --coarse-style``): marks at the painting's larger scales count."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from painterly.errors import PainterlyError
from painterly.feedforward.model_file import read_model_file
from painterly.feedforward.training import train
from painterly.images import pil_to_tensor
from painterly.losses import GramStyleLoss
from painterly.losses.coarse import CoarseGramStyleLoss, coarse_grams, downsample
from painterly.vgg.weights import load_vgg

from .helpers.images import make_painting, wavy_photo
from .helpers.models import tiny_train_settings

LAYERS = {"relu2_2": 1.0, "relu3_3": 1.0}


def _blocks(size: int, block: int) -> torch.Tensor:
    """A checkerboard of orange and dark-blue squares ``block`` px wide."""
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    odd = ((ys // block + xs // block) % 2).bool()
    orange, blue = torch.tensor([0.95, 0.6, 0.1]), torch.tensor([0.1, 0.15, 0.45])
    image = torch.where(odd[..., None], orange, blue)
    return image.permute(2, 0, 1)[None].contiguous()


def _photos(tmp_path: Path, count: int, side: int = 96) -> Path:
    """A folder of ``count`` training photos, ``side`` px square."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(count):
        wavy_photo(i).convert("RGB").resize((side, side)).save(folder / f"p{i}.jpg")
    return folder


def _painting(tmp_path: Path, width: int = 128, height: int = 128) -> Path:
    path = tmp_path / f"painting_{width}x{height}.png"
    make_painting(width, height).save(path)
    return path


def test_downsample_reduces_by_the_factor_and_keeps_a_flat_image_flat() -> None:
    flat = torch.full((1, 3, 64, 48), 0.3)
    assert downsample(flat, 1) is flat
    small = downsample(flat, 4)
    assert small.shape == (1, 3, 16, 12)
    assert torch.allclose(small, torch.full_like(small, 0.3), atol=1e-6)


def test_the_term_is_the_gram_loss_of_the_reduced_image() -> None:
    vgg = load_vgg("vgg16", last_layer="relu3_3")
    painting = _blocks(128, 16)
    image = torch.rand(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    term = CoarseGramStyleLoss(vgg, LAYERS, 2)
    term.set_target(coarse_grams(vgg, painting, 2, list(LAYERS)))
    plain = GramStyleLoss(LAYERS)
    plain.set_target(coarse_grams(vgg, painting, 2, list(LAYERS)))
    small = downsample(image, 2)
    expected = plain(small, vgg(small, list(LAYERS)))
    assert float(term(image, {})) == pytest.approx(float(expected), rel=1e-5)
    assert float(term(painting, {})) == pytest.approx(0.0, abs=1e-6 * float(expected))
    image.requires_grad_(True)
    term(image, {}).backward()
    assert image.grad is not None and image.grad.abs().sum() > 0


def test_a_fine_stipple_of_the_paintings_colours_misses_its_coarse_statistics() -> None:
    # The painting: 16 px squares. A 2 px checkerboard of the same two colours is a stipple; reduced
    # by 2 it is a flat brown, far from the painting's reduced squares (33x here), while the same
    # squares shifted (another arrangement of the painting's large marks) stay close.
    vgg = load_vgg("vgg16", last_layer="relu3_3")
    painting = _blocks(128, 16)
    term = CoarseGramStyleLoss(vgg, LAYERS, 2)
    term.set_target(coarse_grams(vgg, painting, 2, list(LAYERS)))
    stipple = float(term(_blocks(128, 2), {}))
    marks = float(term(torch.roll(painting, shifts=(8, 4), dims=(2, 3)), {}))
    assert marks * 10 < stipple


def test_factors_are_checked_against_the_crop_and_style_sizes(tmp_path: Path) -> None:
    with pytest.raises(PainterlyError, match="coarse style factor"):
        CoarseGramStyleLoss(load_vgg("vgg16", last_layer="relu2_2"), LAYERS, 1)
    folder = _photos(tmp_path, 1, side=64)
    painting = _painting(tmp_path, 64, 64)
    out = tmp_path / "m.safetensors"
    with pytest.raises(PainterlyError, match="leaves 64 px at 16 px"):
        train(tiny_train_settings(folder, painting, out, image_size=64, style_size=128, coarse_style=(4,)))
    with pytest.raises(PainterlyError, match="repeat"):
        train(tiny_train_settings(folder, painting, out, image_size=64, style_size=128, coarse_style=(2, 2)))
    assert not out.exists()


def test_training_logs_each_coarse_term_and_records_the_factors(tmp_path: Path, run_cli) -> None:
    folder = _photos(tmp_path, 3)
    painting = _painting(tmp_path)
    out = tmp_path / "m.safetensors"
    settings = tiny_train_settings(
        folder, painting, out, iterations=2, image_size=64, style_size=128, coarse_style=(2,)
    )
    train(settings)
    rows = [json.loads(line) for line in (tmp_path / "m.train" / "losses.jsonl").read_text().splitlines()]
    assert all(row["style_x2"] > 0 for row in rows)
    assert read_model_file(out)[1]["loss"]["coarse_style"] == [2]
    for bad in ("1", "2,2", "x", "", "0", "２", "65"):
        code, _, err = run_cli("train", "--style", str(painting), "--data", str(folder), "-o",
                               str(tmp_path / "z.safetensors"), "--coarse-style", bad)  # fmt: skip
        assert code == 2 and "--coarse-style" in err, (bad, err)


def test_a_multi_style_run_gives_each_photo_its_own_coarse_target(tmp_path: Path, monkeypatch) -> None:
    seen: list[int] = []
    original = CoarseGramStyleLoss.set_target

    def recording(self, grams, image_weights=None):
        seen.append(next(iter(grams.values())).shape[0])
        return original(self, grams, image_weights)

    monkeypatch.setattr(CoarseGramStyleLoss, "set_target", recording)
    folder = _photos(tmp_path, 3)
    stripes, dots = tmp_path / "stripes.png", tmp_path / "dots.png"
    make_painting(128, 128, seed=1).save(stripes)
    Image.fromarray((pil_to_tensor(make_painting(128, 128, seed=2))[0].permute(1, 2, 0).numpy() * 255)
                    .astype("uint8")).save(dots)  # fmt: skip
    train(
        tiny_train_settings(
            folder, (stripes, dots), tmp_path / "m.safetensors",
            iterations=1, image_size=64, style_size=128, coarse_style=(2,),
        )
    )  # fmt: skip
    assert seen[-1] == 2  # the batch of two photos, one target each


def test_the_term_runs_under_cpu_bfloat16_autocast() -> None:
    # A CPU with native bf16 trains under autocast, where the network's output is bfloat16; the
    # CPU's antialiased resize has no bfloat16 kernel.
    vgg = load_vgg("vgg16", last_layer="relu3_3")
    term = CoarseGramStyleLoss(vgg, LAYERS, 2)
    term.set_target(coarse_grams(vgg, _blocks(128, 16), 2, list(LAYERS)))
    image = torch.rand(1, 3, 64, 64).to(torch.bfloat16).requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = term(image, {})
    value.backward()
    assert torch.isfinite(value) and image.grad is not None


def test_a_wide_paintings_short_side_is_checked_too(tmp_path: Path) -> None:
    folder = _photos(tmp_path, 1)
    painting = _painting(tmp_path, 256, 48)  # at style size 128: 128x24
    with pytest.raises(PainterlyError, match="leaves 24 px"):
        train(tiny_train_settings(folder, painting, tmp_path / "m.safetensors", image_size=64,
                                  style_size=128, coarse_style=(2,)))  # fmt: skip


def test_a_resume_with_another_loss_records_what_the_earlier_steps_trained_with(tmp_path: Path) -> None:
    folder = _photos(tmp_path, 2)
    painting = _painting(tmp_path)
    out = tmp_path / "m.safetensors"
    common = dict(image_size=64, style_size=128, checkpoint_every=2)
    train(tiny_train_settings(folder, painting, out, iterations=2, **common))
    train(tiny_train_settings(folder, painting, out, iterations=4, resume=True, coarse_style=(2,), **common))
    meta = read_model_file(out)[1]
    assert meta["loss"]["coarse_style"] == [2]
    assert [(h["until_step"], "coarse_style" in h["loss"]) for h in meta["loss_history"]] == [(2, False)]
    train(tiny_train_settings(folder, painting, out, iterations=6, resume=True, coarse_style=(2,), **common))
    assert len(read_model_file(out)[1]["loss_history"]) == 1  # the same loss again: nothing new


def test_a_resume_with_another_style_image_records_the_one_the_earlier_steps_trained_with(
    tmp_path: Path,
) -> None:
    # A campaign that crops the painting's frame away mid-run: the earlier steps saw the whole picture.
    folder = _photos(tmp_path, 2)
    painting = _painting(tmp_path)
    out = tmp_path / "m.safetensors"
    common = dict(image_size=64, style_size=128, checkpoint_every=2)
    train(tiny_train_settings(folder, painting, out, iterations=2, **common))
    before = read_model_file(out)[1]["style_sha256"]
    framed = Image.open(painting)
    framed.crop((0, 0, framed.width - 8, framed.height)).save(painting)  # the same file name, cropped
    train(tiny_train_settings(folder, painting, out, iterations=4, resume=True, **common))
    meta = read_model_file(out)[1]
    assert meta["style_sha256"] != before
    assert [(h["until_step"], h["style_sha256"]) for h in meta["loss_history"]] == [(2, before)]


def test_each_factor_may_carry_its_own_multiple_of_the_style_weight(tmp_path: Path, run_cli) -> None:
    folder = _photos(tmp_path, 2)
    painting = _painting(tmp_path)
    logged: dict[str, float] = {}
    for name, coarse in (("plain", (2,)), ("weighted", {2: 3.0})):
        out = tmp_path / f"{name}.safetensors"
        train(tiny_train_settings(folder, painting, out, iterations=1, image_size=64, style_size=128,
                                  coarse_style=coarse))  # fmt: skip
        rows = (tmp_path / f"{name}.train" / "losses.jsonl").read_text().splitlines()
        logged[name] = json.loads(rows[0])["style_x2"]
        recorded = read_model_file(out)[1]["loss"]["coarse_style"]
        assert recorded == ([2] if name == "plain" else {"2": 3.0})
    # The same seed, so the same first step: only the term's weight differs.
    assert logged["weighted"] == pytest.approx(3 * logged["plain"], rel=1e-4)
    out = tmp_path / "cli.safetensors"
    code, _, err = run_cli("train", "--style", str(painting), "--data", str(folder), "-o", str(out),
                           "--coarse-style", "2:0.5", "--iterations", "1", "--image-size", "64",
                           "--style-size", "128", "--width", "8", "--quiet")  # fmt: skip
    assert code == 0, err
    assert read_model_file(out)[1]["loss"]["coarse_style"] == {"2": 0.5}
    for bad in ("2:x", "2:-1", "2:nan", "2:inf", "2:5,2:1", "2:", ":5", "2:1e99"):
        code, _, err = run_cli("train", "--style", str(painting), "--data", str(folder), "-o",
                               str(tmp_path / "z.safetensors"), "--coarse-style", bad)  # fmt: skip
        assert code == 2 and "--coarse-style" in err, (bad, err)
