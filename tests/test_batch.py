"""painterly batch without Ray: the manifest, resuming, per-photo failures, inputs, the engine
option's message when Ray is missing, and that nothing but the Ray engine imports ray."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from painterly.batch.manifest import Manifest, record
from painterly.batch.runner import Job, plan_jobs, run_jobs
from painterly.errors import PainterlyError
from tests.helpers.batch import lines, photos

SOURCE = Path(__file__).resolve().parents[1] / "src" / "painterly"


def test_manifest_skips_a_torn_line_and_the_last_record_wins(tmp_path: Path) -> None:
    manifest = Manifest(tmp_path / "m.jsonl")
    manifest.append(record("a.jpg", "out/a.png", 1.0, "photo a.jpg is not an image"))
    manifest.append(record("a.jpg", "out/a.png", 2.0))
    manifest.close()
    with open(manifest.path, "a") as handle:
        handle.write('{"input": "b.jpg", "outp')  # a crash mid-line
    latest = manifest.latest()
    assert list(latest) == ["out/a.png"]
    assert latest["out/a.png"]["status"] == "done" and latest["out/a.png"]["error"] is None


def test_plan_skips_done_outputs_that_exist_and_retries_failed_ones(tmp_path: Path) -> None:
    done, gone, failed = (tmp_path / f"{name}.png" for name in ("done", "gone", "failed"))
    done.write_bytes(b"x")
    manifest = Manifest(tmp_path / "m.jsonl")
    for path in (done, gone):
        manifest.append(record(f"{path.stem}.jpg", str(path), 1.0))
    manifest.append(record("failed.jpg", str(failed), 1.0, "bad"))
    manifest.close()
    jobs: list[Job] = [{"input": f"{p.stem}.jpg", "output": str(p)} for p in (done, gone, failed)]
    todo, skipped = plan_jobs(jobs, manifest)
    assert skipped == 1 and [job["output"] for job in todo] == [str(gone), str(failed)]
    with pytest.raises(PainterlyError, match="same output name"):
        plan_jobs([jobs[0], jobs[0]], manifest)


def test_interrupt_leaves_the_manifest_true(tmp_path: Path) -> None:
    def engine(jobs):
        for job in jobs[:2]:
            Path(job["output"]).write_bytes(b"whole")  # a worker writes, then reports
            yield record(job["input"], job["output"], 0.1)
        Path(jobs[2]["output"]).write_bytes(b"whole")  # written, Ctrl-C before it is reported
        raise KeyboardInterrupt

    jobs: list[Job] = [{"input": f"{i}.jpg", "output": str(tmp_path / f"{i}.png")} for i in range(4)]
    manifest = Manifest(tmp_path / "m.jsonl")
    summary = run_jobs(jobs, engine, manifest, progress=False)
    assert summary.interrupted and summary.done == 2
    assert "interrupted, 2 left for the next run" in summary.line()
    recorded = lines(manifest.path)
    assert [item["output"] for item in recorded] == [job["output"] for job in jobs[:2]]
    assert all(Path(item["output"]).read_bytes() == b"whole" for item in recorded)
    todo, skipped = plan_jobs(jobs, manifest)
    assert skipped == 2 and len(todo) == 2  # the unreported one is done again (idempotent)


def test_batch_local_resumes_and_records_bad_and_huge_photos(tmp_path: Path, run_cli) -> None:
    inputs = tmp_path / "in"
    photos(inputs)
    (inputs / "broken.jpg").write_bytes(b"not a photo")
    Image.new("RGB", (900, 900), "white").save(inputs / "huge.png")
    out = tmp_path / "out"
    args = ["batch", "stylize", inputs, "-o", out, "-m", "starry_night", "--engine", "local"]
    code, _, err = run_cli(*args, "--batch-size", "2", "--max-pixels", "500000")
    assert code == 1, err
    assert "done 3, skipped 0, failed 2" in err
    records = {Path(item["input"]).name: item for item in lines(out / "manifest.jsonl")}
    assert records["broken.jpg"]["status"] == "failed" and "not an image" in records["broken.jpg"]["error"]
    assert records["huge.png"]["status"] == "failed" and "810,000 pixels" in records["huge.png"]["error"]
    for name in ("p0", "p1", "p2"):
        item = records[f"{name}.jpg"]
        assert item["status"] == "done" and item["seconds"] > 0
        with Image.open(item["output"]) as result:
            assert result.info["painterly_model"] == "starry_night" and result.size == (40, 32)
            styled = np.asarray(result.convert("RGB"), dtype=np.float32)
        photo = np.asarray(Image.open(inputs / f"{name}.jpg").convert("RGB"), dtype=np.float32)
        assert np.abs(styled - photo).mean() > 10  # painted, not copied
    (inputs / "broken.jpg").unlink()
    code, _, err = run_cli(*args, "--max-pixels", "500000")
    assert code == 1 and "done 0, skipped 3, failed 1" in err  # the huge one is tried again
    assert len(lines(out / "manifest.jsonl")) == 6


def test_inputs_from_a_list_file_a_glob_and_a_file_url(tmp_path: Path) -> None:
    from painterly.cli.batch import gather_inputs

    paths = photos(tmp_path / "in", count=3)
    listing = tmp_path / "list.txt"
    listing.write_text(f"# photos\n{paths[0]}\n\n  {paths[1]}  \n")
    found = gather_inputs([f"@{listing}", str(tmp_path / "in" / "p[12].jpg"), f"file://{paths[2]}"], [])
    assert found[:3] == [str(paths[0]), str(paths[1]), str(paths[2])]
    assert found[3:] == [f"file://{paths[2]}"]
    assert gather_inputs([f"file://{tmp_path / 'in'}"], []) == [f"file://{p}" for p in paths]
    with pytest.raises(PainterlyError, match="input not found"):
        gather_inputs([f"file://{tmp_path / 'nothing.jpg'}"], [])
    with pytest.raises(PainterlyError, match="names no files"):
        (tmp_path / "empty.txt").write_text("# nothing\n")
        gather_inputs([], [str(tmp_path / "empty.txt")])


def test_fsspec_output_with_a_local_manifest(tmp_path: Path, run_cli) -> None:
    paths = photos(tmp_path / "in", count=2)
    out = tmp_path / "out"
    code, _, err = run_cli(
        "batch", "stylize", *paths, "-o", f"file://{out}", "-m", "starry_night", "--engine", "local"
    )
    assert code == 0, err  # a file:// folder is local: its manifest goes there
    assert sorted(p.name for p in out.iterdir()) == [
        "manifest.jsonl",
        "p0_starry_night.png",
        "p1_starry_night.png",
    ]
    code, _, err = run_cli("batch", "stylize", *paths, "-o", "memory://out", "-m", "starry_night")
    assert code == 2 and "give a local --manifest" in err


def test_batch_stylize_does_not_offer_regions(tmp_path: Path, run_cli) -> None:
    # It used to accept --mask and --feather and paint every photo whole without a word.
    paths = photos(tmp_path / "in", count=1)
    for option in (["--mask", str(paths[0])], ["--feather", "4"]):
        code, _, err = run_cli("batch", "stylize", *paths, "-o", tmp_path / "out", "-m", "the_wave", *option)
        assert code == 2 and "unrecognized arguments" in err, err
        assert not (tmp_path / "out").exists()
    # nor batch transfer a --keep-weight without a --keep mask to weigh (it was ignored)
    code, _, err = run_cli(
        "batch", "transfer", *paths, "-s", paths[0], "-o", tmp_path / "out", "--keep-weight", "3"
    )
    assert code == 2 and "unrecognized arguments" in err, err


def test_engine_ray_without_ray_says_how_to_install(tmp_path: Path, run_cli, monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a)
    )
    (path,) = photos(tmp_path, count=1)
    for command in ("batch stylize", "stylize"):
        code, out, err = run_cli(
            *command.split(), path, "-o", tmp_path / "o", "-m", "starry_night", "--engine", "ray"
        )
        assert code == 2 and out == ""
        assert err.strip().splitlines() == [
            "painterly: error: --engine ray needs Ray: pip install 'painterly[ray]'"
        ]
    assert not (tmp_path / "o").exists()


def test_only_the_ray_engine_imports_ray() -> None:
    importers = set()
    for path in SOURCE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(name == "ray" or name.startswith("ray.") for name in names):
                importers.add(path.relative_to(SOURCE).as_posix())
    assert importers == {"batch/ray_engine.py"}


def test_fsspec_inputs_and_outputs_through_a_url_file_system(tmp_path: Path, run_cli) -> None:
    fsspec = pytest.importorskip("fsspec")
    memory = fsspec.filesystem("memory")
    for index, path in enumerate(photos(tmp_path / "in", count=2)):
        memory.pipe_file(f"/bucket{tmp_path}/in/p{index}.jpg", path.read_bytes())
    source, out = f"memory://bucket{tmp_path}/in", f"memory://bucket{tmp_path}/out"
    manifest = tmp_path / "manifest.jsonl"
    args = ["batch", "stylize", source, "-o", out, "-m", "starry_night", "--engine", "local"]
    code, _, err = run_cli(*args, "--manifest", manifest)
    assert code == 0, err
    written = sorted(memory.ls(f"/bucket{tmp_path}/out", detail=False))
    assert [Path(p).name for p in written] == ["p0_starry_night.png", "p1_starry_night.png"]
    with Image.open(memory.open(written[0])) as result:
        assert result.size == (40, 32) and result.info["source"] == "p0.jpg"
    recorded = lines(manifest)
    assert [item["input"].rsplit("/", 1)[-1] for item in recorded] == ["p0.jpg", "p1.jpg"]
    assert all(item["input"].startswith("memory://") and item["status"] == "done" for item in recorded)
    code, _, err = run_cli(*args, "--manifest", manifest)
    assert code == 0 and "done 0, skipped 2, failed 0" in err


@settings(max_examples=30, deadline=None)
@given(st.lists(st.text(alphabet=" \t#abc/é.", max_size=12), max_size=8))
def test_list_file_names_each_non_blank_non_comment_line(tmp_path_factory, items: list[str]) -> None:
    from painterly.cli.batch import _read_list

    path = tmp_path_factory.mktemp("lists") / "list.txt"
    path.write_text("\n".join(items), encoding="utf-8")
    expected = [item.strip() for item in items if item.strip() and not item.lstrip().startswith("#")]
    if expected:
        assert _read_list(str(path)) == expected
    else:
        with pytest.raises(PainterlyError, match="names no files"):
            _read_list(str(path))
