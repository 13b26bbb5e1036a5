#!/usr/bin/env python3
"""A training campaign: one feed-forward style trained for many hours on the CPU, across sessions
and machines, with a validation sheet every ``sheet_every`` steps and nothing lost at a stop.

A campaign is a plan in the repository (``campaign/NAME/plan.json``: the style, the recipe as
``painterly train`` options, the planned steps, the sheet interval, the stop rule) and a run folder
outside the work tree (``--root``, default ``/work/runs/campaign``), which survives while the
machine is handed on::

    python scripts/campaign.py campaign/starry_night/plan.json run     # start or resume (nice 19)
    python scripts/campaign.py campaign/starry_night/plan.json status  # steps, speed, last sheet
    python scripts/campaign.py campaign/starry_night/plan.json stash   # at a stop: network -> repo
    python scripts/campaign.py campaign/starry_night/plan.json curve   # losses and the anchor row by step

``run`` trains in chunks of ``sheet_every`` steps with ``painterly train --resume``; after each
chunk it paints the validation sheet (the validation photos at 512 px and, where the anchors are
there, Johnson et al.'s picture of the same photo beside ours) into ``RUN/sheets/`` and keeps that
step's network in ``RUN/networks/``. ``stash`` also copies the sheets, as JPEGs, beside the plan
(``campaign/NAME/sheets/``), so that the curve survives a new machine. On a machine
whose run folder is gone, ``run`` starts from the network committed by the last ``stash``
(``campaign/NAME/latest.safetensors``, the network alone: the optimizer's moments start afresh),
and counts its steps on from there. SIGTERM or Ctrl-C checkpoint the chunk in progress (the
trainer's own signal handling), so a stop loses at most a few steps.

The photos are those of ``scripts/build_photos.py`` (built into ``--photos`` when missing), never
the shared validation images.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PAINTERLY_SHARED", ROOT.parent / "shared"))
DEFAULT_RUNS = Path(os.environ.get("PAINTERLY_CAMPAIGNS", "/work/runs/campaign"))
DEFAULT_PHOTOS = Path(os.environ.get("PAINTERLY_PHOTOS", "/work/runs/photos"))
SHEET_SIZE = 512
#: A style_crop keeps at least this share of the painting's width and of its height.
MIN_CROP = 0.25


@dataclass
class Plan:
    """``campaign/NAME/plan.json``: what the campaign trains and for how long."""

    path: Path
    name: str
    style: str
    planned_steps: int
    sheet_every: int
    train_args: list[str]
    validation: list[str]
    anchors: dict[str, str] = field(default_factory=dict)
    stop_rule: str = ""
    #: A trained network to start from (``train --init``): a model file, its path from the
    #: repository's root (e.g. another campaign's finished ``latest.safetensors``) or absolute.
    #: Used only for a first start: no checkpoint in the run folder and no stash; steps count from 0.
    start_from: str | None = None
    #: The campaign step ``start_from`` must have reached (its ``campaign_steps``): a campaign that
    #: starts from another's finished network refuses to start from an earlier stash of it.
    start_from_steps: int | None = None
    #: The part of the painting to train on, as fractions of its width and height: [left, top,
    #: right, bottom]; e.g. the_scream's unpainted cardboard strips at the top and right, which a
    #: network learns to paint along every picture's edges. None: the whole painting.
    style_crop: list[float] | None = None

    def __post_init__(self) -> None:
        crop = self.style_crop
        if crop is not None and not (
            isinstance(crop, list)
            and len(crop) == 4
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in crop)
            and crop[0] >= 0
            and crop[2] - crop[0] >= MIN_CROP - 1e-9
            and crop[2] <= 1
            and crop[1] >= 0
            and crop[3] - crop[1] >= MIN_CROP - 1e-9
            and crop[3] <= 1
        ):
            raise SystemExit(
                f"campaign: {self.path}: style_crop must be [left, top, right, bottom] in 0-1, "
                f"keeping at least {MIN_CROP:.0%} of each side (it trims a frame, not picks a detail)"
            )

    @classmethod
    def read(cls, path: Path) -> Plan:
        data = json.loads(path.read_text())
        known = {
            "name",
            "style",
            "planned_steps",
            "sheet_every",
            "train_args",
            "validation",
            "anchors",
            "stop_rule",
            "start_from",
            "start_from_steps",
            "style_crop",
        }
        unknown = sorted(set(data) - known - {"notes"})
        if unknown:
            raise SystemExit(f"campaign: {path}: unknown keys {', '.join(unknown)}")
        return cls(path=path, **{k: v for k, v in data.items() if k in known})

    @property
    def stash(self) -> Path:
        """The network committed at each stop, beside the plan."""
        return self.path.parent / "latest.safetensors"

    def start_network(self) -> tuple[Path, dict[str, Any]]:
        """``start_from``'s file and its campaign step, checked against ``start_from_steps`` (the
        file's SHA-256 goes into the trained network's metadata, ``training.init``, by ``--init``)."""
        from painterly.feedforward.model_file import read_metadata

        # from the root of the repository that holds the plan (campaign/NAME/plan.json), not of this
        # script's: the runner may be a copy outside the work tree; an absolute path stays itself
        path = self.path.resolve().parents[2] / str(self.start_from)
        if not self.start_from or not path.is_file():
            raise SystemExit(f"campaign: {self.path}: start_from {self.start_from!r} is not a file")
        steps = read_metadata(path).get("campaign_steps")
        if self.start_from_steps is not None and steps != self.start_from_steps:
            raise SystemExit(
                f"campaign: {self.name} starts from {self.start_from} at step {self.start_from_steps}, "
                f"and that file is at step {steps}: wait until it gets there"
            )
        return path, {"file": self.start_from, "campaign_steps": steps}

    @property
    def kept_sheets(self) -> Path:
        """The sheets committed at each stop (JPEG copies), beside the plan."""
        return self.path.parent / "sheets"


def shared_file(name: str) -> Path:
    """A validation photo, painting or anchor: ``images/NAME`` or ``anchors/NAME`` under ../shared."""
    for folder in ("images", "anchors"):
        candidate = SHARED / folder / name
        if candidate.is_file():
            return candidate
    raise SystemExit(f"{name}: found in neither {SHARED}/images nor {SHARED}/anchors")


class Run:
    """The run folder of one campaign: ``train/`` (checkpoint, losses), ``sheets/``, ``state.json``."""

    def __init__(self, plan: Plan, root: Path) -> None:
        self.plan = plan
        self.folder = root / plan.name
        self.train = self.folder / "train"
        self.sheets = self.folder / "sheets"
        self.networks = self.folder / "networks"
        self.model = self.folder / f"{plan.name}.safetensors"
        self.state_file = self.folder / "state.json"

    def state(self) -> dict[str, Any]:
        if self.state_file.is_file():
            return dict(json.loads(self.state_file.read_text()))
        return {"offset": 0, "started": None, "machines": []}

    def save_state(self, state: dict[str, Any]) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        tmp.replace(self.state_file)

    def run_steps(self) -> int:
        """Steps of this machine's run (the trainer's count, before the offset of a stashed start)."""
        checkpoint = self.train / "checkpoint.safetensors"
        if not checkpoint.is_file():
            return 0
        from painterly.feedforward.model_file import read_metadata

        return int(read_metadata(checkpoint).get("steps", 0))

    def total_steps(self) -> int:
        return int(self.state()["offset"]) + self.run_steps()


def cpu_description() -> str:
    model, flags = "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model == "unknown CPU":
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
    return f"{model}, {os.cpu_count()} cores, " + " ".join(f for f in wanted if f in flags)


def ensure_photos(photos: Path) -> None:
    if photos.is_dir() and any(photos.glob("*.jpg")):
        return
    print(f"campaign: building the training photos into {photos} (scripts/build_photos.py)", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=False)
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "build_photos.py"),
            "--out",
            str(photos),
            "--cache",
            str(photos.parent / "cache"),
            "--exclude-like",
            str(SHARED / "images"),
        ],
        check=True,
    )


def style_image(plan: Plan, source: Path, folder: Path) -> Path:
    """The painting the campaign trains on: ``source`` itself, or its ``style_crop`` as
    ``folder/STEM.png``, read as training reads a style (EXIF orientation, pixel limit) and written
    again only when its pixels change, so that the file, whose SHA-256 the model records, stays the
    same from chunk to chunk and machine to machine."""
    if plan.style_crop is None:
        return source
    from PIL import Image

    from painterly.images import open_image, save_image

    painting = open_image(source, what="style image")
    left, top, right, bottom = plan.style_crop
    w, h = painting.size
    cropped = painting.crop((round(left * w), round(top * h), round(right * w), round(bottom * h)))
    out = folder / f"{Path(plan.style).stem}.png"
    if out.is_file():
        with Image.open(out) as kept:
            if kept.size == cropped.size and kept.convert("RGB").tobytes() == cropped.tobytes():
                return out
    folder.mkdir(parents=True, exist_ok=True)
    return save_image(cropped, out)


def train_command(run: Run, photos: Path, until: int, resume: bool, init: Path | None) -> list[str]:
    plan = run.plan
    style = style_image(plan, shared_file(plan.style), run.folder / "style")
    command = [
        sys.executable, "-m", "painterly", "train",
        "--style", str(style), "--data", str(photos), "-o", str(run.model),
        "--name", plan.name, "--workdir", str(run.train), "--iterations", str(until),
        "--validate-every", str(plan.sheet_every), "--checkpoint-every", "50", "--quiet",
        "--validation", *[str(shared_file(v)) for v in plan.validation],
        *plan.train_args,
    ]  # fmt: skip
    if resume:
        command.append("--resume")
    elif init is not None:
        command += ["--init", str(init)]
    return command


#: A sheet's label strip, above each tile; ``curve`` crops the tiles back out of the kept sheets.
SHEET_LABEL = 18


def sheet_grid(tiles: list[tuple[Any, str]]) -> Any:
    """Tiles two to a row, each ``SHEET_LABEL`` px label strip above its tile, no gaps: the layout
    that ``curve`` reads back (every campaign's sheets since the first share it)."""
    from PIL import Image, ImageDraw

    width = max(t.width for t, _ in tiles)
    height = max(t.height for t, _ in tiles) + SHEET_LABEL
    rows = (len(tiles) + 1) // 2
    sheet = Image.new("RGB", (2 * width, rows * height), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (tile, text) in enumerate(tiles):
        x, y = (i % 2) * width, (i // 2) * height
        sheet.paste(tile, (x, y + SHEET_LABEL))
        draw.text((x + 4, y + 3), text, fill="black")
    return sheet


def paint_sheet(run: Run, network: Path, steps: int) -> Path:
    """The validation photos painted by ``network`` at 512 px, each beside its anchor where there is one."""
    from painterly.feedforward.inference import load_model
    from painterly.images import open_image, save_image

    model = load_model(network, backend="torch")
    tiles: list[tuple[Any, str]] = []
    for name in run.plan.validation:
        photo = open_image(shared_file(name))
        tiles.append((model.stylize(photo, size=SHEET_SIZE), f"{run.plan.name}, step {steps}: {name}"))
        anchor = run.plan.anchors.get(name)
        if anchor:
            tiles.append((anchor_picture(shared_file(anchor), SHEET_SIZE), f"anchor: {anchor}"))
    run.sheets.mkdir(parents=True, exist_ok=True)
    return save_image(sheet_grid(tiles), run.sheets / f"sheet_{steps:06d}.png")


def anchor_picture(path: Path, side: int) -> Any:
    """A published picture (an anchor), fitted into ``side`` x ``side`` px."""
    from painterly.images import open_image

    picture = open_image(path, what="anchor")
    picture.thumbnail((side, side))
    return picture


def command_run(run: Run, photos: Path, hours: float | None) -> int:
    plan = run.plan
    state = run.state()
    init: Path | None = None
    fresh = not (run.train / "checkpoint.safetensors").is_file()
    if fresh and not plan.stash.is_file() and plan.start_from is not None:
        init, state["start_from"] = plan.start_network()  # checked before the photos are built
        print(
            f"campaign: starting from the weights of {plan.start_from} "
            f"(step {state['start_from']['campaign_steps']})",
            flush=True,
        )
    elif fresh and plan.stash.is_file():
        from painterly.feedforward.model_file import read_metadata

        init = plan.stash
        stashed = read_metadata(init)
        state["offset"] = int(stashed.get("campaign_steps", stashed.get("steps", 0)))
        print(
            f"campaign: no run here; starting from the stashed network at step {state['offset']}", flush=True
        )
    ensure_photos(photos)
    run.folder.mkdir(parents=True, exist_ok=True)
    state["started"] = state.get("started") or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    machine = cpu_description()
    if machine not in state["machines"]:
        state["machines"].append(machine)
    run.save_state(state)
    deadline = None if hours is None else time.monotonic() + hours * 3600
    stopping = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    try:
        return _train_chunks(run, photos, deadline, machine, init, stopping)
    finally:
        signal.signal(signal.SIGTERM, previous)  # a caller's (a test's) own handling comes back


def _train_chunks(
    run: Run,
    photos: Path,
    deadline: float | None,
    machine: str,
    init: Path | None,
    stopping: threading.Event,
) -> int:
    """``run``'s chunks of ``sheet_every`` steps until the plan is done or ``stopping`` is set."""
    plan = run.plan
    while not stopping.is_set():
        offset = int(run.state()["offset"])
        done = offset + run.run_steps()
        if done >= plan.planned_steps:
            print(f"campaign: {plan.name} reached its {plan.planned_steps} planned steps", flush=True)
            return 0
        until_total = min(plan.planned_steps, (done // plan.sheet_every + 1) * plan.sheet_every)
        resume = (run.train / "checkpoint.safetensors").is_file()
        command = train_command(run, photos, until_total - offset, resume, None if resume else init)
        print(f"campaign: steps {done} -> {until_total} on {machine}", flush=True)
        with (run.folder / "campaign.log").open("a") as log:
            child = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, preexec_fn=lambda: os.nice(19)
            )
            signalled = False
            while child.poll() is None:
                if deadline is not None and time.monotonic() > deadline:
                    stopping.set()
                # once: a second signal would interrupt the checkpoint itself. SIGTERM, not SIGINT:
                # a job started in the background ignores SIGINT, and so do its children.
                if stopping.is_set() and not signalled:
                    child.send_signal(signal.SIGTERM)  # the trainer checkpoints and exits
                    signalled = True
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(timeout=5)
        if child.returncode not in (0, 130) and not stopping.is_set():
            print(
                f"campaign: training exited {child.returncode}; see {run.folder / 'campaign.log'}", flush=True
            )
            return child.returncode or 1
        total = offset + run.run_steps()
        if total % plan.sheet_every == 0 and total > 0 and run.model.is_file():
            print(f"campaign: sheet {paint_sheet(run, run.model, total)}", flush=True)
            keep_network(run, total)
    return 0


def keep_network(run: Run, steps: int) -> Path:
    """A copy of the network of a sheet step, so that later comparisons can paint it again."""
    run.networks.mkdir(parents=True, exist_ok=True)
    out = run.networks / f"step_{steps:06d}.safetensors"
    tmp = out.with_suffix(".tmp")
    shutil.copyfile(run.model, tmp)
    tmp.replace(out)
    return out


SHEET_JPEG_SIDE = 768
SHEET_JPEG_QUALITY = 80


def keep_sheets(run: Run) -> list[Path]:
    """Copy the run's sheets that the repository lacks into ``campaign/NAME/sheets/`` as JPEGs."""
    from PIL import Image

    written = []
    run.plan.kept_sheets.mkdir(parents=True, exist_ok=True)
    for sheet in sorted(run.sheets.glob("sheet_*.png")):
        out = run.plan.kept_sheets / (sheet.stem + ".jpg")
        if out.is_file():
            continue
        with Image.open(sheet) as opened:
            picture = opened.convert("RGB")
        picture.thumbnail((SHEET_JPEG_SIDE, SHEET_JPEG_SIDE))
        tmp = out.with_suffix(".tmp.jpg")
        picture.save(tmp, quality=SHEET_JPEG_QUALITY)
        tmp.replace(out)
        written.append(out)
    return written


def command_stash(run: Run) -> int:
    """Copy this machine's latest network into the repository (the network alone, with the step count)."""
    from painterly.feedforward.model_file import read_model_file, write_model_file

    latest = run.train / "latest.safetensors"
    if not latest.is_file():
        latest = run.train / "checkpoint.safetensors"
    if not latest.is_file():
        print(f"campaign: nothing to stash: no network in {run.train}", flush=True)
        return 1
    net, meta, _ = read_model_file(latest)
    meta = {**meta, "campaign_steps": run.total_steps(), "campaign_plan": run.plan.path.name}
    tmp = run.plan.stash.with_suffix(".tmp.safetensors")
    write_model_file(tmp, net, meta)
    tmp.replace(run.plan.stash)
    sheets = sorted(run.sheets.glob("sheet_*.png"))
    print(f"campaign: stashed step {meta['campaign_steps']} into {run.plan.stash}", flush=True)
    for kept in keep_sheets(run):
        print(f"campaign: kept {kept}", flush=True)
    if sheets:
        print(f"campaign: latest sheet {sheets[-1]}", flush=True)
    return 0


def command_status(run: Run) -> int:
    state = run.state()
    total = run.total_steps()
    plan = run.plan
    print(
        f"{plan.name}: {total} of {plan.planned_steps} planned steps "
        f"({100 * total / plan.planned_steps:.1f}%)"
    )
    print(
        f"run folder {run.folder}; started {state.get('started')}; machines: {'; '.join(state['machines'])}"
    )
    losses = run.train / "losses.jsonl"
    if losses.is_file():
        lines = losses.read_text().splitlines()
        if lines:
            print(f"last log line: {lines[-1][:300]}")
    sheets = sorted(run.sheets.glob("sheet_*.png"))
    print(f"sheets: {len(sheets)}" + (f", latest {sheets[-1]}" if sheets else ""))
    print(f"stop rule: {plan.stop_rule}")
    return 0


def sheet_steps(run: Run) -> dict[int, Path]:
    """Every sheet by its step: the run folder's PNG where there is one, else the committed JPEG."""
    found: dict[int, Path] = {}
    for folder, pattern in ((run.plan.kept_sheets, "sheet_*.jpg"), (run.sheets, "sheet_*.png")):
        for sheet in folder.glob(pattern):
            with contextlib.suppress(ValueError):
                found[int(sheet.stem.split("_", 1)[1])] = sheet
    return dict(sorted(found.items()))


def anchor_cell(plan: Plan) -> int | None:
    """The index, in a sheet's reading order, of the first validation photo that has an anchor."""
    for cell, name in enumerate(plan.validation):
        if name in plan.anchors:
            return cell  # the photos before it have no anchor, so no extra cells
    return None


def loss_table(run: Run, every: int = 500) -> list[str]:
    """Mean logged losses per ``every`` steps (this machine's run, from ``losses.jsonl``)."""
    losses = run.train / "losses.jsonl"
    if not losses.is_file():
        return []
    offset = int(run.state()["offset"])
    rows = [json.loads(line) for line in losses.read_text().splitlines() if line.strip()]
    # every term any row logged (a recipe change adds some, e.g. style_x2), "total" last
    names = list(dict.fromkeys(k for row in rows for k in row if k not in ("step", "seconds", "total")))
    names.append("total")
    lines = ["steps        " + " ".join(f"{n:>12}" for n in names)]
    bins: dict[int, list[dict[str, float]]] = {}
    for row in rows:
        bins.setdefault((offset + int(row["step"])) // every * every, []).append(row)
    for start, group in sorted(bins.items()):
        cells = []
        for n in names:
            values = [float(r[n]) for r in group if n in r]
            cells.append(f"{sum(values) / len(values):>12.4g}" if values else f"{'-':>12}")
        lines.append(f"{start:>5}-{start + every - 1:<6} " + " ".join(cells))
    lines.append("(weighted terms, as logged: a change of weight moves its column)")
    return lines


def command_curve(run: Run) -> int:
    """Print the losses by step and write ``RUN/curve.png``: the anchored photo at each sheet step."""
    from PIL import Image

    from painterly.feedforward.sheet import lay_out
    from painterly.images import save_image

    for line in loss_table(run):
        print(line)
    cell = anchor_cell(run.plan)
    sheets = sheet_steps(run)
    if cell is None or not sheets:
        print("campaign: no sheets with an anchored photo yet", flush=True)
        return 0
    tiles = sum(2 if name in run.plan.anchors else 1 for name in run.plan.validation)
    rows = (tiles + 1) // 2

    def crop(sheet: Image.Image, index: int) -> Image.Image:
        """Cell ``index`` of a :func:`sheet_grid` sheet, below its label (a kept JPEG is smaller:
        its tiles were 512 px wide, so the label strip scales with the sheet's width)."""
        w, h = sheet.width / 2, sheet.height / rows
        label = SHEET_LABEL * sheet.width / (2 * SHEET_SIZE)
        x, y = (index % 2) * w, (index // 2) * h
        return sheet.crop((round(x), round(y + label), round(x + w), round(y + h)))

    panels: list[tuple[Image.Image, str]] = []
    anchor = None
    for steps, path in sheets.items():
        with Image.open(path) as opened:
            sheet = opened.convert("RGB")
        panels.append((crop(sheet, cell), f"step {steps}"))
        anchor = crop(sheet, cell + 1)  # a sheet puts the anchor right after its photo
    if anchor is not None:
        panels.append((anchor, "anchor"))
    for panel, _ in panels:
        panel.thumbnail((384, 384))
    out = save_image(lay_out(panels, columns=min(4, len(panels))), run.folder / "curve.png")
    print(f"campaign: curve {out} ({len(sheets)} sheets)", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("plan", type=Path, help="campaign/NAME/plan.json")
    parser.add_argument("command", choices=("run", "status", "stash", "sheet", "curve"))
    parser.add_argument("--root", type=Path, default=DEFAULT_RUNS, help="run folders (default %(default)s)")
    parser.add_argument(
        "--photos", type=Path, default=DEFAULT_PHOTOS, help="training photos (default %(default)s)"
    )
    parser.add_argument("--hours", type=float, help="run: stop (checkpointed) after this long")
    args = parser.parse_args(argv)
    run = Run(Plan.read(args.plan), args.root)
    if args.command == "run":
        return command_run(run, args.photos, args.hours)
    if args.command == "stash":
        return command_stash(run)
    if args.command == "curve":
        return command_curve(run)
    if args.command == "sheet":
        network = run.train / "latest.safetensors"
        print(paint_sheet(run, network if network.is_file() else run.plan.stash, run.total_steps()))
        return 0
    return command_status(run)


if __name__ == "__main__":
    raise SystemExit(main())
