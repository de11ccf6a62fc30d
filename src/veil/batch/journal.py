"""The journal of a batch: which files are done, so a run that was stopped
(Ctrl-C, `kill -9`, power loss) resumes where it was.

It is a SQLite database in the output folder (`.veil-batch.sqlite`; hidden,
so no later run takes it for an input), in WAL mode with synchronous=FULL,
written by one process only: the run's coordinator. A file's job is
`running` from just before it starts and `done` (or `failed`) once its
output and plan have landed, with the file's report, the input's
fingerprint (size, modification time, inode) and the options' key. The
landing of the output is the moment a result counts; the journal records
it right after.

A resumed run takes a `done` job's report as it stands when the input's
fingerprint and the options are unchanged and its output and plan are
still there, and redoes every other job. A job found `running` was cut
off: if it had claimed its output (the name was free when it started) and
the output landed before the journal heard of it, that output and its plan
are veil's own half-recorded work and are removed before the job is done
again, so nothing is done twice in the final result. Failed jobs are tried
again: a full disk or a missing file may have been put right since.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from veil.errors import JournalError, VeilError
from veil.jobs import Job
from veil.media.files import output_root, remove_output
from veil.plan.files import plan_path
from veil.report import FileReport, FileStatus, file_from_dict, file_to_dict

JOURNAL_NAME = ".veil-batch.sqlite"
_SCHEMA = 1

_TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    target TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    root TEXT,                       -- the output folder below which no link is followed
    state TEXT NOT NULL,             -- pending, running, done, failed
    claimed INTEGER NOT NULL DEFAULT 0,
    fingerprint TEXT,
    options TEXT,
    report TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    updated REAL                     -- seconds since the epoch
);
"""


def fingerprint(path: Path) -> str:
    """What changes when a file is replaced or edited: size, time, inode."""
    info = path.stat()
    return f"{info.st_size}:{info.st_mtime_ns}:{info.st_ino}"


@dataclass(frozen=True)
class Standing:
    """Where a batch stands, as `veil status` shows it."""

    total: int
    done: int
    failed: int
    running: int
    pending: int
    verification_failed: int
    updated: float | None  # when the journal last changed (seconds since the epoch)


class Journal:
    """One batch's journal; every write is its own committed transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        new = not path.exists()
        self._lock: int | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._lock = _locked(path)
            self._db = sqlite3.connect(path, isolation_level=None, timeout=30)
            if new:
                path.chmod(0o600)  # it names every file of the batch
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_TABLES)
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(_SCHEMA),))
            schema = self._db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0]
        except BlockingIOError as e:
            raise JournalError(f"another veil run is working on this batch ({path})") from e
        except (sqlite3.Error, OSError) as e:
            if self._lock is not None:
                os.close(self._lock)
            if new:  # a journal that could not be made is not left half made
                with contextlib.suppress(AttributeError, sqlite3.Error):
                    self._db.close()
                for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                    with contextlib.suppress(OSError):
                        leftover.unlink()
            raise JournalError(f"cannot open the batch journal {path}: {e}") from e
        if schema != str(_SCHEMA):
            raise JournalError(f"the batch journal {path} is of another veil (schema {schema})")

    def close(self) -> None:
        self._db.close()
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                yield self._db
        except sqlite3.Error as e:
            raise JournalError(f"cannot write the batch journal {self.path}: {e}") from e

    def restart(self) -> None:
        """Start the batch over (`--restart`): the outputs it made are
        removed (they are its own; nothing else is touched) and every job
        forgotten."""
        rows = self._db.execute(
            "SELECT target, root FROM jobs WHERE state = 'done' OR (state = 'running' AND claimed = 1)"
        ).fetchall()
        for target, root in rows:
            _remove_outputs(Path(target), root)
        with self._writing() as db:
            db.execute("DELETE FROM jobs")

    def recover(self) -> None:
        """Undo the half-recorded work of a run that was cut off."""
        rows = self._db.execute(
            "SELECT target, root FROM jobs WHERE state = 'running' AND claimed = 1"
        ).fetchall()
        for target, root in rows:
            _remove_outputs(Path(target), root)
        with self._writing() as db:
            db.execute("UPDATE jobs SET state = 'pending', claimed = 0 WHERE state = 'running'")

    def plan(self, jobs: list[Job]) -> None:
        """Record the batch's jobs; those known already keep their state."""
        with self._writing() as db:
            db.executemany(
                "INSERT INTO jobs (target, source, root, state) VALUES (?, ?, ?, 'pending') "
                "ON CONFLICT (target) DO UPDATE SET source = excluded.source, root = excluded.root",
                [(str(job.target), str(job.source), str(job.root) if job.root else None) for job in jobs],
            )

    def gone(self, jobs: list[Job]) -> list[tuple[Path, Path]]:
        """(input, output) of jobs done in an earlier run whose input is no
        longer there and which `jobs` no longer holds."""
        planned = {str(job.target) for job in jobs}
        rows = self._db.execute("SELECT source, target FROM jobs WHERE state = 'done'").fetchall()
        return [
            (Path(source), Path(target))
            for source, target in rows
            if target not in planned and not os.path.lexists(source)
        ]

    def finished(self, job: Job, options: str) -> FileReport | None:
        """The report of `job` when it is done and still stands: same input,
        same options, output and plan in place. None: it must be done."""
        row = self._db.execute(
            "SELECT state, fingerprint, options, report FROM jobs WHERE target = ?", (str(job.target),)
        ).fetchone()
        if row is None or row[0] != "done" or row[2] != options:
            return None
        try:
            if row[1] != fingerprint(job.source):
                return None
        except OSError:
            return None
        report = file_from_dict(json.loads(row[3]))
        if report.status is FileStatus.ANONYMIZED and not (
            job.target.exists() and (report.plan is None or Path(report.plan).exists())
        ):
            return None
        return report

    def start(self, job: Job) -> None:
        """Record that `job` begins. A job done before (its input or the
        options changed since, or its plan went) has its old output and plan
        removed: they are this batch's own, and out of date. So has a job
        begun before in this run whose worker died: its output may have
        landed just before the worker went."""
        row = self._db.execute(
            "SELECT state, claimed FROM jobs WHERE target = ?", (str(job.target),)
        ).fetchone()
        if row is not None and (row[0] == "done" or (row[0] == "running" and row[1])):
            _remove_outputs(job.target, str(job.root) if job.root else None)
        claimed = not (os.path.lexists(job.target) or os.path.lexists(plan_path(job.target)))
        with self._writing() as db:
            db.execute(
                "UPDATE jobs SET state = 'running', claimed = ?, attempts = attempts + 1, updated = ? "
                "WHERE target = ?",
                (int(claimed), time.time(), str(job.target)),
            )

    def finish(self, job: Job, report: FileReport, options: str, print_: str | None) -> None:
        """Record how `job` ended. `print_`: the input's fingerprint taken
        before the job read it (None: the input could not be read)."""
        state = "failed" if report.status is FileStatus.FAILED else "done"
        with self._writing() as db:
            db.execute(
                "UPDATE jobs SET state = ?, claimed = 0, fingerprint = ?, options = ?, report = ?, "
                "updated = ? WHERE target = ?",
                (state, print_, options, json.dumps(file_to_dict(report)), time.time(), str(job.target)),
            )

    def standing(self) -> Standing:
        return _standing(self._db)


def _locked(path: Path) -> int:
    """The journal's file, open and exclusively flock-ed for this run: a
    second run of the same batch at the same time would take the first's
    work in flight for cut-off work. (SQLite's own locks are fcntl locks,
    which do not meet flock's.)"""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _remove_outputs(target: Path, root: str | None) -> None:
    """Remove an output of this batch's and its plan, reaching them from the
    output folder as they were written (no link below it followed)."""
    with output_root(Path(root) if root else None):
        for path in (target, plan_path(target)):
            with contextlib.suppress(OSError, VeilError):  # refused (a link): the job then fails alone
                remove_output(path)


def read_standing(path: Path) -> Standing:
    """Where the batch whose journal is `path` stands, read without writing."""
    if not path.is_file():
        raise JournalError(f"no batch journal at {path}")
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            return _standing(db)
        finally:
            db.close()
    except sqlite3.Error as e:
        raise JournalError(f"cannot read the batch journal {path}: {e}") from e


def _standing(db: sqlite3.Connection) -> Standing:
    counts = dict(db.execute("SELECT state, count(*) FROM jobs GROUP BY state").fetchall())
    unverified = 0
    for (text,) in db.execute("SELECT report FROM jobs WHERE state = 'done'"):
        verification = json.loads(text).get("verification")
        unverified += bool(verification) and not verification.get("passed", True)
    return Standing(
        total=sum(counts.values()),
        done=counts.get("done", 0),
        failed=counts.get("failed", 0),
        running=counts.get("running", 0),
        pending=counts.get("pending", 0),
        verification_failed=unverified,
        updated=db.execute("SELECT max(updated) FROM jobs").fetchone()[0],
    )


def options_key(options: dict[str, Any], version: str) -> str:
    """The options that decide an output, and the veil that made it, as one string."""
    return json.dumps({"veil": version, "options": options}, sort_keys=True)
