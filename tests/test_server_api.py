"""The HTTP API, through FastAPI's test client. Most tests use a fake runner (fast, controllable);
one runs the real image optimization on tiny images."""

from __future__ import annotations

import io
import json
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
from fastapi.testclient import TestClient  # noqa: E402

from painterly.losses import LossParts  # noqa: E402
from painterly.optimization import StopTransfer, TransferResult  # noqa: E402
from painterly.progress import Progress  # noqa: E402
from painterly.server import ServerSettings, create_app  # noqa: E402


def png_bytes(width: int = 40, height: int = 32, seed: int = 0, fmt: str = "PNG") -> bytes:
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


class FakeRunner:
    """Stands in for ``run_transfer``: reports ``steps`` progress calls, optionally waiting on a gate."""

    def __init__(
        self, steps: int = 3, gated: bool = False, delay: float = 0.0, error: Exception | None = None
    ):
        self.steps = steps
        self.gate = threading.Event()
        if not gated:
            self.gate.set()
        self.delay = delay
        self.error = error
        self.running = threading.Event()
        self.calls: list[tuple] = []

    def __call__(self, content, styles, settings, callback):
        self.calls.append((content, styles, settings))
        self.running.set()
        if self.error is not None:
            raise self.error
        size = (settings.size, max(1, settings.size * content.height // content.width))
        interrupted = False
        try:
            for step in range(1, self.steps + 1):
                while not self.gate.wait(0.02):
                    callback(_progress(step - 1, self.steps, size))  # lets a cancel through while gated
                time.sleep(self.delay)
                callback(_progress(step, self.steps, size))
        except StopTransfer:
            interrupted = True
        return TransferResult(content.resize(size), settings, None, interrupted)


def _progress(step: int, total: int, size: tuple[int, int]) -> Progress:
    return Progress(
        step, total, step, total, 1, 1, size, LossParts(1.0, 2.0, 3.0), torch.rand(1, 3, size[1], size[0])
    )


@pytest.fixture
def settings(tmp_path):
    return ServerSettings(data_dir=tmp_path / "data", devices=("cpu",), max_queue=2, preview_interval=0.0)


def make_client(settings, runner=None, **kwargs) -> TestClient:
    return TestClient(create_app(settings, runner=runner or FakeRunner(), **kwargs))


def submit(client, *, styles: int = 1, data: dict | None = None, content: bytes | None = None, **kw):
    files = [("content", ("photo.png", content if content is not None else png_bytes(), "image/png"))]
    files += [("style", (f"style{i}.png", png_bytes(36, 36, seed=i + 1), "image/png")) for i in range(styles)]
    return client.post("/api/jobs", files=files, data={"size": "32", "iterations": "3", **(data or {})}, **kw)


def wait_for(
    client, job_id: str, statuses=("done", "failed", "cancelled", "interrupted"), timeout=30.0, **kw
):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/api/jobs/{job_id}", **kw).json()
        if body["status"] in statuses:
            return body
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} still {body['status']} after {timeout} s")


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
    with TestClient(create_app(settings)) as client:
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
        ({"data": {"iterations": "0"}}, "iterations must be a positive"),
        ({"data": {"iterations": "5000"}}, "iterations must be at most 1000"),
        ({"data": {"preserve_colors": "lumnance"}}, "did you mean 'luminance'"),
        ({"data": {"init": "/etc/passwd"}}, "init must be one of"),
        ({"data": {"style_blend": "1,2"}}, "1 style image(s) but 2 blend weight(s)"),
        ({"data": {"style_blend": "x"}}, "style blend must be"),
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
        store, manager = client.app.state.store, client.app.state.manager
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
        page = client.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert client.get("/docs").status_code == 200
        assert "/api/jobs" in client.get("/openapi.json").json()["paths"]


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
    with TestClient(create_app(settings)) as client:
        models = client.get("/api/models").json()["models"]
        assert [m["name"] for m in models] == [m["name"] for m in feedforward.list_models()]
        if not models:
            pytest.skip("no trained models installed")
        files = {"image": ("photo.png", png_bytes(), "image/png")}
        response = client.post("/api/stylize", files=files, data={"model": models[0]["name"], "size": "32"})
        assert response.status_code == 200, response.text
        assert max(Image.open(io.BytesIO(response.content)).size) == 32


# -- the command ------------------------------------------------------------------------------------


def test_serve_command_binds_loopback_by_default(tmp_path, monkeypatch):
    import argparse

    import uvicorn

    from painterly.cli import serve

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
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
