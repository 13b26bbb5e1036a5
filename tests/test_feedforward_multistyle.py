"""The multi-style (conditional instance norm) network: file and ONNX round trips, style mixes,
strength, multi-style training and adding a style by training only its norm parameters."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from painterly.errors import PainterlyError
from painterly.feedforward.conditional import ConditionalTransformerNet
from painterly.feedforward.inference import StyleModel, load_model
from painterly.feedforward.mixing import mix_vector, parse_style_mix
from painterly.feedforward.model_file import read_model_file, write_model_file
from painterly.feedforward.training import TrainSettings, train
from painterly.images import resize_long_side
from painterly.losses import GramStyleLoss

from .helpers.images import make_photo
from .helpers.models import tiny_cin, tiny_train_settings


@pytest.fixture
def zoo(tmp_path: Path) -> Path:
    return write_model_file(tmp_path / "zoo.safetensors", tiny_cin(["a", "b"]), {"name": "zoo"})


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image).astype(np.float64)


def test_file_round_trip_keeps_styles_and_outputs(zoo: Path) -> None:
    net, metadata, _ = read_model_file(zoo)
    assert metadata["architecture"] == "cin" and metadata["styles"] == ["a", "b"]
    original = tiny_cin(["a", "b"])
    x = torch.rand(1, 3, 32, 40)
    w = torch.tensor([[0.3, 0.7]])
    assert torch.allclose(net.stylize_tensor(x, w), original.stylize_tensor(x, w), atol=1e-6)


def test_one_hot_mix_equals_the_single_style(zoo: Path, tmp_path: Path) -> None:
    both = tiny_cin(["a", "b"])
    only_b = ConditionalTransformerNet(4, ["b"])
    state = both.state_dict()
    only_b.load_state_dict({k: (v[1:2] if k.endswith(("scale", "shift")) else v) for k, v in state.items()})
    single = write_model_file(tmp_path / "b.safetensors", only_b.eval(), {"name": "b"})
    photo = make_photo(48, 40)
    model = StyleModel(zoo, device="cpu")
    one_hot = _pixels(model.stylize(photo, style_mix="a:0,b:2"))
    by_name = _pixels(model.stylize(photo, style_mix="b"))
    alone = _pixels(StyleModel(single, device="cpu").stylize(photo))
    assert np.array_equal(one_hot, by_name)
    assert np.abs(one_hot - alone).max() <= 1


def test_half_and_half_mix_differs_from_both_styles(zoo: Path) -> None:
    model = StyleModel(zoo, device="cpu")
    photo = make_photo(48, 40)
    a, b = _pixels(model.stylize(photo, style_mix="a")), _pixels(model.stylize(photo, style_mix="b"))
    half = _pixels(model.stylize(photo, style_mix={"a": 0.5, "b": 0.5}))
    assert np.abs(a - b).mean() > 5
    assert np.abs(half - a).mean() > 2 and np.abs(half - b).mean() > 2


def test_default_mix_is_the_first_style_and_bad_mixes_fail(zoo: Path) -> None:
    model = StyleModel(zoo, device="cpu", style_mix="b")
    photo = make_photo(32, 32)
    assert np.array_equal(_pixels(model.stylize(photo)), _pixels(model.stylize(photo, style_mix="b")))
    assert model.styles == ["a", "b"]
    with pytest.raises(PainterlyError, match="no style 'c'"):
        model.stylize(photo, style_mix="c:1")
    with pytest.raises(PainterlyError, match="positive"):
        model.stylize(photo, style_mix="a:0,b:0")
    with pytest.raises(PainterlyError, match="not a number"):
        parse_style_mix("a:lots")
    assert mix_vector(["a", "b", "c"], {"c": 3, "a": 1}) == [0.25, 0.0, 0.75]


def test_strength_zero_is_the_photo_and_half_is_between(zoo: Path) -> None:
    model = StyleModel(zoo, device="cpu")
    photo = make_photo(48, 40)
    assert np.array_equal(_pixels(model.stylize(photo, strength=0.0)), _pixels(photo))
    full = _pixels(model.stylize(photo))
    half = _pixels(model.stylize(photo, strength=0.5))
    assert np.abs(half - (full + _pixels(photo)) / 2).max() <= 1.0
    with pytest.raises(PainterlyError, match="strength"):
        model.stylize(photo, strength=1.5)


def test_single_style_model_refuses_a_mix(tmp_path: Path) -> None:
    from .helpers.models import tiny_style_net

    path = write_model_file(tmp_path / "one.safetensors", tiny_style_net(), {"name": "one"})
    model = StyleModel(path, device="cpu")
    photo = make_photo(32, 32)
    assert np.array_equal(_pixels(model.stylize(photo, strength=0)), _pixels(photo))
    with pytest.raises(PainterlyError, match="one style"):
        model.stylize(photo, style_mix="a:0.5,b:0.5")


def test_onnx_export_takes_the_style_weights(zoo: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from painterly.feedforward.export import export_onnx

    onnx_path = export_onnx(zoo, tmp_path / "zoo.onnx")
    fast = StyleModel(onnx_path, backend="onnxruntime")
    torch_model = StyleModel(zoo, device="cpu")
    assert fast.styles == ["a", "b"]
    photo = make_photo(52, 36)
    for mix in ("a", "b", "a:0.3,b:0.7"):
        difference = np.abs(
            _pixels(fast.stylize(photo, style_mix=mix)) - _pixels(torch_model.stylize(photo, style_mix=mix))
        )
        assert difference.max() <= 1
    assert np.array_equal(_pixels(fast.stylize(photo, strength=0)), _pixels(photo))


def test_tiled_multi_style_matches_whole_image(zoo: Path) -> None:
    model = StyleModel(zoo, device="cpu")
    photo = make_photo(300, 220)
    whole = _pixels(model.stylize(photo, style_mix="a:0.4,b:0.6", tile="none"))
    tiled = _pixels(model.stylize(photo, style_mix="a:0.4,b:0.6", tile=128))
    other = _pixels(model.stylize(photo, style_mix="a", tile=128))
    # the same bound as the single-style network's tiling test (mean error < 5e-3 of the range)
    assert np.abs(whole - tiled).mean() < 1.3 and np.abs(whole - other).mean() > 5


def test_a_style_name_loads_its_multi_style_model(zoo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAINTERLY_MODELS", str(zoo.parent))
    model = load_model("b", device="cpu")
    photo = make_photo(32, 32)
    assert model.path == zoo
    assert np.array_equal(
        _pixels(model.stylize(photo)), _pixels(StyleModel(zoo, device="cpu").stylize(photo, style_mix="b"))
    )


def test_cli_style_mix_and_strength(zoo: Path, tmp_path: Path, run_cli) -> None:
    photo = tmp_path / "photo.png"
    make_photo(40, 32).save(photo)
    out = tmp_path / "out.png"
    code, _, err = run_cli(
        "stylize",
        photo,
        "--model",
        zoo,
        "-o",
        out,
        "--style-mix",
        "a:0.7,b:0.3",
        "--strength",
        "0.5",
        "--backend",
        "torch",
    )
    assert code == 0, err
    expected = StyleModel(zoo, device="cpu").stylize(photo, style_mix="a:0.7,b:0.3", strength=0.5)
    assert np.abs(_pixels(Image.open(out).convert("RGB")) - _pixels(expected)).max() <= 1
    code, _, err = run_cli("stylize", photo, "--model", zoo, "-o", tmp_path / "x.png", "--style-mix", "nope")
    assert code == 2 and "no style 'nope'" in err


# --- training --------------------------------------------------------------------------------


def _settings(folder: Path, style: object, output: Path, **overrides: object) -> TrainSettings:
    options: dict[str, object] = {"iterations": 4, "batch_size": 1, "checkpoint_every": 100, **overrides}
    return tiny_train_settings(folder, style, output, **options)


def test_train_several_styles_makes_a_multi_style_model(training_data, tmp_path: Path) -> None:
    folder, stripes, dots, _ = training_data
    out = tmp_path / "zoo.safetensors"
    result = train(_settings(folder, [stripes, dots], out))
    assert result.steps == 4
    net, metadata, _ = read_model_file(out)
    assert metadata["architecture"] == "cin" and metadata["styles"] == ["stripes", "dots"]
    assert [source["name"] for source in metadata["style_sources"]] == ["stripes", "dots"]
    assert metadata["name"] == "zoo"
    # each style's rows trained (round robin): both differ from their initial ones and one another
    first = net.norms()[0]
    assert not torch.allclose(first.scale[0], torch.ones_like(first.scale[0]))
    assert not torch.allclose(first.scale[1], torch.ones_like(first.scale[1]))
    assert not torch.allclose(first.scale[0], first.scale[1])
    sheet = Image.open(tmp_path / "zoo.train" / "val_000004.png")
    photo = resize_long_side(Image.open(folder / "photo0.png"), 32)
    assert sheet.height == 2 * photo.height  # one row per style


def test_one_batch_trains_several_styles_one_per_photo(training_data, tmp_path: Path) -> None:
    # One style per batch swung the shared layers towards each style in turn; with a style per
    # photo, the very first step of a batch of two already moves both styles' rows.
    folder, stripes, dots, _ = training_data
    out = tmp_path / "zoo.safetensors"
    train(_settings(folder, [stripes, dots], out, iterations=1, batch_size=2))
    first = read_model_file(out)[0].norms()[0]
    for row in (0, 1):
        assert not torch.allclose(first.shift[row], torch.zeros_like(first.shift[row]))


def test_adding_a_style_changes_only_its_norm_parameters(training_data, tmp_path: Path) -> None:
    folder, stripes, dots, mine = training_data
    base = tmp_path / "zoo.safetensors"
    train(_settings(folder, [stripes, dots], base))
    extended = tmp_path / "zoo+mine.safetensors"
    result = train(_settings(folder, mine, extended, base=base, iterations=3))
    assert result.steps == 3
    before = read_model_file(base)[0].state_dict()
    after_net, metadata, _ = read_model_file(extended)
    after = after_net.state_dict()
    assert metadata["styles"] == ["stripes", "dots", "mine"]
    assert metadata["training"]["trained_parameters"].startswith("new style")
    assert metadata["base"]["styles"] == ["stripes", "dots"]
    for key, old in before.items():
        new = after[key]
        if key.endswith(("scale", "shift")):
            assert torch.equal(new[:2], old), key  # the old styles' rows are untouched
            assert not torch.equal(new[2], old.mean(dim=0)), key  # the new row learned
        else:
            assert torch.equal(new, old), key  # the convolutions are frozen


def test_adding_a_style_needs_a_multi_style_base(training_data, tmp_path: Path) -> None:
    folder, stripes, dots, mine = training_data
    single = tmp_path / "one.safetensors"
    train(_settings(folder, stripes, single, iterations=1))
    with pytest.raises(PainterlyError, match="multi-style"):
        train(_settings(folder, mine, tmp_path / "x.safetensors", base=single))
    with pytest.raises(PainterlyError, match="already has a style"):
        zoo = tmp_path / "zoo.safetensors"
        train(_settings(folder, [stripes, dots], zoo, iterations=1))
        train(_settings(folder, dots, tmp_path / "y.safetensors", base=zoo))


def test_cli_train_with_two_styles(training_data, tmp_path: Path, run_cli) -> None:
    folder, stripes, dots, _ = training_data
    out = tmp_path / "two.safetensors"
    code, _, err = run_cli(
        "train",
        "--style",
        stripes,
        "--style",
        dots,
        "--data",
        folder,
        "-o",
        out,
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
        "--device",
        "cpu",
        "--precision",
        "fp32",
        "--quiet",
        "--log-every",
        "1",
    )
    assert code == 0, err
    log = [json.loads(line) for line in (tmp_path / "two.train" / "losses.jsonl").read_text().splitlines()]
    assert len(log) == 2 and read_model_file(out)[1]["styles"] == ["stripes", "dots"]


def test_server_stylizer_passes_mix_and_strength(
    zoo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from painterly.server.config import ServerSettings
    from painterly.server.models import FastStylizer
    from painterly.server.store import JobStore

    monkeypatch.setenv("PAINTERLY_MODELS", str(zoo.parent))
    (tmp_path / "results").mkdir()
    settings = ServerSettings(data_dir=tmp_path, devices=("cpu",))
    stylizer = FastStylizer(settings, JobStore(tmp_path / "jobs.db", tmp_path / "results"))
    listed = {entry["name"]: entry for entry in stylizer.models()}
    assert listed["zoo"]["styles"] == ["a", "b"]
    photo = make_photo(40, 32)
    expected = StyleModel(zoo, device="cpu").stylize(photo, style_mix="a:0.5,b:0.5", strength=0.5)
    record = stylizer.stylize(photo, "zoo", style_mix="a:0.5,b:0.5", strength=0.5)
    assert record["options"]["style_mix"] == "a:0.5,b:0.5" and record["options"]["strength"] == 0.5
    result = Image.open(tmp_path / "results" / record["result"]).convert("RGB")
    assert np.abs(_pixels(result) - _pixels(expected)).max() <= 1
    by_style = stylizer.stylize(photo, "b")  # a style's name runs its multi-style model
    assert by_style["options"]["model"] == "zoo" and by_style["options"]["style_mix"] == "b"
    with pytest.raises(PainterlyError, match="strength"):
        stylizer.stylize(photo, "zoo", strength=2.0)


def _first_style_loss(folder: Path, styles: list[Path], out: Path, **overrides: object) -> float:
    train(_settings(folder, styles, out, iterations=1, batch_size=2, log_every=1, **overrides))
    log = (out.parent / f"{out.stem}.train" / "losses.jsonl").read_text().splitlines()
    return float(json.loads(log[0])["style"])


def test_style_weight_scales_weight_each_style(training_data, tmp_path: Path) -> None:
    # The first step's loss is the untrained network's (same seed, same batch): scaling both styles
    # by 3 triples the style term, scaling one of them lands in between.
    folder, stripes, dots, _ = training_data
    plain = _first_style_loss(folder, [stripes, dots], tmp_path / "a.safetensors")
    both = _first_style_loss(
        folder, [stripes, dots], tmp_path / "b.safetensors", style_weight_scales={"stripes": 3, "dots": 3}
    )
    one = _first_style_loss(
        folder, [stripes, dots], tmp_path / "c.safetensors", style_weight_scales={"dots": 3}
    )
    assert both == pytest.approx(3 * plain, rel=1e-4)
    assert plain * 1.01 < one < both * 0.99
    assert read_model_file(tmp_path / "c.safetensors")[1]["loss"]["style_weight_scales"] == {"dots": 3}
    assert "style_weight_scales" not in read_model_file(tmp_path / "a.safetensors")[1]["loss"]


def test_style_weight_scales_are_checked_before_any_work(training_data, tmp_path: Path, run_cli) -> None:
    folder, stripes, dots, _ = training_data
    out = tmp_path / "x.safetensors"
    with pytest.raises(PainterlyError, match="trains no style of that name"):
        train(_settings(folder, [stripes, dots], out, style_weight_scales={"udnie": 2}))
    with pytest.raises(PainterlyError, match="must be positive"):
        train(_settings(folder, [stripes, dots], out, style_weight_scales={"dots": 0}))
    assert not (tmp_path / "x.train").exists()
    for bad in (["dots"], ["dots=-1"], ["dots=x"], ["dots=2,dots=3"], ["=2"], ["dots=2", "dots=3"]):
        options = [arg for scale in bad for arg in ("--style-weight-scale", scale)]
        code, _, err = run_cli("train", "--style", stripes, "--data", folder, "-o", out, *options)
        assert code == 2 and "--style-weight-scale" in err, (bad, err)
    assert not out.exists()


def _captured_weights(monkeypatch: pytest.MonkeyPatch) -> list[list[float] | None]:
    """Record the per-image weights that training hands the Gram style loss at each step."""
    seen: list[list[float] | None] = []
    original = GramStyleLoss.set_target

    def recording(self, grams, image_weights=None):
        seen.append(None if image_weights is None else image_weights.tolist())
        return original(self, grams, image_weights)

    monkeypatch.setattr(GramStyleLoss, "set_target", recording)
    return seen


def test_style_weight_scales_reach_each_styles_photos(training_data, tmp_path: Path, monkeypatch) -> None:
    # Photo j of step 0 trains style j: stripes, then dots (scaled by 3); with the temporal loss
    # every photo's moved copy follows it in the second half of the batch.
    folder, stripes, dots, mine = training_data
    seen = _captured_weights(monkeypatch)
    scales = {"dots": 3.0}
    train(
        _settings(
            folder,
            [stripes, dots],
            tmp_path / "a.safetensors",
            iterations=1,
            batch_size=2,
            style_weight_scales=scales,
        )
    )
    assert seen[-1] == [1.0, 3.0]
    train(
        _settings(
            folder,
            [stripes, dots],
            tmp_path / "t.safetensors",
            iterations=1,
            batch_size=2,
            temporal_weight=1.0,
            style_weight_scales=scales,
        )
    )
    assert seen[-1] == [1.0, 3.0, 1.0, 3.0]
    base = tmp_path / "a.safetensors"
    train(
        _settings(
            folder,
            mine,
            tmp_path / "b.safetensors",
            base=base,
            iterations=1,
            batch_size=2,
            style_weight_scales={"mine": 2},
        )
    )
    assert seen[-1] == [2.0, 2.0]
    with pytest.raises(PainterlyError, match="must be a number"):
        train(
            _settings(folder, [stripes, dots], tmp_path / "x.safetensors", style_weight_scales={"dots": "2"})
        )


def test_a_resume_with_another_style_image_records_the_earlier_sources(training_data, tmp_path: Path) -> None:
    folder, stripes, dots, _ = training_data
    out = tmp_path / "zoo.safetensors"
    train(_settings(folder, [stripes, dots], out, iterations=2, checkpoint_every=2))
    before = read_model_file(out)[1]["style_sources"]
    Image.open(dots).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(dots)  # the same name, other pixels
    train(_settings(folder, [stripes, dots], out, iterations=3, checkpoint_every=2, resume=True))
    meta = read_model_file(out)[1]
    assert [h["until_step"] for h in meta["loss_history"]] == [2]
    assert meta["loss_history"][0]["style_sources"] == before != meta["style_sources"]
