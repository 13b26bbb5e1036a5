"""The Ray engine: the only module of painterly that imports ray.

Feed-forward stylization is Ray Data's offline batch inference: the jobs become a dataset
(``ray.data.from_items``) mapped by an actor pool (``map_batches`` with
:class:`~painterly.batch.workers.StylizeWorker`), each actor loading the network once. Image
optimization is heavy per photo: one Ray task per photo (:func:`~painterly.batch.workers.transfer_photo`),
a bounded number in flight. Ray retries work whose worker died (a restarted actor, a retried
task); the workers' writes are atomic and idempotent, and the driver records each photo once.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

from painterly.batch.manifest import Record, one_line, record
from painterly.batch.runner import Engine, Job
from painterly.batch.workers import StylizeSpec, StylizeWorker, TransferSpec, rows, transfer_photo
from painterly.errors import PainterlyError

#: The one line shown when ray is not installed.
INSTALL_HINT = "--engine ray needs Ray: pip install 'painterly[ray]'"

#: How many times a batch or a task whose worker died (killed, out of memory) is run again.
RETRIES = 3

#: Most blocks of a dataset: a block is the unit of retry and of progress.
MAX_BLOCKS = 10_000


def import_ray() -> Any:
    """The ray module, or one line saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401 - the extra's data part, checked here rather than mid-run
    except ImportError:
        raise PainterlyError(INSTALL_HINT) from None
    return ray


def connect(address: str | None = None) -> bool:
    """Join the cluster at ``address`` (``auto``: the one ``ray start`` runs on this machine;
    ``ray://host:10001``: a remote one), or start a local Ray when none is given. True when this
    call started or joined Ray (and :func:`disconnect` should end it); False if already connected."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address is None:
        options["include_dashboard"] = False
    try:
        ray.init(address=address, **options)
    except ConnectionError as exc:
        raise PainterlyError(f"cannot reach the Ray cluster at {address}: {one_line(exc)}") from None
    _quiet_ray_data()
    return True


def disconnect() -> None:
    import_ray().shutdown()


def _quiet_ray_data() -> None:
    """Ray Data's own progress bars and per-run log lines would tear our progress bar."""
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    for name in ("ray.data", "ray.util"):  # "progress bars disabled" and similar notices
        logging.getLogger(name).setLevel(logging.ERROR)


class RayStylizeWorker(StylizeWorker):
    """A :class:`StylizeWorker` built from its spec in the object store: the actor's constructor
    argument is a small reference (boxed in a list, so that Ray passes it unresolved), which a
    restarted actor can always fetch again."""

    def __init__(self, spec_box: list[Any]) -> None:
        super().__init__(import_ray().get(spec_box[0]))


def cluster_resource(name: str) -> float:
    """How much of a resource (``CPU``, ``GPU``) the cluster has, all nodes together."""
    return float(import_ray().cluster_resources().get(name, 0))


def cluster_cpus() -> int:
    """The CPUs of the cluster (all nodes; at least 1)."""
    return max(1, int(cluster_resource("CPU")))


def stylize_engine(
    spec: StylizeSpec,
    *,
    workers: int,
    cpus_per_worker: float,
    gpus_per_worker: float = 0,
    worker_class: type | None = None,
) -> Engine:
    """Ray Data over an actor pool of ``workers`` actors, each holding the network (an instance of
    ``worker_class``, a :class:`RayStylizeWorker` by default)."""
    ray = import_ray()

    def run(jobs: Sequence[Job]) -> Iterator[Record]:
        _quiet_ray_data()
        batch = spec.batch_size
        blocks = max(1, min(math.ceil(len(jobs) / batch), MAX_BLOCKS))
        spec_ref = ray.put(spec)  # the model's bytes go to the object store once, kept by this driver
        with warnings.catch_warnings():  # retries are asked for as Ray 2.x documents; newer Ray warns
            warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
            dataset = ray.data.from_items(list(jobs), override_num_blocks=blocks).map_batches(
                worker_class or RayStylizeWorker,
                fn_constructor_args=([spec_ref],),
                batch_size=batch,
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=workers),
                num_cpus=cpus_per_worker,
                num_gpus=gpus_per_worker or None,
                max_restarts=-1,
                max_task_retries=RETRIES,
            )
        try:
            for columns in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                yield from rows(columns)
        except ray.exceptions.RayError as exc:
            raise PainterlyError(
                f"a batch failed {RETRIES + 1} times, its worker dying each time (out of memory?): "
                f"{one_line(exc, 200)}; the manifest is up to date, run again to resume "
                "(--max-pixels or --size keep large photos out)"
            ) from None

    return run


def transfer_engine(
    spec: TransferSpec, *, cpus_per_task: float, gpus_per_task: float = 0, in_flight: int | None = None
) -> Engine:
    """One Ray task per photo; at most ``in_flight`` submitted at once (default: twice the cluster's
    task slots), so a million photos do not become a million pending tasks."""
    ray = import_ray()

    def run(jobs: Sequence[Job]) -> Iterator[Record]:
        task = ray.remote(transfer_photo).options(
            num_cpus=cpus_per_task, num_gpus=gpus_per_task, max_retries=RETRIES
        )
        spec_ref = ray.put(spec)
        slots = cluster_cpus() // max(cpus_per_task, 0.01)
        if gpus_per_task:
            slots = min(slots, cluster_resource("GPU") // gpus_per_task)
        limit = in_flight or max(1, 2 * int(slots))
        pending: dict[Any, Job] = {}
        queue = iter(jobs)
        try:
            while True:
                for job in queue:
                    pending[task.remote(job, spec_ref)] = job
                    if len(pending) >= limit:
                        break
                if not pending:
                    return
                finished, _ = ray.wait(list(pending), num_returns=1)
                job = pending.pop(finished[0])
                try:
                    yield ray.get(finished[0])
                except ray.exceptions.RayError as exc:  # its worker died RETRIES + 1 times
                    yield record(job["input"], job["output"], 0.0, f"worker died: {one_line(exc, 200)}")
        finally:
            for ref in pending:
                ray.cancel(ref)

    return run
