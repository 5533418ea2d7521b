"""The experiment directory: a SQLite database plus content-addressed weight blobs.

Layout::

    DIR/experiment.sqlite     config, learners, one row per round, per proposal, per
                              vote, per committee member
    DIR/blobs/ab/abcd....st   accepted weights (and the initial ones), named by id

Schema version 2 holds several proposals per round (their own screening votes
included) and a committee per round. A directory of schema 1 (the first version: one
proposal a round) is migrated in place, in one transaction, when it is opened.

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
SCHEMA_VERSION = 2

_BASE_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE learners (position INTEGER PRIMARY KEY, learner_id TEXT NOT NULL UNIQUE);
"""
_ROUND_SCHEMA = """
CREATE TABLE rounds (
    round_index INTEGER PRIMARY KEY,
    mode TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('accepted', 'rejected', 'skipped')),
    previous_weights_id TEXT NOT NULL,
    current_weights_id TEXT NOT NULL,
    candidate_weights_id TEXT,
    approvals INTEGER,
    eligible INTEGER,
    decided_by TEXT,
    t_propose REAL NOT NULL, t_validate REAL NOT NULL,
    t_accept REAL NOT NULL, t_total REAL NOT NULL,
    record_json TEXT NOT NULL,
    committed_at REAL NOT NULL
);
CREATE TABLE proposals (
    round_index INTEGER NOT NULL REFERENCES rounds(round_index),
    position INTEGER NOT NULL,
    proposer_id TEXT NOT NULL,
    weights_id TEXT,
    reason TEXT,
    detail TEXT,
    PRIMARY KEY (round_index, position)
);
CREATE TABLE votes (
    round_index INTEGER NOT NULL REFERENCES rounds(round_index),
    stage TEXT NOT NULL,
    learner_id TEXT NOT NULL,
    ballot TEXT NOT NULL CHECK (ballot IN ('approve', 'reject', 'abstain')),
    reason TEXT,
    vote_score REAL,
    test_score REAL,
    detail TEXT,
    seconds REAL NOT NULL,
    PRIMARY KEY (round_index, stage, learner_id)
);
CREATE TABLE committees (
    round_index INTEGER NOT NULL REFERENCES rounds(round_index),
    learner_id TEXT NOT NULL,
    PRIMARY KEY (round_index, learner_id)
);
"""

#: The stage of the votes on a round's candidate; a proposal's screening votes are
#: stored under ``proposal:POSITION``.
CANDIDATE_STAGE = "candidate"


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
                f"{path} already holds {what}; continue it (`colearn run --resume {path}`, "
                f"or resume_task({str(path)!r}) from Python), or choose a new, empty "
                "directory (--out, or run_task(config, out=...))"
            )
        path.mkdir(parents=True, exist_ok=True)
        (path / "blobs").mkdir(exist_ok=True)
        conn = _connect(path / DB_NAME)
        with conn:
            conn.executescript(_BASE_SCHEMA + _ROUND_SCHEMA)
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
                f"{path} is not a directory; pass the experiment directory of an earlier "
                "run (its --out, or run_task's out=)"
            )
        if not db.is_file():
            raise StoreError(
                f"{path} is not a colearning experiment directory (no {DB_NAME} in it); "
                "pass the experiment directory of an earlier run (its --out, or run_task's out=)"
            )
        try:
            conn = _connect(db)
            version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{db} cannot be read as an experiment database ({exc}); it is damaged "
                "or was not written by colearning"
            ) from exc
        stored = _version(version)
        if stored == 1:
            _migrate_v1(conn, db)
        elif stored != SCHEMA_VERSION:
            conn.close()
            raise StoreError(
                f"{db} has schema version {stored}; this colearning reads versions 1 and "
                f"{SCHEMA_VERSION}. Open it with the colearning version that wrote it "
                "(a newer one), or start a new experiment"
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
            self.put_blob(blob, record.current_weights_id)
        with self._conn:
            _insert_round(self._conn, record, json.dumps(record.to_dict()), time.time())

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


def _version(row: Any) -> int | None:
    try:
        return None if row is None else int(row[0])
    except (TypeError, ValueError):
        return None


def _insert_round(
    conn: sqlite3.Connection, record: RoundRecord, record_json: str, committed_at: float
) -> None:
    t = record.timings
    d = record.decision
    r = record.round_index
    conn.execute(
        "INSERT INTO rounds VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            r,
            record.mode,
            record.status,
            record.previous_weights_id,
            record.current_weights_id,
            record.weights_id,
            None if d is None else d.approvals,
            None if d is None else d.eligible,
            None if d is None else d.decided_by,
            t.propose,
            t.validate,
            t.accept,
            t.total,
            record_json,
            committed_at,
        ),
    )
    conn.executemany(
        "INSERT INTO proposals VALUES (?,?,?,?,?,?)",
        [
            (r, i, p.proposer_id, p.weights_id, p.reason and p.reason.value, p.detail)
            for i, p in enumerate(record.proposals)
        ],
    )
    stages = [(CANDIDATE_STAGE, record.votes)] + [
        (f"proposal:{i}", p.screening) for i, p in enumerate(record.proposals) if p.screening
    ]
    conn.executemany(
        "INSERT INTO votes VALUES (?,?,?,?,?,?,?,?,?)",
        [
            (
                r,
                stage,
                v.learner_id,
                v.ballot.value,
                v.reason and v.reason.value,
                v.vote_score,
                v.test_score,
                v.detail,
                v.seconds,
            )
            for stage, votes in stages
            for v in votes
        ],
    )
    if record.committee is not None:
        conn.executemany(
            "INSERT INTO committees VALUES (?,?)", [(r, lid) for lid in record.committee]
        )


def _migrate_v1(conn: sqlite3.Connection, db: Path) -> None:
    """Rewrite a schema-1 database (one proposal a round) as schema 2, in one
    transaction: every record is converted; config, learners and blobs stay as they are.
    """
    from colearning.core.tally import threshold_fraction

    try:
        rows = conn.execute(
            "SELECT record_json, committed_at FROM rounds ORDER BY round_index"
        ).fetchall()
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        config = json.loads(meta.get("config", "{}"))
        value = config.get("vote_threshold")
        threshold = threshold_fraction(float(value) if value is not None else 0.5)
        previous = str(meta.get("initial_weights_id", ""))
        records = []
        for record_json, committed_at in rows:
            record = RoundRecord.from_v1(json.loads(record_json), previous, threshold)
            previous = record.current_weights_id
            records.append((record, float(committed_at)))
    except (sqlite3.DatabaseError, ValueError, KeyError, TypeError) as exc:
        conn.close()
        raise StoreError(
            f"{db} holds an experiment of schema version 1 that cannot be migrated to "
            f"version {SCHEMA_VERSION} ({type(exc).__name__}: {exc}); it is damaged"
        ) from exc
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("DROP TABLE votes")
        conn.execute("DROP TABLE rounds")
        for statement in _ROUND_SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        for record, committed_at in records:
            _insert_round(conn, record, json.dumps(record.to_dict()), committed_at)
        conn.execute(
            "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),)
        )
        conn.commit()
    except sqlite3.Error as exc:
        conn.rollback()
        conn.close()
        raise StoreError(
            f"{db} holds an experiment of schema version 1, which must be migrated to "
            f"version {SCHEMA_VERSION} before use, and migrating failed ({exc}). Nothing "
            "was changed; make the directory writable (or copy it somewhere writable) "
            "and open it again"
        ) from exc
