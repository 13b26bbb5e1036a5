import numpy as np
from PIL import Image

from painterly.color import match_color_histogram, transfer_luminance


def test_luminance_transfer_keeps_the_photos_chroma() -> None:
    content = Image.new("RGB", (8, 8), (200, 40, 40))  # red
    stylized = Image.new("RGB", (8, 8), (40, 40, 200))  # blue, darker
    out = transfer_luminance(stylized, content)
    _, cb, cr = (np.asarray(c, dtype=float).mean() for c in out.convert("YCbCr").split())
    _, cb0, cr0 = (np.asarray(c, dtype=float).mean() for c in content.convert("YCbCr").split())
    y, y1 = (np.asarray(i.convert("YCbCr").getchannel("Y"), dtype=float).mean() for i in (out, stylized))
    assert abs(cb - cb0) <= 2 and abs(cr - cr0) <= 2 and abs(y - y1) <= 2
    r, g, b = np.asarray(out, dtype=float).reshape(-1, 3).mean(0)
    assert r > b  # still red, not blue


def test_histogram_matching_moves_style_colours_to_the_photo() -> None:
    rng = np.random.default_rng(0)
    style = Image.fromarray(rng.integers(0, 80, (16, 16, 3), dtype=np.uint8))  # dark
    content = Image.fromarray(rng.integers(150, 255, (16, 16, 3), dtype=np.uint8))  # bright
    out = match_color_histogram(style, content)
    assert abs(np.asarray(out, dtype=float).mean() - np.asarray(content, dtype=float).mean()) < 5
