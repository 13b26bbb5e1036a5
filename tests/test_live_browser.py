"""The Live and Video tabs in a real browser: Debian's chromium with its fake camera, via Playwright.

The camera plays frames of ``../shared/videos/vtest.mp4`` (written as a .y4m file, the format
chromium's fake capture reads); without that clip, chromium's own test pattern. Set
``PAINTERLY_LIVE_SCREENSHOT=docs/screenshot-live-phone.png`` to also write the README's phone-sized
screenshot of the Live tab, painted by the shipped model instead of a tiny random network.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
pytest.importorskip("websockets")
sync_api = pytest.importorskip("playwright.sync_api")
av = pytest.importorskip("av")
pytest.importorskip("cv2")

from painterly.server import ServerSettings, create_app  # noqa: E402
from painterly.server.serving import uvicorn_config  # noqa: E402

from .helpers.server import TinyModels  # noqa: E402
from .helpers.video import gradient_clip  # noqa: E402

CHROMIUM = os.environ.get("PAINTERLY_CHROMIUM", "/usr/bin/chromium")
CLIP = Path(__file__).resolve().parents[2] / "shared" / "videos" / "vtest.mp4"
SCREENSHOT = os.environ.get("PAINTERLY_LIVE_SCREENSHOT")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists() and not shutil.which("chromium"), reason="needs chromium"),
]


def write_y4m(clip: Path, path: Path, frames: int = 24, size: tuple[int, int] = (320, 240)) -> Path:
    """The first frames of ``clip`` as a YUV4MPEG2 file (4:2:0), chromium's fake camera input."""
    import cv2

    width, height = size
    with av.open(str(clip)) as container, path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for index, frame in enumerate(container.decode(video=0)):
            if index >= frames:
                break
            rgb = cv2.resize(frame.to_ndarray(format="rgb24"), size, interpolation=cv2.INTER_AREA)
            out.write(b"FRAME\n" + cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


@pytest.fixture
def server(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = None if SCREENSHOT else TinyModels(tmp_path)
    app = create_app(
        ServerSettings(data_dir=tmp_path / "data", devices=("cpu",), preview_interval=0.1),
        stylize_backend=backend,
    )
    server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(30)


@pytest.fixture
def browser(tmp_path):
    args = ["--no-sandbox", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
    if CLIP.exists():
        args.append(f"--use-file-for-fake-video-capture={write_y4m(CLIP, tmp_path / 'camera.y4m')}")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        yield browser
        browser.close()


# Mean absolute difference (0-255) between the frame last sent and the painted frame on screen.
DIFFERENCE = """() => {
  const a = document.querySelector('#live-capture'), b = document.querySelector('#live-canvas');
  const w = Math.min(a.width, b.width), h = Math.min(a.height, b.height);
  const x = a.getContext('2d').getImageData(0, 0, w, h).data;
  const y = b.getContext('2d').getImageData(0, 0, w, h).data;
  let sum = 0;
  for (let i = 0; i < x.length; i += 4) {
    for (let c = 0; c < 3; c++) sum += Math.abs(x[i + c] - y[i + c]);
  }
  return sum / (3 * w * h);
}"""
PAINTED = "() => document.querySelector('#live-canvas').toDataURL('image/png')"


def test_live_camera_paints_frames_and_snapshot_downloads_a_png(server, browser, tmp_path):
    viewport = {"width": 390, "height": 844} if SCREENSHOT else {"width": 1100, "height": 800}
    context = browser.new_context(viewport=viewport, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server)
    page.click("#tab-live")
    page.wait_for_function("() => document.querySelector('#live-model').options.length > 0")
    page.select_option("#live-size", "240")
    page.click("#live-start")
    timeout = 120_000 if SCREENSHOT else 60_000
    page.wait_for_function(
        "() => Number(document.querySelector('#live-stats').dataset.fps || 0) > 0", timeout=timeout
    )
    stats = page.locator("#live-stats").inner_text()
    assert "frames/s" in stats and "ms latency" in stats, stats
    size = page.evaluate(
        "() => [document.querySelector('#live-canvas').width, document.querySelector('#live-canvas').height]"
    )
    assert size[1] == 240 and size[0] >= 240, size
    assert page.evaluate(DIFFERENCE) > 10  # painted, not the camera's frame
    first = page.evaluate(PAINTED)
    page.wait_for_function(
        f"() => document.querySelector('#live-canvas').toDataURL('image/png') !== {first!r}"
    )
    assert page.locator("#live-error").inner_text() == ""

    with page.expect_download() as info:
        page.click("#live-snapshot")
    with Image.open(info.value.path()) as snapshot:
        assert snapshot.format == "PNG" and list(snapshot.size) == size
        assert np.asarray(snapshot.convert("RGB")).std() > 5
    assert info.value.suggested_filename.endswith(".png")

    if SCREENSHOT:
        page.wait_for_timeout(3000)
        page.screenshot(path=SCREENSHOT)
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    page.click("#live-start")  # stop
    page.wait_for_function("() => document.querySelector('#live-start').textContent === 'Start camera'")
    assert errors == []
    context.close()


def test_video_job_completes_in_the_browser_with_audio(server, browser, tmp_path):
    if SCREENSHOT:
        pytest.skip("screenshot run")
    clip = gradient_clip(tmp_path / "clip.mp4", seconds=1.0, size=(96, 64))
    context = browser.new_context(viewport={"width": 1100, "height": 800}, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server)
    page.locator("#tab-video").wait_for(state="visible")
    page.click("#tab-video")
    page.wait_for_function("() => document.querySelector('#video-model').options.length > 0")
    page.set_input_files("#video-file", str(clip))
    page.click("#video-start")
    download = page.locator("#video-download")
    download.wait_for(state="visible", timeout=120_000)
    assert page.locator("#video-status").inner_text().startswith("Done: 10 frames"), page.locator(
        "#video-status"
    ).inner_text()
    with page.expect_download() as info:
        download.click()
    path = Path(info.value.path())
    with av.open(str(path)) as container:
        assert container.streams.audio and container.streams.video
        assert sum(1 for _ in container.decode(video=0)) == 10
    if page.evaluate(
        "() => document.createElement('video').canPlayType('video/mp4; codecs=\"avc1.64001e\"')"
    ):
        page.wait_for_function(
            "() => document.querySelector('#video-result').readyState >= 1", timeout=20_000
        )
        assert page.evaluate("() => document.querySelector('#video-result').duration") > 0.5
    page.click("#tab-results")
    page.locator("#results li video").wait_for(timeout=10_000)
    assert page.locator("#results li").first.inner_text().startswith("Video")
    assert errors == []
    context.close()
