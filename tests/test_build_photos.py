"""Offline checks of scripts/build_photos.py's source handling (no apt, no pip, no network)."""

from __future__ import annotations

import bz2
import zipfile
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

from .helpers.files import import_file

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "build_photos.py"


@pytest.fixture(scope="module")
def bp() -> ModuleType:
    return import_file(SCRIPT, "build_photos_under_test")


def photo(size: tuple[int, int] = (320, 300), seed: int = 0) -> Image.Image:
    """Noise with a colour gradient: passes the photo filters (many colours, texture, saturation)."""
    rng = np.random.default_rng(seed)
    w, h = size
    base = np.zeros((h, w, 3), dtype=np.float32)
    base[..., 0] = np.linspace(40, 220, w)[None, :]
    base[..., 1] = np.linspace(200, 60, h)[:, None]
    base[..., 2] = 90
    return Image.fromarray(np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8))


def test_licence_override_wins_only_for_its_package_and_path(bp: ModuleType) -> None:
    path = "/usr/lib/python3/dist-packages/sklearn/datasets/images/china.jpg"
    assert bp.licence_override("python3-sklearn", path).startswith("CC-BY-2.0")
    assert bp.licence_override("python3-sklearn", "/usr/share/doc/python3-sklearn/x.png") is None
    assert bp.licence_override("opencv-doc", path) is None


def test_licence_for_prefers_a_stanza_matching_the_path_over_one_matching_the_file_name(
    bp: ModuleType,
) -> None:
    # The shape of kodi-data's debian/copyright: one skin's JPEGs have a longer pattern than the
    # other skin's whole folder, but only the folder's pattern matches this file's path.
    stanzas = [
        (["*"], "GPL-2+"),
        (["addons/skin.estouchy/*"], "CC-BY-SA-3.0"),
        (["addons/skin.estuary/*.jpg", "addons/skin.estuary/*.png"], "CC-BY-SA-4.0"),
        (["addons/skin.estuary/extras/home-images/movie.jpg"], "CC0-1.0"),
    ]
    addons = "/usr/share/kodi/addons"
    assert bp.licence_for(stanzas, f"{addons}/skin.estouchy/background/tv.jpg") == "CC-BY-SA-3.0"
    assert bp.licence_for(stanzas, f"{addons}/skin.estuary/extras/home-images/movie.jpg") == "CC0-1.0"
    assert bp.licence_for(stanzas, f"{addons}/skin.estuary/media/bg.jpg") == "CC-BY-SA-4.0"
    assert bp.licence_for(stanzas, "/usr/share/kodi/media/splash.jpg") == "CC-BY-SA-4.0"  # name only
    assert bp.licence_for(stanzas, "/usr/share/kodi/system/settings.xml") == "GPL-2+"


def test_package_only_keeps_listed_files_and_leaves_other_packages_alone(bp: ModuleType) -> None:
    folder = "/usr/share/hugin/xrc/data/help_en_EN"
    assert bp.in_package_only("hugin-data", f"{folder}/Big_ben_rectilinear.jpg")
    assert not bp.in_package_only("hugin-data", f"{folder}/Big_ben_cubic.jpg")
    assert bp.in_package_only("tuxpaint-data", "/usr/share/tuxpaint/templates/cliff.jpg")


def test_upright_turns_clockwise_by_the_reviewed_angle(bp: ModuleType) -> None:
    image = Image.new("RGB", (40, 20), "black")
    image.putpixel((0, 0), (255, 0, 0))  # top-left
    candidate = bp.Candidate(
        Path("x.jpg"), "kphotoalbum", "1", "/usr/share/kphotoalbum/demo/wayne.jpg", "", 40, 20
    )
    turned = bp.upright(candidate, image)
    assert turned.size == (20, 40)
    assert turned.getpixel((19, 0)) == (255, 0, 0)  # 90 degrees clockwise: top-left goes top-right
    other = bp.Candidate(
        Path("x.jpg"), "kphotoalbum", "1", "/usr/share/kphotoalbum/demo/snow.jpg", "", 40, 20
    )
    assert bp.upright(other, image) is image


def test_raw_images_are_written_as_png_once(
    bp: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pixels = np.asarray(photo((8, 6)))
    raw = tmp_path / "data" / "face.dat"
    raw.parent.mkdir()
    raw.write_bytes(bz2.compress(pixels.tobytes()))
    monkeypatch.setattr(bp, "RAW_IMAGES", {"pkg": (("data/face.dat", 6, 8),)})
    bp.extract_raw_images("pkg", tmp_path)
    written = tmp_path / "data" / "face.dat.png"
    assert np.array_equal(np.asarray(Image.open(written)), pixels)
    bp.extract_raw_images("other", tmp_path)  # a package without raw images: nothing happens
    assert sorted(p.name for p in raw.parent.iterdir()) == ["face.dat", "face.dat.png"]


def test_wheel_candidates_read_cached_wheels_without_downloading(
    bp: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    png = tmp_path / "p.png"
    photo().save(png)
    with zipfile.ZipFile(wheels / "demo_pkg-1.2-py3-none-any.whl", "w") as archive:
        archive.write(png, "demo_pkg/data/photo.png")
    monkeypatch.setattr(
        bp,
        "WHEEL_FILES",
        (("demo-pkg", "demo_pkg/data/photo.png", "MIT"), ("absent-pkg", "absent/x.png", "MIT")),
    )
    found = bp.wheel_candidates(tmp_path, download=False, min_side=256)
    assert [(c.package, c.version, c.original_path, c.licence) for c in found] == [
        ("demo-pkg (PyPI)", "1.2", "demo_pkg/data/photo.png", "MIT")
    ]
    assert (found[0].width, found[0].height) == (320, 300)
    assert bp.wheel_candidates(tmp_path, download=False, min_side=301) == []


def test_build_offline_writes_manifest_with_licences(bp: ModuleType, tmp_path: Path) -> None:
    """A cached, unpacked package: its photo goes in with its licence; a duplicate and a cut-out do not."""
    cache = tmp_path / "cache"
    tree = cache / "unpacked" / "palapeli-data"
    folder = tree / "usr/share/palapeli/collection"
    folder.mkdir(parents=True)
    photo(seed=1).save(folder / "castle.jpg", quality=95)
    photo(seed=1).resize((300, 281)).save(folder / "castle-small.jpg", quality=95)
    cutout = photo(seed=2).convert("RGBA")
    cutout.putalpha(0)
    cutout.save(folder / "cutout.png")
    doc = tree / "usr/share/doc/palapeli-data"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text("Files: *\nCopyright: someone\nLicense: GPL-2+\n")
    out = tmp_path / "out"
    args = bp.parse_args(
        ["--out", str(out), "--cache", str(cache), "--packages", "palapeli-data", "--no-download"]
        + ["--no-wheels", "--no-skimage", "--minimum", "1"]
    )
    assert bp.build(args) == 0
    lines = (out / "manifest.jsonl").read_text().splitlines()
    assert len(lines) == 1
    assert '"licence": "GPL-2+"' in lines[0] and "castle.jpg" in lines[0]
    assert sorted(p.name for p in out.iterdir()) == ["manifest.jsonl", "palapeli-data__castle.jpg"]
