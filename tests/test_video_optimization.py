"""Video by image optimization (Ruder et al. 2016): the temporal loss, warm starts, fewer later
iterations, and resuming from the work folder. Tiny frames and a few iterations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("av")
pytest.importorskip("cv2")

import torch  # noqa: E402

from painterly.errors import PainterlyError  # noqa: E402
from painterly.video.optimization import OptimizationPainter, TemporalLoss  # noqa: E402
from painterly.video.pipeline import Window, run  # noqa: E402
from tests.helpers.images import make_painting  # noqa: E402
from tests.helpers.video import make_clip, square_frames  # noqa: E402


def test_temporal_loss_is_the_masked_mean_squared_difference_in_255_units() -> None:
    term = TemporalLoss()
    image = torch.full((1, 3, 4, 4), 0.5)
    target = torch.full((1, 3, 4, 4), 0.5)
    target[..., :2] = 0.6
    weight = torch.ones(1, 1, 4, 4)
    term.set_target([(target, weight)])
    expected = (25.5**2) * 0.5  # half the pixels differ by 0.1 = 25.5 levels
    assert float(term(image, {})) == pytest.approx(expected, rel=1e-4)
    weight[..., :2] = 0  # the differing pixels are occluded: they do not count
    assert float(term(image, {})) == pytest.approx(0.0, abs=1e-6)
    small = torch.full((1, 3, 2, 2), 0.5)  # coarse to fine: the target is resized to the image
    term.set_target([(target, torch.ones(1, 1, 4, 4))])
    assert float(term(small, {})) > 0


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Records the arguments of every Painter.paint call."""
    from painterly.optimization import Painter

    calls: list[dict[str, Any]] = []
    original = Painter.paint

    def paint(self: Painter, content: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return original(self, content, **kwargs)

    monkeypatch.setattr(Painter, "paint", paint)
    return calls


def painter(tmp_path: Path, style: Path, **options: Any) -> OptimizationPainter:
    return OptimizationPainter(
        [style],
        output=tmp_path / "out.mp4",
        iterations=4,
        later_iterations=1,
        run_key={"style": str(style)},
        precision="fp32",
        **options,
    )


@pytest.mark.slow
def test_warm_start_temporal_term_and_resume(tmp_path: Path, spy: list[dict[str, Any]]) -> None:
    style = tmp_path / "style.png"
    make_painting(48, 48).save(style)
    clip = make_clip(tmp_path / "clip.mp4", square_frames(4, (48, 32)), audio=False)

    first = painter(tmp_path, style)
    run(clip, tmp_path / "out.mp4", first, window=Window(max_frames=2))
    assert [c["iterations"] for c in spy] == [4, 1]
    assert spy[0]["init"] is None and spy[0]["extra_terms"] is None
    assert isinstance(spy[1]["init"], torch.Tensor) and list(spy[1]["extra_terms"]) == ["temporal"]
    assert sorted(p.name for p in (tmp_path / "out.mp4.frames").glob("*.png")) == [
        "frame000000.png",
        "frame000001.png",
    ]
    assert first.painter is not None and len(first.painter._style_targets) == 1  # prepared once

    spy.clear()
    again = painter(tmp_path, style)
    result = run(clip, tmp_path / "out.mp4", again, window=Window(max_frames=4))
    assert again.resumed == 2 and result.frames == 4
    assert [c["iterations"] for c in spy] == [1, 1]  # only the two new frames were painted
    assert again.seconds[:2] == [0.0, 0.0]

    other = painter(tmp_path, style, temporal_weight=5.0)
    with pytest.raises(PainterlyError, match="different run"):
        run(clip, tmp_path / "out2.mp4", other, window=Window(max_frames=1))


@pytest.mark.slow
def test_per_frame_baseline_paints_every_frame_from_scratch(
    tmp_path: Path, spy: list[dict[str, Any]]
) -> None:
    style = tmp_path / "style.png"
    make_painting(48, 48).save(style)
    clip = make_clip(tmp_path / "clip.mp4", square_frames(3, (48, 32)), audio=False)
    baseline = painter(tmp_path, style, temporal=False)
    assert not baseline.needs_flow
    run(clip, tmp_path / "out.mp4", baseline)
    assert [c["iterations"] for c in spy] == [4, 4, 4]
    assert all(c["init"] is None and c["extra_terms"] is None for c in spy)
    assert np.isfinite(baseline.seconds).all()
