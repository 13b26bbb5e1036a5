"""Training data: any folder of images, searched recursively, sampled as random crops.

Each batch is a pure function of (seed, rank, step), so a resumed run draws exactly the batches an
uninterrupted run would have, and each distributed rank draws different ones, without any sampler
state to save.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from painterly.errors import PainterlyError
from painterly.images import MAX_PIXELS, to_rgb

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm"})

#: Decoded images are kept in memory when the data set is at most this many files.
CACHE_FILES = 512


#: Files that mark a folder as a training or distillation run's own (checkpoints, loss log).
WORK_FOLDER_MARKS = ("losses.jsonl", "checkpoint.safetensors", "latest.safetensors")


def is_work_folder(folder: Path) -> bool:
    """Whether ``folder`` is a training or distillation run's own (its pictures are not photos)."""
    return any((folder / mark).is_file() for mark in WORK_FOLDER_MARKS)


def refuse_work_folder_over_data(work_folder: str | os.PathLike, data: str | os.PathLike) -> None:
    """Refuse a run folder that is the data folder: its validation pictures would become photos.

    (A run folder *inside* the data folder is fine: :func:`find_images` skips it.)
    """
    if Path(work_folder).resolve() == Path(data).resolve():
        raise PainterlyError(
            f"the run's folder {work_folder} is the data folder: its checkpoints and validation "
            "pictures would mix with the photos; choose another --workdir"
        )


def find_images(folder: str | os.PathLike) -> list[Path]:
    """Image files under ``folder`` (by suffix, recursively), sorted; other files are ignored.

    Folders of earlier training runs below ``folder`` (an ``OUTPUT.train/`` written next to a model
    saved inside the data folder) are skipped: their validation pictures are not training photos.
    """
    folder = Path(folder)
    if not folder.exists():
        raise PainterlyError(f"data folder not found: {folder}")
    if not folder.is_dir():
        raise PainterlyError(f"data path is not a folder: {folder}")
    work_folders: dict[Path, bool] = {}

    def in_work_folder(path: Path) -> bool:
        for parent in path.relative_to(folder).parents:
            if parent != Path("."):
                inside = folder / parent
                if inside not in work_folders:
                    work_folders[inside] = is_work_folder(inside)
                if work_folders[inside]:
                    return True
        return False

    files = sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not in_work_folder(p)
    )
    if not files:
        raise PainterlyError(f"no images found in {folder} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


class CropSampler:
    """Random square crops of ``size`` px with mild scale jitter and horizontal flips.

    Unreadable images are skipped silently and listed in :attr:`bad` (with the reason), for one
    summary at the end (:func:`skipped_summary`); if no image can be read at all, :class:`PainterlyError`.
    """

    def __init__(self, files: list[Path], size: int, *, seed: int = 0, rank: int = 0) -> None:
        self.files = list(files)
        self.size = size
        self.seed = seed
        self.rank = rank
        self.bad: dict[Path, str] = {}
        self._cache: dict[Path, Image.Image] = {}
        self._use_cache = len(self.files) <= CACHE_FILES
        if not any(self._probe(path) for path in self.files):
            raise PainterlyError(
                f"none of the {len(self.files)} image files could be read (all corrupt?): "
                + skipped_summary(self.bad, limit=3)
            )

    @property
    def skipped(self) -> int:
        return len(self.bad)

    def _skip(self, path: Path, reason: str) -> None:
        self.bad.setdefault(path, " ".join(reason.split())[:200])

    def _probe(self, path: Path) -> bool:
        """Header check: cheap, catches files that are not images at all."""
        try:
            with Image.open(path) as image:
                image.size  # noqa: B018
            return True
        except Exception as exc:  # noqa: BLE001 - any failure means this file is unusable
            self._skip(path, type(exc).__name__)
            return False

    def _load(self, path: Path) -> Image.Image | None:
        if path in self._cache:
            return self._cache[path]
        try:
            with Image.open(path) as image:
                if image.width * image.height > MAX_PIXELS:
                    raise ValueError("too many pixels")
                # JPEG can decode at 1/2, 1/4, 1/8 scale: much faster for large photos.
                image.draft("RGB", (self.size * 2, self.size * 2))
                image.load()
                rgb = to_rgb(image)
        except Exception as exc:  # noqa: BLE001
            self._skip(path, f"{type(exc).__name__}: {exc}")
            return None
        if self._use_cache:
            short = min(rgb.size)
            if short > self.size * 3:
                rgb = rgb.resize(
                    (round(rgb.width * self.size * 3 / short), round(rgb.height * self.size * 3 / short)),
                    Image.Resampling.BILINEAR,
                )
            self._cache[path] = rgb
        return rgb

    def _pick(self, rng: random.Random) -> tuple[Path, Image.Image, tuple[float, float, float], bool]:
        """A random readable image, a square box (left, top, side) in its pixels and a flip."""
        for _ in range(len(self.files) * 2 + 10):
            path = self.files[rng.randrange(len(self.files))]
            if path in self.bad:
                continue
            image = self._load(path)
            if image is None:
                continue
            # A square of side ``side`` source px, shown at ``size`` px: scale jitter up to 2x.
            short = min(image.size)
            side = short * self.size / rng.uniform(self.size, max(self.size, min(short, 2 * self.size)))
            left, top = rng.uniform(0, image.width - side), rng.uniform(0, image.height - side)
            return path, image, (left, top, side), rng.random() < 0.5
        if len(self.bad) >= len(self.files):
            raise PainterlyError(f"none of the {len(self.files)} image files could be read (all corrupt?)")
        raise PainterlyError("could not read enough images to fill a batch")

    def crop(self, rng: random.Random) -> torch.Tensor:
        """One random crop as a (3, size, size) tensor in 0-1."""
        _, image, (left, top, side), flip = self._pick(rng)
        patch = image.resize(
            (self.size, self.size), Image.Resampling.BILINEAR, box=(left, top, left + side, top + side)
        )
        if flip:
            patch = patch.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        array = np.asarray(patch, dtype=np.float32) / 255.0
        return torch.from_numpy(array.copy()).permute(2, 0, 1)

    def batch(self, step: int, batch_size: int) -> torch.Tensor:
        """The batch for ``step`` (0-based): the same on every run with the same seed and rank."""
        rng = random.Random(f"{self.seed}:{self.rank}:{step}")
        return torch.stack([self.crop(rng) for _ in range(batch_size)])


class DeviceCropSampler(CropSampler):
    """:class:`CropSampler` whose decoded photos live on ``device`` (a GPU) and are cropped there.

    The same (seed, rank, step) draws the same photos, boxes and flips as :class:`CropSampler`;
    only the resampling differs (a whole-pixel box, antialiased bilinear on the device). On a GPU the
    PIL crops of the CPU sampler cannot keep up with the network: a few hundred crops a second
    against the thousands a GPU trains on.
    """

    def __init__(
        self, files: list[Path], size: int, device: torch.device, *, seed: int = 0, rank: int = 0
    ) -> None:
        super().__init__(files, size, seed=seed, rank=rank)
        self.device = device
        self._tensors: dict[Path, torch.Tensor] = {}

    def _tensor(self, path: Path, image: Image.Image) -> torch.Tensor:
        tensor = self._tensors.get(path)
        if tensor is None:
            array = np.asarray(image, dtype=np.uint8)
            tensor = torch.from_numpy(array.copy()).permute(2, 0, 1).to(self.device)
            if self._use_cache:
                self._tensors[path] = tensor
        return tensor

    def crop(self, rng: random.Random) -> torch.Tensor:
        path, image, (left, top, side), flip = self._pick(rng)
        x, y, s = int(left), int(top), max(1, round(side))
        s = min(s, image.width - x, image.height - y)
        patch = self._tensor(path, image)[:, y : y + s, x : x + s].float().div_(255.0)
        patch = F.interpolate(
            patch[None], size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True
        )[0]
        return patch.flip(-1) if flip else patch


def skipped_summary(paths: Iterable[Path], limit: int = 5) -> str:
    """One line naming the skipped images: ``skipped 7 unreadable images: a.jpg, b.png, ... (+2 more)``."""
    names = [Path(p).name for p in paths]
    shown = ", ".join(repr(n)[1:-1] for n in names[:limit])
    more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
    noun = "image" if len(names) == 1 else "images"
    return f"skipped {len(names)} unreadable {noun}: {shown}{more}"
