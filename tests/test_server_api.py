"""The HTTP API, through FastAPI's test client. Most tests use a fake runner (fast, controllable);
one runs the real image optimization on tiny images."""

from __future__ import annotations

import io
import json
import threading
import time

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("multipart")

from painterly.server import ServerSettings, create_app  # noqa: E402

from .helpers.server import FakeRunner, local_client, make_client, png_bytes, submit, wait_for  # noqa: E402


@pytest.fixture
def settings(tmp_path):
    return ServerSettings(data_dir=tmp_path / "data", devices=("cpu",), max_queue=2, preview_interval=0.0)


def read_events(response) -> list[tuple[str, dict]]:
    events, name = [], "message"
    for line in response.iter_lines():
        if line.startswith("event:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            events.append((name, json.loads(line.split(":", 1)[1])))
    return events


def test_submit_poll_stream_and_fetch(settings):
    runner = FakeRunner(steps=5, delay=0.15)
    with make_client(settings, runner) as client:
        response = submit(client, styles=2, data={"style_blend": "1, 0.5", "preserve_colors": "luminance"})
        assert response.status_code == 202, response.text
        job = response.json()
        assert job["status"] in ("queued", "running") and len(job["id"]) >= 16
        assert response.headers["location"] == f"/api/jobs/{job['id']}"
        with client.stream("GET", job["urls"]["events"]) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            events = read_events(stream)
        assert events[-1][0] == "end" and events[-1][1]["status"] == "done"
        progress = [body for name, body in events if name == "progress" and body["progress"]]
        assert progress, events
        assert any(body.get("preview", "").startswith("data:image/jpeg;base64,") for body in progress)
        assert set(progress[-1]["progress"]["losses"]) == {"content", "style", "tv", "total"}
        assert "eta" in progress[-1]["progress"]
        final = client.get(f"/api/jobs/{job['id']}").json()
        assert final["progress"]["fraction"] == 1.0 and final["width"] == 32
        result = client.get(final["urls"]["result"])
        assert result.status_code == 200 and result.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(result.content)).size == (32, 26)
        download = client.get(final["urls"]["result"], params={"download": "1"})
        assert "attachment" in download.headers["content-disposition"]
        _, styles, passed = runner.calls[0]
        assert len(styles) == 2 and list(passed.style_blend) == [1.0, 0.5]
        assert passed.preserve_colors == "luminance" and passed.device == "cpu"
        listed = client.get("/api/jobs").json()["jobs"]
        assert [j["id"] for j in listed] == [job["id"]]


def test_real_transfer_end_to_end(settings):
    """The real run_transfer on tiny images: the library, not a fake, behind the API."""
    with local_client(create_app(settings)) as client:
        response = submit(client, data={"size": "32", "iterations": "2"})
        assert response.status_code == 202, response.text
        job = wait_for(client, response.json()["id"], timeout=120)
        assert job["status"] == "done", job
        image = Image.open(io.BytesIO(client.get(job["urls"]["result"]).content))
        assert image.format == "PNG" and image.size == (32, 26)
        assert job["progress"]["losses"]["total"] > 0


def test_cancel_running_keeps_best_image(settings):
    runner = FakeRunner(gated=True)
    with make_client(settings, runner) as client:
        job_id = submit(client).json()["id"]
        assert runner.running.wait(10)
        wait_for(client, job_id, statuses=("running",))
        assert client.post(f"/api/jobs/{job_id}/cancel").status_code == 200
        job = wait_for(client, job_id)
        assert job["status"] == "cancelled"
        assert client.get(job["urls"]["result"]).status_code == 200


def test_cancel_queued_job_never_runs(settings):
    runner = FakeRunner(gated=True)
    with make_client(settings, runner) as client:
        first = submit(client).json()["id"]
        assert runner.running.wait(10)
        second = submit(client).json()
        assert second["status"] == "queued" and second["queue_position"] == 1
        cancelled = client.post(f"/api/jobs/{second['id']}/cancel").json()
        assert cancelled["status"] == "cancelled"
        runner.gate.set()
        assert wait_for(client, first)["status"] == "done"
        assert len(runner.calls) == 1
        assert client.get(f"/api/jobs/{second['id']}/result").status_code == 404


def test_full_queue_answers_429_with_retry_after(settings):
    runner = FakeRunner(gated=True)
    with make_client(settings, runner) as client:
        ids = [submit(client).json()["id"]]
        assert runner.running.wait(10)
        ids += [submit(client).json()["id"] for _ in range(settings.max_queue)]
        response = submit(client)
        assert response.status_code == 429
        assert int(response.headers["retry-after"]) >= 1
        assert "queue is full" in response.json()["detail"]
        runner.gate.set()
        assert [wait_for(client, i)["status"] for i in ids] == ["done"] * len(ids)
        assert submit(client).status_code == 202


def test_result_before_done_is_409_and_unknown_job_404(settings):
    runner = FakeRunner(gated=True)
    with make_client(settings, runner) as client:
        job_id = submit(client).json()["id"]
        assert client.get(f"/api/jobs/{job_id}/result").status_code == 409
        for bad in ("nope-nope-nope", "..%2F..%2Fetc%2Fpasswd", "a" * 100):
            assert client.get(f"/api/jobs/{bad}").status_code == 404
            assert client.get(f"/api/jobs/{bad}/result").status_code == 404
        runner.gate.set()
        wait_for(client, job_id)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"content": b"not an image at all"}, "content image is not an image"),
        ({"content": png_bytes()[:60]}, "content image is truncated or corrupt"),
        ({"content": b""}, "content image is empty"),
        ({"data": {"size": "abc"}}, "size"),
        ({"data": {"size": "5000"}}, "size must be at most"),
        ({"data": {"iterations": "0"}}, "iterations must be at least 1"),
        ({"data": {"iterations": "5000"}}, "iterations must be at most 1000"),
        ({"data": {"preserve_colors": "lumnance"}}, "did you mean 'luminance'"),
        ({"data": {"init": "/etc/passwd"}}, "unknown init"),
        ({"data": {"style_blend": "1,2"}}, "1 style image(s) but 2 blend weight(s)"),
        ({"data": {"style_blend": "x"}}, "style blend weight must be a number"),
        ({"data": {"style_weight": "-1"}}, "must not be negative"),
        ({"data": {"optimizer": "sgd"}}, "unknown optimizer"),
        ({"data": {"preset": "nope"}}, "nope"),
        ({"styles": 0}, "style"),
        ({"styles": 9}, "at most 8 style images"),
    ],
)
def test_bad_submissions_answer_400(settings, change, message):
    runner = FakeRunner()
    with make_client(settings, runner) as client:
        response = submit(client, **change)
        assert response.status_code == 400, response.text
        assert message in response.json()["detail"]
        assert runner.calls == [] and client.get("/api/jobs").json()["jobs"] == []


def test_decompression_bomb_and_upload_limits(tmp_path):
    settings = ServerSettings(data_dir=tmp_path, devices=("cpu",), max_pixels=1000, max_upload_bytes=50_000)
    with make_client(settings) as client:
        response = submit(client)  # 40x32 = 1280 pixels > 1000
        assert response.status_code == 400 and "decompression bomb" in response.json()["detail"]
        huge = submit(client, content=png_bytes(200, 200))  # about 120 kB
        assert huge.status_code == 413 and "limit" in huge.json()["detail"]

        def chunks():  # no Content-Length: the limit is counted as the body streams in
            yield b'--bnd\r\nContent-Disposition: form-data; name="content"; filename="a.png"\r\n\r\n'
            for _ in range(20):
                yield b"x" * 10_000

        headers = {"content-type": "multipart/form-data; boundary=bnd"}
        streamed = client.post("/api/jobs", content=chunks(), headers=headers)
        assert streamed.status_code == 413


def test_token_required_when_set(tmp_path):
    settings = ServerSettings(data_dir=tmp_path, devices=("cpu",), token="s3cret")
    with make_client(settings) as client:
        assert client.get("/api/health").status_code == 401
        assert client.get("/api/health", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert submit(client, headers={"X-Painterly-Token": "wrong"}).status_code == 401
        assert client.get("/api/health", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert client.get("/api/health", headers={"X-Painterly-Token": "s3cret"}).status_code == 200
        assert client.get("/api/health", params={"token": "s3cret"}).status_code == 200
        assert client.get("/").status_code == 200  # the page itself asks for the token
        response = submit(client, headers={"Authorization": "Bearer s3cret"})
        assert response.status_code == 202
        assert client.get(response.json()["urls"]["self"]).status_code == 401


def test_cors_off_by_default_and_on_when_configured(tmp_path):
    preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    with make_client(ServerSettings(data_dir=tmp_path / "a", devices=("cpu",))) as client:
        response = client.get("/api/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in response.headers
        assert "access-control-allow-origin" not in client.options("/api/jobs", headers=preflight).headers
    allowed = ServerSettings(data_dir=tmp_path / "b", devices=("cpu",), cors_origins=("https://app.example",))
    with make_client(allowed) as client:
        response = client.get("/api/health", headers={"Origin": "https://app.example"})
        assert response.headers["access-control-allow-origin"] == "https://app.example"


def test_restart_keeps_results_and_marks_running_jobs_interrupted(settings):
    runner = FakeRunner(gated=True)
    first = make_client(settings, runner)
    with first:
        runner.gate.set()
        done_id = submit(first).json()["id"]
        assert wait_for(first, done_id)["status"] == "done"
        runner.gate.clear()
        runner.running.clear()
        running_id = submit(first).json()["id"]
        queued_id = submit(first).json()["id"]
        assert runner.running.wait(10)
        # A second server on the same data folder stands for a restart after a crash.
        with make_client(settings, FakeRunner()) as second:
            assert second.get(f"/api/jobs/{done_id}").json()["status"] == "done"
            result = second.get(f"/api/jobs/{done_id}/result")
            assert result.status_code == 200 and Image.open(io.BytesIO(result.content)).width == 32
            for job_id in (running_id, queued_id):
                job = second.get(f"/api/jobs/{job_id}").json()
                assert job["status"] == "interrupted" and "server stopped" in job["error"]
        runner.gate.set()


def test_shutdown_interrupts_running_job_and_saves_it(settings):
    runner = FakeRunner(gated=True)
    with make_client(settings, runner) as client:
        job_id = submit(client).json()["id"]
        assert runner.running.wait(10)
    with make_client(settings) as client:
        job = client.get(f"/api/jobs/{job_id}").json()
        assert job["status"] == "interrupted"
        assert client.get(f"/api/jobs/{job_id}/result").status_code == 200


def test_runner_errors_fail_the_job_with_their_message(settings):
    from painterly.errors import PainterlyError

    with make_client(settings, FakeRunner(error=PainterlyError("the loss became nan"))) as client:
        job = wait_for(client, submit(client).json()["id"])
        assert job["status"] == "failed" and job["error"] == "the loss became nan"
    with make_client(settings, FakeRunner(error=RuntimeError("boom /secret/path"))) as client:
        job = wait_for(client, submit(client).json()["id"])
        assert job["status"] == "failed" and job["error"] == "internal error: RuntimeError"


def test_retention_deletes_old_records_and_files(settings):
    with make_client(settings) as client:
        job_id = submit(client).json()["id"]
        wait_for(client, job_id)
        store, manager = client.app.state.store, client.app.state.manager  # type: ignore[attr-defined]
        path = store.result_path(store.get(job_id))
        assert path is not None and path.exists()
        orphan = settings.results_dir / "orphan.png"
        orphan.write_bytes(b"x")
        assert manager.cleanup() == 0 and path.exists()
        store.update(job_id, created=time.time() - settings.retention_hours * 3600 - 10)
        import os

        os.utime(orphan, (0, 0))
        assert manager.cleanup() == 1
        assert not path.exists() and not orphan.exists()
        assert client.get(f"/api/jobs/{job_id}").status_code == 404


def test_health_and_config_come_from_the_library(settings):
    from painterly.optimization import TransferSettings

    with make_client(settings) as client:
        assert client.get("/api/health").json()["status"] == "ok"
        config = client.get("/api/config").json()
        assert config["defaults"]["iterations"] == TransferSettings().iterations
        assert config["limits"]["max_size"] == settings.max_size
        assert "luminance" in config["choices"]["preserve_colors"]
        from painterly.settings import SERVER_FIELDS

        fields = {f["name"]: f for f in config["fields"]}
        assert list(fields) == [f.name for f in SERVER_FIELDS]  # one declaration, in its order
        assert fields["size"]["maximum"] == settings.max_size and fields["scales"]["maximum"] == 8
        assert fields["optimizer"]["choices"] == ["lbfgs", "adam"] and fields["seed"]["kind"] == "int"
        assert all(f["help"] and f["group"] for f in config["fields"])
        page = client.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert client.get("/docs").status_code == 404  # off by default: it loads scripts from a CDN
        assert client.get("/redoc").status_code == 404
        assert "/api/jobs" in client.get("/openapi.json").json()["paths"]


def test_time_limit_is_offered_and_reaches_the_painter(settings):
    """Issue 9: the page offers "about 1 minute / 3 / 10", wired to the library's ``time_limit``."""
    runner = FakeRunner()
    with make_client(settings, runner) as client:
        fields = {f["name"]: f for f in client.get("/api/config").json()["fields"]}
        limit = fields["time_limit"]
        assert [s["value"] for s in limit["suggestions"]] == [60, 180, 600]
        assert [s["label"] for s in limit["suggestions"]][0] == "about 1 minute"
        assert limit["optional"] and limit["default"] is None and limit["kind"] == "float"
        assert all("suggestions" not in f for name, f in fields.items() if name != "time_limit")
        for seconds in (60, 180, 600):
            response = submit(client, data={"time_limit": str(seconds)})
            assert response.status_code == 202, response.text
            wait_for(client, response.json()["id"])
        assert [call[2].time_limit for call in runner.calls] == [60.0, 180.0, 600.0]
        response = submit(client)  # no limit: the field is left out
        wait_for(client, response.json()["id"])
        assert runner.calls[-1][2].time_limit is None
        for bad in ("0", "-5", "soon", "nan"):
            response = submit(client, data={"time_limit": bad})
            assert response.status_code == 400, (bad, response.text)
            assert "time" in response.json()["detail"].lower()
        script = client.get("/static/app.js").text
        assert "field.suggestions" in script  # the page builds the choice from the config


# -- fast stylization -------------------------------------------------------------------------------


class FakeModel:
    def __init__(self, name):
        self.name = name

    def stylize(self, image, *, size=None, preserve_colors="none"):
        if size:
            image = image.resize((size, max(1, size * image.height // image.width)))
        return Image.new("RGB", image.size, (200, 50, 50))


class FakeFeedforward:
    def __init__(self):
        self.loaded = []

    def list_models(self):
        return [
            {
                "name": "mosaic",
                "path": "/secret/models/mosaic.safetensors",
                "style": "mosaic.jpg",
                "width": 16,
            }
        ]

    def load_model(self, name_or_path, device="auto"):
        self.loaded.append(name_or_path)
        return FakeModel(name_or_path)


def test_fast_stylization(settings):
    backend = FakeFeedforward()
    with make_client(settings, stylize_backend=backend) as client:
        models = client.get("/api/models").json()["models"]
        assert models == [{"name": "mosaic", "style": "mosaic.jpg", "width": 16}]  # no server paths
        files = {"image": ("photo.png", png_bytes(), "image/png")}
        response = client.post("/api/stylize", files=files, data={"model": "mosaic", "size": "24"})
        assert response.status_code == 200 and response.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(response.content)).size == (24, 19)
        job_id = response.headers["x-painterly-job"]
        job = client.get(f"/api/jobs/{job_id}").json()
        assert job["kind"] == "stylize" and job["status"] == "done"
        assert client.get(job["urls"]["result"]).content == response.content
        client.post("/api/stylize", files=files, data={"model": "mosaic"})
        assert backend.loaded == ["mosaic"]  # loaded once, then kept
        bad = client.post("/api/stylize", files=files, data={"model": "mosiac"})
        assert bad.status_code == 400 and "did you mean 'mosaic'" in bad.json()["detail"]
        path = client.post("/api/stylize", files=files, data={"model": "/secret/models/mosaic.safetensors"})
        assert path.status_code == 400
        corrupt = client.post(
            "/api/stylize", files={"image": ("x.png", b"junk", "image/png")}, data={"model": "mosaic"}
        )
        assert corrupt.status_code == 400 and "not an image" in corrupt.json()["detail"]


def test_fast_stylization_unavailable_without_backend(settings, monkeypatch):
    import painterly.server.models as models

    monkeypatch.setattr(models, "default_backend", lambda: None)
    with make_client(settings) as client:
        assert client.get("/api/models").json() == {"models": []}
        files = {"image": ("photo.png", png_bytes(), "image/png")}
        response = client.post("/api/stylize", files=files, data={"model": "mosaic"})
        assert response.status_code == 400 and "not available" in response.json()["detail"]


def test_real_feedforward_module_is_listed(settings):
    feedforward = pytest.importorskip("painterly.feedforward")
    if not hasattr(feedforward, "list_models") or not hasattr(feedforward, "load_model"):
        pytest.skip("painterly.feedforward has no list_models/load_model yet")
    with local_client(create_app(settings)) as client:
        models = client.get("/api/models").json()["models"]
        assert [m["name"] for m in models] == [m["name"] for m in feedforward.list_models()]
        if not models:
            pytest.skip("no trained models installed")
        files = {"image": ("photo.png", png_bytes(), "image/png")}
        response = client.post("/api/stylize", files=files, data={"model": models[0]["name"], "size": "32"})
        assert response.status_code == 200, response.text
        assert max(Image.open(io.BytesIO(response.content)).size) == 32


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"strength": "1.5"}, "strength must be a number from 0"),
        ({"strength": "-0.1"}, "strength must be a number from 0"),
        ({"strength": "nan"}, "strength must be a number from 0 to 1, got 'nan'"),
        ({"strength": "inf"}, "strength must be a number from 0 to 1"),
        ({"strength": "a lot"}, "strength must be a number from 0 to 1"),
        ({"style_mix": "a:0.5,:0.5"}, "expected NAME[:WEIGHT]"),
        ({"style_mix": "a:lots"}, "must be a number"),
        ({"style_mix": "a," * 600}, "style_mix is too long"),
    ],
)
def test_stylize_bad_strength_or_style_mix_is_a_one_line_400(settings, data, message):
    backend = FakeFeedforward()
    with make_client(settings, stylize_backend=backend) as client:
        files = {"image": ("photo.png", b"not an image: never decoded", "image/png")}
        response = client.post("/api/stylize", files=files, data={"model": "mosaic", **data})
        assert response.status_code == 400, response.text
        detail = response.json()["detail"]
        assert message in detail and "\n" not in detail and len(detail) < 600
        assert backend.loaded == []  # refused before any model ran


@pytest.fixture
def model_zoo(tmp_path, monkeypatch):
    """A real single-style model and a real two-style one (tiny, random), found by the library."""
    pytest.importorskip("safetensors")
    from painterly.feedforward.model_file import write_model_file

    from .helpers.models import tiny_cin, tiny_style_net

    folder = tmp_path / "models"
    folder.mkdir()
    write_model_file(folder / "plain.safetensors", tiny_style_net(), {"name": "plain"})
    write_model_file(folder / "zoo.safetensors", tiny_cin(["a", "b"]), {"name": "zoo"})
    monkeypatch.setenv("PAINTERLY_MODELS", str(folder))
    monkeypatch.setenv("PAINTERLY_CACHE", str(tmp_path / "cache"))  # ONNX exports land here
    return folder


def _stylized(client, data: dict, photo: bytes) -> np.ndarray:
    files = {"image": ("photo.png", photo, "image/png")}
    response = client.post("/api/stylize", files=files, data=data)
    assert response.status_code == 200, response.text
    return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB")).astype(np.float64)


def test_stylize_strength_zero_is_the_photo(settings, model_zoo):
    from .helpers.images import make_photo

    buffer = io.BytesIO()
    make_photo(40, 32).save(buffer, format="PNG")
    photo = buffer.getvalue()
    original = np.asarray(Image.open(io.BytesIO(photo)).convert("RGB")).astype(np.float64)
    with local_client(create_app(settings)) as client:
        none = _stylized(client, {"model": "plain", "strength": "0"}, photo)
        half = _stylized(client, {"model": "plain", "strength": "0.5"}, photo)
        full = _stylized(client, {"model": "plain"}, photo)
    assert np.abs(none - original).max() <= 1
    assert np.abs(full - original).mean() > 5  # the model does paint
    assert np.abs(half - (original + full) / 2).max() <= 2


def test_stylize_mixes_a_multi_style_models_styles(settings, model_zoo):
    from .helpers.images import make_photo

    buffer = io.BytesIO()
    make_photo(40, 32).save(buffer, format="PNG")
    photo = buffer.getvalue()
    with local_client(create_app(settings)) as client:
        listed = {m["name"]: m for m in client.get("/api/models").json()["models"]}
        assert listed["zoo"]["styles"] == ["a", "b"] and "styles" not in listed["plain"]
        only_a = _stylized(client, {"model": "zoo", "style_mix": "a:1"}, photo)
        only_b = _stylized(client, {"model": "zoo", "style_mix": "b"}, photo)
        mixed = _stylized(client, {"model": "zoo", "style_mix": "a:0.5,b:0.5"}, photo)
        by_name = _stylized(client, {"model": "b"}, photo)  # a style's name runs its model
        files = {"image": ("photo.png", photo, "image/png")}
        unknown = client.post("/api/stylize", files=files, data={"model": "zoo", "style_mix": "c:1"})
        single = client.post("/api/stylize", files=files, data={"model": "plain", "style_mix": "a:1"})
    assert np.abs(by_name - only_b).max() <= 1
    assert np.abs(mixed - only_a).mean() > 1 and np.abs(mixed - only_b).mean() > 1
    for response in (unknown, single):
        assert response.status_code == 400, response.text
        assert "\n" not in response.json()["detail"]
    assert "no style 'c'" in unknown.json()["detail"]


# -- the command ------------------------------------------------------------------------------------


def test_serve_command_binds_loopback_by_default(tmp_path, monkeypatch):
    import argparse

    from painterly.cli import serve
    from painterly.server import serving

    calls = []
    monkeypatch.setattr(
        serving, "serve", lambda app, host, port: calls.append((app, {"host": host, "port": port}))
    )
    monkeypatch.setenv("PAINTERLY_TOKEN", "from-env")
    parser = argparse.ArgumentParser()
    serve.register(parser.add_subparsers())
    args = parser.parse_args(["serve", "--data", str(tmp_path), "--max-queue", "3", "--device", "cpu"])
    assert args.handler(args) == 0
    app, options = calls[0]
    assert options["host"] == "127.0.0.1" and options["port"] == 8000
    assert app.state.settings.token == "from-env" and app.state.settings.max_queue == 3
    assert app.state.settings.devices == ("cpu",)
    bad = parser.parse_args(["serve", "--port", "0"])
    with pytest.raises(Exception, match="port"):
        bad.handler(bad)


def test_omitted_options_take_the_library_defaults(settings):
    runner = FakeRunner()
    with make_client(settings, runner) as client:
        files = [
            ("content", ("a.png", png_bytes(), "image/png")),
            ("style", ("b.png", png_bytes(), "image/png")),
        ]
        response = client.post("/api/jobs", files=files, data={"size": "32"})
        assert response.status_code == 202, response.text
        wait_for(client, response.json()["id"])
    from painterly.optimization import make_settings

    assert runner.calls[0][2].iterations == make_settings().iterations


# -- issue 10: abuse and bad input ------------------------------------------------------------------


def test_cancelled_queued_job_frees_its_queue_slot(settings):
    runner = FakeRunner(gated=True)
    with make_client(settings, runner) as client:
        first = submit(client).json()["id"]
        assert runner.running.wait(10)
        queued = [submit(client).json()["id"] for _ in range(settings.max_queue)]
        assert submit(client).status_code == 429
        assert client.post(f"/api/jobs/{queued[0]}/cancel").json()["status"] == "cancelled"
        assert client.get("/api/health").json()["queued"] == settings.max_queue - 1
        late = submit(client)
        assert late.status_code == 202, late.text
        assert late.json()["queue_position"] == settings.max_queue
        runner.gate.set()
        for job_id in (first, *queued[1:], late.json()["id"]):
            assert wait_for(client, job_id)["status"] == "done"
        assert len(runner.calls) == 1 + settings.max_queue


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"seed": str(10**30)}, "seed must be at most"),
        ({"seed": "1e3"}, "seed must be a whole number"),
        ({"scales": "9"}, "scales must be at most 8"),
        ({"size": "1024", "iterations": "1000", "scales": "8"}, "megapixel-iterations"),
        ({"tv_form": "squarred"}, "unknown form field 'tv_form'"),
        ({"bogus": "1"}, "unknown form field 'bogus'"),
        ({"style_blend": "0"}, "must not all be zero"),
        ({"quality": "bset"}, "did you mean 'best'"),
    ],
)
def test_settings_checked_before_decoding(settings, data, message):
    runner = FakeRunner()
    with make_client(settings, runner) as client:
        response = submit(client, data=data, content=b"not an image: never decoded")
        assert response.status_code == 400, response.text
        assert message in response.json()["detail"]
        assert runner.calls == []


def test_long_values_are_not_echoed_back(settings):
    with make_client(settings) as client:
        for field in ("preset", "optimizer", "size", "bogus" * 10_000):
            response = submit(client, data={field: "x" * 500_000})
            assert response.status_code == 400, response.text[:200]
            assert len(response.json()["detail"]) < 600


def test_host_allow_list_and_cross_origin_writes(tmp_path):
    settings = ServerSettings(data_dir=tmp_path, devices=("cpu",))
    with make_client(settings) as client:
        assert client.get("/api/health").status_code == 200  # Host: localhost
        assert client.get("/api/health", headers={"Host": "127.0.0.1:8000"}).status_code == 200
        assert client.get("/api/health", headers={"Host": "[::1]:8000"}).status_code == 200
        rebound = client.get("/api/jobs", headers={"Host": "attacker.example:8000"})
        assert rebound.status_code == 421 and "--allow-host" in rebound.json()["detail"]
        assert client.get("/", headers={"Host": "attacker.example"}).status_code == 421
        # A cross-site form POST (the browser sends Origin) creates nothing.
        forged = submit(client, headers={"Origin": "https://evil.example"})
        assert forged.status_code == 403
        assert submit(client, headers={"Origin": "null"}).status_code == 403
        assert submit(client, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
        assert client.get("/api/jobs").json()["jobs"] == []
        same = submit(client, headers={"Origin": "http://localhost"})
        assert same.status_code == 202, same.text
    configured = ServerSettings(data_dir=tmp_path / "b", devices=("cpu",), allowed_hosts=("painter.lan",))
    with make_client(configured) as client:
        assert client.get("/api/health", headers={"Host": "painter.lan:8000"}).status_code == 200
        assert client.get("/api/health").status_code == 421
    with make_client(ServerSettings(data_dir=tmp_path / "c", devices=("cpu",), token="t0k")) as client:
        # With a token, a rebinding page still gets nothing without it; any name is answered.
        headers = {"Host": "192.168.1.5:8000", "Authorization": "Bearer t0k"}
        assert client.get("/api/health", headers=headers).status_code == 200


def test_security_headers_on_every_response(settings):
    with make_client(settings) as client:
        for path in ("/", "/static/index.html", "/static/app.js", "/api/health", "/api/jobs/nope-nope-nope"):
            response = client.get(path)
            assert "frame-ancestors 'none'" in response.headers["content-security-policy"], path
            assert response.headers["x-content-type-options"] == "nosniff", path
            assert response.headers["x-frame-options"] == "DENY", path
            assert response.headers["referrer-policy"] == "no-referrer", path
        assert (
            client.get("/api/health", headers={"Host": "evil.example"}).headers["x-frame-options"] == "DENY"
        )


def test_api_docs_only_when_asked(tmp_path):
    settings = ServerSettings(data_dir=tmp_path, devices=("cpu",), api_docs=True)
    with make_client(settings) as client:
        docs = client.get("/docs")
        assert docs.status_code == 200 and "cdn.jsdelivr.net" in docs.headers["content-security-policy"]
        assert "cdn.jsdelivr.net" not in client.get("/").headers["content-security-policy"]


def test_blank_token_and_bad_retention_are_refused(tmp_path):
    from painterly.errors import PainterlyError

    for token in ("", "   "):
        with pytest.raises(PainterlyError, match="blank"):
            ServerSettings(data_dir=tmp_path, token=token)
    for hours in (float("nan"), float("inf"), 1e-9, 0.0, -1.0, 1e30):
        with pytest.raises(PainterlyError, match="retention hours"):
            ServerSettings(data_dir=tmp_path, retention_hours=hours)


def test_serve_data_that_is_a_file_is_a_clear_one_line_error(tmp_path, run_cli):
    """mkdir said only "File exists"; the message must say the data folder is a file, before serving."""
    from painterly.errors import PainterlyError

    regular = tmp_path / "notes.txt"
    regular.write_text("mine")
    code, _, err = run_cli("serve", "--data", regular, "--device", "cpu", "--port", "18765")
    assert code == 2 and err.count("\n") == 1, err
    assert "notes.txt is a file, not a folder" in err and "--data" in err and "File exists" not in err
    assert regular.read_text() == "mine"
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "results").write_text("x")
    with pytest.raises(PainterlyError, match="results is a file, not a folder"):
        ServerSettings(data_dir=tmp_path / "d").prepare()


def test_existing_data_folder_keeps_its_mode(tmp_path):
    import os
    import stat

    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    ServerSettings(data_dir=shared).prepare()
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    assert stat.S_IMODE((shared / "results").stat().st_mode) == 0o700  # created by the server: private
    create_app(ServerSettings(data_dir=shared, devices=("cpu",)))
    assert stat.S_IMODE((shared / "jobs.sqlite3").stat().st_mode) == 0o600
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    fresh = tmp_path / "new" / "data"
    ServerSettings(data_dir=fresh).prepare()
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o700


def test_token_in_query_is_redacted_from_the_access_log(tmp_path, caplog):
    import logging

    create_app(ServerSettings(data_dir=tmp_path, devices=("cpu",), token="s3cret-value"))
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d',
            "127.0.0.1:5000",
            "GET",
            "/api/jobs/abc/events?token=s3cret-value&x=1",
            "1.1",
            200,
        )
    assert "s3cret-value" not in caplog.text
    assert "token=[redacted]&x=1" in caplog.text


def test_fast_tab_colours_are_the_ones_the_stylizer_takes(settings):
    backend = FakeFeedforward()
    with make_client(settings, stylize_backend=backend) as client:
        config = client.get("/api/config").json()
        assert config["stylize"]["preserve_colors"] == ["none", "luminance"]
        files = {"image": ("photo.png", png_bytes(), "image/png")}
        response = client.post(
            "/api/stylize", files=files, data={"model": "mosaic", "preserve_colors": "histogram"}
        )
        assert response.status_code == 400 and "luminance" in response.json()["detail"]
        assert backend.loaded == []


class PickyModel(FakeModel):
    """Fails like a network with reflection padding on a tiny image (the real one raises RuntimeError)."""

    def stylize(self, image, *, size=None, preserve_colors="none"):
        if min(image.size) <= 4:
            raise RuntimeError("Padding size should be less than the corresponding input dimension")
        return super().stylize(image, size=size, preserve_colors=preserve_colors)


@pytest.mark.parametrize("shape", [(4, 4), (1, 1), (3, 40), (400, 2)])
def test_stylize_tiny_images_are_a_400_not_a_500(settings, shape):
    backend = FakeFeedforward()
    backend.load_model = lambda name, device="auto": PickyModel(name)  # type: ignore[method-assign]
    with make_client(settings, stylize_backend=backend) as client:
        files = {"image": ("tiny.png", png_bytes(*shape), "image/png")}
        response = client.post("/api/stylize", files=files, data={"model": "mosaic"})
        assert response.status_code == 400, response.text
        assert "shorter side" in response.json()["detail"]


def test_stylize_busy_answers_429_at_once_and_health_stays_quick(settings):
    gate, started = threading.Event(), threading.Event()

    class SlowModel(FakeModel):
        def stylize(self, image, *, size=None, preserve_colors="none"):
            started.set()
            gate.wait(20)
            return super().stylize(image, size=size)

    backend = FakeFeedforward()
    backend.load_model = lambda name, device="auto": SlowModel(name)  # type: ignore[method-assign]
    files = {"image": ("photo.png", png_bytes(), "image/png")}
    with make_client(settings, stylize_backend=backend) as client:
        first: list = []
        worker = threading.Thread(
            target=lambda: first.append(client.post("/api/stylize", files=files, data={"model": "mosaic"}))
        )
        worker.start()
        assert started.wait(10)
        began = time.monotonic()
        busy = [client.post("/api/stylize", files=files, data={"model": "mosaic"}) for _ in range(5)]
        assert all(r.status_code == 429 and int(r.headers["retry-after"]) >= 1 for r in busy)
        assert client.get("/api/health").status_code == 200
        assert time.monotonic() - began < 3.0
        gate.set()
        worker.join(20)
        assert first[0].status_code == 200


def test_stylize_results_are_kept_under_a_quota(tmp_path):
    settings = ServerSettings(data_dir=tmp_path, devices=("cpu",), stylize_keep=2)
    with make_client(settings, stylize_backend=FakeFeedforward()) as client:
        files = {"image": ("photo.png", png_bytes(), "image/png")}
        ids = [
            client.post("/api/stylize", files=files, data={"model": "mosaic"}).headers["x-painterly-job"]
            for _ in range(4)
        ]
        assert [client.get(f"/api/jobs/{i}").status_code for i in ids] == [404, 404, 200, 200]
        assert len(list(settings.results_dir.iterdir())) == 2


def test_uploads_are_decoded_small(tmp_path):
    """A big JPEG is decoded at a reduced scale (draft mode), a 16-bit PNG reduced before conversion,
    EXIF orientation kept, and a request's total pixels capped before anything is decoded."""
    from painterly.errors import PainterlyError
    from painterly.server.uploads import Upload, check_headers, decode_shrunk

    big = Image.new("RGB", (4000, 3000), (200, 100, 50))
    jpeg = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: the upright image is 3000x4000
    big.save(jpeg, format="JPEG", exif=exif)
    loads = []
    original_load = Image.Image.load

    def spy(self):  # the size Pillow actually decodes at
        loads.append(self.size)
        return original_load(self)

    try:
        Image.Image.load = spy  # type: ignore[method-assign]
        small = decode_shrunk(Upload(io.BytesIO(jpeg.getvalue()), "photo", 400), max_pixels=40_000_000)
    finally:
        Image.Image.load = original_load  # type: ignore[method-assign]
    assert small.size == (300, 400) and small.mode == "RGB"
    assert loads and max(w * h for w, h in loads) <= 1000 * 750  # 1/4 scale, not 12 MP
    deep = io.BytesIO()
    Image.fromarray(np.full((600, 800), 40000, dtype=np.uint16)).save(deep, format="PNG")
    grey = decode_shrunk(Upload(deep, "deep", 100), max_pixels=40_000_000)
    assert grey.size == (100, 75) and abs(grey.getpixel((5, 5))[0] - 40000 * 255 // 65535) <= 1  # type: ignore[index]
    pngs = [Upload(io.BytesIO(png_bytes(100, 100)), f"image {i}", 64) for i in range(3)]
    check_headers(pngs, max_pixels=10_000, max_request_pixels=30_000)
    with pytest.raises(PainterlyError, match="together"):
        check_headers(pngs, max_pixels=10_000, max_request_pixels=29_999)


def test_serve_refuses_remote_without_token(tmp_path, monkeypatch):
    import argparse

    from painterly.cli import serve
    from painterly.errors import PainterlyError
    from painterly.server import serving

    calls = []
    monkeypatch.setattr(serving, "serve", lambda app, host, port: calls.append(app))
    monkeypatch.delenv("PAINTERLY_TOKEN", raising=False)
    parser = argparse.ArgumentParser()
    serve.register(parser.add_subparsers())

    def run(*argv):
        args = parser.parse_args(["serve", "--data", str(tmp_path), "--device", "cpu", *argv])
        return args.handler(args)

    with pytest.raises(PainterlyError, match="--allow-remote-without-token"):
        run("--host", "0.0.0.0")
    assert calls == []
    with pytest.raises(PainterlyError, match="blank"):
        run("--host", "0.0.0.0", "--token", " ")
    for bad in (["--retention-hours", "nan"], ["--retention-hours", "1e-9"], ["--max-upload-mb", "nan"]):
        with pytest.raises(PainterlyError):
            run(*bad)
    assert run("--host", "0.0.0.0", "--token", "abc") == 0
    assert run("--host", "0.0.0.0", "--allow-remote-without-token", "--allow-host", "painter.lan") == 0
    assert calls[-1].state.settings.allowed_hosts == ("painter.lan",)
    assert run("--api-docs") == 0 and calls[-1].state.settings.api_docs


def test_serve_on_a_port_in_use_is_one_line(tmp_path, run_cli):
    """uvicorn logged the bind error over several lines and exited 3 (issue 10 re-probe)."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = run_cli("serve", "--port", port, "--data", tmp_path / "data", "--device", "cpu")
    assert code == 2 and err.count("\n") == 2 and "Traceback" not in err, err
    assert (
        err.splitlines()[-1].startswith("painterly: error: cannot listen on 127.0.0.1:") and "in use" in err
    )


def test_client_hanging_up_mid_upload_is_not_an_application_error(settings):
    """Each aborted upload made uvicorn log "Exception in ASGI application" and a 40-line traceback."""
    import asyncio

    app = create_app(settings, runner=FakeRunner())
    body = b"--x\r\nContent-Disposition: form-data; name=content; filename=a.png\r\n\r\n"
    messages: list[dict] = [
        {"type": "http.request", "body": body, "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict] = []

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/jobs",
        "raw_path": b"/api/jobs",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"localhost"),
            (b"content-type", b"multipart/form-data; boundary=x"),
            (b"content-length", b"100000"),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    asyncio.run(app(scope, receive, send))  # raised ClientDisconnect, which uvicorn logs as an error
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 400


def test_stylize_records_its_job_in_time_order(settings, model_zoo):
    from .helpers.images import make_photo

    buffer = io.BytesIO()
    make_photo(40, 32).save(buffer, format="PNG")
    with local_client(create_app(settings)) as client:
        _stylized(client, {"model": "plain"}, buffer.getvalue())
        jobs = client.get("/api/jobs").json()
    records = jobs["jobs"] if isinstance(jobs, dict) else jobs
    stylize = [job for job in records if job["kind"] == "stylize"]
    assert stylize and all(job["created"] <= job["started"] <= job["finished"] for job in stylize)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"model": "plain", "bogus": "1"}, "unknown form field 'bogus'"),
        ({"model": ["plain", "plain"]}, "given more than once"),
    ],
)
def test_stylize_refuses_unknown_and_repeated_fields(settings, model_zoo, data, message):
    from .helpers.images import make_photo

    buffer = io.BytesIO()
    make_photo(40, 32).save(buffer, format="PNG")
    with local_client(create_app(settings)) as client:
        upload = {"image": ("p.png", buffer.getvalue(), "image/png")}
        response = client.post("/api/stylize", data=data, files=upload)
        assert response.status_code == 400 and message in response.json()["detail"]
        response = client.post("/api/stylize", json={"model": "plain"})
        assert response.status_code == 400 and "multipart/form-data" in response.json()["detail"]
