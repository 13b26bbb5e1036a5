"""The job queue: a bounded queue of image optimizations and other tasks (videos), one worker thread
per device.

Workers call :func:`painterly.optimization.run_transfer` (the library API, nothing duplicated) and hook
its progress callback: the latest progress and a small preview image are kept in memory for the
event stream, and written to the job's record about once a second. Jobs run to the end whether or
not anyone is watching; cancelling raises :class:`~painterly.optimization.StopTransfer` from the callback,
so the best image so far is still saved. Other kinds of job (:mod:`painterly.server.videos`) are a
:class:`JobTask` run with a :class:`JobContext`: the same queue, records, progress and retention.
"""

from __future__ import annotations

import base64
import io
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from PIL import Image

from painterly.errors import PainterlyError
from painterly.images import resize_long_side, save_image
from painterly.server.config import ServerSettings
from painterly.server.store import CANCELLED, DONE, FAILED, INTERRUPTED, QUEUED, RUNNING, JobStore

log = logging.getLogger("painterly.server")

#: ``run_transfer``'s signature; tests pass a fake.
Runner = Callable[..., Any]
#: How often a running job's progress is written to its record (the event stream reads memory).
PERSIST_INTERVAL = 1.0


class QueueFull(Exception):
    """The queue is at its bound; ``retry_after`` is a guess in seconds at when a slot frees up."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the job queue is full; try again in about {retry_after} s")
        self.retry_after = retry_after


def new_job_id() -> str:
    return secrets.token_urlsafe(12)


@dataclass
class _Live:
    """The in-memory state of a job that is queued or running."""

    status: str = QUEUED
    progress: dict[str, Any] | None = None
    preview: str | None = None
    #: Bumped on every change, so that watchers can tell whether there is news.
    version: int = 0
    preview_version: int = 0
    started: float = 0.0
    cancel: threading.Event = field(default_factory=threading.Event)
    #: Why ``cancel`` was set: a user's cancel, or the server shutting down.
    reason: str = CANCELLED


@dataclass
class TaskOutcome:
    """What a finished task leaves: its result file (a name in the results folder) and its size."""

    result: str
    width: int
    height: int
    interrupted: bool = False


class JobContext:
    """What a running task is given: its id and device, whether to stop, and where to report."""

    def __init__(self, manager: JobManager, job_id: str, device: str, live: _Live) -> None:
        self.job_id = job_id
        self.device = device
        self.results_dir: Path = manager.store.results_dir
        self._manager = manager
        self._live = live
        self._last_persist = 0.0
        self._last_preview = 0.0

    def cancelled(self) -> bool:
        return self._live.cancel.is_set()

    def elapsed(self) -> float:
        return time.monotonic() - self._live.started

    def report(
        self, progress: dict[str, Any], preview: Callable[[], Image.Image | None] | None = None
    ) -> None:
        """Publish progress (written to the record about once a second); ``preview`` is called for a
        small picture only when one is due (``preview_interval``)."""
        manager, now = self._manager, time.monotonic()
        image = None
        if preview is not None and now - self._last_preview >= manager.settings.preview_interval:
            picture = preview()
            if picture is not None:
                self._last_preview = now
                image = _preview_data_url(picture, manager.settings.preview_size)
        with manager._lock:
            self._live.progress = progress
            self._live.version += 1
            if image is not None:
                self._live.preview = image
                self._live.preview_version += 1
        if now - self._last_persist >= PERSIST_INTERVAL:
            self._last_persist = now
            manager.store.update(self.job_id, progress=progress)


class JobTask(Protocol):
    """A job other than an image optimization."""

    def run(self, context: JobContext) -> TaskOutcome:
        """Do the work; return early with ``interrupted`` when ``context.cancelled()``."""
        ...

    def discard(self) -> None:
        """Free what the task holds (an uploaded file); called once when the job ends, run or not."""
        ...


@dataclass
class _Work:
    job_id: str
    content: Image.Image | None
    styles: list[Image.Image]
    options: dict[str, Any]
    task: JobTask | None = None
    masks: list[Image.Image] | None = None

    def discard(self) -> None:
        if self.task is not None:
            try:
                self.task.discard()
            except Exception:
                log.exception("job %s: cleanup failed", self.job_id)


class JobManager:
    """Owns the queue, the workers and the live state of unfinished jobs."""

    def __init__(self, settings: ServerSettings, store: JobStore, runner: Runner | None = None) -> None:
        self.settings = settings
        self.store = store
        self._runner = runner
        #: Jobs waiting for a worker, oldest first; a cancelled one leaves at once (freeing its slot).
        self._waiting: deque[_Work] = deque()
        self._live: dict[str, _Live] = {}
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._durations: deque[float] = deque(maxlen=20)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        stale = self.store.mark_unfinished_interrupted()
        if stale:
            log.warning("marked %d job(s) left unfinished by the last run as interrupted", stale)
        self.cleanup()
        for index, device in enumerate(self.settings.devices):
            thread = threading.Thread(
                target=self._work_loop, args=(device,), name=f"painterly-worker-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        cleaner = threading.Thread(target=self._cleanup_loop, name="painterly-cleanup", daemon=True)
        cleaner.start()
        self._threads.append(cleaner)

    def interrupt_all(self) -> None:
        """Stop taking work; running jobs stop at their next iteration and are saved as interrupted,
        queued ones are marked interrupted now. Returns at once (:meth:`stop` waits)."""
        self._stopping.set()
        with self._lock:
            dropped = [work.job_id for work in self._waiting]
            for work in self._waiting:
                work.discard()
            self._waiting.clear()
            for live in self._live.values():
                live.reason = INTERRUPTED
                live.cancel.set()
            for job_id in dropped:
                gone = self._live.pop(job_id, None)
                if gone is not None:
                    gone.status = INTERRUPTED
                    gone.version += 1
            self._wakeup.notify_all()
        for job_id in dropped:
            self.store.update(
                job_id,
                status=INTERRUPTED,
                finished=time.time(),
                error="the server stopped before this job started",
            )

    def stop(self, timeout: float = 5.0) -> None:
        """:meth:`interrupt_all`, then wait (a little) for the workers to save what they have."""
        self.interrupt_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.store.mark_unfinished_interrupted()

    # -- the API's side --------------------------------------------------------------------------

    def submit(
        self,
        content: Image.Image,
        styles: list[Image.Image],
        options: dict[str, Any],
        masks: list[Image.Image] | None = None,
    ) -> str:
        """Queue a job whose ``options`` (and ``masks``, one per style) were validated by the caller;
        raises :class:`QueueFull`."""
        return self._enqueue(
            "transfer", options, lambda job_id: _Work(job_id, content, styles, options, masks=masks)
        )

    def submit_task(self, kind: str, options: dict[str, Any], task: JobTask) -> str:
        """Queue a task (a video); raises :class:`QueueFull` (the caller then discards the task)."""
        return self._enqueue(kind, options, lambda job_id: _Work(job_id, None, [], options, task))

    def _enqueue(self, kind: str, options: dict[str, Any], work: Callable[[str], _Work]) -> str:
        if self._stopping.is_set():
            raise QueueFull(self.retry_after())
        job_id = new_job_id()
        with self._lock:
            if len(self._waiting) >= self.settings.max_queue:
                raise QueueFull(self.retry_after())
            self._live[job_id] = _Live()
            # Recorded before a worker can see it: the worker's updates need the row.
            self.store.create(job_id, kind, QUEUED, options)
            self._waiting.append(work(job_id))
            self._wakeup.notify()
        return job_id

    def cancel(self, job_id: str) -> dict[str, Any] | None:
        """Cancel a queued or running job; finished jobs are left as they are."""
        with self._lock:
            live = self._live.get(job_id)
            if live is not None:
                live.cancel.set()
                if live.status == QUEUED:
                    live.status = CANCELLED
                    live.version += 1
                    for work in self._waiting:
                        if work.job_id == job_id:
                            self._waiting.remove(work)  # its queue slot is free now
                            work.discard()
                            break
                    self._live.pop(job_id, None)
                    self.store.update(
                        job_id, status=CANCELLED, finished=time.time(), error="cancelled before it started"
                    )
        return self.snapshot(job_id)

    def snapshot(self, job_id: str) -> dict[str, Any] | None:
        """The job's record, overlaid with its live progress, queue position and ETA."""
        record = self.store.get(job_id)
        if record is None:
            return None
        with self._lock:
            live = self._live.get(job_id)
            if live is not None:
                record["status"] = live.status
                record["progress"] = live.progress
                record["version"] = live.version
                record["preview_version"] = live.preview_version
        if record["status"] == QUEUED:
            record["queue_position"] = self.queue_position(job_id)
        return record

    def versions(self, job_id: str) -> tuple[int, int] | None:
        """(version, preview version) of a queued or running job; None once it is final."""
        with self._lock:
            live = self._live.get(job_id)
            return (live.version, live.preview_version) if live else None

    def preview(self, job_id: str) -> str | None:
        with self._lock:
            live = self._live.get(job_id)
            return live.preview if live else None

    def queue_position(self, job_id: str) -> int | None:
        """1 for the next job to start."""
        with self._lock:
            waiting = [work.job_id for work in self._waiting]
        return waiting.index(job_id) + 1 if job_id in waiting else None

    def queued(self) -> int:
        """Jobs waiting for a worker (cancelled ones are not counted: they left the queue)."""
        with self._lock:
            return len(self._waiting)

    def retry_after(self) -> int:
        """Seconds until a queue slot is likely free: one typical job spread over the workers."""
        typical = sum(self._durations) / len(self._durations) if self._durations else 30.0
        return max(1, min(3600, round(typical / len(self.settings.devices))))

    # -- the workers' side -----------------------------------------------------------------------

    def _work_loop(self, device: str) -> None:
        while True:
            with self._lock:
                while not self._waiting and not self._stopping.is_set():
                    self._wakeup.wait()
                if self._stopping.is_set():
                    return
                work = self._waiting.popleft()
                live = self._live.get(work.job_id)
                if live is None or live.cancel.is_set():
                    work.discard()
                    if live is not None and live.reason == INTERRUPTED:
                        self.store.update(
                            work.job_id,
                            status=INTERRUPTED,
                            finished=time.time(),
                            error="the server stopped before this job started",
                        )
                    self._live.pop(work.job_id, None)
                    continue
                live.status = RUNNING
                live.started = time.monotonic()
                live.version += 1
            try:
                if work.task is None:
                    self._run(work, device, live)
                else:
                    self._run_task(work, work.task, device, live)
            except Exception:  # a bug in here must not kill the worker
                log.exception("job %s: unexpected error", work.job_id)
                self.store.update(
                    work.job_id, status=FAILED, finished=time.time(), error="internal server error"
                )
            finally:
                with self._lock:
                    self._live.pop(work.job_id, None)

    def _run(self, work: _Work, device: str, live: _Live) -> None:
        from painterly.optimization import StopTransfer, make_settings, run_transfer

        runner = self._runner or run_transfer
        self.store.update(work.job_id, status=RUNNING, started=time.time())
        last_persist = 0.0
        last_preview = 0.0

        def callback(progress: Any) -> None:
            nonlocal last_persist, last_preview
            if live.cancel.is_set():
                raise StopTransfer
            now = time.monotonic()
            state = _progress_dict(progress, now - live.started)
            preview = None
            if now - last_preview >= self.settings.preview_interval:
                last_preview = now
                preview = _preview_data_url(progress.image(), self.settings.preview_size)
            with self._lock:
                live.progress = state
                live.version += 1
                if preview is not None:
                    live.preview = preview
                    live.preview_version += 1
            if now - last_persist >= PERSIST_INTERVAL:
                last_persist = now
                self.store.update(work.job_id, progress=state)

        started = time.monotonic()
        try:
            settings = make_settings(**work.options, device=device)
            assert work.content is not None  # a transfer job always has its photo
            regions: dict[str, Any] = {"masks": work.masks} if work.masks else {}  # fakes may not take it
            result = runner(work.content, work.styles, settings, callback, **regions)
        except PainterlyError as exc:
            self._finish(work.job_id, live, FAILED, error=str(exc))
            return
        except Exception as exc:
            log.exception("job %s failed", work.job_id)
            self._finish(work.job_id, live, FAILED, error=f"internal error: {type(exc).__name__}")
            return
        if result.interrupted:
            status = live.reason
        else:
            status = DONE
            self._durations.append(time.monotonic() - started)
        name = f"{work.job_id}.png"
        save_image(
            result.image, self.store.results_dir / name, {"Software": "painterly", **_png_text(settings)}
        )
        width, height = result.image.size
        progress = dict(live.progress or {})
        if status == DONE:
            progress.update(fraction=1.0, eta=0.0, step=progress.get("total_steps", 0))
        self._finish(work.job_id, live, status, result=name, width=width, height=height, progress=progress)

    def _run_task(self, work: _Work, task: JobTask, device: str, live: _Live) -> None:
        self.store.update(work.job_id, status=RUNNING, started=time.time())
        started = time.monotonic()
        try:
            outcome = task.run(JobContext(self, work.job_id, device, live))
        except PainterlyError as exc:
            self._finish(work.job_id, live, FAILED, error=str(exc))
            return
        except Exception as exc:
            log.exception("job %s failed", work.job_id)
            self._finish(work.job_id, live, FAILED, error=f"internal error: {type(exc).__name__}")
            return
        finally:
            work.discard()
        progress = dict(live.progress or {})
        if outcome.interrupted:
            status = live.reason
        else:
            status = DONE
            self._durations.append(time.monotonic() - started)
            progress.update(fraction=1.0, eta=0.0)
        self._finish(
            work.job_id,
            live,
            status,
            result=outcome.result,
            width=outcome.width,
            height=outcome.height,
            progress=progress,
        )

    def _finish(self, job_id: str, live: _Live, status: str, **fields: Any) -> None:
        self.store.update(job_id, status=status, finished=time.time(), **fields)
        with self._lock:
            live.status = status
            if "progress" in fields:
                live.progress = fields["progress"]
            live.version += 1

    # -- retention -------------------------------------------------------------------------------

    def cleanup(self) -> int:
        removed = self.store.delete_older_than(self.settings.retention_hours * 3600)
        if removed:
            log.info(
                "deleted %d job(s) older than the retention of %g h", removed, self.settings.retention_hours
            )
        return removed

    def _cleanup_loop(self) -> None:
        interval = min(3600.0, self.settings.retention_hours * 3600 / 4)
        while not self._stopping.wait(interval):
            try:
                self.cleanup()
            except Exception:
                log.exception("cleanup failed")


def _progress_dict(progress: Any, elapsed: float) -> dict[str, Any]:
    total = max(1, int(progress.total_steps))
    fraction = min(1.0, max(0.0, progress.step / total))
    losses = progress.losses
    return {
        "step": int(progress.step),
        "total_steps": int(progress.total_steps),
        "iteration": int(progress.iteration),
        "iterations": int(progress.iterations),
        "scale": int(progress.scale),
        "scales": int(progress.scales),
        "width": int(progress.size[0]),
        "height": int(progress.size[1]),
        "losses": {str(name): float(value) for name, value in losses.items()},
        "fraction": fraction,
        "elapsed": round(elapsed, 2),
        "eta": round(elapsed * (1 - fraction) / fraction, 1) if fraction > 0 else None,
    }


def _preview_data_url(image: Image.Image, size: int) -> str:
    small = resize_long_side(image, min(size, max(image.size)))
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _png_text(settings: Any) -> dict[str, str]:
    try:
        return {"painterly:settings": settings.to_json()}
    except Exception:
        return {}
