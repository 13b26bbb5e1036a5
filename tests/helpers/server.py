"""The HTTP API and the live socket under test: fake and tiny backends, clients, uploads, polling.

Needs fastapi: import it after the test module's own ``pytest.importorskip("fastapi")``.
"""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from painterly.optimization import StopTransfer, TransferResult  # noqa: E402
from painterly.progress import Progress  # noqa: E402
from painterly.server import ServerSettings, create_app  # noqa: E402

from .images import wavy_photo  # noqa: E402
from .models import tiny_style_net  # noqa: E402

# Image jobs (/api/jobs) with a fake runner ------------------------------------------------------------


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
    return Progress(step, total, step, total, 1, 1, size, _losses(), torch.rand(1, 3, size[1], size[0]))


def _losses() -> dict[str, float]:
    """Named loss values, as the painter reports them: a dict with "total"."""
    return {"content": 1.0, "style": 2.0, "tv": 3.0, "total": 6.0}


def make_client(settings, runner=None, **kwargs) -> TestClient:
    return local_client(create_app(settings, runner=runner or FakeRunner(), **kwargs))


def local_client(app) -> TestClient:
    """A client that calls the app as http://localhost (the default Host allow-list is loopback names)."""
    return TestClient(app, base_url="http://localhost")


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


# Fast stylization, the live socket and video jobs with a tiny real network ------------------------------


class TinyModels:
    """A stylize backend with one real (tiny, random) network: the live path runs for real."""

    def __init__(self, folder: Path) -> None:
        from painterly.feedforward.model_file import write_model_file

        self.path = write_model_file(
            folder / "tiny.safetensors", tiny_style_net(), {"name": "tiny", "style": "s.png", "steps": 0}
        )

    def list_models(self):
        return [{"name": "tiny", "path": str(self.path), "style": "s.png"}]

    def load_model(self, name, device="auto"):
        from painterly.feedforward.inference import StyleModel

        return StyleModel(self.path, device="cpu", backend="torch")


def jpeg(width: int = 64, height: int = 48, seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    wavy_photo(seed, (width, height)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def client_for(tmp_path, backend, **settings) -> TestClient:
    app = create_app(
        ServerSettings(data_dir=tmp_path / "data", devices=("cpu",), **settings), stylize_backend=backend
    )
    return TestClient(app, base_url="http://localhost")


def wait_final(client, job_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in ("done", "failed", "cancelled", "interrupted"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")
