"""The live camera's WebSocket (``/api/live``): frames in, stylized frames out, and its refusals."""

from __future__ import annotations

import io
import json
import logging
import time

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
from starlette.testclient import WebSocketDenialResponse  # noqa: E402
from starlette.websockets import WebSocketDisconnect  # noqa: E402

from painterly.server.live import FrameRefused, decode_frame  # noqa: E402

from .helpers.server import TinyModels, client_for, jpeg  # noqa: E402


def pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG"
        return np.asarray(image.convert("RGB")).astype(np.float32)


@pytest.fixture
def backend(tmp_path):
    return TinyModels(tmp_path)


def test_frames_come_back_stylized_and_steady(tmp_path, backend):
    with client_for(tmp_path, backend) as client, client.websocket_connect("ws://localhost/api/live") as ws:
        ready = ws.receive_json()
        assert ready["type"] == "ready" and ready["model"] == "tiny"
        assert [m["name"] for m in ready["models"]] == ["tiny"] and "path" not in ready["models"][0]
        ws.send_text(json.dumps({"type": "config", "model": "tiny", "temporal_strength": 0.6}))
        config = ws.receive_json()
        assert config["type"] == "config" and config["model"] == "tiny"
        outputs = []
        for seed in (0, 0, 1):
            frame = jpeg(64, 48, seed)
            time.sleep(0.05)  # under the 30 frames/s cap: faster frames are answered "dropped"
            ws.send_bytes(frame)
            answer = ws.receive_bytes()
            out = pixels(answer)
            assert out.shape == (48, 64, 3)
            assert np.abs(out - pixels(frame)).mean() > 10  # stylized, not echoed
            outputs.append(out)
        # The same input twice: the second is blended with the first's output, so it is close to it.
        assert np.abs(outputs[1] - outputs[0]).mean() < np.abs(outputs[2] - outputs[0]).mean()


def test_style_switch_off_blend_and_unknown_model(tmp_path, backend):
    with client_for(tmp_path, backend) as client, client.websocket_connect("ws://localhost/api/live") as ws:
        ws.receive_json()
        ws.send_text(json.dumps({"type": "config", "model": "nope"}))
        error = ws.receive_json()
        assert error["type"] == "error" and "unknown model" in error["detail"]
        ws.send_text(json.dumps({"type": "config", "model": "tiny", "blend": [0.5, 0.5]}))
        assert "single style" in ws.receive_json()["detail"]
        ws.send_text(json.dumps({"type": "config", "temporal_strength": 0}))
        assert ws.receive_json() == {
            "type": "config",
            "model": "tiny",
            "temporal_strength": 0.0,
            "stabilized": False,
            "blend": None,
        }
        ws.send_text("not json")
        assert ws.receive_json()["type"] == "error"
        ws.send_bytes(jpeg())  # still serving
        assert pixels(ws.receive_bytes()).shape == (48, 64, 3)


def test_token_origin_and_host_apply_to_the_handshake(tmp_path, backend):
    with client_for(tmp_path, backend, token="s3cret") as client:
        with (
            pytest.raises(WebSocketDenialResponse) as refused,
            client.websocket_connect("ws://localhost/api/live"),
        ):
            pass
        assert refused.value.status_code == 401
        with (
            pytest.raises(WebSocketDenialResponse) as refused,
            client.websocket_connect("ws://localhost/api/live?token=wrong"),
        ):
            pass
        assert refused.value.status_code == 401
        with (
            pytest.raises(WebSocketDenialResponse) as refused,
            client.websocket_connect(
                "ws://localhost/api/live?token=s3cret", headers={"Origin": "http://evil.example"}
            ),
        ):
            pass
        assert refused.value.status_code == 403
        with client.websocket_connect(
            "ws://localhost/api/live?token=s3cret", headers={"Origin": "http://localhost"}
        ) as ws:
            assert ws.receive_json()["type"] == "ready"
    # uvicorn logs WebSocket handshakes, query string and all, on this logger: the token is redacted.
    from painterly.server.logs import RedactToken

    assert any(isinstance(f, RedactToken) for f in logging.getLogger("uvicorn.error").filters)
    with client_for(tmp_path, backend) as client:  # no token: loopback host names only
        with (
            pytest.raises(WebSocketDenialResponse) as refused,
            client.websocket_connect("ws://localhost/api/live", headers={"Host": "attacker.example"}),
        ):
            pass
        assert refused.value.status_code == 403


def test_frame_caps_refuse_frames_and_close_on_oversize(tmp_path, backend):
    # No rate cap to speak of: a fast CPU answers a refused frame in under 1 ms (1000 frames/s
    # then dropped the next frame for its rate on a Xeon with AMX).
    with (
        client_for(
            tmp_path, backend, live_max_pixels=64 * 48, live_max_frame_bytes=40_000, live_max_fps=1_000_000
        ) as client,
        client.websocket_connect("ws://localhost/api/live") as ws,
    ):
        ws.receive_json()
        ws.send_bytes(jpeg(128, 96))  # more pixels than allowed, refused from its header
        error = ws.receive_json()
        assert error["type"] == "error" and "pixels" in error["detail"]
        ws.send_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 100)
        assert "JPEG" in ws.receive_json()["detail"]
        ws.send_bytes(jpeg(64, 48)[:200])  # truncated
        assert ws.receive_json()["type"] == "error"
        ws.send_bytes(jpeg(64, 48))
        assert pixels(ws.receive_bytes()).shape == (48, 64, 3)
        ws.send_bytes(b"\xff\xd8\xff" + b"0" * 50_000)  # over the byte cap: the connection is closed
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_bytes()
        assert closed.value.code == 1009


def test_rate_cap_drops_frames_and_connection_cap_refuses(tmp_path, backend):
    with (
        client_for(tmp_path, backend, live_max_fps=1, live_max_connections=1) as client,
        client.websocket_connect("ws://localhost/api/live") as ws,
    ):
        ws.receive_json()
        ws.send_bytes(jpeg())
        ws.send_bytes(jpeg())  # sooner than 1 s after the first: dropped, not queued
        answers = [ws.receive(), ws.receive()]
        kinds = sorted("bytes" if a.get("bytes") else json.loads(a["text"])["type"] for a in answers)
        assert kinds == ["bytes", "dropped"]
        with (
            pytest.raises(WebSocketDenialResponse) as refused,
            client.websocket_connect("ws://localhost/api/live"),
        ):
            pass
        assert refused.value.status_code == 429


def test_decode_frame_checks_the_header_first():
    big = io.BytesIO()
    Image.new("RGB", (4000, 3000)).save(big, format="JPEG")
    with pytest.raises(FrameRefused, match="pixels"):
        decode_frame(big.getvalue(), max_bytes=10**8, max_pixels=1_000_000)
    with pytest.raises(FrameRefused, match="bytes"):
        decode_frame(big.getvalue(), max_bytes=100, max_pixels=10**8)
    assert decode_frame(jpeg(32, 24), max_bytes=10**6, max_pixels=10**6).shape == (24, 32, 3)


class DuoModels:
    """A stand-in multi-style model (its listing names two styles) that records the mix it was given."""

    def __init__(self) -> None:
        self.mixes: list[object] = []

    def list_models(self):
        return [{"name": "duo", "path": "/nowhere", "metadata": {"styles": ["waves", "dots"]}}]

    def load_model(self, name, device="auto"):
        mixes = self.mixes

        class Model:
            def stylize(self, image, *, tile=None, style_mix=None):
                mixes.append(style_mix)
                return Image.fromarray(255 - np.asarray(image))

        return Model()


def test_blend_of_a_multi_style_model(tmp_path):
    backend = DuoModels()
    with (
        client_for(tmp_path, backend) as client,
        client.websocket_connect("ws://localhost/api/live") as ws,
    ):
        ready = ws.receive_json()
        assert ready["models"][0]["styles"] == ["waves", "dots"]
        ws.send_text(json.dumps({"type": "config", "model": "duo", "blend": [0.25, 0.75]}))
        assert ws.receive_json()["blend"] == {"waves": 0.25, "dots": 0.75}
        ws.send_bytes(jpeg())
        assert pixels(ws.receive_bytes()).shape == (48, 64, 3)
        assert backend.mixes == [{"waves": 0.25, "dots": 0.75}]
        for bad in ([1.0], [0, 0], {"nope": 1}, [-1, 2], "waves"):
            ws.send_text(json.dumps({"type": "config", "model": "duo", "blend": bad}))
            assert ws.receive_json()["type"] == "error", bad


def test_serve_flags_for_live_and_video(tmp_path):
    import argparse

    from painterly.cli import serve
    from painterly.errors import PainterlyError

    parser = argparse.ArgumentParser()
    serve.register(parser.add_subparsers())
    args = parser.parse_args(
        [
            "serve",
            "--data",
            str(tmp_path),
            "--max-video-mb",
            "5",
            "--max-video-seconds",
            "10",
            "--max-live",
            "1",
        ]
    )
    settings = serve.settings_from_args(args)
    assert (settings.video_max_upload_bytes, settings.video_max_seconds, settings.live_max_connections) == (
        5 * 2**20,
        10.0,
        1,
    )
    for bad in (["--max-video-seconds", "-1"], ["--max-live", "0"], ["--max-video-mb", "nan"]):
        with pytest.raises(PainterlyError):
            serve.settings_from_args(parser.parse_args(["serve", "--data", str(tmp_path), *bad]))
