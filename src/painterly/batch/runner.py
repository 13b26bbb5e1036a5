"""The driver of a batch: plan what is left from the manifest, run an engine over it, write the
manifest as records arrive (the only writer), show a progress bar, and sum up.

Ctrl-C (or SIGTERM) stops the run between two records: the manifest then holds exactly the
photos reported so far, each ``done`` line naming a complete output; results written but not
yet reported are whole files (atomic writes), done again on the next run.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

from painterly.batch.locations import exists
from painterly.batch.manifest import Manifest, Record
from painterly.errors import PainterlyError


class Job(TypedDict):
    """One photo to do: where it is read and where its result goes."""

    input: str
    output: str


#: An engine: the jobs in, one record per job out (in any order), as they finish.
Engine = Callable[[Sequence[Job]], Iterable[Record]]


@dataclass
class Summary:
    """What a run did."""

    total: int = 0  # jobs asked for
    done: int = 0
    skipped: int = 0  # done by an earlier run
    failed: int = 0
    seconds: float = 0.0  # wall time of this run's work
    photo_seconds: float = 0.0  # the workers' seconds, summed over the photos done
    interrupted: bool = False

    @property
    def photos_per_second(self) -> float:
        finished = self.done + self.failed
        return finished / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        """The one-line summary the CLI prints."""
        text = f"done {self.done}, skipped {self.skipped}, failed {self.failed}"
        if self.done + self.failed:
            per_photo = self.photo_seconds / self.done if self.done else 0.0
            text += (
                f" in {self.seconds:.1f} s: {self.photos_per_second:.2f} photos/s, "
                f"{per_photo:.2f} s/photo in a worker"
            )
        if self.interrupted:
            text += (
                f"; interrupted, {self.total - self.done - self.skipped - self.failed} left for the next run"
            )
        return text


def plan_jobs(jobs: Sequence[Job], manifest: Manifest) -> tuple[list[Job], int]:
    """The jobs left to do (not ``done`` in the manifest with their output still there), and how
    many are skipped. Failed photos are tried again."""
    targets = [job["output"] for job in jobs]
    if len(set(targets)) != len(targets):
        raise PainterlyError("two inputs would be written to the same output name; use separate folders")
    latest = manifest.latest()
    todo = [
        job
        for job in jobs
        if not (
            (done := latest.get(job["output"])) is not None
            and done.get("status") == "done"
            and done.get("input") == job["input"]
            and exists(job["output"])
        )
    ]
    return todo, len(jobs) - len(todo)


def run_jobs(
    jobs: Sequence[Job],
    engine: Engine,
    manifest: Manifest,
    *,
    progress: bool = True,
    on_record: Callable[[Record], None] | None = None,
) -> Summary:
    """Run ``engine`` over the jobs not done yet, recording each photo in ``manifest``."""
    from painterly.feedforward.signals import sigterm_as_interrupt

    todo, skipped = plan_jobs(jobs, manifest)
    summary = Summary(total=len(jobs), skipped=skipped)
    if not todo:
        return summary
    wanted = {job["output"] for job in todo}
    bar = _bar(len(todo), progress)
    manifest.open()
    started = time.monotonic()
    try:
        with sigterm_as_interrupt():
            for item in engine(todo):
                if item["output"] not in wanted:  # a retried batch reported twice: once is enough
                    continue
                wanted.discard(item["output"])
                manifest.append(item)
                if item["status"] == "done":
                    summary.done += 1
                    summary.photo_seconds += float(item["seconds"])
                else:
                    summary.failed += 1
                if on_record is not None:
                    on_record(item)
                if bar is not None:
                    bar.update(1)
                    if summary.failed:
                        bar.set_postfix_str(f"failed {summary.failed}", refresh=False)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        summary.seconds = time.monotonic() - started
        manifest.close()
        if bar is not None:
            bar.close()
    return summary


def _bar(total: int, shown: bool) -> Any:
    if not shown:
        return None
    from tqdm import tqdm

    # tqdm's rate (photos/s) and remaining time are the ETA; smoothing favours the recent rate.
    return tqdm(total=total, unit="photo", dynamic_ncols=True, file=sys.stderr, smoothing=0.1)


def local_engine(worker: Callable[[dict[str, list[Any]]], dict[str, list[Any]]], batch_size: int) -> Engine:
    """The engine without Ray: this process, ``batch_size`` photos per call of ``worker``."""
    from painterly.batch.workers import rows

    def run(jobs: Sequence[Job]) -> Iterator[Record]:
        for start in range(0, len(jobs), batch_size):
            chunk = jobs[start : start + batch_size]
            yield from rows(
                worker({"input": [j["input"] for j in chunk], "output": [j["output"] for j in chunk]})
            )

    return run
