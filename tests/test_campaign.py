"""scripts/campaign.py: the committed plans are valid training commands, and a stash resumes a new machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from painterly.feedforward.model_file import read_metadata, write_model_file
from painterly.feedforward.network import TransformerNet

from .conftest import import_file, make_painting, wavy_photo

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
    for name in [read.style, *read.validation]:
        (shared / name).write_bytes(b"")
    campaign.SHARED = tmp_path / "shared"
    command = campaign.train_command(run, tmp_path / "photos", 1000, resume=False, init=None)
    assert command[1:3] == ["-m", "painterly"]
    args = build_parser().parse_args(command[3:])
    assert args.iterations == 1000 and args.validate_every == read.sheet_every


def test_a_stashed_network_starts_a_new_machine_where_the_campaign_stopped(
    campaign, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan_dir = tmp_path / "campaign" / "toy"
    plan_dir.mkdir(parents=True)
    plan_path = plan_dir / "plan.json"
    plan_path.write_text(
        json.dumps(
            {
                "name": "toy",
                "style": "painting.png",
                "planned_steps": 3,
                "sheet_every": 2,
                "train_args": [
                    "--width",
                    "4",
                    "--image-size",
                    "32",
                    "--batch-size",
                    "2",
                    "--precision",
                    "fp32",
                ],
                "validation": ["photo.png"],
                "stop_rule": "a test",
            }
        )
    )
    shared = tmp_path / "shared" / "images"
    shared.mkdir(parents=True)
    make_painting().save(shared / "painting.png")
    wavy_photo(5).save(shared / "photo.png")
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        wavy_photo(i).convert("RGB").save(photos / f"p{i}.jpg")
    monkeypatch.setattr(campaign, "SHARED", tmp_path / "shared")
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
