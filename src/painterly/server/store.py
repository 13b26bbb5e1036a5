"""Job records in SQLite, and result images next to them, under the server's data folder.

A record outlives the process: finished results stay downloadable after a restart, and jobs that
were queued or running when the server stopped are marked ``interrupted`` when it starts again.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

#: Job states. ``done``, ``failed``, ``cancelled`` and ``interrupted`` are final.
QUEUED, RUNNING, DONE, FAILED, CANCELLED, INTERRUPTED = (
    "queued",
    "running",
    "done",
    "failed",
    "cancelled",
    "interrupted",
)
FINAL = frozenset({DONE, FAILED, CANCELLED, INTERRUPTED})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    options TEXT NOT NULL DEFAULT '{}',
    progress TEXT,
    error TEXT,
    result TEXT,
    width INTEGER,
    height INTEGER
);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created);
"""
_JSON_COLUMNS = ("options", "progress")
_COLUMNS = (
    "kind",
    "status",
    "created",
    "started",
    "finished",
    "options",
    "progress",
    "error",
    "result",
    "width",
    "height",
)


class JobStore:
    """A thread-safe table of job records. Result files live in ``results_dir``, named by the server."""

    def __init__(self, database: Path, results_dir: Path) -> None:
        self.results_dir = results_dir
        self._lock = threading.Lock()
        if not database.exists():  # private to this user (SQLite gives its -wal and -shm files the same mode)
            os.close(os.open(database, os.O_CREAT | os.O_WRONLY, 0o600))
        self._db = sqlite3.connect(database, check_same_thread=False, isolation_level=None, timeout=10)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def create(self, job_id: str, kind: str, status: str, options: dict[str, Any], **fields: Any) -> None:
        record = {
            "id": job_id,
            "kind": kind,
            "status": status,
            "created": time.time(),
            "options": options,
            **fields,
        }
        names = list(record)
        values = [json.dumps(v) if k in _JSON_COLUMNS else v for k, v in record.items()]
        with self._lock:
            self._db.execute(
                f"INSERT INTO jobs ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})", values
            )

    def update(self, job_id: str, **fields: Any) -> None:
        unknown = set(fields) - set(_COLUMNS)
        if unknown:
            raise ValueError(f"unknown job fields {sorted(unknown)}")
        values = [json.dumps(v) if k in _JSON_COLUMNS else v for k, v in fields.items()]
        with self._lock:
            self._db.execute(
                f"UPDATE jobs SET {', '.join(f'{k} = ?' for k in fields)} WHERE id = ?", [*values, job_id]
            )

    def delete(self, job_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _record(row) if row else None

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM jobs ORDER BY created DESC LIMIT ?", (limit,)).fetchall()
        return [_record(row) for row in rows]

    def result_path(self, record: dict[str, Any]) -> Path | None:
        """The result file of a record, if it has one on disk. Names come from the server, never a client."""
        if not record.get("result"):
            return None
        path = self.results_dir / Path(record["result"]).name
        return path if path.is_file() else None

    def keep_newest(self, kind: str, keep: int) -> int:
        """Delete all but the newest ``keep`` final records of ``kind`` (and their files): a quota."""
        placeholders = ", ".join("?" * len(FINAL))
        with self._lock:
            rows = self._db.execute(
                f"SELECT id, result FROM jobs WHERE kind = ? AND status IN ({placeholders}) "
                "ORDER BY created DESC LIMIT -1 OFFSET ?",
                (kind, *FINAL, keep),
            ).fetchall()
            self._db.executemany("DELETE FROM jobs WHERE id = ?", [(row["id"],) for row in rows])
        for row in rows:
            if row["result"]:
                (self.results_dir / Path(row["result"]).name).unlink(missing_ok=True)
        return len(rows)

    def mark_unfinished_interrupted(self) -> int:
        """At startup: jobs the last process left queued or running can never finish now."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE jobs SET status = ?, finished = ?, error = ? WHERE status IN (?, ?)",
                (INTERRUPTED, time.time(), "the server stopped before this job finished", QUEUED, RUNNING),
            )
        return cursor.rowcount

    def delete_older_than(self, seconds: float) -> int:
        """Delete final records (and their result files) created more than ``seconds`` ago,
        and result files that no record names (left by a crash between writing and recording)."""
        cutoff = time.time() - seconds
        placeholders = ", ".join("?" * len(FINAL))
        with self._lock:
            rows = self._db.execute(
                f"SELECT id, result FROM jobs WHERE created < ? AND status IN ({placeholders})",
                (cutoff, *FINAL),
            ).fetchall()
            self._db.executemany("DELETE FROM jobs WHERE id = ?", [(row["id"],) for row in rows])
            known = {
                row["result"] for row in self._db.execute("SELECT result FROM jobs WHERE result IS NOT NULL")
            }
        for row in rows:
            if row["result"]:
                (self.results_dir / Path(row["result"]).name).unlink(missing_ok=True)
        for path in self.results_dir.iterdir():
            if path.name not in known and path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
        return len(rows)


def _record(row: sqlite3.Row) -> dict[str, Any]:
    record = dict(row)
    for key in _JSON_COLUMNS:
        record[key] = json.loads(record[key]) if record[key] else None
    return record
