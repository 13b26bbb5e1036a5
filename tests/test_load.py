"""A bounded load test against a real server process on 127.0.0.1: bursts of concurrent submissions
and status polls. The server must stay up with bounded memory, answer every request with 2xx or
429, and finish every job it accepted."""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")
pytest.importorskip("fastapi")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc"),
]

WAVES, PER_WAVE, POLLS_PER_WAVE, CLIENTS = 4, 12, 40, 12
SERVER = """
import sys, uvicorn
from painterly.server import ServerSettings, create_app
settings = ServerSettings(data_dir=sys.argv[1], devices=("cpu",), max_queue=4, max_size=64, max_iterations=5)
uvicorn.run(create_app(settings), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


def png(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (36, 44, 3), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
def server(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-c", SERVER, str(tmp_path), str(port)])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, "server exited"
        try:
            if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.1)
    yield url, process
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()


def test_bursts_of_submissions_and_polls(server):
    url, process = server
    content, style = png(1), png(2)
    accepted: list[str] = []
    codes: list[int] = []
    with httpx.Client(base_url=url, timeout=30) as client:
        # Warm up (the first job loads the network), then take the memory baseline.
        first = client.post(
            "/api/jobs", files={"content": content, "style": style}, data={"size": "32", "iterations": "2"}
        )
        assert first.status_code == 202
        accepted.append(first.json()["id"])
        wait_all(client, accepted, timeout=60)
        baseline = rss_mb(process.pid)

        def submit(i: int) -> int:
            response = client.post(
                "/api/jobs",
                files={"content": content, "style": style},
                data={"size": "32", "iterations": "2", "seed": str(i)},
            )
            if response.status_code == 202:
                accepted.append(response.json()["id"])
            elif response.status_code == 429:
                assert int(response.headers["Retry-After"]) >= 1
            return response.status_code

        def poll(i: int) -> int:
            target = accepted[i % len(accepted)]
            return client.get(f"/api/jobs/{target}" if i % 4 else "/api/jobs").status_code

        started = time.monotonic()
        with ThreadPoolExecutor(CLIENTS) as pool:
            for wave in range(WAVES):
                codes += pool.map(submit, range(wave * PER_WAVE, (wave + 1) * PER_WAVE))
                codes += pool.map(poll, range(POLLS_PER_WAVE))
                time.sleep(0.5)
        assert time.monotonic() - started < 120

        assert set(codes) <= {200, 202, 429}, sorted(set(codes))
        assert codes.count(202) >= 4 and codes.count(429) >= 1  # the queue did fill up
        statuses = wait_all(client, accepted, timeout=180)
        assert statuses == ["done"] * len(accepted)
        assert client.get("/api/health").json()["status"] == "ok"
        assert process.poll() is None
        grown = rss_mb(process.pid) - baseline
        assert grown < 400, f"server memory grew by {grown:.0f} MB"


def wait_all(client, ids: list[str], timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    statuses = []
    for job_id in ids:
        while True:
            status = client.get(f"/api/jobs/{job_id}").json()["status"]
            if status in ("done", "failed", "cancelled", "interrupted"):
                statuses.append(status)
                break
            assert time.monotonic() < deadline, f"job {job_id} still {status}"
            time.sleep(0.1)
    return statuses
