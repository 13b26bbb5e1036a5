"""Video jobs over HTTP (``POST /api/videos``): queued, followed and downloaded like image jobs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
av = pytest.importorskip("av")
pytest.importorskip("cv2")
from fastapi.testclient import TestClient  # noqa: E402

from painterly.server import ServerSettings, create_app  # noqa: E402

from .helpers.server import TinyModels, wait_final  # noqa: E402
from .helpers.video import gradient_clip  # noqa: E402


def streams(data: bytes, tmp_path: Path) -> tuple[int, int, bool]:
    """(frames, width, has audio) of an encoded video."""
    path = tmp_path / "result.mp4"
    path.write_bytes(data)
    with av.open(str(path)) as container:
        has_audio = bool(container.streams.audio)
        frames = list(container.decode(video=0))
    return len(frames), frames[0].width, has_audio


@pytest.fixture
def client(tmp_path):
    app = create_app(
        ServerSettings(
            data_dir=tmp_path / "data", devices=("cpu",), preview_interval=0.0, video_max_seconds=5
        ),
        stylize_backend=TinyModels(tmp_path),
    )
    with TestClient(app, base_url="http://localhost") as client:
        yield client


def submit(client, clip: Path, **fields):
    data = {"model": "tiny", **fields}
    return client.post("/api/videos", files={"video": (clip.name, clip.read_bytes(), "video/mp4")}, data=data)


def test_video_job_runs_with_progress_preview_and_audio(client, tmp_path, monkeypatch):
    from painterly.video.feedforward import FeedForwardPainter

    paint = FeedForwardPainter.paint

    def slow_paint(self, *args, **kwargs):  # a tiny network is too quick to see a running job's preview
        time.sleep(0.1)
        return paint(self, *args, **kwargs)

    monkeypatch.setattr(FeedForwardPainter, "paint", slow_paint)
    clip = gradient_clip(tmp_path / "clip.mp4", seconds=1.0)
    response = submit(client, clip, size="64")
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["kind"] == "video" and job["options"]["model"] == "tiny"
    seen_preview = False
    with client.stream("GET", job["urls"]["events"]) as events:
        for line in events.iter_lines():
            seen_preview = seen_preview or '"preview": "data:image/jpeg' in line
            if line.startswith("event: end"):
                break
    done = wait_final(client, job["id"])
    assert done["status"] == "done", done
    assert (
        done["progress"]["frame"] == 10 and done["progress"]["fps"] > 0 and done["progress"]["fraction"] == 1
    )
    assert seen_preview
    result = client.get(done["urls"]["result"] + "?download=1")
    assert result.headers["content-type"] == "video/mp4"
    assert f"painterly-{job['id']}.mp4" in result.headers["content-disposition"]
    frames, width, has_audio = streams(result.content, tmp_path)
    assert (frames, width, has_audio) == (10, 64, True)
    assert list((tmp_path / "data" / "uploads").iterdir()) == []  # the upload is gone
    listed = client.get("/api/jobs").json()["jobs"]
    assert [j["kind"] for j in listed] == ["video"]


def test_video_caps_and_bad_uploads(client, tmp_path):
    too_long = gradient_clip(tmp_path / "long.mp4", seconds=6.0, fps=5)
    response = submit(client, too_long)
    assert response.status_code == 400 and "limit of 5 s" in response.json()["detail"]
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    response = submit(client, junk)
    assert response.status_code == 400 and "not a video" in response.json()["detail"]
    clip = gradient_clip(tmp_path / "clip.mp4", seconds=0.5)
    assert submit(client, clip, size="5000").status_code == 400
    assert submit(client, clip, model="nope").status_code == 400
    assert submit(client, clip, colour="red").status_code == 400
    assert list((tmp_path / "data" / "uploads").iterdir()) == []


def test_video_upload_and_pixel_caps(tmp_path):
    clip = gradient_clip(tmp_path / "clip.mp4", seconds=0.5)
    app = create_app(
        ServerSettings(
            data_dir=tmp_path / "data", video_max_pixels=32 * 32, video_max_upload_bytes=1_000_000
        ),
        stylize_backend=TinyModels(tmp_path),
    )
    with TestClient(app, base_url="http://localhost") as client:
        response = submit(client, clip)
        assert response.status_code == 400 and "pixels" in response.json()["detail"]
        big = tmp_path / "big.mp4"
        big.write_bytes(b"0" * 1_100_000)
        assert submit(client, big).status_code == 413


def test_without_the_video_extra_the_endpoint_says_so(client, tmp_path, monkeypatch):
    import painterly.server.routes.videos as route

    monkeypatch.setattr(
        route, "video_support", lambda: "video needs av on the server: pip install 'painterly[video]'"
    )
    clip = gradient_clip(tmp_path / "clip.mp4", seconds=0.5)
    response = submit(client, clip)
    assert response.status_code == 501 and "painterly[video]" in response.json()["detail"]
    assert client.get("/api/config").json()["video"]["available"] is True  # the real install has it


def test_cancel_keeps_the_frames_done_and_frees_the_upload(client, tmp_path, monkeypatch):
    from painterly.feedforward.inference import StyleModel

    slow = StyleModel.stylize

    def stylize(self, image, **options):
        time.sleep(0.15)
        return slow(self, image, **options)

    monkeypatch.setattr(StyleModel, "stylize", stylize)
    clip = gradient_clip(tmp_path / "clip.mp4", seconds=4.0)
    job = submit(client, clip).json()
    deadline = time.monotonic() + 60
    while (client.get(f"/api/jobs/{job['id']}").json().get("progress") or {}).get("frame", 0) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert client.post(f"/api/jobs/{job['id']}/cancel").status_code == 200
    done = wait_final(client, job["id"])
    assert done["status"] == "cancelled", done
    frames, _, has_audio = streams(client.get(done["urls"]["result"]).content, tmp_path)
    assert 2 <= frames < 40 and has_audio
    assert list((tmp_path / "data" / "uploads").iterdir()) == []
