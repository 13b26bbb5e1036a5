"""painterly batch against a real local Ray (no mock): one ``ray.init(num_cpus=2)`` for the
session, then a two-node ``ray.cluster_utils.Cluster`` on this machine for a worker killed
mid-batch and for Ctrl-C then resume. Skipped when ray is not installed."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

from painterly.batch.manifest import Manifest  # noqa: E402
from painterly.batch.ray_engine import RayStylizeWorker, stylize_engine  # noqa: E402
from painterly.batch.runner import Job, run_jobs  # noqa: E402
from painterly.batch.workers import StylizeSpec  # noqa: E402
from painterly.feedforward.catalog import resolve_model  # noqa: E402
from tests.helpers.batch import lines, photos  # noqa: E402


@pytest.fixture(scope="session")
def local_ray() -> Iterator[None]:
    """One local Ray for the session's tests (the cluster tests below come after these)."""
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[Any]:
    """Two Ray nodes (one CPU each) on this machine, the driver connected to the head (the local
    Ray of the tests above, if started, is stopped first: a driver joins one Ray at a time)."""
    from ray.cluster_utils import Cluster

    ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, log_to_driver=False, logging_level="WARNING")
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def spec(batch_size: int = 2) -> StylizeSpec:
    path = resolve_model("starry_night")
    return StylizeSpec(
        model_name=path.name, model_bytes=path.read_bytes(), backend="onnxruntime", batch_size=batch_size
    )


def jobs_for(paths: Sequence[Path], out: Path) -> list[Job]:
    out.mkdir(exist_ok=True)
    return [{"input": str(p), "output": str(out / f"{p.stem}_starry_night.png")} for p in paths]


def test_stylize_on_ray_records_a_bad_photo_and_goes_on(local_ray, tmp_path: Path, run_cli) -> None:
    inputs = tmp_path / "in"
    photos(inputs, count=4)
    (inputs / "broken.jpg").write_bytes(b"\x89PNG but not really")
    Image.new("RGB", (900, 900), "white").save(inputs / "huge.png")
    out = tmp_path / "out"
    args = ["batch", "stylize", inputs, "-o", out, "-m", "starry_night", "--batch-size", "2"]
    code, _, err = run_cli(*args, "--max-pixels", "500000", "--workers", "1")
    assert code == 1, err
    assert "done 4, skipped 0, failed 2" in err and "photos/s" in err and "s/photo" in err
    records = {Path(item["input"]).name: item for item in lines(out / "manifest.jsonl")}
    assert records["broken.jpg"]["status"] == "failed" and "not an image" in records["broken.jpg"]["error"]
    assert records["huge.png"]["status"] == "failed" and "810,000 pixels" in records["huge.png"]["error"]
    assert all(records[f"p{i}.jpg"]["status"] == "done" for i in range(4))
    with Image.open(records["p0.jpg"]["output"]) as result:
        assert result.info["painterly_model"] == "starry_night" and result.size == (40, 32)
    assert len(lines(out / "manifest.jsonl")) == 6


@pytest.mark.slow
def test_transfer_on_ray_one_task_per_photo(local_ray, tmp_path: Path, painting_path: Path, run_cli) -> None:
    paths = photos(tmp_path / "in", count=2, size=(32, 24))  # two photos: two tasks
    out = tmp_path / "out"
    code, _, err = run_cli(
        "batch", "transfer", *paths, "-s", painting_path, "-o", out, "--size", "32", "--iterations", "3", "-q"
    )
    assert code == 0, err
    assert "done 2, skipped 0, failed 0" in err
    for item in lines(out / "manifest.jsonl"):
        with Image.open(item["output"]) as result:
            assert result.info["painterly_method"] == "transfer" and result.size == (32, 24)


class CrashingOnce(RayStylizeWorker):
    """Kills its own process the first time it meets p1 (a marker file remembers), as the kernel's
    out-of-memory killer or a lost node would."""

    def __call__(self, batch: Mapping[str, Sequence[Any]]) -> dict[str, list[Any]]:
        for target in batch["output"]:
            marker = Path(str(target)).parent.parent / "crashed"
            if Path(str(target)).name.startswith("p1_") and not marker.exists():
                marker.write_text(str(os.getpid()))
                os._exit(1)
        return super().__call__(batch)


def test_killed_worker_is_retried_each_photo_written_once_and_a_rerun_skips_all(
    two_nodes, tmp_path: Path
) -> None:
    jobs = jobs_for(photos(tmp_path / "in", count=4), tmp_path / "out")
    engine = stylize_engine(spec(batch_size=1), workers=2, cpus_per_worker=1, worker_class=CrashingOnce)
    manifest = Manifest(tmp_path / "out" / "manifest.jsonl")
    summary = run_jobs(jobs, engine, manifest, progress=False)
    assert (tmp_path / "crashed").exists()  # a worker did die mid-batch
    assert (summary.done, summary.failed) == (4, 0)
    recorded = lines(manifest.path)
    assert sorted(item["output"] for item in recorded) == sorted(job["output"] for job in jobs)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        ["manifest.jsonl", *(Path(job["output"]).name for job in jobs)]
    )  # no temporary file left behind
    summary = run_jobs(jobs, engine, manifest, progress=False)
    assert (summary.skipped, summary.done) == (4, 0) and len(lines(manifest.path)) == 4


@pytest.mark.slow
def test_interrupt_then_resume_on_two_nodes(two_nodes, tmp_path: Path) -> None:
    jobs = jobs_for(photos(tmp_path / "in", count=6), tmp_path / "out")
    manifest = Manifest(tmp_path / "out" / "manifest.jsonl")
    seen: list[str] = []

    def ctrl_c_after_two(item: Any) -> None:
        seen.append(item["output"])
        if len(seen) == 2:
            raise KeyboardInterrupt

    engine = stylize_engine(spec(), workers=2, cpus_per_worker=1)
    summary = run_jobs(jobs, engine, manifest, progress=False, on_record=ctrl_c_after_two)
    assert summary.interrupted and summary.done == 2
    first = lines(manifest.path)
    assert [item["output"] for item in first] == seen and all(Path(o).is_file() for o in seen)
    summary = run_jobs(jobs, stylize_engine(spec(), workers=2, cpus_per_worker=1), manifest, progress=False)
    assert (summary.skipped, summary.done, summary.failed) == (2, 4, 0)
    assert sorted(json.dumps(i["output"]) for i in lines(manifest.path)) == sorted(
        json.dumps(j["output"]) for j in jobs
    )
