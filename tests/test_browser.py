"""The page in a real browser: Playwright driving Debian's chromium, headless, against a live server.

Set ``PAINTERLY_SCREENSHOT=docs/screenshot.png`` to also write the README's screenshot (with a
larger painting; the phone-sized one goes next to it with a ``-phone`` suffix).
"""

from __future__ import annotations

import base64
import contextlib
import io
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
sync_api = pytest.importorskip("playwright.sync_api")

from painterly.server import ServerSettings, create_app  # noqa: E402

CHROMIUM = os.environ.get("PAINTERLY_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT = os.environ.get("PAINTERLY_SCREENSHOT")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists() and not shutil.which("chromium"), reason="needs chromium"),
]


def landscape(width: int, height: int) -> bytes:
    """A sky, a sun and two hills: something recognisable to paint."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.zeros((height, width, 3), np.float32)
    image[...] = np.stack([0.45 + 0.4 * y / height, 0.65 + 0.2 * y / height, np.full_like(y, 0.95)], -1)
    sun = (x - 0.72 * width) ** 2 + (y - 0.3 * height) ** 2 < (0.12 * height) ** 2
    image[sun] = (1.0, 0.85, 0.3)
    for base, amp, colour in ((0.62, 0.08, (0.35, 0.6, 0.3)), (0.75, 0.06, (0.2, 0.45, 0.2))):
        hill = y > height * (base + amp * np.sin(x / width * 6.0 + base * 9))
        image[hill] = colour
    return _png(image)


def swirls(size: int) -> bytes:
    """Bold colour swirls: a stand-in for a painting."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    r = np.sqrt((x - 0.5) ** 2 + (y - 0.5) ** 2)
    angle = np.arctan2(y - 0.5, x - 0.5)
    wave = np.sin(18 * r + 3 * angle)
    image = np.stack([0.5 + 0.45 * wave, 0.35 + 0.3 * np.sin(9 * x + 2 * wave), 0.55 - 0.4 * wave], -1)
    return _png(image)


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray((np.clip(array, 0, 1) * 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


class FakeFeedforward:
    def list_models(self):
        return [{"name": "swirls", "path": "/nowhere", "style": "swirls.png", "width": 16}]

    def load_model(self, name_or_path, device="auto"):
        class Model:
            def stylize(self, image, *, size=None, preserve_colors="none"):
                return image.resize((size, size * image.height // image.width)) if size else image.copy()

        return Model()


class MixingFeedforward:
    """A single-style and a two-style model; remembers the mix and strength each request asked for."""

    def __init__(self):
        self.calls: list[dict] = []

    def list_models(self):
        return [
            {"name": "plain", "path": "/nowhere/plain", "width": 16},
            {"name": "duo", "path": "/nowhere/duo", "width": 16, "metadata": {"styles": ["wave", "scream"]}},
        ]

    def load_model(self, name_or_path, device="auto"):
        calls = self.calls

        class Model:
            def stylize(self, image, *, size=None, preserve_colors="none", **mixing):
                calls.append({"model": name_or_path, **mixing})
                return image.copy()

        return Model()


@pytest.fixture
def server(tmp_path):
    with _serve(tmp_path, FakeFeedforward()) as url:
        yield url


@contextlib.contextmanager
def _serve(tmp_path, backend, runner=None):
    """Runs the app on a free loopback port in a thread; yields its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(
        ServerSettings(data_dir=tmp_path / "data", devices=("cpu",), preview_interval=0.1),
        stylize_backend=backend,
        runner=runner,
    )
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


# Records every status line and image source the page shows, so that a fast job can't slip by.
RECORDER = """
window.__seen = {status: [], images: []};
document.addEventListener("DOMContentLoaded", () => {
  new MutationObserver(() => {
    const status = document.querySelector("#paint-status").textContent;
    const src = document.querySelector("#paint-image").getAttribute("src") || "";
    if (window.__seen.status.at(-1) !== status) window.__seen.status.push(status);
    if (window.__seen.images.at(-1) !== src) window.__seen.images.push(src.slice(0, 40));
  }).observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true});
});
"""

DROP = """([name, data]) => {
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, {type: "image/png"}));
  const zone = document.querySelector("#style-drop");
  zone.dispatchEvent(new DragEvent("dragover", {dataTransfer: transfer, bubbles: true, cancelable: true}));
  zone.dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true, cancelable: true}));
}"""


def test_paint_watch_and_download(server, browser, tmp_path, monkeypatch):
    # The event stream sends the latest progress every EVENT_POLL seconds; a CPU with AMX painted
    # 48 px x 8 iterations between two of them and the page went from loading to done. Poll often
    # and paint a little longer, so that progress shows on any CPU.
    monkeypatch.setattr("painterly.server.routes.jobs.EVENT_POLL", 0.02)
    size, iterations = (256, 40) if SCREENSHOT else (64, 40)
    context = browser.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True)
    page = context.new_page()
    page.add_init_script(RECORDER)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server)
    # The Options form is built from /api/config after the page loads: wait for its size field.
    page.wait_for_function(
        "() => { const f = document.querySelector('#paint-form');"
        " return !!(f && f.size && f.size.value !== ''); }"
    )

    page.set_input_files(
        "#content-file", files=[{"name": "photo.png", "mimeType": "image/png", "buffer": landscape(320, 240)}]
    )
    page.evaluate(DROP, ["swirls.png", base64.b64encode(swirls(160)).decode()])  # drag and drop
    assert page.locator("#content-drop .thumbs img").count() == 1
    assert page.locator("#style-drop .thumbs img").count() == 1
    page.click("#options summary")
    config = page.evaluate("() => fetch('/api/config').then((r) => r.json())")
    built = page.eval_on_selector_all("#settings-fields [name]", "nodes => nodes.map((n) => n.name)")
    assert built == [
        f["name"] for f in config["fields"] if f["name"] != "style_blend"
    ]  # from the declaration
    limits = page.eval_on_selector_all(
        "#settings-fields select[name=time_limit] option", "os => os.map((o) => [o.value, o.textContent])"
    )  # issue 9: the time budget as a choice
    assert limits == [
        ["", "no limit"],
        ["60", "about 1 minute"],
        ["180", "about 3 minutes"],
        ["600", "about 10 minutes"],
    ]
    page.fill("input[name=size]", str(size))
    page.fill("input[name=iterations]", str(iterations))
    page.click("#start")

    download_link = page.locator("#download")
    download_link.wait_for(state="visible", timeout=120_000)
    seen = page.evaluate("window.__seen")
    assert any(text.startswith("Iteration") for text in seen["status"]), seen["status"]
    assert any(src.startswith("data:image/jpeg") for src in seen["images"]), seen["images"]
    assert page.locator("#paint-status").inner_text().startswith("Done")
    assert page.locator("#paint-progress").evaluate("bar => bar.value") == 1
    losses = page.locator("#paint-losses").inner_text()
    assert "content" in losses and "style" in losses, losses  # whatever names the painter reports

    with page.expect_download() as info:
        download_link.click()
    path = info.value.path()
    with Image.open(path) as result:
        assert result.format == "PNG"
        assert result.size == (size, size * 3 // 4)
    assert info.value.suggested_filename.startswith("painterly-")

    if SCREENSHOT:
        page.screenshot(path=SCREENSHOT)
    page.screenshot(path=str(tmp_path / "desktop.png"))

    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.locator("#start").bounding_box()["width"] > 200
    phone = (
        Path(SCREENSHOT).with_name(Path(SCREENSHOT).stem + "-phone.png") if SCREENSHOT else tmp_path / "p.png"
    )
    page.screenshot(path=str(phone), full_page=True)

    page.click("#tab-results")
    page.locator("#results li").first.wait_for(timeout=10_000)
    assert page.locator("#results li").count() == 1
    assert page.locator("#results .status-done").count() == 1
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert errors == []
    context.close()


def test_fast_stylization_tab(server, browser, tmp_path):
    context = browser.new_context(viewport={"width": 390, "height": 844}, accept_downloads=True)
    page = context.new_page()
    page.goto(server)
    page.click("#tab-fast")
    page.wait_for_function("() => document.querySelector('#fast-model').options.length === 1")
    colours = page.eval_on_selector_all(
        "#fast-form select[name=preserve_colors] option", "os => os.map((o) => o.value)"
    )
    assert colours == ["none", "luminance"]  # a trained network takes no histogram matching
    page.set_input_files(
        "#fast-file", files=[{"name": "photo.png", "mimeType": "image/png", "buffer": landscape(80, 60)}]
    )
    page.fill("#fast-form input[name=size]", "40")
    page.click("#stylize")
    page.wait_for_function(
        "() => !document.querySelector('#fast-download').hidden || "
        "document.querySelector('#fast-error').textContent",
        timeout=20_000,
    )
    assert page.locator("#fast-error").inner_text() == ""
    with page.expect_download() as info:
        page.click("#fast-download")
    with Image.open(info.value.path()) as result:
        assert result.format == "PNG" and result.size == (40, 30)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(tmp_path / "fast.png"), full_page=True)
    context.close()


def test_fast_tab_strength_and_style_sliders(browser, tmp_path):
    backend = MixingFeedforward()
    with _serve(tmp_path, backend) as url:
        page = browser.new_page()
        page.goto(url)
        page.click("#tab-fast")
        page.wait_for_function("() => document.querySelector('#fast-model').options.length === 2")
        page.set_input_files(
            "#fast-file", files=[{"name": "photo.png", "mimeType": "image/png", "buffer": landscape(80, 60)}]
        )

        def stylize():
            count = len(backend.calls)
            page.click("#stylize")
            page.wait_for_function("() => !document.querySelector('#stylize').disabled", timeout=20_000)
            assert page.locator("#fast-error").inner_text() == ""
            assert len(backend.calls) == count + 1
            return backend.calls[-1]

        page.select_option("#fast-model", "plain")
        assert page.locator("#fast-blend").is_hidden()
        page.fill("#fast-form input[name=strength]", "0.5")
        assert stylize() == {"model": "plain", "strength": 0.5}
        page.select_option("#fast-model", "duo")
        sliders = page.locator("#fast-blend input")
        assert sliders.count() == 2 and page.locator("#fast-blend").inner_text().split() == ["wave", "scream"]
        sliders.nth(0).fill("0.25")
        page.fill("#fast-form input[name=strength]", "1")
        assert stylize() == {"model": "duo", "style_mix": "wave:0.25,scream:1"}
        page.close()


class MaskRecorder:
    """Stands in for ``run_transfer``: keeps the masks a job was given, returns the photo."""

    def __init__(self):
        self.masks: list | None = None
        self.calls = 0

    def __call__(self, content, styles, settings, callback, masks=None):
        from painterly.optimization import TransferResult

        self.calls += 1
        self.masks = masks
        return TransferResult(content.copy(), settings, None)


def test_paint_regions_brushed_on_the_photo(browser, tmp_path):
    """Two styles: brush style 2 over the right half of the photo; the job gets two masks, style 1
    the left and style 2 the right; the eraser and Clear take regions back."""
    runner = MaskRecorder()
    with _serve(tmp_path, FakeFeedforward(), runner) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url)
        page.wait_for_function(
            "() => { const f = document.querySelector('#paint-form'); return f && f.size.value; }"
        )
        page.set_input_files(
            "#content-file",
            files=[{"name": "photo.png", "mimeType": "image/png", "buffer": landscape(320, 240)}],
        )
        assert page.locator("#regions").is_hidden()  # one style (none yet): nothing to divide
        page.set_input_files(
            "#style-file",
            files=[
                {"name": f"s{i}.png", "mimeType": "image/png", "buffer": swirls(64 + i)} for i in range(2)
            ],
        )
        page.locator("#regions").wait_for(state="visible")
        page.click("#regions summary")
        assert page.locator("#region-styles button").all_inner_texts() == ["Style 1 (the rest)", "Style 2"]
        page.click("#region-styles button >> nth=1")
        page.locator("#region-brush").fill("120")
        canvas = page.locator("#region-canvas")
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        assert box is not None and box["width"] > 200

        def sweep(x0: float, x1: float) -> None:  # a zigzag over part of the photo, in fractions
            for row in np.linspace(0.02, 0.98, 8):
                page.mouse.move(box["x"] + box["width"] * x0, box["y"] + box["height"] * row)
                page.mouse.down()
                page.mouse.move(box["x"] + box["width"] * x1, box["y"] + box["height"] * row, steps=6)
                page.mouse.up()

        before = page.evaluate(
            "() => Array.from(document.querySelector('#region-canvas').getContext('2d')"
            ".getImageData(300, 120, 1, 1).data)"
        )
        sweep(0.6, 0.999)
        after = page.evaluate(
            "() => Array.from(document.querySelector('#region-canvas').getContext('2d')"
            ".getImageData(300, 120, 1, 1).data)"
        )
        assert after != before  # the brushed region shows tinted over the photo
        page.click("#region-eraser")  # the eraser gives a strip back to style 1, then Style 2 paints again
        assert page.get_attribute("#region-eraser", "aria-pressed") == "true"
        sweep(0.9, 0.999)
        page.click("#region-styles button >> nth=1")
        assert page.get_attribute("#region-eraser", "aria-pressed") == "false"
        sweep(0.85, 0.999)
        page.screenshot(path=str(tmp_path / "regions.png"), full_page=True)
        page.click("#options summary")
        page.fill("input[name=size]", "48")
        page.fill("input[name=iterations]", "2")
        page.click("#start")
        page.locator("#download").wait_for(state="visible", timeout=60_000)
        assert runner.masks is not None and len(runner.masks) == 2
        first, second = (np.asarray(mask, dtype=np.float32) for mask in runner.masks)
        width = first.shape[1]
        left, right = slice(0, width * 4 // 10), slice(width * 7 // 10, width)
        assert first[:, left].min() > 250 and first[:, right].max() < 5, first.mean(axis=0)
        assert second[:, left].max() < 5 and second[:, right].min() > 250, second.mean(axis=0)

        page.click("#region-clear")  # cleared: no masks, every style everywhere
        page.click("#start")
        deadline = time.monotonic() + 60
        while runner.calls < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert runner.calls == 2 and runner.masks is None
        assert errors == []
        page.close()
