"""scripts/campaign.py: the committed plans are valid training commands, and a stash resumes a new machine."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from painterly.feedforward.model_file import read_metadata, write_model_file
from painterly.feedforward.network import TransformerNet
from painterly.feedforward.sheet import GAP

from .helpers.files import import_file
from .helpers.images import make_painting, wavy_photo

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def campaign():
    return import_file(ROOT / "scripts" / "campaign.py", "campaign_under_test")


@pytest.mark.parametrize("plan", sorted((ROOT / "campaign").glob("*/plan.json")), ids=lambda p: p.parent.name)
def test_each_committed_plan_is_a_command_painterly_train_accepts(
    campaign, plan: Path, tmp_path: Path
) -> None:
    from painterly.cli import build_parser

    read = campaign.Plan.read(plan)
    assert read.name == plan.parent.name and 0 < read.sheet_every <= read.planned_steps
    assert read.stop_rule, "a campaign needs its stop rule"
    run = campaign.Run(read, tmp_path)
    shared = tmp_path / "shared" / "images"
    shared.mkdir(parents=True)
    for name in read.validation:
        (shared / name).write_bytes(b"")
    make_painting(40, 50).save(shared / read.style)  # a style_crop reads it
    campaign.SHARED = tmp_path / "shared"
    command = campaign.train_command(run, tmp_path / "photos", 1000, resume=False, init=None)
    assert command[1:3] == ["-m", "painterly"]
    args = build_parser().parse_args(command[3:])
    assert args.iterations == 1000 and args.validate_every == read.sheet_every
    if read.start_from is not None:  # the network it starts from fits the recipe's network
        start = read_metadata(ROOT / read.start_from)
        assert (start["width"], start["shape"], start["upsample"]) == (
            int(args.width),
            args.shape,
            args.upsample,
        )


def test_a_style_crop_trains_on_that_part_of_the_painting(campaign, tmp_path: Path) -> None:
    plan = campaign.Plan.read(_toy_plan(tmp_path, style_crop=[0, 0.1, 0.5, 1]))
    shared = tmp_path / "shared" / "images"
    shared.mkdir(parents=True)
    make_painting(40, 50).save(shared / "painting.png")
    (shared / "photo.png").write_bytes(b"")
    campaign.SHARED = tmp_path / "shared"
    run = campaign.Run(plan, tmp_path / "runs")
    command = campaign.train_command(run, tmp_path / "photos", 2, resume=False, init=None)
    style = Path(command[command.index("--style") + 1])
    assert style.parent == run.folder / "style" and Image.open(style).size == (20, 45)
    whole = make_painting(40, 50).crop((0, 5, 20, 50))
    assert Image.open(style).convert("RGB").tobytes() == whole.tobytes()
    written = style.stat().st_mtime_ns
    time.sleep(0.01)
    campaign.train_command(run, tmp_path / "photos", 4, resume=True, init=None)  # the next chunk
    assert style.stat().st_mtime_ns == written  # the same pixels: the file is left as it was


def test_a_crop_of_exactly_a_quarter_is_kept(campaign, tmp_path: Path) -> None:
    assert campaign.Plan.read(_toy_plan(tmp_path, style_crop=[0.33, 0.16, 0.58, 0.41])).style_crop


@pytest.mark.parametrize(
    "crop",
    [[0, 0, 1], [0.5, 0, 0.5, 1], [0.5, 0, 0.5001, 1], [0, 0, 1.2, 1], [0, "0", 1, 1], [True, 0, 1, 1]],
)
def test_a_bad_style_crop_is_refused(campaign, tmp_path: Path, crop: list[object]) -> None:
    with pytest.raises(SystemExit, match="style_crop"):
        campaign.Plan.read(_toy_plan(tmp_path, style_crop=crop))


TOY_TRAINING = ["--width", "4", "--image-size", "32", "--batch-size", "2", "--precision", "fp32"]


def _toy_plan(tmp_path: Path, **fields: object) -> Path:
    """``campaign/toy/plan.json`` under ``tmp_path``: a toy campaign, ``fields`` over the defaults."""
    plan_dir = tmp_path / "campaign" / "toy"
    plan_dir.mkdir(parents=True)
    plan = {
        "name": "toy",
        "style": "painting.png",
        "planned_steps": 3,
        "sheet_every": 2,
        "train_args": TOY_TRAINING,
        "validation": ["photo.png"],
        "stop_rule": "a test",
        **fields,
    }
    (plan_dir / "plan.json").write_text(json.dumps(plan))
    return plan_dir / "plan.json"


def _toy_images(campaign, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, photos: int) -> Path:
    """The toy painting and validation photo as ../shared, and a folder of ``photos`` training photos."""
    shared = tmp_path / "shared" / "images"
    shared.mkdir(parents=True)
    make_painting().save(shared / "painting.png")
    wavy_photo(5).save(shared / "photo.png")
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(photos):
        wavy_photo(i).convert("RGB").save(folder / f"p{i}.jpg")
    monkeypatch.setattr(campaign, "SHARED", tmp_path / "shared")
    return folder


def test_a_stashed_network_starts_a_new_machine_where_the_campaign_stopped(
    campaign, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan_path = _toy_plan(tmp_path)
    photos = _toy_images(campaign, tmp_path, monkeypatch, photos=3)
    plan = campaign.Plan.read(plan_path)
    # a previous machine stashed its network at step 2
    write_model_file(plan.stash, TransformerNet(4), {"name": "toy", "steps": 2, "campaign_steps": 2})
    run = campaign.Run(plan, tmp_path / "runs")
    assert campaign.command_run(run, photos, hours=None) == 0
    assert run.total_steps() == 3 and run.state()["offset"] == 2
    assert campaign.command_stash(run) == 0
    assert read_metadata(plan.stash)["campaign_steps"] == 3
    sheets = sorted(run.sheets.glob("sheet_*.png"))
    assert [s.name for s in sheets] == []  # step 3 is not a sheet step (every 2)
    assert campaign.paint_sheet(run, plan.stash, 3).is_file()


def test_a_new_campaign_starts_from_another_campaigns_network(
    campaign, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = tmp_path / "other" / "latest.safetensors"
    base.parent.mkdir()
    write_model_file(base, TransformerNet(4), {"name": "other", "steps": 7, "campaign_steps": 7})
    photos = _toy_images(campaign, tmp_path, monkeypatch, photos=3)
    early = campaign.Plan.read(_toy_plan(tmp_path / "early", start_from=str(base), start_from_steps=8))
    with pytest.raises(SystemExit, match="at step 7: wait"):  # the other campaign is not there yet
        campaign.command_run(campaign.Run(early, tmp_path / "runs"), photos, hours=None)
    # a path from the root of the plan's repository (here tmp_path), wherever the script itself is
    plan = campaign.Plan.read(
        _toy_plan(tmp_path, planned_steps=2, start_from="other/latest.safetensors", start_from_steps=7)
    )
    run = campaign.Run(plan, tmp_path / "runs")
    assert campaign.command_run(run, photos, hours=None) == 0
    # its own steps count from 0, and the network it trained started from the other's weights
    assert run.total_steps() == 2 and run.state()["offset"] == 0
    assert read_metadata(run.model)["training"]["init"]["name"] == "other"
    assert run.state()["start_from"]["campaign_steps"] == 7


def test_a_start_from_that_is_not_a_file_stops_before_any_work(campaign, tmp_path: Path) -> None:
    plan = campaign.Plan.read(_toy_plan(tmp_path, start_from="campaign/nowhere/latest.safetensors"))
    photos = tmp_path / "photos"  # absent: building them would be the first work
    with pytest.raises(SystemExit, match="is not a file"):
        campaign.command_run(campaign.Run(plan, tmp_path / "runs"), photos, hours=None)
    assert not photos.exists()


def test_a_stop_keeps_the_sheets_in_the_repository_and_the_curve_reads_them(
    campaign, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan_path = _toy_plan(
        tmp_path,
        planned_steps=10,
        train_args=[],
        validation=["a.png", "chicago.png", "b.png"],
        anchors={"chicago.png": "anchor.png"},
    )
    plan = campaign.Plan.read(plan_path)
    run = campaign.Run(plan, tmp_path / "runs")
    run.sheets.mkdir(parents=True)
    # a sheet's cells in reading order, as paint_sheet lays them out: a, chicago, anchor, b
    monkeypatch.setattr(campaign, "SHEET_SIZE", 100)  # tiles 100 px wide, as real ones are 512
    colours = {"a": "red", "chicago": "green", "anchor": "blue", "b": "white"}
    for steps in (2, 4):
        tiles = [
            (Image.new("RGB", (100, 80), colour), f"{name}, step {steps}") for name, colour in colours.items()
        ]
        campaign.sheet_grid(tiles).save(run.sheets / f"sheet_{steps:06d}.png")
    run.train.mkdir(parents=True)
    write_model_file(run.train / "latest.safetensors", TransformerNet(4), {"name": "toy", "steps": 4})
    assert campaign.command_stash(run) == 0
    kept = sorted(p.name for p in plan.kept_sheets.iterdir())
    assert kept == ["sheet_000002.jpg", "sheet_000004.jpg"]
    # a new machine: the run folder's sheets are gone, the committed copies remain
    for png in run.sheets.glob("*.png"):
        png.unlink()
    assert list(campaign.sheet_steps(run)) == [2, 4]
    assert campaign.command_curve(run) == 0
    curve = Image.open(run.folder / "curve.png").convert("RGB")
    assert curve.size[0] == GAP + 3 * (100 + GAP)  # step 2, step 4, the anchor; each panel 100 px wide
    pixels = np.asarray(curve).astype(int)
    middle = [pixels[GAP + 40, GAP + 50 + (100 + GAP) * i] for i in range(3)]
    top = [pixels[GAP + 4, GAP + 50 + (100 + GAP) * i] for i in range(3)]  # no label above
    near = all((abs(t - m) < 40).all() for t, m in zip(top, middle, strict=True))
    assert near and curve.size[1] < GAP + 80 + 40, (top, middle, curve.size)  # JPEG: near, not equal
    green, blue = all(p[1] > 100 > p[0] for p in middle[:2]), middle[2][2] > 200 > 100 > middle[2][1]
    assert green and blue, middle


def test_each_sheet_step_keeps_its_network(campaign, tmp_path: Path) -> None:
    plan_path = _toy_plan(tmp_path, planned_steps=4, train_args=[], validation=[])
    run = campaign.Run(campaign.Plan.read(plan_path), tmp_path / "runs")
    run.folder.mkdir(parents=True)
    run.model.write_bytes(b"network at step 2")
    kept = campaign.keep_network(run, 2)
    assert kept.name == "step_000002.safetensors" and kept.read_bytes() == b"network at step 2"


def test_a_stop_reaches_a_trainer_started_in_the_background(
    campaign, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A job started with `&` from a script ignores SIGINT, and so does every process it starts:
    # the campaign must stop its trainer with SIGTERM, which the trainer turns into a checkpoint.
    plan_path = _toy_plan(
        tmp_path,
        planned_steps=2000,
        sheet_every=2000,
        train_args=[*TOY_TRAINING, "--batch-size", "1", "--equivariance-weight", "0", "--log-every", "1"],
    )
    photos = _toy_images(campaign, tmp_path, monkeypatch, photos=1)
    run = campaign.Run(campaign.Plan.read(plan_path), tmp_path / "runs")
    losses = run.train / "losses.jsonl"

    def stop_once_training() -> None:  # as a user's `kill PID` would, once the trainer has taken a step
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not (losses.is_file() and losses.read_text().strip()):
            time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited by the trainer
    stopper = threading.Thread(target=stop_once_training)
    started = time.monotonic()
    try:
        stopper.start()
        assert campaign.command_run(run, photos, hours=None) == 0
    finally:
        signal.signal(signal.SIGINT, previous)
        stopper.join()
    assert time.monotonic() - started < 400
    assert signal.getsignal(signal.SIGTERM) is before, "the campaign gives SIGTERM back to its caller"
    assert 0 < run.run_steps() < 2000, "the trainer saved its checkpoint when it was stopped"
