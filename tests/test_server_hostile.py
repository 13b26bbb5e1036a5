"""The server's forms and the live socket under hostile input (issue 21): one numeric parser for
every form (ASCII digits, the server's real caps, finite losses), tiny video uploads, and a
bounded parse of the socket's control messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from painterly.errors import PainterlyError  # noqa: E402
from painterly.server import ServerSettings, create_app  # noqa: E402
from painterly.server.live import MAX_CONTROL_DEPTH, parse_control  # noqa: E402

from .helpers.server import FakeRunner, TinyModels, client_for, jpeg, local_client, submit  # noqa: E402

UNICODE_DIGITS = ["²", "٣٢", "３２", "1_000", "𝟑𝟐", "६४"]


@pytest.fixture
def jobs(tmp_path):
    settings = ServerSettings(data_dir=tmp_path / "data", devices=("cpu",), max_queue=4, max_size=1024)
    with local_client(create_app(settings, runner=FakeRunner())) as client:
        yield client


# /api/jobs ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", UNICODE_DIGITS)
@pytest.mark.parametrize("field", ["size", "iterations", "seed", "style_weight", "time_limit"])
def test_jobs_refuse_digits_of_other_scripts(jobs, field: str, text: str) -> None:
    response = submit(jobs, data={field: text})
    assert response.status_code == 400, response.text
    assert field.replace("_", " ") in response.json()["detail"]


def test_jobs_name_the_servers_own_size_cap(jobs) -> None:
    """``size=100000`` was answered "at most 16384" on a server whose cap is 1024."""
    detail = submit(jobs, data={"size": "100000"}).json()["detail"]
    assert "at most 1024" in detail and "16384" not in detail
    detail = submit(jobs, data={"size": "5000"}).json()["detail"]
    assert "at most 1024" in detail


@pytest.mark.parametrize(
    "data",
    [
        {"style_weight": "1e308"},
        {"content_weight": "1e300"},
        {"tv_weight": "1e20"},
        {"style_blend": "1e308"},
        {"time_limit": "1e308"},
        {"style_weight": "1e999"},
    ],
)
def test_jobs_refuse_weights_that_cannot_give_a_finite_loss(jobs, data: dict) -> None:
    response = submit(jobs, data=data)
    assert response.status_code == 400, response.text
    assert "at most" in response.json()["detail"] or "finite" in response.json()["detail"]


def test_jobs_refuse_two_huge_blend_weights(jobs) -> None:
    response = submit(jobs, styles=2, data={"style_blend": "1e308,1e308"})
    assert response.status_code == 400 and "at most" in response.json()["detail"]


# /api/stylize ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", UNICODE_DIGITS)
def test_stylize_refuses_digits_of_other_scripts(tmp_path, text: str) -> None:
    with client_for(tmp_path, TinyModels(tmp_path)) as client:
        response = client.post(
            "/api/stylize",
            files={"image": ("p.jpg", jpeg(), "image/jpeg")},
            data={"model": "tiny", "size": text},
        )
    assert response.status_code == 400 and "size must be a whole number" in response.json()["detail"]


# /api/videos ----------------------------------------------------------------------------------------


@pytest.fixture
def videos(tmp_path):
    pytest.importorskip("av")
    pytest.importorskip("cv2")
    app = create_app(
        ServerSettings(
            data_dir=tmp_path / "data", devices=("cpu",), preview_interval=0.0, video_max_seconds=5
        ),
        stylize_backend=TinyModels(tmp_path),
    )
    with TestClient(app, base_url="http://localhost") as client:
        yield client


def _post_video(client, clip: Path, **fields):
    data = {"model": "tiny", **fields}
    return client.post("/api/videos", files={"video": (clip.name, clip.read_bytes(), "video/mp4")}, data=data)


@pytest.mark.parametrize("text", UNICODE_DIGITS)
def test_videos_refuse_digits_of_other_scripts_and_keep_the_connection(videos, tmp_path, text) -> None:
    """``size="²"`` passed ``isdigit()`` and raised in ``int()``: a 500."""
    from .helpers.video import gradient_clip

    clip = gradient_clip(tmp_path / "clip.mp4", seconds=0.3)
    response = _post_video(videos, clip, size=text)
    assert response.status_code == 400, response.text
    assert "size must be a whole number" in response.json()["detail"]
    strength = _post_video(videos, clip, temporal_strength="０.５")
    assert strength.status_code == 400 and "temporal_strength" in strength.json()["detail"]
    assert videos.get("/api/health").status_code == 200  # the server still answers
    assert list((tmp_path / "data" / "uploads").iterdir()) == []


def test_videos_name_the_servers_size_cap(videos, tmp_path) -> None:
    from .helpers.video import gradient_clip

    clip = gradient_clip(tmp_path / "clip.mp4", seconds=0.3)
    cap = videos.get("/api/config").json()["video"]
    detail = _post_video(videos, clip, size="99999").json()["detail"]
    assert f"size must be at most {cap['max_size']}" in detail


def test_videos_a_two_pixel_clip_runs(videos, tmp_path) -> None:
    """The 2x2 clip was accepted (202) and the job ended as ``internal error: error``."""
    from .helpers.server import wait_final
    from .helpers.video import gradient_clip

    clip = gradient_clip(tmp_path / "tiny.mp4", seconds=0.3, size=(2, 2))
    response = _post_video(videos, clip)
    assert response.status_code == 202, response.text
    job = wait_final(videos, response.json()["id"])
    assert job["status"] == "done", job


# /api/live ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "[" * 1000 + "]" * 1000,
        "{" * 1020,
        '{"type": "config", "blend": ' + "[" * 50 + "]" * 50 + "}",
        '{"type": "config", "temporal_strength": NaN}',
        '{"type": "config", "temporal_strength": ' + "9" * 400 + "}",
        '{"type": "config", "temporal_strength": 1e999}',
        "[]",
        "null",
        '{"type": "config", "\\r\\n": 1}',
        '"config"',
    ],
)
def test_live_hostile_control_messages_get_an_error_and_the_socket_lives_on(tmp_path, text: str) -> None:
    """1000 ``[`` then 1000 ``]`` raised RecursionError in the ASGI app; the socket closed with 1001."""
    with (
        client_for(tmp_path, TinyModels(tmp_path)) as client,
        client.websocket_connect("ws://localhost/api/live") as ws,
    ):
        assert ws.receive_json()["type"] == "ready"
        ws.send_text(text)
        answer = ws.receive_json()
        assert answer["type"] == "error" and "\n" not in answer["detail"], answer
        ws.send_text(json.dumps({"type": "config", "model": "tiny", "temporal_strength": 0.5}))
        assert ws.receive_json()["type"] == "config"  # the connection goes on


def test_parse_control_bounds_its_work() -> None:
    assert parse_control('{"type": "config", "blend": {"a": [1, 2]}}')["blend"] == {"a": [1, 2]}
    assert parse_control('{"type": "config", "model": "[[[[[[[[[[\\"]]]"}')["model"] == '[[[[[[[[[["]]]'
    deep = '{"type": "config", "x": ' + "[" * MAX_CONTROL_DEPTH + "]" * MAX_CONTROL_DEPTH + "}"
    with pytest.raises(PainterlyError, match="nest at most"):
        parse_control(deep)
    with pytest.raises(PainterlyError, match="at most 2048"):
        parse_control(" " * 3000)


def test_repeated_form_fields_are_refused_not_taken_last(jobs, videos, tmp_path) -> None:
    """``size=32&size=99999`` and ``model=nope&model=tiny`` silently used the last value."""
    from .helpers.server import png_bytes
    from .helpers.video import gradient_clip

    files = [
        ("content", ("p.png", png_bytes(), "image/png")),
        ("style", ("s.png", png_bytes(36, 36, seed=1), "image/png")),
        ("seed", (None, "1")),
        ("seed", (None, "2")),
    ]
    response = jobs.post("/api/jobs", files=files, data={"size": "32", "iterations": "3"})
    assert response.status_code == 400 and "more than once" in response.json()["detail"]
    clip = gradient_clip(tmp_path / "clip.mp4", seconds=0.3)
    files = [
        ("video", ("c.mp4", clip.read_bytes(), "video/mp4")),
        ("model", (None, "nope")),
        ("model", (None, "tiny")),
    ]
    response = videos.post("/api/videos", files=files)
    assert response.status_code == 400 and "more than once" in response.json()["detail"]
    assert list((tmp_path / "data" / "uploads").iterdir()) == []
