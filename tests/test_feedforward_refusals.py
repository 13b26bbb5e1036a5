"""Feed-forward refusals of issue 21: a model file whose weights hold NaN or infinity, and a style of
the zoo named together with a style mix that contradicts it."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from painterly.errors import PainterlyError
from painterly.feedforward.model_file import read_model_file, write_model_file

from .helpers.images import wavy_photo
from .helpers.models import tiny_style_net


def _broken_model(folder: Path, value: float, every: bool) -> Path:
    net = tiny_style_net()
    with torch.no_grad():
        parameters = list(net.parameters())
        for parameter in parameters if every else parameters[:1]:
            parameter.view(-1)[0] = value
            if every:
                parameter.fill_(value)
    return write_model_file(
        folder / "broken.safetensors", net, {"name": "broken", "style": "s.png", "steps": 0}
    )


@pytest.mark.parametrize(("value", "every"), [(math.nan, True), (math.inf, False), (-math.inf, False)])
def test_a_model_with_non_finite_weights_is_refused_at_load(
    tmp_path: Path, value: float, every: bool
) -> None:
    path = _broken_model(tmp_path, value, every)
    with pytest.raises(PainterlyError, match="NaN or infinite"):
        read_model_file(path)


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_cli_stylize_with_a_nan_model_is_one_line_and_writes_nothing(
    tmp_path: Path, run_cli, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    """All-NaN weights wrote a garbage PNG with a numpy warning, and exited 0."""
    if backend == "onnxruntime":
        pytest.importorskip("onnxruntime")
        pytest.importorskip("onnx")
    monkeypatch.setenv("PAINTERLY_CACHE", str(tmp_path / "cache"))
    model = _broken_model(tmp_path, math.nan, every=True)
    photo = tmp_path / "photo.png"
    wavy_photo(0, (40, 30)).save(photo)
    code, _, err = run_cli("stylize", photo, "-m", model, "-o", tmp_path / "out.png", "--backend", backend)
    assert code == 2 and err.count("\n") == 1 and "NaN or infinite" in err, err
    assert not (tmp_path / "out.png").exists()


def test_a_zoo_style_with_a_contradicting_mix_is_refused_naming_the_zoo(tmp_path: Path, run_cli) -> None:
    """``stylize -m udnie --style-mix the_wave`` silently painted the_wave."""
    photo = tmp_path / "photo.png"
    wavy_photo(0, (40, 30)).save(photo)
    code, _, err = run_cli(
        "stylize", photo, "-m", "udnie", "--style-mix", "the_wave", "-o", tmp_path / "o.png"
    )
    assert code == 2 and err.count("\n") == 1, err
    assert "-m zoo --style-mix the_wave" in err
    code, _, err = run_cli(
        "stylize", photo, "-m", "udnie", "--style-mix", "udnie:0.5,the_wave:0.5", "-o", tmp_path / "o.png"
    )
    assert code == 2 and "-m zoo" in err
    assert not (tmp_path / "o.png").exists()


def test_a_zoo_style_with_its_own_name_as_mix_still_works(tmp_path: Path) -> None:
    from painterly.feedforward.inference import load_model

    model = load_model("udnie", "cpu", style_mix="udnie")
    assert model.path.stem == "zoo" and model.style_mix == {"udnie": 1.0}
    with pytest.raises(PainterlyError, match="-m zoo"):
        load_model("udnie", "cpu", style_mix={"the_wave": 1.0})


def test_stylize_prints_a_written_path_on_one_escaped_line(tmp_path: Path, run_cli) -> None:
    """A control character in -o reached the terminal raw: a newline forged a second line."""
    model = write_model_file(tmp_path / "m.safetensors", tiny_style_net(), {"name": "m", "style": "s.png"})
    photo = tmp_path / "photo.png"
    wavy_photo(0, (40, 30)).save(photo)
    out = tmp_path / "p\x1b[31m\nFAKE.png"
    code, stdout, err = run_cli("stylize", photo, "-m", model, "-o", out)
    assert code == 0 and out.is_file(), err
    assert stdout.count("\n") == 1 and "\x1b" not in stdout and "\\x1b" in stdout
