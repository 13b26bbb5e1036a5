"""Feed-forward speed per compute path on this machine: float32 or bf16 autocast, NCHW or channels-last.

    python benchmarks/bench_compute_paths.py [--model starry_night] [--sizes 512 1024] [--repeats 3]

Two workloads, each timed for every path the machine can run natively (bf16 only where oneDNN or the
GPU claims it), the minimum of ``--repeats`` interleaved passes after a warm-up:

* ``stylize``: one photo-sized image (4:3, long side SIZE) through a shipped model, inference only;
* ``train step``: a batch of ``--batch-size`` crops of ``--crop`` px through a fresh network of the
  model's width, the VGG19 loss (features, Gram matrices) and the backward pass into the network's
  weights (the optimizer step, the same for every path, is left out).

The ratios are against float32 NCHW. painterly's per-machine choice for these workloads is the same
calibration image optimization uses (painterly.tuning.decide_compute with a task and a probe); its
answer is printed under each table. Try an AVX2-only CPU's kernels on a newer CPU with
``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

import torch

from painterly.feedforward.catalog import resolve_model
from painterly.feedforward.model_file import read_model_file
from painterly.feedforward.network import TransformerNet
from painterly.losses import gram_matrix
from painterly.tuning import candidates, cpu_info, decide_compute, time_paths
from painterly.vgg.weights import load_vgg

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def stylize_probe(net: torch.nn.Module) -> Callable[[torch.Tensor], None]:
    def run(x: torch.Tensor) -> None:
        with torch.inference_mode():
            net.stylize_tensor(x)  # type: ignore[operator]

    return run


def train_probe(net: torch.nn.Module, vgg: torch.nn.Module) -> Callable[[torch.Tensor], None]:
    layers = [*STYLE_LAYERS, "relu2_2"]

    def run(x: torch.Tensor) -> None:
        net.zero_grad(set_to_none=True)
        channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        out = net(x).contiguous(
            memory_format=torch.channels_last if channels_last else torch.contiguous_format
        )
        features = vgg(out, layers)
        total = sum(gram_matrix(features[n]).square().mean() for n in STYLE_LAYERS)
        total = total + features["relu2_2"].float().square().mean()
        total.backward()

    return run


def report(title: str, seconds: dict[str, float]) -> None:
    base = seconds.get("fp32") or min(seconds.values())
    for name, value in seconds.items():
        print(f"  {title:<28} {name:>20} {value:>8.3f} s {value / base:>6.2f}x of fp32")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="starry_night")
    parser.add_argument("--sizes", nargs="+", type=int, default=[512, 1024])
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-train", action="store_true")
    args = parser.parse_args()

    cpu = torch.device("cpu")
    info = cpu_info()
    print(f"CPU: {info.model}; flags: {' '.join(info.speed_flags)}")
    aten = torch.backends.cpu.get_cpu_capability()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, ATen kernels {aten}")
    caps = [f"{k}={os.environ[k]}" for k in ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY") if k in os.environ]
    if caps:
        print("capped: " + ", ".join(caps))
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    paths = candidates(cpu, "auto", "auto")

    net, metadata, _ = read_model_file(resolve_model(args.model))
    net.eval()
    print(f"model {args.model}: width {metadata.get('width')}")
    for size in args.sizes:
        shape = (1, 3, size * 3 // 4, size)
        report(
            f"stylize {size}x{size * 3 // 4}",
            time_paths(cpu, net, stylize_probe(net), paths, shape, args.repeats),
        )
        decision = decide_compute(cpu, net, size, task=f"stylize-w{net.width}", probe=stylize_probe(net))
        print(f"  painterly's choice: {decision.describe()}", flush=True)

    if args.skip_train:
        return
    trainee = TransformerNet(net.width).train()
    vgg = load_vgg("vgg19")
    both = torch.nn.ModuleList([trainee, vgg])  # time_paths sets the memory format of both
    shape = (args.batch_size, 3, args.crop, args.crop)
    probe = train_probe(trainee, vgg)
    title = f"train step {args.batch_size}x{args.crop}px"
    report(title, time_paths(cpu, both, probe, paths, shape, args.repeats))
    decision = decide_compute(
        cpu, both, args.crop, task=f"train-w{net.width}-b{args.batch_size}", probe=probe
    )
    print(f"  painterly's choice: {decision.describe()}", flush=True)


if __name__ == "__main__":
    main()
