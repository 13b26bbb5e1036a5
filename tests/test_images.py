import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from painterly.errors import PainterlyError
from painterly.images import check_output_path, decode_image, open_image, save_image


def _encode(image: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kw)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "image",
    [
        Image.new("L", (8, 6), 128),
        Image.new("RGBA", (8, 6), (255, 0, 0, 0)),
        Image.new("P", (8, 6), 3),
        Image.new("CMYK", (8, 6), (0, 255, 0, 0)),
        Image.new("LA", (8, 6), (10, 255)),
        Image.new("1", (8, 6), 1),
    ],
    ids=["gray", "rgba", "palette", "cmyk", "gray-alpha", "bilevel"],
)
def test_modes_become_rgb(image: Image.Image) -> None:
    fmt = "JPEG" if image.mode == "CMYK" else ("TIFF" if image.mode == "LA" else "PNG")
    out = decode_image(_encode(image, fmt))
    assert out.mode == "RGB" and out.size == (8, 6)


def test_transparent_pixels_composite_on_white() -> None:
    out = decode_image(_encode(Image.new("RGBA", (4, 4), (255, 0, 0, 0))))
    assert out.getpixel((0, 0)) == (255, 255, 255)


def test_sixteen_bit_grayscale_is_scaled_not_clipped() -> None:
    array = np.full((4, 4), 65535 // 2, dtype=np.uint16)
    out = decode_image(_encode(Image.fromarray(array)))
    assert out.getpixel((0, 0))[0] in (127, 128)  # type: ignore[index]  # RGB: a tuple


def test_exif_orientation_is_applied() -> None:
    image = Image.new("RGB", (20, 10), (0, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    out = decode_image(_encode(image, "JPEG", exif=exif.tobytes()))
    assert out.size == (10, 20)


def test_arrays_and_pil_inputs() -> None:
    assert open_image(np.zeros((5, 7, 3), dtype=np.uint8)).size == (7, 5)
    assert open_image(np.ones((5, 7), dtype=np.float32)).getpixel((0, 0)) == (255, 255, 255)
    assert open_image(Image.new("L", (3, 3))).mode == "RGB"
    with pytest.raises(PainterlyError, match="NaN"):
        open_image(np.full((2, 2, 3), np.nan, dtype=np.float32))


def test_decompression_bomb_is_refused_before_decoding() -> None:
    data = _encode(Image.new("L", (400, 400)))
    with pytest.raises(PainterlyError, match="decompression bomb"):
        decode_image(data, max_pixels=100_000)


def test_truncated_and_garbage_files(tmp_path: Path) -> None:
    data = _encode(Image.effect_noise((64, 64), 50).convert("RGB"), "JPEG")
    with pytest.raises(PainterlyError, match="truncated or corrupt"):
        decode_image(data[: len(data) // 2])
    with pytest.raises(PainterlyError, match="not an image"):
        decode_image(b"hello, this is text")
    with pytest.raises(PainterlyError, match="not found"):
        open_image(tmp_path / "missing.png")


def test_save_is_atomic_and_keeps_metadata(tmp_path: Path) -> None:
    path = save_image(Image.new("RGB", (4, 4)), tmp_path / "out.png", {"painterly:settings": '{"a": 1}'})
    assert Image.open(path).text["painterly:settings"] == '{"a": 1}'  # type: ignore[attr-defined]  # a PNG
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_failed_save_leaves_no_file(tmp_path: Path) -> None:
    image = Image.new("RGB", (4, 4))
    image.save = lambda *a, **k: (_ for _ in ()).throw(OSError("disk full"))  # type: ignore[method-assign]
    with pytest.raises(OSError):
        save_image(image, tmp_path / "out.png")
    assert list(tmp_path.iterdir()) == []


def test_output_path_checks(tmp_path: Path) -> None:
    with pytest.raises(PainterlyError, match="does not exist"):
        check_output_path(tmp_path / "nope" / "out.png")
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(PainterlyError, match="not writable"):
            check_output_path(locked / "out.png")
    with pytest.raises(PainterlyError, match="unknown output format"):
        save_image(Image.new("RGB", (2, 2)), tmp_path / "out.xyz")


def test_check_input_file_refuses_what_is_not_a_regular_file(tmp_path: Path) -> None:
    from painterly.images import check_input_file

    loop = tmp_path / "loop.png"
    loop.symlink_to(loop)
    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)
    good = tmp_path / "good.png"
    Image.new("RGB", (4, 4)).save(good)
    (tmp_path / "link.png").symlink_to(good)
    assert check_input_file(tmp_path / "link.png", "photo") == tmp_path / "link.png"
    cases = {
        loop: "photo is a symlink loop",
        fifo: "photo is a FIFO, not a regular file",
        tmp_path: "photo is a folder",
        Path("/dev/null"): "photo is a device or socket",
        tmp_path / "missing.png": "photo not found",
    }
    for path, message in cases.items():
        with pytest.raises(PainterlyError, match=message):
            check_input_file(path, "photo")
        with pytest.raises(PainterlyError, match=message):  # open_image checks before it opens
            open_image(path, what="photo")


def test_names_with_control_characters_are_escaped(tmp_path: Path) -> None:
    from painterly.errors import shown

    assert shown("a\nb\tc\x1b.png") == "a\\nb\\tc\\x1b.png"
    assert shown("école.png") == "école.png"
    assert len(shown("x" * 1000)) == 200
    with pytest.raises(PainterlyError) as info:
        open_image(tmp_path / "new\nline.png")
    assert "\n" not in str(info.value) and "new\\nline.png" in str(info.value)


def test_output_checks_before_work(tmp_path: Path) -> None:
    from painterly.images import check_image_output, image_size

    photo = tmp_path / "photo.png"
    Image.new("RGB", (30, 20)).save(photo)
    assert image_size(photo) == (30, 20)
    assert image_size(tmp_path / "missing.png") is None
    with pytest.raises(PainterlyError, match="unknown output format '.xyz'"):
        check_image_output(tmp_path / "out.xyz")
    with pytest.raises(PainterlyError, match="refusing to overwrite the input"):
        check_image_output(photo, [photo])
    os.link(photo, tmp_path / "hard.png")
    with pytest.raises(PainterlyError, match="refusing to overwrite the input"):
        check_image_output(tmp_path / "hard.png", [photo])
    assert check_image_output(tmp_path / "new.jpg", [photo]) == tmp_path / "new.jpg"


def test_png_outputs_use_the_fast_zlib_level(tmp_path: Path) -> None:
    """A whole ``stylize`` command spent a quarter of its time in zlib at Pillow's default level."""
    rng = np.random.default_rng(0)
    picture = Image.fromarray((rng.random((64, 96, 3)) * 255).astype("uint8"))
    path = save_image(picture, tmp_path / "out.png", {"painterly": "{}"})
    data = path.read_bytes()
    idat = data.index(b"IDAT") + 4  # the zlib stream starts after the chunk type
    assert data[idat] & 0x0F == 8  # deflate
    assert data[idat + 1] >> 6 == 0  # FLEVEL 0: the fastest levels (Pillow's default 6 writes 2)
    with Image.open(path) as back:
        assert back.info["painterly"] == "{}" and np.array_equal(np.asarray(back), np.asarray(picture))
