"""Image optimization speed and memory: painterly against a plain reference, in the same run.

The reference is what a straightforward PyTorch port does: VGG19 up to relu5_1 as an
``nn.Sequential`` in NCHW float32 (same weights, same losses, same L-BFGS), no other tricks.
Each measurement runs in its own process so that peak memory (max RSS) is its own.

    python benchmarks/bench_transfer.py                 # 256 and 512 px, 8 iterations each
    python benchmarks/bench_transfer.py --full          # also a whole default 512 px run
    python benchmarks/bench_transfer.py --paths         # every compute path painterly may choose

Prints the CPU model and the flags that decide its kernels, the torch version and the compute path
painterly's calibration chose (see painterly.tuning), then seconds per loss evaluation (forward +
backward + optimizer step), L-BFGS evaluations per iteration (the line search sometimes needs more
than one), seconds per iteration and peak RSS. ``--paths`` times one loss-network evaluation (VGG
features, Gram matrices, backward) at the full frame for each candidate path (the minimum of
``--repeats``), next to the reference network. Try an AVX2-only CPU's kernels on a newer one with
``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "images"


def _images(size: int):
    from painterly.images import open_image, pil_to_tensor, resize_long_side

    if (SHARED / "tubingen.jpg").exists():
        content = open_image(SHARED / "tubingen.jpg")
        style = open_image(SHARED / "starry_night.jpg")
    else:
        from PIL import Image
        from skimage import data

        content = Image.fromarray(data.astronaut())
        style = Image.fromarray(data.coffee())
    return pil_to_tensor(resize_long_side(content, size)), pil_to_tensor(resize_long_side(style, size))


def _reference_net():
    import torch
    from torch import nn

    from painterly.vgg.network import CAFFE_MEAN_BGR, layer_names
    from painterly.vgg.weights import load_weights

    state = load_weights("vgg19").state
    layers, names = [], []
    for name in layer_names("vgg19")[: layer_names("vgg19").index("relu5_1") + 1]:
        if name.startswith("conv"):
            w = state[f"{name}.weight"]
            conv = nn.Conv2d(w.shape[1], w.shape[0], 3, padding=1)
            conv.weight.data.copy_(w)
            conv.bias.data.copy_(state[f"{name}.bias"])
            layers.append(conv)
        elif name.startswith("relu"):
            layers.append(nn.ReLU())
        else:
            layers.append(nn.MaxPool2d(2, ceil_mode=True))
        names.append(name)
    net = nn.Sequential(*layers).eval().requires_grad_(False)
    mean = torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)

    def features(image, wanted):
        x = image.flip(1) * 255 - mean
        out = {}
        for name, layer in zip(names, net, strict=True):
            x = layer(x)
            if name in wanted:
                out[name] = x
        return out

    return features


def worker(impl: str, size: int, iterations: int) -> dict:
    import torch

    from painterly.losses import gram_matrix, tv_loss
    from painterly.optimization import make_settings, run_transfer

    content, style = _images(size)
    s = make_settings(size=size, scales=1, iterations=iterations, device="cpu")
    evals_at: list[float] = []  # the moment each loss evaluation finished
    if impl == "painterly":

        def callback(progress) -> None:
            if progress.evaluations != len(evals_at):  # the closing report of a scale repeats one
                evals_at.append(time.perf_counter())

        from painterly.images import tensor_to_pil

        result = run_transfer(tensor_to_pil(content), tensor_to_pil(style), s, callback)
        evals = result.last.evaluations
    else:
        features = _reference_net()
        content_layers, style_layers = list(s.content_layers), list(s.style_layers)
        with torch.no_grad():
            c_target = features(content, content_layers)
            s_target = {k: gram_matrix(v) for k, v in features(style, style_layers).items()}
        image = content.clone().requires_grad_(True)
        opt = torch.optim.LBFGS(
            [image],
            max_iter=iterations,
            max_eval=iterations * 2 + 20,
            history_size=100,
            tolerance_grad=-1,
            tolerance_change=-1,
            line_search_fn="strong_wolfe",
        )
        count = {"evals": 0}

        def closure():
            opt.zero_grad()
            f = features(image, content_layers + style_layers)
            loss = s.content_weight * sum((f[k] - c_target[k]).pow(2).mean() for k in content_layers)
            loss = loss + s.style_weight * sum(
                (gram_matrix(f[k]) - s_target[k]).pow(2).mean() for k in style_layers
            )
            loss = loss + s.tv_weight * tv_loss(image)
            loss.backward()
            image.grad = image.grad.contiguous()
            count["evals"] += 1
            evals_at.append(time.perf_counter())
            return loss

        opt.step(closure)
        evals = count["evals"]
    skip = 3  # the first evaluations pay for warm-up
    per_eval = (evals_at[-1] - evals_at[skip]) / (len(evals_at) - 1 - skip)
    per_iter = per_eval * evals / iterations
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "impl": impl,
        "size": size,
        "s_per_iter": per_iter,
        "s_per_eval": per_eval,
        "evals_per_iter": evals / iterations,
        "peak_rss_mb": peak_mb,
    }


def paths_worker(size: int, repeats: int) -> dict:
    """Seconds per loss-network evaluation at ``size`` for each candidate path and the reference."""
    import torch

    from painterly.losses import gram_matrix
    from painterly.optimization import make_settings
    from painterly.tuning import PATHS, candidates
    from painterly.vgg.weights import load_vgg

    content, _ = _images(size)
    s = make_settings(size=size, scales=1, device="cpu")
    layers = list(dict.fromkeys([*s.content_layers, *s.style_layers]))
    vgg = load_vgg(s.network)
    reference = _reference_net()
    cpu = torch.device("cpu")
    names = [p.name for p in candidates(cpu, "auto", "auto")]

    def evaluate(name: str) -> float:
        image = content.clone()
        if name == "reference":
            net, path = reference, PATHS["fp32"]
        else:
            path = PATHS[name]
            vgg.to(memory_format=path.memory_format)
            net = vgg
            image = image.contiguous(memory_format=path.memory_format)
        image.requires_grad_(True)
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=path.dtype or torch.float32, enabled=path.dtype is not None):
            features = net(image, layers)
            total = sum(gram_matrix(f).square().mean() + f.float().square().mean() for f in features.values())
        total.backward()
        return time.perf_counter() - start

    order = ["reference", *names]
    best = {name: evaluate(name) for name in order}  # warm-up, kept only if nothing beats it
    for _ in range(repeats):
        for name in order:  # interleaved: a burst of load elsewhere hits every path alike
            best[name] = min(best[name], evaluate(name))
    return {"size": size, "frame": list(content.shape[-2:]), "seconds": best}


def _machine_lines() -> list[str]:
    import os

    import torch

    from painterly.devices import cpu_has_fast_bf16
    from painterly.tuning import cpu_info

    info = cpu_info()
    lines = [
        f"CPU: {info.model}; flags: {' '.join(info.speed_flags) or 'none of note'}; "
        f"native bf16 (oneDNN): {'yes' if cpu_has_fast_bf16() else 'no'}",
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, ATen kernels "
        f"{torch.backends.cpu.get_cpu_capability()}, {sys.platform}",
    ]
    caps = {k: os.environ[k] for k in ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY") if k in os.environ}
    if caps:
        lines.append("capped: " + ", ".join(f"{k}={v}" for k, v in caps.items()))
    lines.append(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min)")
    return lines


def _chosen_path(size: int) -> str:
    """Calibrate (or read the cache) as a run at ``size`` would, and say what was chosen."""
    import torch

    from painterly.optimization import make_settings
    from painterly.tuning import decide_compute
    from painterly.vgg.weights import load_vgg

    s = make_settings(size=size, device="cpu")
    start = time.perf_counter()
    decision = decide_compute(torch.device("cpu"), load_vgg(s.network), size, s.precision)
    return f"{decision.describe()} [{time.perf_counter() - start:.1f} s]"


def _run_paths(sizes: list[int], repeats: int) -> None:
    print(f"{'size':>5} {'frame':>9} {'path':>20} {'s/eval':>7} {'vs reference':>13}")
    for size in sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--paths-worker", str(size), str(repeats)],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        ref = r["seconds"]["reference"]
        frame = "x".join(str(x) for x in reversed(r["frame"]))
        for name, seconds in r["seconds"].items():
            print(f"{size:>5} {frame:>9} {name:>20} {seconds:>7.3f} {seconds / ref:>12.2f}x", flush=True)
        print(f"{size:>5} calibration chose: {_chosen_path(size)}", flush=True)


def full_run(output: Path) -> dict:
    import painterly
    from painterly.images import save_image

    content = SHARED / "tubingen.jpg"
    style = SHARED / "starry_night.jpg"
    start = time.perf_counter()
    image = painterly.transfer(content, style, size=512)
    seconds = time.perf_counter() - start
    save_image(image, output)
    return {
        "seconds": seconds,
        "output": str(output),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="256,512")
    parser.add_argument("--iterations", type=int, default=8)
    parser.add_argument("--full", action="store_true", help="also time a whole default 512 px run")
    parser.add_argument("--paths", action="store_true", help="time every candidate compute path instead")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per path with --paths")
    parser.add_argument("--paths-worker", nargs=2, metavar=("SIZE", "REPEATS"), help=argparse.SUPPRESS)
    parser.add_argument("--worker", nargs=3, metavar=("IMPL", "SIZE", "ITERS"), help=argparse.SUPPRESS)
    parser.add_argument("--full-worker", metavar="OUTPUT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]), int(args.worker[2]))))
        return
    if args.paths_worker:
        print(json.dumps(paths_worker(int(args.paths_worker[0]), int(args.paths_worker[1]))))
        return
    if args.full_worker:
        print(json.dumps(full_run(Path(args.full_worker))))
        return

    print("\n".join(_machine_lines()), flush=True)
    sizes = [int(x) for x in args.sizes.split(",")]
    if args.paths:
        _run_paths(sizes, args.repeats)
        return
    for size in sizes:
        print(f"{size:>5} px: painterly runs {_chosen_path(size)}", flush=True)
    print(
        f"{'size':>5} {'impl':>10} {'s/eval':>7} {'evals/iter':>10} {'s/iter':>7} {'peak RSS MB':>12} "
        f"{'s/eval vs ref':>14} {'s/iter vs ref':>14}"
    )
    for size in sizes:
        results = {}
        for impl in ("reference", "painterly"):
            out = subprocess.run(
                [sys.executable, __file__, "--worker", impl, str(size), str(args.iterations)],
                capture_output=True,
                text=True,
                check=True,
            )
            results[impl] = json.loads(out.stdout.strip().splitlines()[-1])
        ref = results["reference"]
        for impl, r in results.items():
            ratio = r["s_per_iter"] / ref["s_per_iter"]
            eval_ratio = r["s_per_eval"] / ref["s_per_eval"]
            print(
                f"{size:>5} {impl:>10} {r['s_per_eval']:>7.3f} {r['evals_per_iter']:>10.2f} "
                f"{r['s_per_iter']:>7.3f} {r['peak_rss_mb']:>12.0f} {eval_ratio:>13.2f}x {ratio:>13.2f}x",
                flush=True,
            )
    if args.full:
        if not (SHARED / "tubingen.jpg").exists():
            print("full run skipped: ../shared/images is absent")
            return
        output = Path("benchmarks") / "out" / "default_512.png"
        output.parent.mkdir(parents=True, exist_ok=True)
        out = subprocess.run(
            [sys.executable, __file__, "--full-worker", str(output)],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"default 512 px run: {r['seconds']:.0f} s, peak RSS {r['peak_rss_mb']:.0f} MB, "
            f"image {r['output']}"
        )


if __name__ == "__main__":
    main()
