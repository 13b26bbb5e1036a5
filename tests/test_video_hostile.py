"""``painterly video`` under hostile input (issue 21): tiny and narrow clips, unwritable and existing
outputs, a work folder that is a file, leftovers of a run that failed before its first frame, sizes
beyond memory, numbers in other scripts. Tiny generated clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")
cv2 = pytest.importorskip("cv2")

from painterly.errors import PainterlyError  # noqa: E402
from painterly.video.flow import MIN_SIDE, FlowEstimator, flow_size  # noqa: E402

from .helpers.video import leftovers, make_clip, square_frames, texture  # noqa: E402


def noise_frames(count: int, width: int, height: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]


@pytest.fixture
def small(tmp_path: Path) -> Path:
    """The issue's clip: 64x48, a few frames."""
    return make_clip(tmp_path / "small.mp4", square_frames(4), audio=False)


def _one_line(code: int, stderr: str) -> None:
    assert code == 2 and stderr.count("\n") == 1 and "Traceback" not in stderr, stderr


# 1. the optical flow's minimum size, handled where the flow is computed ---------------------------


@pytest.mark.parametrize(
    ("width", "height"), [(1, 1), (2, 2), (20, 20), (16, 12), (100, 20), (20, 100), (96, 24), (300, 2)]
)
@pytest.mark.parametrize(("preset", "scale"), [("fast", 0.5), ("medium", 1.0), ("ultrafast", 0.1)])
def test_flow_works_on_tiny_and_narrow_frames(width: int, height: int, preset: str, scale: float) -> None:
    """DIS raised ``width or height >= 12`` on tiny frames, and crashed the process (SIGSEGV) on
    narrow small ones such as 20x100: the estimator now runs at a size DIS takes."""
    a, b = noise_frames(2, width, height)
    pair = FlowEstimator(preset, scale).pair(a, b)
    assert pair.forward.shape == pair.backward.shape == (height, width, 2)
    assert pair.valid.shape == (height, width) and np.isfinite(pair.forward).all()


def test_flow_size_keeps_dis_in_its_safe_range() -> None:
    for width in range(1, 200, 7):
        for height in range(1, 200, 11):
            for scale in (0.1, 0.5, 1.0):
                w, h = flow_size(width, height, scale)
                assert min(w, h) >= MIN_SIDE
                assert min(w, h) >= 32 or max(w, h) <= 2 * min(w, h)
    assert flow_size(640, 480, 0.5) == (320, 240)  # ordinary frames are untouched


def test_flow_still_finds_a_translation_on_a_tiny_frame() -> None:
    base = texture(40, 40)
    a, b = base[:12, :12], base[:12, 2:14]  # b is a shifted 2 px left: content moves by -2 in x
    flow = FlowEstimator("medium", 1.0).flow(a, b)
    assert abs(float(np.median(flow[..., 0])) + 2) < 1.0


@pytest.mark.parametrize(("size", "name", "frames"), [("16", "o.mp4", None), (None, "o.gif", (20, 20))])
def test_cli_tiny_clips_are_stylized(tmp_path: Path, small: Path, run_cli, size, name, frames) -> None:
    """``--size 16`` on 64x48 (flow at 8x6) and a 20x20 GIF raised cv2.error tracebacks."""
    source = small if frames is None else make_clip(tmp_path / "t.mp4", noise_frames(3, *frames), audio=False)
    extra = ["--size", size] if size else []
    out = tmp_path / name
    code, stdout, stderr = run_cli(
        "video", source, "-o", out, "-m", "starry_night", "--backend", "torch", "-q", *extra
    )
    assert code == 0, stderr
    assert out.exists() and "wrote" in stdout


def test_library_two_pixel_clip(tmp_path: Path) -> None:
    from painterly.video import stylize_video

    clip = make_clip(tmp_path / "2x2.mp4", noise_frames(3, 2, 2), audio=False)
    result = stylize_video(clip, tmp_path / "o.mp4", model="starry_night", backend="torch")
    assert result.frames == 3 and result.size == (2, 2)


# 2. one output check for every command ----------------------------------------------------------


@pytest.mark.parametrize("method", [["-m", "starry_night"], ["-s", "STYLE"]])
def test_cli_output_in_proc_is_one_line(tmp_path: Path, small: Path, run_cli, method: list[str]) -> None:
    style = tmp_path / "style.png"
    cv2.imwrite(str(style), texture(32, 32))
    method = [str(style) if item == "STYLE" else item for item in method]
    code, _, stderr = run_cli("video", small, "-o", "/proc/o.mp4", *method)
    _one_line(code, stderr)
    assert "not writable" in stderr


def test_every_command_shares_the_output_check() -> None:
    """transfer, stylize, video, train, distill and export call the same two functions."""
    import painterly.feedforward.files as files
    import painterly.images as images
    import painterly.video.io as vio
    from painterly import outputs

    assert images.check_output_path is outputs.check_output_path
    assert images.check_not_an_input is outputs.check_not_an_input
    assert vio.check_output_path is outputs.check_output_path
    assert vio.check_not_an_input is outputs.check_not_an_input
    assert files.check_not_an_input is outputs.check_not_an_input


def test_output_onto_the_input_through_a_link_is_refused(tmp_path: Path, small: Path, run_cli) -> None:
    link = tmp_path / "link.mp4"
    link.symlink_to(small)
    before = small.read_bytes()
    code, _, stderr = run_cli("video", small, "-o", link, "-m", "starry_night")
    _one_line(code, stderr)
    assert "overwrite the input" in stderr and small.read_bytes() == before


# 3. and 4. the work folder --------------------------------------------------------------------------


def test_cli_workdir_that_is_a_file_is_one_line(tmp_path: Path, small: Path, run_cli) -> None:
    style = tmp_path / "style.png"
    cv2.imwrite(str(style), texture(32, 32))
    existing = tmp_path / "notes.txt"
    existing.write_text("mine")
    for workdir in (existing, existing / "below"):
        code, _, stderr = run_cli(
            "video", small, "-o", tmp_path / "o.mp4", "-s", style, "--workdir", workdir, "--size", "32"
        )
        _one_line(code, stderr)
        assert "is a file, not a folder" in stderr
    assert existing.read_text() == "mine"
    assert leftovers(tmp_path, {"small.mp4", "style.png", "notes.txt"}) == []


@pytest.mark.parametrize("style", ["missing", "truncated", "video"])
def test_cli_run_failing_before_its_first_frame_leaves_no_work_folder(
    tmp_path: Path, small: Path, run_cli, style: str
) -> None:
    """``-s missing.jpg`` (and a truncated style image, and a video as style) left
    ``OUTPUT.frames/run.json`` behind."""
    out = tmp_path / "out"
    out.mkdir()
    image = {"missing": tmp_path / "missing.jpg", "video": small}.get(style, tmp_path / "cut.jpg")
    if style == "truncated":
        ok, data = cv2.imencode(".jpg", texture(64, 64))
        image.write_bytes(data.tobytes()[:300])
    code, _, stderr = run_cli("video", small, "-o", out / "o.mp4", "-s", image, "--size", "32")
    _one_line(code, stderr)
    assert list(out.iterdir()) == []


def test_failure_in_the_first_frame_removes_only_what_the_run_created(
    tmp_path: Path, small: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from painterly.optimization import Painter
    from painterly.video import stylize_video

    style = tmp_path / "style.png"
    cv2.imwrite(str(style), texture(32, 32))

    def broken(self, *args, **kwargs):
        raise PainterlyError("the first frame failed")

    monkeypatch.setattr(Painter, "paint", broken)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("a user's file")
    for workdir, gone in ((tmp_path / "new" / "frames", tmp_path / "new"), (mine, None)):
        with pytest.raises(PainterlyError, match="first frame failed"):
            stylize_video(small, tmp_path / "o.mp4", style=style, size=32, iterations=1, workdir=workdir)
        if gone is not None:
            assert not gone.exists()
    assert sorted(p.name for p in mine.iterdir()) == ["keep.txt"]  # run.json removed, the user's kept


# 5. memory estimate before any work ----------------------------------------------------------------


@pytest.mark.parametrize("method", [["-m", "starry_night"], ["-s", "STYLE"]])
def test_cli_size_beyond_memory_is_refused_before_any_work(
    tmp_path: Path, small: Path, run_cli, monkeypatch: pytest.MonkeyPatch, method: list[str]
) -> None:
    from painterly import memory
    from painterly.video import runtime

    style = tmp_path / "style.png"
    cv2.imwrite(str(style), texture(32, 32))
    method = [str(style) if item == "STYLE" else item for item in method]

    def no_work(*args, **kwargs):
        raise AssertionError("a model was loaded although the frames cannot fit")

    monkeypatch.setattr(memory, "available_memory", lambda: 2**30)
    monkeypatch.setattr(runtime, "choose_runtime", no_work)
    code, _, stderr = run_cli("video", small, "-o", tmp_path / "o.mp4", "--size", "8192", *method)
    _one_line(code, stderr)
    assert "GiB of memory" in stderr and "try --size" in stderr
    assert leftovers(tmp_path, {"small.mp4", "style.png"}) == []


def test_available_memory_counts_the_address_space_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    import resource

    from painterly import memory

    monkeypatch.setattr(memory, "physical_memory", lambda: 64 * 2**30)
    monkeypatch.setattr(memory, "_mapped_bytes", lambda: 2 * 2**30)
    monkeypatch.setattr(resource, "getrlimit", lambda kind: (6 * 2**30, resource.RLIM_INFINITY))
    assert memory.available_memory() == 4 * 2**30
    monkeypatch.setattr(resource, "getrlimit", lambda kind: (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    assert memory.available_memory() == 64 * 2**30


# the CLI's numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "option",
    [("--size", "²"), ("--size", "٣٢"), ("--size", "1_000"), ("--max-frames", "３"), ("--start", "1e999")],
)
def test_cli_numbers_are_ascii_and_finite(tmp_path: Path, small: Path, run_cli, option) -> None:
    code, _, stderr = run_cli("video", small, "-o", tmp_path / "o.mp4", "-m", "starry_night", *option)
    _one_line(code, stderr)
    assert option[0][2:].replace("-", " ") in stderr


# found by the re-probe ---------------------------------------------------------------------------


def test_workdir_that_is_the_output_or_holds_foreign_frames_is_refused(
    tmp_path: Path, small: Path, run_cli
) -> None:
    """``--workdir OUTPUT`` raised IsADirectoryError after the run; a folder of someone else's
    ``frame000000.png`` was taken as finished frames."""
    style = tmp_path / "style.png"
    cv2.imwrite(str(style), texture(32, 32))
    out = tmp_path / "o.mp4"
    common = ["-s", style, "--size", "16", "--iterations", "1", "--max-frames", "2", "-q"]
    code, _, stderr = run_cli("video", small, "-o", out, "--workdir", out, *common)
    _one_line(code, stderr)
    assert "cannot be the output" in stderr and not out.exists()
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    cv2.imwrite(str(theirs / "frame000000.png"), texture(12, 16))
    code, _, stderr = run_cli("video", small, "-o", out, "--workdir", theirs, *common)
    _one_line(code, stderr)
    assert "did not write" in stderr and sorted(p.name for p in theirs.iterdir()) == ["frame000000.png"]


def test_a_temporal_weight_that_cannot_give_a_finite_loss_is_refused(tmp_path: Path, small: Path) -> None:
    from painterly.video import stylize_video

    with pytest.raises(PainterlyError, match="temporal weight must be at most"):
        stylize_video(small, tmp_path / "o.mp4", style=small, temporal_weight=1e308)
    assert leftovers(tmp_path, {"small.mp4"}) == []
