"""Promises a hostile probe of the feed-forward commands found broken (2026-11-29): training photos
never include a run's own pictures, loss logs never mix runs, shipped names work for --init, --base
and distill, tiles and style mixes are checked on every backend, a folder stylized twice, and a
user model that hides a shipped one."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest

from painterly.cli.stylize import output_label
from painterly.errors import PainterlyError
from painterly.feedforward.catalog import list_models
from painterly.feedforward.data import find_images, refuse_work_folder_over_data
from painterly.feedforward.distill import DistillSettings, distill
from painterly.feedforward.loop import LossLog
from painterly.feedforward.mixing import parse_style_mix
from painterly.feedforward.model_file import read_metadata, write_model_file
from painterly.feedforward.training import train

from .helpers.images import make_painting, wavy_photo
from .helpers.models import tiny_cin, tiny_style_net, tiny_train_settings


def _photos(folder: Path, count: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        wavy_photo(i).save(folder / f"p{i}.png")
    return folder


def test_a_runs_own_folder_inside_the_data_is_not_training_data(tmp_path: Path) -> None:
    data = _photos(tmp_path / "data")
    run = data / "m1.train"
    run.mkdir()
    wavy_photo(7).save(run / "val_000002.png")
    assert len(find_images(data)) == 4  # not yet a run's folder: an ordinary subfolder
    (run / "losses.jsonl").write_text("{}\n")
    assert find_images(data) == sorted(data.glob("p*.png"))
    # a run folder that is the data folder is refused; one inside it or above it is fine
    with pytest.raises(PainterlyError, match="is the data folder"):
        refuse_work_folder_over_data(data / ".", data)
    refuse_work_folder_over_data(data / "m2.train", data)
    refuse_work_folder_over_data(tmp_path, data)


def test_training_twice_into_the_data_folder_keeps_the_photo_count(tmp_path: Path) -> None:
    data = _photos(tmp_path / "data")
    style = tmp_path / "style.png"
    make_painting().save(style)
    for name in ("m1", "m2"):
        train(tiny_train_settings(data, style, data / f"{name}.safetensors", iterations=2, validate_every=1))
        assert read_metadata(data / f"{name}.safetensors")["training"]["images"] == 3
    assert list((data / "m1.train").glob("val_*.png"))  # the pictures that must not become photos
    with pytest.raises(PainterlyError, match="is the data folder"):
        train(tiny_train_settings(data, style, tmp_path / "m3.safetensors", workdir=data))


def test_a_new_run_starts_its_loss_log_and_a_resumed_one_continues_it(tmp_path: Path) -> None:
    path = tmp_path / "losses.jsonl"
    for append in (False, False, True):
        log = LossLog(path, append=append)
        log.write(1, {"total": 1.0}, 0.1)
        log.close()
    assert [json.loads(line)["step"] for line in path.open()] == [1, 1]


def test_init_and_base_take_model_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _photos(tmp_path / "data")
    style = tmp_path / "style.png"
    make_painting().save(style)
    models = tmp_path / "models"
    models.mkdir()
    write_model_file(models / "mine.safetensors", tiny_style_net(), {"name": "mine", "style": "s.png"})
    write_model_file(models / "pair.safetensors", tiny_cin(["a", "b"]), {"name": "pair"})
    monkeypatch.setenv("PAINTERLY_MODELS", str(models))
    out = tmp_path / "warm.safetensors"
    train(tiny_train_settings(data, style, out, iterations=1, init="mine", upsample="nearest"))
    assert read_metadata(out)["training"]["init"]["file"] == "mine.safetensors"
    out = tmp_path / "more.safetensors"
    train(tiny_train_settings(data, style, out, iterations=1, base="pair"))
    assert read_metadata(out)["styles"] == ["a", "b", "style"]
    with pytest.raises(PainterlyError, match="--init: no model file or known model named 'nope'"):
        train(tiny_train_settings(data, style, out, init="nope"))


def test_distill_takes_one_style_of_a_multi_style_teacher(tmp_path: Path) -> None:
    data = _photos(tmp_path / "data")
    teacher = write_model_file(
        tmp_path / "pair.safetensors",
        tiny_cin(["a", "b"]),
        {"name": "pair", "style_sources": [{"name": "b", "file": "b.jpg", "sha256": "00"}]},
    )
    settings = dict(width=2, iterations=2, batch_size=1, image_size=32, precision="fp32", device="cpu")
    with pytest.raises(PainterlyError, match=r"holds several styles \(a, b\): name the one"):
        distill(DistillSettings(teacher, data, tmp_path / "s.safetensors", **settings))  # type: ignore[arg-type]
    with pytest.raises(PainterlyError, match="has no style 'c'"):
        distill(DistillSettings(teacher, data, tmp_path / "s.safetensors", teacher_style="c", **settings))  # type: ignore[arg-type]
    out = tmp_path / "b.safetensors"
    distill(DistillSettings(teacher, data, out, teacher_style="b", **settings))  # type: ignore[arg-type]
    meta = read_metadata(out)
    assert meta["name"] == "b" and meta["style"] == "b.jpg" and "styles" not in meta
    assert meta["distilled_from"]["teacher_style"] == "b" and meta["width"] == 2


def test_style_mix_refuses_a_name_given_twice() -> None:
    with pytest.raises(PainterlyError, match="'the_wave' is named twice"):
        parse_style_mix("the_wave:0.2,udnie:0.5,the_wave:0.3")
    assert parse_style_mix("the_wave:0.5,udnie:0.5") == {"the_wave": 0.5, "udnie": 0.5}


def test_tiles_are_checked_on_every_backend(tmp_path: Path, run_cli) -> None:
    pytest.importorskip("onnxruntime")
    model = write_model_file(tmp_path / "m.safetensors", tiny_style_net(), {"name": "m", "style": "s.png"})
    photo = tmp_path / "photo.png"
    wavy_photo(1).save(photo)
    out = tmp_path / "out.png"
    base = ["stylize", photo, "--model", model, "-o", out]
    for tile in ("8", "-5", "0"):
        code, _, err = run_cli(*base, "--tile", tile)
        assert code == 2 and "at least 64 px" in err
    code, _, err = run_cli(*base, "--backend", "onnxruntime", "--tile", "256")
    assert code == 2 and "tiling needs the torch backend" in err and not out.exists()
    code, _, _ = run_cli(*base, "--backend", "onnxruntime", "--tile", "none")
    assert code == 0 and out.is_file()


def test_a_folder_stylized_twice_skips_its_earlier_results(tmp_path: Path, run_cli) -> None:
    model = write_model_file(tmp_path / "m.safetensors", tiny_style_net(), {"name": "m", "style": "s.png"})
    folder = _photos(tmp_path / "folder", 2)
    for _ in range(2):
        code, out, err = run_cli("stylize", folder, "--model", model, "--backend", "torch")
        assert code == 0, err
        assert sorted(Path(line).name for line in out.split()) == ["p0_m.png", "p1_m.png"]
    assert "leaving out 2 earlier result(s)" in err
    # named on the command line, a result is an input like any other
    code, out, err = run_cli("stylize", folder / "p0_m.png", "--model", model, "--backend", "torch")
    assert code == 0 and Path(out.strip()).name == "p0_m_m.png"
    # a photo that merely has a result's name is no result: the run refuses to overwrite it
    (folder / "p0_m.png").unlink()
    wavy_photo(5).save(folder / "p0_m.png")
    code, _, err = run_cli("stylize", folder, "--model", model, "--backend", "torch")
    assert code == 2 and "refusing to overwrite the input" in err


def test_a_user_model_hiding_a_shipped_one_is_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import painterly.feedforward as feedforward
    from painterly.server.config import ServerSettings
    from painterly.server.models import FastStylizer

    shipped = {m["name"] for m in list_models(warn=None)}
    assert "zoo" in shipped
    write_model_file(tmp_path / "zoo.safetensors", tiny_style_net(), {"name": "udnie", "style": "s.png"})
    monkeypatch.setenv("PAINTERLY_MODELS", str(tmp_path))
    rows = [m for m in list_models(warn=None) if m["name"] == "zoo"]
    assert [m["source"] for m in rows] == ["shipped", "user"]
    assert rows[0]["shadowed_by"] == str(tmp_path / "zoo.safetensors") and rows[1]["shadowed_by"] is None
    stylizer = FastStylizer(ServerSettings(), store=None, backend=feedforward)  # type: ignore[arg-type]
    listed = [m for m in stylizer.models() if m["name"] == "zoo"]
    assert len(listed) == 1 and listed[0]["source"] == "user"
    # an unreadable user file still takes the name (resolve_model finds it): the shipped row says so
    (tmp_path / "zoo.safetensors").write_bytes(b"not a model")
    rows = [m for m in list_models(warn=None) if m["name"] == "zoo"]
    assert [m["shadowed_by"] for m in rows] == [str(tmp_path / "zoo.safetensors")]
    assert not [m for m in stylizer.models() if m["name"] == "zoo"]


def test_blends_of_one_model_get_their_own_file_names() -> None:
    assert output_label("zoo", None) == "zoo" and output_label("zoo+mine", None) == "zoo+mine"
    assert output_label("zoo", {"udnie": 1.0}) == "udnie"  # --model udnie: one style of the zoo
    assert output_label("zoo", "the_wave:0.7,udnie:0.3", 0.8) == "zoo_the_wave0.7_udnie0.3_s0.8"
    assert output_label("zoo", "../up:1,b:1") == "zoo_..-up1_b1"  # no path separator from a style name
    assert output_label("a/b c") == "a-b-c"


def test_onnxruntime_refuses_a_device_or_precision_it_cannot_honour(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from painterly.feedforward.inference import StyleModel

    model = write_model_file(tmp_path / "m.safetensors", tiny_style_net(), {"name": "m", "style": "s.png"})
    for option, value in (("device", "cuda"), ("precision", "fp16")):
        with pytest.raises(PainterlyError, match=f"runs float32 on the CPU: {option} '{value}' needs"):
            StyleModel(model, backend="onnxruntime", **{option: value})  # type: ignore[arg-type]
    with pytest.raises(PainterlyError, match="unknown precision 'fp64'"):
        StyleModel(model, backend="onnxruntime", precision="fp64")
    # auto picks the runtime that honours the precision asked for
    assert StyleModel(model, backend="auto", precision="bf16").backend == "torch"
    assert StyleModel(model, backend="auto").backend == "onnxruntime"


def test_video_and_live_take_a_style_of_the_zoo_by_name() -> None:
    import painterly.feedforward as feedforward
    from painterly.server.config import ServerSettings
    from painterly.server.live import LiveModels
    from painterly.server.models import FastStylizer

    models = LiveModels(FastStylizer(ServerSettings(), store=None, backend=feedforward), "cpu")  # type: ignore[arg-type]
    assert models.check("udnie") == "udnie" and models.check("zoo") == "zoo"
    with pytest.raises(PainterlyError) as error:
        models.check("udnei")
    message = str(error.value)
    assert "did you mean 'udnie'" in message and "styles of zoo: the_scream" in message
    models_part = message.split("; models: ")[1].split(";")[0].split(", ")
    assert "zoo" in models_part and len(models_part) == len(set(models_part))
    zoo_styles = message.split("styles of zoo: ")[1].split(", ")
    assert "starry_night" not in zoo_styles and "the_wave" not in zoo_styles  # models of their own


def test_a_single_style_models_mix_error_names_no_path(tmp_path: Path) -> None:
    from painterly.feedforward.inference import StyleModel

    model = write_model_file(tmp_path / "m.safetensors", tiny_style_net(), {"name": "m", "style": "s.png"})
    with pytest.raises(PainterlyError, match="holds one style") as error:
        StyleModel(model, backend="torch", style_mix="a:1")
    assert str(tmp_path) not in str(error.value)


def test_a_second_ctrl_c_while_finishing_does_not_claim_a_video(tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("av")
    import numpy as np

    from painterly.video import io

    writer = io.VideoWriter(tmp_path / "out.mp4", rate=Fraction(10), width=32, height=32, inputs=())
    writer.write(np.zeros((32, 32, 3), np.uint8), None)

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(io.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt), writer:
        raise KeyboardInterrupt
    assert not writer.written and not (tmp_path / "out.mp4").exists()


def test_the_fast_tabs_unknown_model_message_names_each_once() -> None:
    import painterly.feedforward as feedforward
    from painterly.server.config import ServerSettings
    from painterly.server.models import FastStylizer

    stylizer = FastStylizer(ServerSettings(), store=None, backend=feedforward)  # type: ignore[arg-type]
    with pytest.raises(PainterlyError, match="unknown model 'nope'") as error:
        stylizer.stylize(wavy_photo(1), "nope")
    listed = str(error.value).split("available: ")[1].split(", ")
    assert "udnie" in listed and "zoo" in listed and len(listed) == len(set(listed))
