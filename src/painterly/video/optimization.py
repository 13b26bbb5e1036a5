"""Video by image optimization, after Ruder, Dosovitskiy and Brox 2016 ("Artistic style transfer for videos").

Each frame after the first starts from the previous stylized frame warped along the optical flow,
and a temporal loss holds it to that warped frame wherever the flow is trustworthy (not occluded,
off motion boundaries); with ``long_term``, also to the outputs 2 and 4 frames back, each only
where no nearer frame already counts. One :class:`painterly.optimization.Painter` paints every
frame: the loss network and the style targets are prepared once, and the temporal loss enters as
an extra term of each call. Later frames need fewer iterations, since they start close to the answer.

Finished frames are kept as PNGs in a work folder next to the output, with a note of the run's
settings, so that an interrupted video resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from painterly.errors import PainterlyError, check_weight
from painterly.images import ImageInput, check_input_file
from painterly.losses import LossTerm
from painterly.settings import MAX_WEIGHT
from painterly.video.flow import FlowEstimator, FlowPair, consistent, motion_boundaries, warp

#: Weight of the temporal loss (mean squared difference in 0-255 units, as Ruder et al.'s 1e3 with
#: the Lua neural-style's content 5 and style 100, the units painterly uses).
DEFAULT_TEMPORAL_WEIGHT = 1e3
#: Later frames get this share of the first frame's iterations (Ruder et al. used one half on a GPU).
LATER_SHARE = 0.25
#: Frames back that the long-term loss looks at (Ruder et al.'s J = {1, 2, 4}).
LONG_TERM = (1, 2, 4)
#: Iterations of the first frame unless given (L-BFGS; painterly's automatic budget at one scale).
DEFAULT_ITERATIONS = 300


class TemporalLoss(LossTerm):
    """Ruder et al.'s temporal term: ``mean(c * (x - w)^2)`` over pixels and channels, in 0-255 units.

    ``w`` is a previous output warped onto this frame, ``c`` its per-pixel weight (0 where occluded
    or on a motion boundary). Several (w, c) pairs add up (the long-term form). Targets are resized
    to the image being optimized, so the term also works coarse to fine.
    """

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[tuple[torch.Tensor, torch.Tensor]] = []

    def set_target(self, targets: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """(warped, weight) pairs: (1, 3, H, W) in 0-1 and (1, 1, H, W) in 0-1."""
        self.targets = list(targets)

    def forward(self, image: torch.Tensor, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        total = torch.zeros((), device=image.device)
        for warped, weight in self.targets:
            if warped.shape[-2:] != image.shape[-2:]:
                warped = F.interpolate(warped, size=image.shape[-2:], mode="bilinear", align_corners=False)
                weight = F.interpolate(weight, size=image.shape[-2:], mode="bilinear", align_corners=False)
            difference = (image.float() - warped) * 255.0
            total = total + (weight * difference**2).sum() / difference.numel()
        return total


def _tensor(image: np.ndarray, device: torch.device) -> torch.Tensor:
    """(H, W, 3) float32 0-255 or (H, W) 0-1 mask to a (1, C, H, W) tensor (images scaled to 0-1)."""
    if image.ndim == 2:
        return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None].to(device)
    array = np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32) / 255.0
    return torch.from_numpy(array)[None].to(device)


class OptimizationPainter:
    """Paints video frames by image optimization with Ruder et al.'s temporal consistency.

    ``temporal=False`` paints every frame on its own (from the content, full iterations): the
    baseline that flickers. ``run_key`` identifies the run (input, part, size, style, options) so
    that a work folder of another run is never mistaken for this one's.
    """

    def __init__(
        self,
        styles: Sequence[ImageInput],
        *,
        output: str | os.PathLike[str],
        device: str = "auto",
        iterations: int | None = None,
        later_iterations: int | None = None,
        temporal_weight: float = DEFAULT_TEMPORAL_WEIGHT,
        temporal: bool = True,
        long_term: bool = False,
        workdir: str | os.PathLike[str] | None = None,
        run_key: Mapping[str, Any] | None = None,
        **settings: Any,
    ) -> None:
        if not styles:
            raise PainterlyError("need at least one style image")
        self.styles = list(styles)
        self.device = device
        self.iterations = DEFAULT_ITERATIONS if iterations is None else iterations
        self.later_iterations = (
            max(1, round(self.iterations * LATER_SHARE)) if later_iterations is None else later_iterations
        )
        if self.iterations < 1 or self.later_iterations < 1:
            raise PainterlyError("iterations must be at least 1")
        self.temporal_weight = check_weight("temporal weight", temporal_weight)
        if self.temporal_weight > MAX_WEIGHT:  # 1e308 made the first later frame's loss NaN
            raise PainterlyError(f"temporal weight must be at most {MAX_WEIGHT:g}, got {temporal_weight!r}")
        self.temporal = temporal and self.temporal_weight > 0
        self.long_term = long_term
        self.settings = settings
        self.workdir = Path(workdir) if workdir is not None else Path(f"{output}.frames")
        _check_workdir(self.workdir, Path(output))
        for item in self.styles:  # a missing style image: one line now, not after the first frame
            if isinstance(item, str | os.PathLike):
                check_input_file(item, "style image")
        #: What this run created in the work folder (removed again if it fails before a frame is kept).
        self._created: list[Path] = []
        self.run_key = dict(run_key or {})
        self.run_key.update(
            iterations=self.iterations,
            later_iterations=self.later_iterations,
            temporal_weight=self.temporal_weight,
            temporal=self.temporal,
            long_term=long_term,
            settings={k: repr(v) for k, v in sorted(settings.items())},
        )
        self.painter: Any = None
        self.term = TemporalLoss()
        self.flow = FlowEstimator("medium", 1.0)
        #: Per frame: (input frame, output as float32 0-255), newest last, as far back as needed.
        self.history: list[tuple[np.ndarray, np.ndarray]] = []
        #: Seconds each frame took to paint (0 for frames resumed from the work folder).
        self.seconds: list[float] = []
        self.resumed = 0

    @property
    def needs_flow(self) -> bool:
        return self.temporal

    def _prepare(self, frame: np.ndarray) -> None:
        """At the first frame: the work folder, and the painter with its loss network and style targets."""
        from painterly.optimization import Painter, make_settings

        note = self.workdir / "run.json"
        key = json.dumps(self.run_key, sort_keys=True, default=str)
        if note.is_file() and note.read_text(errors="replace") != key:
            raise PainterlyError(
                f"the work folder {self.workdir} holds frames of a different run: delete it or choose "
                "another --workdir"
            )
        if not note.exists() and any(self.workdir.glob("frame??????.png")):
            # Someone else's frames (ffmpeg's frame%06d.png, say) are not this run's to resume from.
            raise PainterlyError(
                f"the work folder {self.workdir} holds frame PNGs that painterly did not write (no "
                "run.json): choose another --workdir"
            )
        settings = make_settings(
            size=max(frame.shape[:2]),
            scales=1,
            iterations=self.iterations,
            device=self.device,
            **self.settings,
        )
        # The style images are read (and refused if broken) before anything is written.
        painter = Painter(settings, self.styles)
        missing = [folder for folder in (self.workdir, *self.workdir.parents) if not folder.exists()]
        try:
            self.workdir.mkdir(parents=True, exist_ok=True)
            self._created += reversed(missing)
            if not note.exists():
                note.write_text(key)
                self._created.append(note)
        except OSError as exc:
            self.discard()
            raise PainterlyError(
                f"cannot write the work folder {self.workdir}: {exc.strerror or exc}"
            ) from None
        self.painter = painter

    def discard(self) -> None:
        """Remove what this run created in the work folder while it holds no finished frame; a
        user's folder and frames of earlier runs are never touched."""
        if not self._created or any(self.workdir.glob("frame??????.png")):
            return
        for partial in self.workdir.glob("frame??????.tmp.png"):  # Ctrl-C while the first was saved
            partial.unlink(missing_ok=True)
        for path in reversed(self._created):
            with contextlib.suppress(OSError):
                path.rmdir() if path.is_dir() else path.unlink()
        self._created.clear()

    def _frame_path(self, index: int) -> Path:
        return self.workdir / f"frame{index:06d}.png"

    def paint(self, frame: np.ndarray, index: int, pair: FlowPair | None) -> np.ndarray:
        if self.painter is None:
            self._prepare(frame)
        try:
            return self._paint(frame, index, pair)
        except BaseException:  # a failure or Ctrl-C before the first frame: no empty work folder left
            if not self.history:
                self.discard()
            raise

    def _paint(self, frame: np.ndarray, index: int, pair: FlowPair | None) -> np.ndarray:
        started = time.perf_counter()
        done = self._frame_path(index)
        if done.exists():
            with Image.open(done) as image:
                result = np.asarray(image.convert("RGB"))
            if result.shape != frame.shape:
                raise PainterlyError(f"{done} is not of this run's frame size: delete {self.workdir}")
            self.resumed += 1
            self._remember(frame, result)
            self.seconds.append(0.0)
            return result
        device = self.painter.device
        init: Any = None
        extra = None
        iterations = self.iterations
        if self.temporal and pair is not None and self.history:
            targets = self._targets(frame, pair)
            init = targets[0][0]
            self.term.set_target([(_tensor(w, device), _tensor(c, device)) for w, c in targets])
            extra = {"temporal": (self.term, self.temporal_weight)}
            iterations = self.later_iterations
        result_image = self.painter.paint(
            Image.fromarray(frame),
            init=_tensor(init, device) if init is not None else None,
            iterations=iterations,
            extra_terms=extra,
        ).image
        result = np.asarray(result_image.convert("RGB"))
        tmp = done.with_suffix(".tmp.png")
        result_image.save(tmp)
        os.replace(tmp, done)
        self._remember(frame, result)
        self.seconds.append(time.perf_counter() - started)
        return result

    def _remember(self, frame: np.ndarray, result: np.ndarray) -> None:
        self.history.append((frame, result.astype(np.float32)))
        del self.history[: -max(LONG_TERM if self.long_term else (1,))]

    def _targets(self, frame: np.ndarray, pair: FlowPair) -> list[tuple[np.ndarray, np.ndarray]]:
        """(warped previous output, weight) for the previous frame and, long-term, frames 2 and 4 back."""
        previous = self.history[-1][1]
        targets = [(warp(previous, pair.backward), pair.valid)]
        if not self.long_term:
            return targets
        covered = pair.valid.copy()
        for back in LONG_TERM[1:]:
            if len(self.history) < back:
                break
            old_frame, old_output = self.history[-back]
            backward, forward = self.flow.flow(frame, old_frame), self.flow.flow(old_frame, frame)
            valid = (consistent(backward, forward) & ~motion_boundaries(backward)).astype(np.float32)
            weight = np.clip(valid - covered, 0.0, 1.0)
            covered = np.maximum(covered, valid)
            targets.append((warp(old_output, backward), weight))
        return targets


def _check_workdir(workdir: Path, output: Path) -> None:
    """One line, before any work, for a work folder that cannot be one (an existing file, the output)."""
    if workdir.resolve() == output.resolve():
        raise PainterlyError(f"the work folder cannot be the output itself: {workdir}")
    for folder in (workdir, *workdir.parents):
        try:
            if folder.exists():
                if not folder.is_dir():
                    what = "the work folder" if folder == workdir else "a folder above the work folder"
                    raise PainterlyError(f"{what} is a file, not a folder: {folder}")
                return
        except OSError as exc:
            raise PainterlyError(f"cannot use the work folder {workdir}: {exc.strerror or exc}") from None
