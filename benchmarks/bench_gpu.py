"""GPU figures for the README: image optimization at 512 px and feed-forward frames per second.

Run on a machine with a CUDA GPU (``python benchmarks/bench_gpu.py CONTENT STYLE --model FILE``);
prints the GPU, torch version, and one line per measurement, side by side with the published
reference where one exists (Johnson's neural-style: 500 L-BFGS iterations at 512 px in 43 s on a
2016 GPU). Outputs are written to ``--out`` so they can be scored with ``../shared/tools/score.py``.

Measured:

* ``transfer``: 500 L-BFGS iterations at one scale, 512 px long side, float32 and bf16, after a
  warm-up run (cuDNN picks its kernels then), and the default multi-scale run at 512 px;
* ``stylize``: the feed-forward network on one frame at 1280x720 and 1920x1080 (batch 1; upload of
  the uint8 frame, network, clamp and download included), float32 and bf16, frames per second.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import painterly
from painterly.feedforward.model_file import read_model_file
from painterly.images import save_image

REFERENCE_LUA_GPU_SECONDS = 43.0
SIZES: tuple[tuple[int, int], ...] = ((1280, 720), (1920, 1080))
SIZE = 512
ITERATIONS = 500


DEVICE = "cuda"  # --dry-run-cpu: the same code paths on the CPU at tiny sizes, to test this script


def synced() -> float:
    if DEVICE == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter()


def bench_transfer(content: str, style: str, out: Path, results: dict[str, object]) -> None:
    painterly.transfer(content, style, size=128, iterations=10, scales=1, device=DEVICE)  # warm-up
    for precision in ("fp32", "bf16"):
        evaluations = 0

        def count(_progress: object) -> None:
            nonlocal evaluations
            evaluations += 1

        start = synced()
        image = painterly.transfer(
            content,
            style,
            size=SIZE,
            iterations=ITERATIONS,
            scales=1,
            device=DEVICE,
            precision=precision,
            callback=count,
        )
        seconds = synced() - start
        save_image(image, out / f"transfer500_{precision}.png")
        results[f"transfer500_{precision}_s"] = round(seconds, 2)
        print(
            f"transfer {SIZE} px, {ITERATIONS} L-BFGS iterations, {precision}: {seconds:.1f} s "
            f"({evaluations} evaluations); Lua neural-style on a 2016 GPU: {REFERENCE_LUA_GPU_SECONDS:.0f} s",
            flush=True,
        )
    start = synced()
    image = painterly.transfer(
        content, style, size=SIZE, device=DEVICE, **({"iterations": 2} if DEVICE == "cpu" else {})
    )
    seconds = synced() - start
    save_image(image, out / "transfer_default.png")
    results["transfer_default_s"] = round(seconds, 2)
    print(f"transfer {SIZE} px, default settings: {seconds:.1f} s", flush=True)


def stylize_once(net: torch.nn.Module, frame: torch.Tensor, extra: tuple, dtype: torch.dtype | None) -> None:
    """One uint8 frame up, through the network (clamped), and back down as uint8."""
    x = frame.to(DEVICE, non_blocking=True).permute(0, 3, 1, 2).float().div(255)
    x = x.contiguous(memory_format=torch.channels_last)
    autocast = torch.autocast(DEVICE, dtype=dtype or torch.float32, enabled=dtype is not None)
    with torch.no_grad(), autocast:
        y = net.stylize_tensor(x, *extra)  # type: ignore[operator]
    (y.float() * 255).round().to(torch.uint8).cpu()


def bench_stylize(model: str, results: dict[str, object], frames: int = 40) -> None:
    net, metadata, _ = read_model_file(model)
    net = net.to(DEVICE).eval().to(memory_format=torch.channels_last)
    extra = (net.weights_for(None, 1, torch.device(DEVICE)),) if metadata.get("styles") else ()
    name = Path(model).stem
    for width, height in SIZES:
        frame = torch.randint(0, 256, (1, height, width, 3), dtype=torch.uint8)
        for precision, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
            for _ in range(5):
                stylize_once(net, frame, extra, dtype)
            start = synced()
            for _ in range(frames):
                stylize_once(net, frame, extra, dtype)
            fps = frames / (synced() - start)
            results[f"stylize_{name}_{height}p_{precision}_fps"] = round(fps, 1)
            print(f"stylize {width}x{height} {precision}: {fps:.1f} frames/s (network + copies)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("content")
    parser.add_argument("style")
    parser.add_argument("--model", action="append", default=[], help="feed-forward model file(s)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/gpu"))
    parser.add_argument("--skip-transfer", action="store_true")
    parser.add_argument(
        "--dry-run-cpu", action="store_true", help="tiny sizes on the CPU (tests this script)"
    )
    args = parser.parse_args()
    if args.dry_run_cpu:
        global DEVICE, SIZES, SIZE, ITERATIONS
        DEVICE, SIZES, SIZE, ITERATIONS = "cpu", ((64, 36),), 64, 3
    elif not torch.cuda.is_available():
        raise SystemExit("bench_gpu: no CUDA GPU here")
    args.out.mkdir(parents=True, exist_ok=True)
    gpu = torch.cuda.get_device_name() if DEVICE == "cuda" else "none (dry run on the CPU)"
    print(f"GPU: {gpu}; torch {torch.__version__}; painterly {painterly.__version__}")
    results: dict[str, object] = {"gpu": gpu, "torch": torch.__version__}
    for model in args.model:
        print(f"model {model}")
        bench_stylize(model, results)
    if not args.skip_transfer:
        bench_transfer(args.content, args.style, args.out, results)
    (args.out / "bench_gpu.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
