"""Blending models by their weights (``painterly models blend``): the weighted mean of related
networks, written as an ordinary model; unrelated, differently shaped or multi-style models refused."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from painterly.errors import PainterlyError
from painterly.feedforward.inference import load_model
from painterly.feedforward.model_file import read_metadata, read_model_file, write_model_file
from painterly.feedforward.network import TransformerNet
from painterly.feedforward.weight_blend import BlendPart, blend_models, parse_blend_part, relatedness

from .helpers.images import make_photo
from .helpers.models import tiny_cin, tiny_style_net


def _fine_tuned(net: TransformerNet, seed: int, scale: float = 0.05) -> TransformerNet:
    """``net`` moved a little, as fine-tuning from it moves it."""
    torch.manual_seed(seed)
    tuned = TransformerNet(net.width)
    tuned.load_state_dict(net.state_dict())
    with torch.no_grad():
        for tensor in tuned.parameters():
            tensor.add_(torch.randn_like(tensor) * scale * tensor.std().clamp(min=1e-3))
    return tuned.eval()


@pytest.fixture
def family(tmp_path: Path) -> tuple[Path, Path]:
    """Two models fine-tuned from one network."""
    start = tiny_style_net(seed=1)
    one = write_model_file(
        tmp_path / "one.safetensors", _fine_tuned(start, 2), {"name": "one", "style": "a.png"}
    )
    two = write_model_file(
        tmp_path / "two.safetensors", _fine_tuned(start, 3), {"name": "two", "style": "b.png"}
    )
    return one, two


def test_the_blend_is_the_weighted_mean_and_records_its_sources(
    family: tuple[Path, Path], tmp_path: Path
) -> None:
    one, two = family
    out = blend_models(
        [BlendPart(str(one), 3), BlendPart(str(two), 1)], tmp_path / "mix.safetensors", name="mine"
    )
    blended, meta, _ = read_model_file(out)
    a, b = read_model_file(one)[0].state_dict(), read_model_file(two)[0].state_dict()
    for key, value in blended.state_dict().items():
        if value.is_floating_point():
            torch.testing.assert_close(value, 0.75 * a[key] + 0.25 * b[key])
    assert meta["name"] == "mine"
    assert [(s["model"], s["weight"]) for s in meta["blend"]] == [("one", 0.75), ("two", 0.25)]
    assert all(len(s["sha256"]) == 64 for s in meta["blend"])
    assert "steps" not in meta and "loss_history" not in meta  # no source's training record


def test_the_blend_paints_between_its_sources(family: tuple[Path, Path], tmp_path: Path) -> None:
    one, two = family
    half = blend_models([BlendPart(str(one)), BlendPart(str(two))], tmp_path / "half.safetensors")
    photo = make_photo(48, 32)
    pictures = [np.asarray(load_model(p).stylize(photo), dtype=float) for p in (one, two, half)]
    between = np.abs(pictures[2] - (pictures[0] + pictures[1]) / 2).mean()
    apart = np.abs(pictures[0] - pictures[1]).mean()
    assert apart > 1 and between < apart / 2


def test_networks_trained_apart_are_refused(tmp_path: Path) -> None:
    one = write_model_file(tmp_path / "one.safetensors", tiny_style_net(seed=1), {"name": "one"})
    other = write_model_file(tmp_path / "other.safetensors", tiny_style_net(seed=9), {"name": "other"})
    assert relatedness(read_model_file(one)[0].state_dict(), read_model_file(other)[0].state_dict()) < 0.5
    with pytest.raises(PainterlyError, match="not trained from one start"):
        blend_models([BlendPart(str(one)), BlendPart(str(other))], tmp_path / "mix.safetensors")
    assert not (tmp_path / "mix.safetensors").exists()


def test_other_shapes_and_multi_style_models_are_refused(family: tuple[Path, Path], tmp_path: Path) -> None:
    one, _ = family
    wide = write_model_file(tmp_path / "wide.safetensors", TransformerNet(8), {"name": "wide"})
    with pytest.raises(PainterlyError, match="not the same network.*width 4 against 8"):
        blend_models([BlendPart(str(one)), BlendPart(str(wide))], tmp_path / "mix.safetensors")
    zoo = write_model_file(tmp_path / "zoo.safetensors", tiny_cin(["a", "b"]), {"name": "zoo"})
    with pytest.raises(PainterlyError, match="multi-style model.*--style-mix"):
        blend_models([BlendPart(str(one)), BlendPart(str(zoo))], tmp_path / "mix.safetensors")


def test_the_output_is_checked_before_any_work(family: tuple[Path, Path], tmp_path: Path) -> None:
    one, two = family
    before = one.read_bytes()
    with pytest.raises(PainterlyError, match="overwrite"):
        blend_models([BlendPart(str(one)), BlendPart(str(two))], one)
    assert one.read_bytes() == before
    with pytest.raises(PainterlyError, match=".safetensors"):
        blend_models([BlendPart(str(one)), BlendPart(str(two))], tmp_path / "mix.onnx")
    with pytest.raises(PainterlyError, match="2 to 16 models"):
        blend_models([BlendPart(str(one))], tmp_path / "mix.safetensors")
    with pytest.raises(PainterlyError, match="same model file"):
        blend_models([BlendPart(str(one)), BlendPart(str(one))], tmp_path / "mix.safetensors")


def test_the_command_writes_a_model_that_stylize_uses(
    family: tuple[Path, Path], tmp_path: Path, run_cli
) -> None:
    one, two = family
    out = tmp_path / "mix.safetensors"
    code, stdout, _ = run_cli("models", "blend", f"{one}:0.6", f"{two}:0.4", "-o", out, "--name", "mix")
    assert code == 0 and str(out) in stdout
    assert read_metadata(out)["style"] == "blend: one 60% + two 40%"
    code, _, err = run_cli("stylize", make_photo_file(tmp_path), "-m", out, "-o", tmp_path / "p.png")
    assert code == 0, err
    code, _, err = run_cli("models", "blend", f"{one}:-1", f"{two}", "-o", tmp_path / "x.safetensors")
    assert code == 2 and "positive" in err


def make_photo_file(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    make_photo().save(path)
    return path


@given(
    st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=30),
    st.floats(min_value=1e-3, max_value=1e3),
)
def test_a_part_is_a_model_and_an_optional_weight(model: str, weight: float) -> None:
    if not model.strip() or os.path.lexists(f"{model}:{weight!r}"):
        return
    part = parse_blend_part(f"{model}:{weight!r}")
    assert part.weight == pytest.approx(weight) and part.model == model
    if ":" not in model:
        assert parse_blend_part(model) == BlendPart(model, 1.0)


def test_a_file_whose_name_ends_in_a_number_is_a_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("c:0.5").write_bytes(b"")
    assert parse_blend_part("c:0.5") == BlendPart("c:0.5", 1.0)
    assert parse_blend_part("c:0.5:2") == BlendPart("c:0.5", 2.0)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("a:0", "positive"),
        ("a:-2", "positive"),
        ("a:1e999", "finite"),
        ("a:nan", "finite"),
        ("a:inf", "finite"),
        ("a:1e7", "at most"),
        ("a:0x10", "number"),
        ("a:", "number"),
        (":0.5", "MODEL"),
        (" ", "empty"),
    ],
)
def test_bad_weights_are_refused_as_weights(text: str, says: str) -> None:
    with pytest.raises(PainterlyError, match=says):
        parse_blend_part(text)


@pytest.mark.parametrize(
    ("weight", "says"),
    [
        (float("nan"), "finite"),
        (float("inf"), "finite"),
        (0.0, "positive"),
        (-1.0, "positive"),
        (1e7, "at most"),
    ],
)
def test_a_library_callers_weights_are_checked(
    family: tuple[Path, Path], tmp_path: Path, weight: float, says: str
) -> None:
    one, two = family
    with pytest.raises(PainterlyError, match=f"weight of .* {says}"):
        blend_models([BlendPart(str(one), weight), BlendPart(str(two))], tmp_path / "mix.safetensors")


def test_one_file_named_twice_is_refused_however_it_is_named(
    family: tuple[Path, Path], tmp_path: Path
) -> None:
    one, two = family
    (tmp_path / "hard.safetensors").hardlink_to(one)
    shutil.copy(one, tmp_path / "copy.safetensors")
    for again in ("hard.safetensors", "copy.safetensors"):
        with pytest.raises(PainterlyError, match="same model file.*name it once"):
            blend_models(
                [BlendPart(str(one)), BlendPart(str(two)), BlendPart(str(tmp_path / again))],
                tmp_path / "mix.safetensors",
            )


def test_a_share_under_one_percent_and_too_many_parts_are_refused(
    family: tuple[Path, Path], tmp_path: Path
) -> None:
    one, two = family
    with pytest.raises(PainterlyError, match="adds nothing"):
        blend_models([BlendPart(str(one), 1), BlendPart(str(two), 1e-9)], tmp_path / "mix.safetensors")
    with pytest.raises(PainterlyError, match="2 to 16 models"):
        blend_models([BlendPart(str(one))] * 17, tmp_path / "mix.safetensors")


def test_a_network_scaled_up_is_not_related(family: tuple[Path, Path], tmp_path: Path) -> None:
    one, _ = family
    net = read_model_file(one)[0]
    with torch.no_grad():
        for tensor in net.parameters():
            tensor.mul_(100)
    big = write_model_file(tmp_path / "big.safetensors", net, {"name": "big"})
    with pytest.raises(PainterlyError, match="differ in size"):
        blend_models([BlendPart(str(one)), BlendPart(str(big))], tmp_path / "mix.safetensors")


def test_names_from_files_are_cleaned_and_blends_of_blends_keep_their_sources(
    family: tuple[Path, Path], tmp_path: Path
) -> None:
    one, two = family
    odd = read_model_file(two)[0]
    forged = write_model_file(
        tmp_path / "odd.safetensors", odd, {"name": "x\x1b[31m\nFORGED", "style": "s\x1b[2J\nFORGED"}
    )
    half = blend_models([BlendPart(str(one)), BlendPart(str(forged))], tmp_path / "half.safetensors")
    assert read_metadata(half)["style"] == "blend: one 50% + odd 50%"
    again = blend_models([BlendPart(str(half)), BlendPart(str(two))], tmp_path / "again.safetensors")
    sources = read_metadata(again)["blend"]
    assert [s["model"] for s in sources] == ["half", "two"]  # a blend is named after its file
    assert [s["model"] for s in sources[0]["blend"]] == ["one", "odd"]
    assert sources[0]["blend"][1]["style"] == "s\\x1b[2J\\nFORGED"  # cleaned, one line
    with pytest.raises(PainterlyError, match="blank"):
        blend_models([BlendPart(str(one)), BlendPart(str(two))], tmp_path / "n.safetensors", name=" ")


def test_the_written_path_cannot_forge_lines(family: tuple[Path, Path], tmp_path: Path, run_cli) -> None:
    one, two = family
    out = tmp_path / "x\x1b[31m\nFAKE.safetensors"
    code, stdout, _ = run_cli("models", "blend", one, two, "-o", out)
    assert code == 0 and out.is_file()
    assert stdout.count("\n") == 1 and "\x1b" not in stdout and "\\x1b" in stdout


def test_a_style_of_the_zoo_is_refused_naming_the_zoo(family: tuple[Path, Path], tmp_path: Path) -> None:
    one, _ = family
    with pytest.raises(PainterlyError, match="'udnie' is a style of the multi-style model 'zoo'.*-m zoo"):
        blend_models([BlendPart("udnie"), BlendPart(str(one))], tmp_path / "mix.safetensors")
