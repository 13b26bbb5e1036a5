"""Training speed: iterations per second at 256 px, batch 4 (the issue's reference point).

    python benchmarks/bench_train.py [--device cpu] [--steps 7] [--widths light paper]
        [--precisions auto fp32] [--modes single cin add-style temporal]
    python benchmarks/bench_train.py --against-plain [--widths paper] [--steps 9] [--precisions auto]

``--against-plain`` times painterly's training loop (``train()``, as ``painterly train`` runs it)
against a plain PyTorch loop of the pytorch examples' shape (fast_neural_style: the same network
and losses, float32, NCHW, one process, Adam, the same VGG16 loss network), in one process,
interleaved step by step (ABAB: after each painterly step the progress callback runs one plain
step), so that load from other work hits both alike; it prints the CPU, its flags, both rates and
their ratio, and what painterly's periodic tasks (validation sheet, checkpoint) add at their
default cadence. See docs/training-speed.md.

Trains on crops of the photos in ../shared/images (or generated images when absent) for
``--steps`` steps, discards the first (warm-up) and the last (it saves) and reports the steady
rate, per network width, precision and mode: ``single`` (one style), ``cin`` (a two-style
network), ``add-style`` (a third style added to that network, training only its norm
parameters) and ``temporal`` (one style with the temporal loss on synthetic motion, which
stylizes and scores frame pairs). On a GPU pass ``--device cuda``.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from painterly.feedforward.model_file import read_metadata, read_model_file, write_model_file
from painterly.feedforward.network import TransformerNet, parse_width
from painterly.feedforward.training import TrainProgress, TrainSettings, train
from painterly.vgg.weights import load_vgg

SHARED = Path(__file__).resolve().parents[2] / "shared" / "images"


def make_data(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    photos = sorted(p for p in SHARED.glob("*.jpg") if "starry" not in p.name) if SHARED.is_dir() else []
    if photos:
        for photo in photos:
            image = Image.open(photo).convert("RGB")
            image.thumbnail((768, 768))
            image.save(folder / f"{photo.stem}.png")
    else:
        rng = np.random.default_rng(0)
        for i in range(4):
            Image.fromarray((rng.random((400, 600, 3)) * 255).astype("uint8")).save(folder / f"{i}.png")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=7)
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--widths", nargs="+", default=["light"])
    parser.add_argument("--precisions", nargs="+", default=["auto", "fp32"])
    parser.add_argument("--modes", nargs="+", default=["single"], choices=MODES)
    parser.add_argument(
        "--against-plain",
        action="store_true",
        help="painterly's loop against a plain PyTorch loop, interleaved (single style, --widths each)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = make_data(Path(tmp) / "photos")
        styles = style_images(Path(tmp))
        if args.against_plain:
            against_plain(args, Path(tmp), data, styles[0])
            return
        header = f"{'width':8} {'precision':10} {'mode':10} {'it/s':>6} {'s/it':>6} {'cpu s/it':>8}"
        print(f"{header}  ({args.image_size} px, batch {args.batch_size})")
        for width in args.widths:
            for precision in args.precisions:
                for mode in args.modes:
                    rate, cpu = measure(args, Path(tmp), data, styles, width, precision, mode)
                    print(
                        f"{width:8} {precision:10} {mode:10} {rate:6.2f} {1 / rate:6.2f} {cpu:8.2f}",
                        flush=True,
                    )


MODES = ("single", "cin", "add-style", "temporal")


def style_images(folder: Path) -> list[Path]:
    """Three paintings from ../shared/images, or generated patterns when absent."""
    names = ("starry_night.jpg", "the_wave.jpg", "udnie.jpg")
    if all((SHARED / name).is_file() for name in names):
        return [SHARED / name for name in names]
    rng = np.random.default_rng(1)
    paths = []
    for index in range(3):
        path = folder / f"style{index}.png"
        Image.fromarray((rng.random((256, 256, 3)) * 255).astype("uint8")).save(path)
        paths.append(path)
    return paths


def measure(
    args: argparse.Namespace, tmp: Path, data: Path, styles: list[Path], width: str, precision: str, mode: str
) -> tuple[float, float]:
    """Steady steps per second of one mode and CPU seconds per step (all threads: less sensitive to a
    machine shared with other work); ``add-style`` first trains a two-style base, untimed."""
    style: object = styles[0]
    extra: dict[str, object] = {}
    if mode == "cin":
        style = styles[:2]
    elif mode == "temporal":
        extra["temporal_weight"] = 1.0
    elif mode == "add-style":
        base = tmp / f"base-{width}.safetensors"
        if not base.is_file():
            train(_settings(args, tmp, data, styles[:2], width, precision, base, iterations=1))
        style, extra["base"] = styles[2], base
    stamps: list[float] = []
    cpu: list[float] = []

    def record(progress: TrainProgress) -> None:
        stamps.append(time.perf_counter())
        cpu.append(time.process_time())

    train(_settings(args, tmp, data, style, width, precision, tmp / "bench.safetensors", **extra), record)
    # The first step warms up; the last one also writes a validation image and the model.
    steps = len(stamps) - 2
    return steps / (stamps[-2] - stamps[0]), (cpu[-2] - cpu[0]) / steps


def _settings(
    args: argparse.Namespace,
    tmp: Path,
    data: Path,
    style: object,
    width: str,
    precision: str,
    output: Path,
    **extra: object,
) -> TrainSettings:
    values: dict = dict(
        style=style,
        data=data,
        output=output,
        workdir=tmp / f"work-{output.stem}",
        iterations=args.steps,
        batch_size=args.batch_size,
        image_size=args.image_size,
        width=width,
        device=args.device,
        precision=precision,
        validate_every=10**6,
        checkpoint_every=10**6,
    )
    values.update(extra)
    return TrainSettings(**values)


# -- painterly's loop against a plain PyTorch loop -----------------------------------------------------


def _gram(features: torch.Tensor) -> torch.Tensor:
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w)
    return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)


class PlainLoop:
    """fast_neural_style's training loop (pytorch/examples), written plainly: float32, NCHW, Adam,
    the VGG16 loss network, with painterly's network and loss terms (content, Gram style, TV and,
    when its weight is set, the shift-equivariance term), so that both loops do the same work.

    The photos are decoded and centre-cropped once (the examples' DataLoader decodes them every
    step): the plain loop pays nothing for data, a reference that flatters it.
    """

    def __init__(self, s: TrainSettings, photos: list[Path], style: Path) -> None:
        torch.manual_seed(s.seed)
        self.s = s
        self.net = TransformerNet(s.width, upsample=s.upsample)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=s.learning_rate)
        self.vgg = load_vgg(s.network, last_layer="relu4_3")
        self.photos = [self._crop(Image.open(p).convert("RGB"), s.image_size) for p in photos]
        image = Image.open(style).convert("RGB")
        image.thumbnail((s.style_size, s.style_size))
        with torch.no_grad():
            features = self.vgg(self._tensor(image)[None], s.style_layers)
        self.gram_style = {name: _gram(f) for name, f in features.items()}

    @staticmethod
    def _tensor(image: Image.Image) -> torch.Tensor:
        return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1).contiguous()

    def _crop(self, image: Image.Image, size: int) -> torch.Tensor:
        scale = size / min(image.size)
        image = image.resize((max(size, round(image.width * scale)), max(size, round(image.height * scale))))
        left, top = (image.width - size) // 2, (image.height - size) // 2
        return self._tensor(image.crop((left, top, left + size, top + size)))

    def step(self, index: int) -> float:
        s = self.s
        x = torch.stack(
            [self.photos[(index * s.batch_size + j) % len(self.photos)] for j in range(s.batch_size)]
        )
        self.optimizer.zero_grad()
        y = self.net(x)
        with torch.no_grad():
            features_x = self.vgg(x, s.content_layers)
        features_y = self.vgg(y, [*s.content_layers, *s.style_layers])
        content = sum(F.mse_loss(features_y[n], features_x[n]) for n in s.content_layers)
        style = sum(
            F.mse_loss(_gram(features_y[n]), self.gram_style[n].expand(len(x), -1, -1))
            for n in s.style_layers
        )
        dx = (y[:, :, :-1, 1:] - y[:, :, :-1, :-1]) * 255.0
        dy = (y[:, :, 1:, :-1] - y[:, :, :-1, :-1]) * 255.0
        tv = 0.5 * (dx.pow(2) + dy.pow(2)).sum()
        total = s.content_weight * content + s.style_weight * style + s.tv_weight * tv
        if s.equivariance_weight:  # painterly's shift-equivariance term, the same computation
            sy, sx = 1 + index % 3, (index * 7) % 4
            moved = self.net(F.pad(x, (sx, 0, sy, 0), mode="reflect"))[
                ..., sy : sy + x.shape[2], sx : sx + x.shape[3]
            ]
            total = total + s.equivariance_weight * F.mse_loss(moved, y)
        assert isinstance(total, torch.Tensor)
        total.backward()
        self.optimizer.step()
        return float(total.detach())


def against_plain(args: argparse.Namespace, tmp: Path, data: Path, style: Path) -> None:
    """painterly's loop (precision ``--precisions[0]``) and the plain loop, step by step: ABAB."""
    from painterly.tuning import cpu_info

    info = cpu_info()
    print(
        f"CPU: {info.model}; flags: {' '.join(info.speed_flags) or '-'}; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    print(
        f"{args.image_size} px, batch {args.batch_size}, {args.steps} steps each (the first of each left out)"
    )
    photos = sorted(data.glob("*.png"))
    for width in args.widths:
        settings = _settings(
            args, tmp, data, style, width, args.precisions[0], tmp / f"ab-{width}.safetensors"
        )
        ab = Interleaved(PlainLoop(settings, photos, style))
        with timed_batches() as data_seconds:
            result = train(settings, ab.record)
        meta = read_metadata(result.output)["training"]
        # ab.ours[i] is painterly's step i + 1 (its step 0, the warm-up, has no mark before it);
        # ab.theirs[0] is the plain loop's warm-up step.
        a, b = statistics.median(ab.ours), statistics.median(ab.theirs[1:])
        # Each painterly step against the plain step run right after it: a change of load between
        # pairs cancels out (medians of few steps do not, when the load changes during the run).
        pairs = [plain / ours for ours, plain in zip(ab.ours, ab.theirs[1:], strict=True)]
        print(
            f"width {width} ({parse_width(width)}): painterly ({meta['precision']}, {meta['layout']}) "
            f"{1 / a:.4f} steps/s ({a:.2f} s/step); plain PyTorch (float32, NCHW) {1 / b:.4f} steps/s "
            f"({b:.2f} s/step); painterly/plain: {statistics.median(pairs):.2f}x (median of "
            f"{len(pairs)} adjacent pairs: {' '.join(f'{r:.2f}' for r in pairs)}), "
            f"{sum(ab.theirs[1:]) / sum(ab.ours):.2f}x (total time), {b / a:.2f}x (ratio of medians)"
        )
        data = statistics.median(data_seconds[1:] or data_seconds)
        print(
            f"  painterly's data (crops of cached photos): {data:.3f} s/step, {100 * data / a:.1f}% of a step"
        )
        print("  painterly s/step:", " ".join(f"{v:.2f}" for v in ab.ours))
        print("  plain     s/step:", " ".join(f"{v:.2f}" for v in ab.theirs))
        periodic_cost(settings, tmp, a)


@contextlib.contextmanager
def timed_batches() -> Iterator[list[float]]:
    """Seconds of each ``CropSampler.batch`` call in the block (painterly's data loading)."""
    from painterly.feedforward.data import CropSampler

    original = CropSampler.batch
    seconds: list[float] = []

    def batch(self: CropSampler, step: int, batch_size: int) -> torch.Tensor:
        start = time.perf_counter()
        try:
            return original(self, step, batch_size)
        finally:
            seconds.append(time.perf_counter() - start)

    CropSampler.batch = batch  # type: ignore[method-assign]
    try:
        yield seconds
    finally:
        CropSampler.batch = original  # type: ignore[method-assign]


class Interleaved:
    """The progress callback of painterly's run: after each painterly step, one plain step (ABAB)."""

    def __init__(self, plain: PlainLoop) -> None:
        self.plain = plain
        self.ours: list[float] = []
        self.theirs: list[float] = []
        self.mark: float | None = None

    def record(self, progress: TrainProgress) -> None:
        now = time.perf_counter()
        if self.mark is not None:
            self.ours.append(now - self.mark)
        self.plain.step(len(self.theirs))
        self.mark = time.perf_counter()
        self.theirs.append(self.mark - now)


def periodic_cost(s: TrainSettings, tmp: Path, seconds_per_step: float) -> None:
    """What a validation sheet and a checkpoint cost, spread over the default cadence of each."""
    from painterly.feedforward.settings import TrainSettings as Defaults
    from painterly.feedforward.training import CHECKPOINT, default_workdir

    defaults = Defaults(style="-", data="-", output="-")
    folder = Path(s.workdir or default_workdir(Path(s.output)))
    start = time.perf_counter()
    model, _, _ = read_model_file(folder / CHECKPOINT)
    loaded = time.perf_counter() - start
    validation = [Image.open(p).convert("RGB") for p in sorted(Path(s.data).glob("*.png"))[:2]]
    start = time.perf_counter()
    with torch.no_grad():
        for image in validation:
            image.thumbnail((defaults.validation_size, defaults.validation_size))
            model.stylize_tensor(PlainLoop._tensor(image)[None])
    sheet = time.perf_counter() - start
    start = time.perf_counter()
    write_model_file(tmp / "probe.safetensors", model, {"steps": 0})
    write = (time.perf_counter() - start) * 3  # a checkpoint is the network, its Adam state and latest
    share = (sheet / defaults.validate_every + write / defaults.checkpoint_every) / seconds_per_step
    print(
        f"  periodic tasks: validation sheet {sheet:.2f} s every {defaults.validate_every} steps, "
        f"checkpoint ~{write:.2f} s every {defaults.checkpoint_every}: {100 * share:.2f}% of a step "
        f"(reading a checkpoint {loaded:.2f} s)"
    )


if __name__ == "__main__":
    main()
