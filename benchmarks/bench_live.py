"""Live camera speed, measured against a running server: frames/s and latency over ``/api/live``.

    python benchmarks/bench_live.py [--model starry_night] [--frames 40] [--sizes 320x240 640x480]

Starts ``painterly serve``'s app on 127.0.0.1 (a random port, a temporary data folder), connects a
WebSocket client (the ``websockets`` package) and sends frames of ``../shared/videos/vtest.mp4``
(JPEG, encoded beforehand, as a browser would send them) with one frame in flight, as the page
does: the next frame goes out when the answer to the last one came. Prints, per size, the median
and 90th-percentile latency (frame sent to answer received: decode, network, flow, blending,
encode and the loopback network, what a user sees), the frames/s, and the CPU time per frame of
this process (server and client), a figure that hardly depends on the machine's other load. Also
prints the CPU model and the load average, since the machine may be shared.

The server picks the network's runtime on the first frame of each size (onnxruntime, torch float32
or torch bf16, timed: :mod:`painterly.video.runtime`); the warm-up frames absorb that, and the
choice is printed after the table.

Targets (issue 12, 2-core CPU): 320x240 at 10 frames/s or more with a median latency of 200 ms or
less; 640x480 at 4 frames/s or more.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT.parent / "shared" / "videos" / "vtest.mp4"
TARGETS = {(320, 240): (10.0, 200.0), (640, 480): (4.0, None)}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def frames_of(clip: Path, size: tuple[int, int], count: int) -> list[bytes]:
    """``count`` frames of the clip at ``size``, as JPEG (quality 80, like the page's)."""
    import av

    frames: list[bytes] = []
    with av.open(str(clip)) as container:
        for frame in container.decode(video=0):
            image = frame.to_image().convert("RGB").resize(size, Image.Resampling.BILINEAR)
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=80)
            frames.append(buffer.getvalue())
            if len(frames) >= count:
                break
    if not frames:
        raise SystemExit(f"no frames in {clip}")
    return frames


def start_server(data_dir: Path) -> tuple[str, object, threading.Thread]:
    import uvicorn

    from painterly.server import ServerSettings, create_app
    from painterly.server.serving import uvicorn_config

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(ServerSettings(data_dir=data_dir, devices=("cpu",)))
    server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise SystemExit("the server did not start")
        time.sleep(0.05)
    return f"ws://127.0.0.1:{port}/api/live", server, thread


def run_size(url: str, model: str, frames: list[bytes], warmup: int) -> tuple[list[float], float, int, float]:
    """(latencies in ms, frames/s, frames dropped, CPU ms per frame) for one size, one frame in flight.

    The CPU time is this process's (server and client together): unlike the wall-clock figures it
    hardly depends on what else the machine is running."""
    from websockets.sync.client import connect

    latencies: list[float] = []
    dropped = 0
    with connect(url, max_size=8 * 1024 * 1024, compression=None) as ws:
        ready = json.loads(ws.recv())
        if ready.get("type") != "ready":
            raise SystemExit(f"unexpected first message: {ready}")
        ws.send(json.dumps({"type": "config", "model": model}))
        answer = json.loads(ws.recv())
        if answer.get("type") != "config":
            raise SystemExit(f"the server refused the model: {answer}")
        started = cpu = 0.0
        for index, frame in enumerate([*frames[:warmup], *frames]):
            if index == warmup:
                started, cpu = time.perf_counter(), time.process_time()
            sent = time.perf_counter()
            ws.send(frame)
            while True:
                reply = ws.recv()
                if isinstance(reply, bytes):
                    break
                message = json.loads(reply)
                if message.get("type") == "dropped":
                    dropped += 1
                    break
                if message.get("type") == "error":
                    raise SystemExit(f"the server refused a frame: {message['detail']}")
            if index >= warmup and isinstance(reply, bytes):
                latencies.append((time.perf_counter() - sent) * 1000)
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu
    return latencies, len(latencies) / seconds, dropped, cpu * 1000 / max(1, len(latencies))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="starry_night")
    parser.add_argument("--frames", type=int, default=40, help="frames measured per size")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--sizes", nargs="+", default=["320x240", "640x480"])
    parser.add_argument("--clip", type=Path, default=CLIP)
    args = parser.parse_args(argv)
    if not args.clip.exists():
        print(f"skipped: {args.clip} is not present", file=sys.stderr)
        return 0
    sizes = [tuple(int(v) for v in text.lower().split("x")) for text in args.sizes]
    from painterly.video.runtime import prefer_sleeping_threads

    prefer_sleeping_threads()  # as `painterly serve` does (create_app), before torch is imported
    print(f"CPU: {cpu_model()} ({os.cpu_count()} cores); load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as data:
        url, server, thread = start_server(Path(data))
        try:
            print(f"model {args.model}, one frame in flight")
            header = f"{'size':>9} {'frames':>6} {'fps':>6} {'median ms':>9} {'p90 ms':>7} {'dropped':>7}"
            print(f"{header} {'CPU ms/frame':>12}  target")
            for width, height in sizes:
                frames = frames_of(args.clip, (width, height), args.frames + args.warmup)
                while len(frames) < args.frames + args.warmup:
                    frames += frames
                latencies, fps, dropped, cpu_ms = run_size(
                    url, args.model, frames[: args.frames], args.warmup
                )
                median = statistics.median(latencies)
                p90 = sorted(latencies)[int(0.9 * (len(latencies) - 1))]
                target_fps, target_ms = TARGETS.get((width, height), (None, None))
                verdict = ""
                if target_fps is not None:
                    ok = fps >= target_fps and (target_ms is None or median <= target_ms)
                    limit = f" <= {target_ms:.0f} ms" if target_ms else ""
                    verdict = f">= {target_fps:g} fps{limit}: {'met' if ok else 'NOT met'}"
                size = f"{width}x{height}"
                figures = (
                    f"{len(latencies):>6} {fps:>6.1f} {median:>9.0f} {p90:>7.0f} {dropped:>7} {cpu_ms:>12.0f}"
                )
                print(f"{size:>9} {figures}  {verdict}")
            from painterly.video.runtime import measured

            for line in measured():
                print(f"runtime (measured by the server on the first frame of a size): {line}")
        finally:
            server.should_exit = True  # type: ignore[attr-defined]
            thread.join(10)
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
