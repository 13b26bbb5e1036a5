#!/usr/bin/env python3
"""Set-up and common tasks, with nothing but Python needed to start.

    python3 tasks.py demo    # create .venv, install painterly, paint the built-in example -> demo.png
    python3 tasks.py test    # create .venv, install painterly with test tools, run the test suite
    python3 tasks.py lint    # ruff check, ruff format --check and mypy (settings in pyproject.toml)
    python3 tasks.py docs    # install the docs extra, build the documentation site -> site/ (--strict)

Set PAINTERLY_VENV to use another virtual environment folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("PAINTERLY_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
#: Installed first and pinned: a bare 'torch' requirement can pull a multi-GB CUDA build.
TORCH = "torch==2.13.0"


def sh(*args: object, check: bool = True) -> int:
    print("+", " ".join(str(a) for a in args), flush=True)
    return subprocess.run([str(a) for a in args], cwd=ROOT, check=check).returncode


def pip(*args: str) -> None:
    sh(PYTHON, "-m", "pip", "install", "--disable-pip-version-check", "-q", *args)


def setup(extras: str) -> None:
    if not PYTHON.exists():
        sh(sys.executable, "-m", "venv", VENV)
    stamp = VENV / f".painterly-{extras}"
    pyproject = ROOT / "pyproject.toml"
    if stamp.exists() and stamp.stat().st_mtime >= pyproject.stat().st_mtime:
        return
    pip(TORCH)
    pip("-e", f".[{extras}]")
    stamp.touch()


def install_chromium() -> None:
    """Debian's chromium for the browser tests (skipped by the tests when it is absent)."""
    if shutil.which("chromium") or os.environ.get("PAINTERLY_CHROMIUM"):
        return
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        sh("apt-get", "update", "-qq", check=False)
        sh("apt-get", "install", "-y", "-qq", "chromium", check=False)
    else:
        print("chromium not found: the browser test will be skipped (apt-get install chromium)", flush=True)


def demo() -> int:
    setup("vgg16,onnx")
    return sh(BIN / "painterly", "demo", "-o", "demo.png", check=False)


def test() -> int:
    setup("vgg16,onnx,server,video,ray,dev")
    install_chromium()
    code = sh(PYTHON, "-m", "pytest", "-q", *sys.argv[2:], check=False)
    return 0 if code == 5 else code  # 5: no tests collected by a filter


def lint() -> int:
    # With the video extra: mypy checks painterly.video against PyAV's and OpenCV's own types.
    setup("vgg16,onnx,server,video,ray,dev")
    paths = ("src", "tests", "benchmarks", "scripts", "tasks.py")
    codes = [
        sh(BIN / "ruff", "check", *paths, check=False),
        sh(BIN / "ruff", "format", "--check", *paths, check=False),
        sh(BIN / "mypy", check=False),  # what and how: [tool.mypy] in pyproject.toml
    ]
    return max(codes)  # every check runs, the first failure does not hide the others


def docs() -> int:
    # The build hook imports painterly (and torch) to find where each public name is defined, and
    # builds the CLI's parser for the command-line reference (scripts/mkdocs_hooks.py).
    setup("docs")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # Material's banner about its successor
    print(f"+ {BIN / 'mkdocs'} build --strict", flush=True)
    return subprocess.run([str(BIN / "mkdocs"), "build", "--strict"], cwd=ROOT, env=env).returncode


TASKS = {"demo": demo, "test": test, "lint": lint, "docs": docs}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in TASKS:
        print(__doc__)
        sys.exit(2)
    sys.exit(TASKS[sys.argv[1]]())
