"""The JSON-lines manifest of a batch: one line per photo attempted, written by the driver only.

Each line is ``{"input", "output", "status": "done"|"failed", "error", "seconds"}``. A line is
appended with one ``write`` on a file opened for appending, after the output was written (the
workers write outputs atomically before they report), so at any moment, Ctrl-C or a crash
included, every ``done`` line names a complete output. A torn last line (a crash mid-write) is
ignored on reading. The last line for an output wins: a photo failed once and done later is done.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TypedDict

from painterly.errors import PainterlyError, shown

#: The manifest's file name in the output folder.
MANIFEST_NAME = "manifest.jsonl"


class Record(TypedDict):
    """What became of one photo."""

    input: str
    output: str
    status: str  # "done" or "failed"
    error: str | None
    seconds: float


def one_line(exc: BaseException, limit: int = 300) -> str:
    """An exception as the one-line reason of a failed record."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if not isinstance(exc, PainterlyError):
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return shown(text, limit=limit)


def record(source: str, target: str, seconds: float, error: BaseException | str | None = None) -> Record:
    """A record: done without ``error``, failed (with its one-line reason) with one."""
    reason = None if error is None else error if isinstance(error, str) else one_line(error)
    return {
        "input": source,
        "output": target,
        "status": "done" if error is None else "failed",
        "error": reason,
        "seconds": round(float(seconds), 4),
    }


class Manifest:
    """A manifest file: read what is done, append records."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def records(self) -> Iterator[Record]:
        """The records on file, in order; unreadable lines (a torn last line) are skipped."""
        try:
            handle = open(self.path, encoding="utf-8")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            return
        except OSError as exc:
            raise PainterlyError(f"cannot read the manifest {shown(self.path)}: {exc.strerror}") from None
        not_a_manifest = PainterlyError(
            f"{shown(self.path)} is not a painterly manifest (JSON lines naming outputs): "
            "give another --manifest, it would be appended to"
        )
        with handle:
            lines, found = 0, 0
            try:
                for line in handle:
                    lines += bool(line.strip())
                    try:
                        item = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(item, dict) and isinstance(item.get("output"), str):
                        found += 1
                        yield item  # type: ignore[misc]
            except UnicodeDecodeError:  # an image or other binary file given as --manifest
                raise not_a_manifest from None
            if lines > 1 and not found:  # a text file of other things (one torn line is a manifest's)
                raise not_a_manifest

    def latest(self) -> dict[str, Record]:
        """The last record of each output."""
        return {item["output"]: item for item in self.records()}

    def open(self) -> None:
        """Open for appending (created if missing); one line if it cannot be written."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise PainterlyError(f"cannot write the manifest {shown(self.path)}: {exc.strerror}") from None

    def append(self, item: Record) -> None:
        """Append one record as one line, in one write, and flush it to the disk."""
        if self._fd is None:
            self.open()
        assert self._fd is not None
        line = json.dumps(item, ensure_ascii=False) + "\n"
        os.write(self._fd, line.encode("utf-8"))
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
