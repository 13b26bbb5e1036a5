"""``painterly batch``: many photos, resumable, on this machine or a Ray cluster (a thin layer over
:mod:`painterly.batch`).

``painterly batch stylize INPUT... -o OUT/ -m MODEL`` stylizes with a trained network (a blend and
a strength too), ``painterly batch transfer INPUT... -o OUT/ -s STYLE`` paints each photo by image
optimization. Inputs: images, folders, globs, ``@list.txt`` (one path or URL a line) and fsspec
URLs. ``--engine ray`` (the default) runs on Ray, a local one or the cluster at ``--address``;
``--engine local`` in this process. ``painterly stylize --engine ray`` comes here too.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Any

from painterly.cli.number_types import non_negative_float, positive_float, positive_int
from painterly.errors import PainterlyError, shown

ENGINES = ("ray", "local")


def add_engine_options(parser: argparse.ArgumentParser, default: str = "ray", full: bool = True) -> None:
    """The options of where a batch runs; ``painterly stylize`` takes only ``--engine`` and
    ``--address`` (``full=False``), the others keeping their defaults."""
    group = parser.add_argument_group("batch engine")
    group.add_argument(
        "--engine",
        choices=ENGINES,
        default=default,
        help=f"ray: Ray Data on a local Ray or a cluster (pip install 'painterly[ray]'); local: this "
        f"process (default {default})",
    )
    group.add_argument(
        "--address",
        help="Ray cluster to join: 'auto' (the one 'ray start' runs here) or ray://HOST:10001 "
        "(default: start a local Ray)",
    )
    if not full:
        parser.set_defaults(
            workers=None,
            cpus_per_worker=1.0,
            gpus_per_worker=0.0,
            manifest=None,
            from_file=[],
            max_pixels=None,
            quiet=False,
        )
        return
    group.add_argument(
        "--workers", type=positive_int, help="Ray workers (default: the cluster's CPUs / --cpus-per-worker)"
    )
    group.add_argument(
        "--cpus-per-worker", type=positive_float, default=1.0, help="CPUs each Ray worker takes (default 1)"
    )
    group.add_argument(
        "--gpus-per-worker",
        type=non_negative_float,
        default=0.0,
        help="GPUs each Ray worker takes (e.g. 1, or 0.5 to share one between two; default 0: CPUs). "
        "With GPUs, --backend auto picks torch",
    )
    group.add_argument(
        "--manifest",
        help="the JSON-lines manifest (default OUT/manifest.jsonl; needed when OUT is a remote URL)",
    )
    group.add_argument(
        "--from-file",
        action="append",
        default=[],
        metavar="LIST",
        help="a text file of inputs, one path or URL a line (also written @LIST among the inputs)",
    )
    group.add_argument(
        "--max-pixels",
        type=positive_int,
        help="photos larger than this (read from the header) are recorded as failed (default 50 million)",
    )
    group.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def register(subparsers: argparse._SubParsersAction) -> None:
    from painterly.cli.stylize import add_stylize_options
    from painterly.cli.transfer import add_setting_options
    from painterly.settings import SETTING_FIELDS

    batch = subparsers.add_parser(
        "batch",
        help="stylize many photos, resumable, on this machine or a Ray cluster",
        description="Stylize many photos into a folder, with a manifest beside the outputs: a second "
        "run skips what is done. Runs on Ray (a local one or a cluster) or in this process.",
    )
    modes = batch.add_subparsers(dest="mode", metavar="MODE", required=True, parser_class=type(batch))
    stylize = modes.add_parser("stylize", help="with a trained network (fast)")
    stylize.add_argument("inputs", nargs="+", metavar="INPUT", help="images, folders, globs, URLs, @LIST")
    stylize.add_argument("-o", "--output", required=True, help="output folder (local or URL)")
    add_stylize_options(stylize)
    add_engine_options(stylize)
    stylize.set_defaults(handler=run_batch_stylize)

    transfer = modes.add_parser("transfer", help="by image optimization (slow; one task per photo)")
    transfer.add_argument("inputs", nargs="+", metavar="INPUT", help="images, folders, globs, URLs, @LIST")
    # every setting but --keep-weight: a batch has no --keep mask for it to weigh
    groups = add_setting_options(transfer, [f.name for f in SETTING_FIELDS if f.name != "keep_weight"])
    groups["basic"].add_argument(
        "-s",
        "--style",
        action="append",
        required=True,
        metavar="IMAGE",
        help="style image; repeat for several",
    )
    groups["basic"].add_argument("-o", "--output", required=True, help="output folder (local or URL)")
    groups["output-and-other"].add_argument(
        "--format", default="png", help="output format (png, jpg, webp; default png)"
    )
    add_engine_options(transfer)
    transfer.set_defaults(handler=run_batch_transfer)


def gather_inputs(items: list[str], lists: list[str]) -> list[str]:
    """Every photo named: files, folders, globs (as ``painterly stylize``), ``@LIST`` files, URLs."""
    from painterly.batch.locations import expand_url, is_url
    from painterly.cli.stylize import expand_inputs, skip_earlier_outputs

    named: list[str] = []
    for item in [*items, *(f"@{name}" for name in lists)]:
        named += _read_list(item[1:]) if item.startswith("@") else [item]
    local = [item for item in named if not is_url(item)]
    found: list[str] = []
    if local:
        found += [str(p) for p in skip_earlier_outputs(expand_inputs(local), local)]
    for url in (item for item in named if is_url(item)):
        found += expand_url(url)
    if not found:
        raise PainterlyError("no input images found")
    return list(dict.fromkeys(found))


def _read_list(name: str) -> list[str]:
    from painterly.images import check_input_file, read_input_file

    data = read_input_file(check_input_file(name, "list of inputs"), "list of inputs")
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise PainterlyError(f"list of inputs {shown(name)} is not UTF-8 text") from None
    items = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not items:
        raise PainterlyError(f"list of inputs {shown(name)} names no files")
    return items


def plan_outputs(inputs: list[str], folder: str, label: str, fmt: str) -> list[Any]:
    """One job per input: ``OUT/NAME_LABEL.FMT``; never onto an input."""
    from painterly.batch.locations import is_url, join, local_path
    from painterly.images import image_format

    suffix = "." + fmt.lower().lstrip(".")
    image_format(f"x{suffix}")
    jobs = []
    for source in inputs:
        stem = Path(source.rstrip("/").rsplit("/", 1)[-1]).stem
        jobs.append({"input": source, "output": join(folder, f"{stem}_{label}{suffix}")})
    sources = {str(Path(p).resolve()) for item in inputs if (p := local_path(item)) is not None}
    for job in jobs:
        target = local_path(job["output"])
        if target is not None and str(target.resolve()) in sources:
            raise PainterlyError(f"refusing to overwrite the input {shown(job['output'])}; choose another -o")
        if is_url(job["output"]) and job["output"] in inputs:
            raise PainterlyError(f"refusing to overwrite the input {shown(job['output'])}; choose another -o")
    return jobs


def _manifest_path(args: argparse.Namespace) -> Path:
    from painterly.batch.locations import local_path
    from painterly.batch.manifest import MANIFEST_NAME

    if args.manifest:
        return Path(args.manifest)
    folder = local_path(args.output)
    if folder is None:
        raise PainterlyError(
            f"output {shown(args.output)} is remote: give a local --manifest file "
            "(object stores cannot append)"
        )
    return folder / MANIFEST_NAME


def _refuse_manifest_on_files(path: Path, jobs: list[Any]) -> None:
    """The manifest is appended to: never one of the photos or the outputs."""
    from painterly.batch.locations import local_path

    target = path.resolve()
    for job in jobs:
        for key in ("input", "output"):
            local = local_path(job[key])
            if local is not None and local.resolve() == target:
                raise PainterlyError(
                    f"refusing to use the {key} {shown(job[key])} as the manifest: choose another --manifest"
                )


def _check_engine(args: argparse.Namespace) -> None:
    """Before any work: ray installed when asked for (one line saying how otherwise)."""
    if args.engine == "ray" and importlib.util.find_spec("ray") is None:
        from painterly.batch.ray_engine import INSTALL_HINT

        raise PainterlyError(INSTALL_HINT)


def run_batch_stylize(args: argparse.Namespace) -> int:
    from painterly.batch.workers import MAX_PHOTO_PIXELS, StylizeSpec
    from painterly.cli.stylize import output_label
    from painterly.feedforward.backends import pick_backend
    from painterly.feedforward.inference import load_model

    _check_engine(args)
    inputs = gather_inputs(args.inputs, getattr(args, "from_file", []))
    size = args.size
    backend = pick_backend(
        args.backend, args.device, args.tile, [(size, size)] if size else [], precision=args.precision
    )
    if args.backend == "auto" and args.gpus_per_worker > 0:
        backend = "torch"  # the workers' GPUs, whatever this machine has
    model = load_model(
        args.model,
        args.device,
        backend=backend,
        precision=args.precision,
        style_mix=args.style_mix,
        strength=args.strength,
    )
    label = output_label(model.name, model.style_mix, args.strength)
    jobs = plan_outputs(inputs, args.output, label, args.format)
    spec = StylizeSpec(
        model_name=model.path.name,
        model_bytes=model.path.read_bytes(),
        backend=model.backend,
        device=args.device,
        precision=args.precision,
        style_mix=model.style_mix,
        strength=args.strength,
        size=size,
        preserve_colors=args.preserve_colors,
        tile=args.tile,
        batch_size=args.batch_size,
        threads=max(1, int(args.cpus_per_worker)) if args.engine == "ray" else None,
        max_pixels=getattr(args, "max_pixels", None) or MAX_PHOTO_PIXELS,
    )
    del model

    def engine() -> Any:
        if args.engine == "local":
            from painterly.batch.runner import local_engine
            from painterly.batch.workers import StylizeWorker

            return local_engine(StylizeWorker(spec), args.batch_size)
        from painterly.batch.ray_engine import cluster_cpus, cluster_resource, stylize_engine

        slots = cluster_cpus() // args.cpus_per_worker
        if args.gpus_per_worker:
            slots = min(slots, cluster_resource("GPU") // args.gpus_per_worker)
        workers = args.workers or max(1, int(slots))
        return stylize_engine(
            spec, workers=workers, cpus_per_worker=args.cpus_per_worker, gpus_per_worker=args.gpus_per_worker
        )

    return _run(args, jobs, engine)


def run_batch_transfer(args: argparse.Namespace) -> int:
    from painterly.batch.locations import read_bytes
    from painterly.batch.workers import MAX_PHOTO_PIXELS, TransferSpec
    from painterly.cli.transfer import settings_from_args
    from painterly.images import decode_image

    _check_engine(args)
    settings = settings_from_args(args)
    inputs = gather_inputs(args.inputs, args.from_file)
    styles = tuple(read_bytes(style) for style in args.style)
    for style, data in zip(args.style, styles, strict=True):
        decode_image(data, what=f"style image {shown(style)}")  # a bad style image fails now, once
    jobs = plan_outputs(inputs, args.output, "styled", args.format)
    spec = TransferSpec(settings, styles, max_pixels=args.max_pixels or MAX_PHOTO_PIXELS)

    def engine() -> Any:
        if args.engine == "local":
            from painterly.batch.workers import transfer_photo

            return lambda todo: (transfer_photo(job, spec) for job in todo)
        from painterly.batch.ray_engine import transfer_engine

        return transfer_engine(spec, cpus_per_task=args.cpus_per_worker, gpus_per_task=args.gpus_per_worker)

    return _run(args, jobs, engine)


def _run(args: argparse.Namespace, jobs: list[Any], make_engine: Any) -> int:
    """Connect (Ray), run, disconnect; the summary on stderr. Exit 0 when every photo is done,
    1 when some failed (the manifest says which and why), 130 when interrupted."""
    from painterly.batch.locations import make_folder
    from painterly.batch.manifest import Manifest
    from painterly.batch.runner import run_jobs

    manifest = Manifest(_manifest_path(args))
    _refuse_manifest_on_files(manifest.path, jobs)
    manifest.latest()  # read (and refused if not a manifest) before the output folder is made
    make_folder(args.output)
    started_ray = False
    try:
        if args.engine == "ray":
            from painterly.batch.ray_engine import connect

            started_ray = connect(args.address)
        summary = run_jobs(jobs, make_engine(), manifest, progress=not args.quiet)
    finally:
        if started_ray:
            from painterly.batch.ray_engine import disconnect

            disconnect()
    print(f"painterly: {summary.line()} (manifest {shown(manifest.path)})", file=sys.stderr)
    if summary.interrupted:
        return 130
    return 1 if summary.failed else 0
