"""The experiment directory: a SQLite database plus content-addressed weight blobs.

Layout::

    DIR/experiment.sqlite     config, learners, one row per round and per vote
    DIR/blobs/ab/abcd....st   accepted weights (and the initial ones), named by id

A round is committed in one transaction after its blob is on disk (written to a
temporary name, then renamed), so a process killed at any instant leaves either the
whole round or none of it. The database runs in WAL mode with ``synchronous=NORMAL``:
a killed process (even ``kill -9``) loses nothing committed; a power cut may lose the
last rounds but never corrupts the file.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from colearning.core.codec import weights_id
from colearning.core.exceptions import StoreError
from colearning.core.records import RoundRecord

DB_NAME = "experiment.sqlite"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE learners (position INTEGER PRIMARY KEY, learner_id TEXT NOT NULL UNIQUE);
CREATE TABLE rounds (
    round_index INTEGER PRIMARY KEY,
    proposer_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('accepted', 'rejected', 'skipped')),
    reason TEXT,
    weights_id TEXT,
    current_weights_id TEXT NOT NULL,
    approvals INTEGER NOT NULL,
    eligible INTEGER NOT NULL,
    t_propose REAL NOT NULL, t_validate REAL NOT NULL,
    t_accept REAL NOT NULL, t_total REAL NOT NULL,
    record_json TEXT NOT NULL,
    committed_at REAL NOT NULL
);
CREATE TABLE votes (
    round_index INTEGER NOT NULL REFERENCES rounds(round_index),
    learner_id TEXT NOT NULL,
    vote INTEGER,
    vote_score REAL,
    test_score REAL,
    error TEXT,
    seconds REAL NOT NULL,
    PRIMARY KEY (round_index, learner_id)
);
"""


class ExperimentStore:
    """An experiment directory on disk. Create with :meth:`create`, reopen with :meth:`open`."""

    def __init__(self, directory: Path, conn: sqlite3.Connection) -> None:
        self.directory = directory
        self._conn = conn

    # -- opening ----------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        directory: str | os.PathLike[str],
        config: Mapping[str, Any],
        learner_ids: list[str],
    ) -> ExperimentStore:
        """Make a new experiment directory; refuse one that already holds anything."""
        path = Path(directory)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            what = "an experiment" if (path / DB_NAME).exists() else "other files"
            raise StoreError(
                f"{path} already holds {what}; continue it with --resume {path}, "
                "or choose a new, empty --out directory"
            )
        path.mkdir(parents=True, exist_ok=True)
        (path / "blobs").mkdir(exist_ok=True)
        conn = _connect(path / DB_NAME)
        with conn:
            conn.executescript(_SCHEMA)
            conn.executemany(
                "INSERT INTO meta VALUES (?, ?)",
                [
                    ("schema_version", str(SCHEMA_VERSION)),
                    ("config", json.dumps(dict(config), sort_keys=True)),
                    ("created_at", str(time.time())),
                ],
            )
            conn.executemany("INSERT INTO learners VALUES (?, ?)", enumerate(learner_ids))
        return cls(path, conn)

    @classmethod
    def open(cls, directory: str | os.PathLike[str]) -> ExperimentStore:
        """Open an existing experiment directory, checking it is one of ours."""
        path = Path(directory)
        db = path / DB_NAME
        if not path.is_dir():
            raise StoreError(
                f"{path} is not a directory; pass the --out directory of an earlier `colearn run`"
            )
        if not db.is_file():
            raise StoreError(
                f"{path} is not a colearning experiment directory (no {DB_NAME} in it); "
                "pass the --out directory of an earlier `colearn run`"
            )
        try:
            conn = _connect(db)
            version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{db} cannot be read as an experiment database ({exc}); it is damaged "
                "or was not written by colearning"
            ) from exc
        if version is None or int(version[0]) != SCHEMA_VERSION:
            raise StoreError(
                f"{db} has schema version {version and version[0]}; this colearning reads "
                f"version {SCHEMA_VERSION}"
            )
        return cls(path, conn)

    def close(self) -> None:
        self._conn.close()

    # -- config and learners ----------------------------------------------------------

    @property
    def config(self) -> dict[str, Any]:
        return dict(json.loads(self._meta("config") or "{}"))

    @property
    def learner_ids(self) -> list[str]:
        rows = self._conn.execute("SELECT learner_id FROM learners ORDER BY position")
        return [r[0] for r in rows]

    @property
    def initial_weights_id(self) -> str | None:
        return self._meta("initial_weights_id")

    def set_initial_weights(self, blob: bytes) -> str:
        """Store the weights every learner starts from; returns their id."""
        wid = self.put_blob(blob)
        with self._conn:
            self._conn.execute(
                "INSERT OR REPLACE INTO meta VALUES ('initial_weights_id', ?)", (wid,)
            )
        return wid

    def put_meta(self, key: str, value: Any) -> None:
        with self._conn:
            self._conn.execute(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value))
            )

    def get_meta(self, key: str) -> Any:
        raw = self._meta(key)
        return None if raw is None else json.loads(raw)

    def _meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    # -- blobs ------------------------------------------------------------------------

    def blob_path(self, wid: str) -> Path:
        return self.directory / "blobs" / wid[:2] / f"{wid}.safetensors"

    def put_blob(self, blob: bytes, wid: str | None = None) -> str:
        """Write ``blob`` under its id (atomically; a no-op if already there)."""
        wid = wid or weights_id(blob)
        target = self.blob_path(wid)
        if target.exists():
            return wid
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(blob)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return wid

    def get_blob(self, wid: str) -> bytes:
        path = self.blob_path(wid)
        try:
            blob = path.read_bytes()
        except FileNotFoundError as exc:
            raise StoreError(
                f"weights {wid[:12]}... are recorded but {path} is missing; the "
                "experiment directory is incomplete"
            ) from exc
        if weights_id(blob) != wid:
            raise StoreError(f"{path} does not hash to its id {wid[:12]}...; the file is damaged")
        return blob

    # -- rounds -----------------------------------------------------------------------

    def commit_round(self, record: RoundRecord, blob: bytes | None = None) -> None:
        """Record a round (and the blob of its accepted weights) in one transaction."""
        if blob is not None:
            self.put_blob(blob, record.weights_id)
        t = record.timings
        with self._conn:
            self._conn.execute(
                "INSERT INTO rounds VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    record.round_index,
                    record.proposer_id,
                    record.status,
                    record.reason,
                    record.weights_id,
                    record.current_weights_id,
                    record.approvals,
                    record.eligible,
                    t.propose,
                    t.validate,
                    t.accept,
                    t.total,
                    json.dumps(record.to_dict()),
                    time.time(),
                ),
            )
            self._conn.executemany(
                "INSERT INTO votes VALUES (?,?,?,?,?,?,?)",
                [
                    (
                        record.round_index,
                        v.learner_id,
                        None if v.vote is None else int(v.vote),
                        v.vote_score,
                        v.test_score,
                        v.error,
                        v.seconds,
                    )
                    for v in record.votes
                ],
            )

    def rounds(self) -> list[RoundRecord]:
        rows = self._conn.execute("SELECT record_json FROM rounds ORDER BY round_index")
        return [RoundRecord.from_dict(json.loads(r[0])) for r in rows]

    def last_round(self) -> RoundRecord | None:
        row = self._conn.execute(
            "SELECT record_json FROM rounds ORDER BY round_index DESC LIMIT 1"
        ).fetchone()
        return None if row is None else RoundRecord.from_dict(json.loads(row[0]))

    def current_weights_id(self) -> str | None:
        last = self.last_round()
        return last.current_weights_id if last else self.initial_weights_id

    def to_json(self) -> dict[str, Any]:
        """The whole experiment as one JSON-ready value."""
        return {
            "config": self.config,
            "learners": self.learner_ids,
            "initial_weights_id": self.initial_weights_id,
            "final_weights_id": self.current_weights_id(),
            "rounds": [r.to_dict() for r in self.rounds()],
            "summary": self.get_meta("summary"),
        }


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level="DEFERRED")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


@contextmanager
def opened(directory: str | os.PathLike[str]) -> Iterator[ExperimentStore]:
    """Open an experiment directory for reading and close it afterwards."""
    store = ExperimentStore.open(directory)
    try:
        yield store
    finally:
        store.close()
