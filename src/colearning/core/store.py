"""The experiment directory: a SQLite database plus content-addressed weight blobs.

Layout::

    DIR/experiment.sqlite     config, learners, one row per round, per proposal, per
                              vote, per committee member
    DIR/blobs/ab/abcd....st   accepted weights (and the initial ones), named by id

**Crash-safe.** A round is committed in one transaction after its blob is on disk
(written to a temporary name, then renamed), so a process killed at any instant leaves
either the whole round or none of it. The database runs in WAL mode with
``synchronous=NORMAL``: a killed process (even ``kill -9``) loses nothing committed; a
power cut may lose the last rounds but never corrupts the file. A new directory is
built beside its final name and renamed into place, so a run killed while creating it
leaves no half-made experiment. One process at a time may write an experiment (an OS
lock on the directory); readers need no write access at all.

**Tamper-evident** (schema version 3). The rounds form a hash chain: each round's
stored record (``rounds.record_json``) names the SHA-256 of the record before it
(``previous_record_hash``; round 0 names the *genesis* hash of the config, the
learners and the initial weights id) and the weights ids it moved between; the hash of
the record itself is ``rounds.record_hash``, and the last one is kept in ``meta`` as
the chain's head. Every read of the rounds checks the whole chain, that the SQL
columns say what the record says, that a round starts from the weights the round
before ended with, and that its outcome follows from its votes; any break is a
:class:`StoreError` naming the round. ``colearn verify DIR`` also checks every blob
against its id. (A chain in a file its attacker can write shows a single edit; a
history rewritten consistently from the edit onwards is caught only against a head
hash kept elsewhere: the one ``colearn verify`` prints, or a ledger's.)

Directories of schema 1 (one proposal a round) and 2 (no chain) are migrated in place,
in one transaction, when opened for writing, and in memory when opened read-only.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import secrets
import shutil
import sqlite3
import stat
import tempfile
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from colearning.core.codec import (
    BlobHeader,
    check_weights_id,
    header_length,
    is_weights_id,
    read_header,
    weights_id,
)
from colearning.core.exceptions import (
    StoreDamagedError,
    StoreError,
    StoreWriteError,
    WeightsError,
)
from colearning.core.protocol import Ballot
from colearning.core.records import RoundRecord

DB_NAME = "experiment.sqlite"
#: What reading a damaged database raises: SQLite's errors, and undecodable text in
#: its error messages (a damaged schema).
DB_ERRORS: tuple[type[Exception], ...] = (sqlite3.DatabaseError, UnicodeDecodeError)
SCHEMA_VERSION = 3
#: Schema versions this colearning opens (older ones are migrated).
READABLE_VERSIONS = (1, 2, 3)

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
    committed_at REAL NOT NULL,
    previous_record_hash TEXT NOT NULL,
    record_hash TEXT NOT NULL UNIQUE
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
_ROUND_COLUMNS = (
    "round_index, mode, status, previous_weights_id, current_weights_id, "
    "candidate_weights_id, approvals, eligible, decided_by, t_propose, t_validate, "
    "t_accept, t_total, record_json, committed_at, previous_record_hash, record_hash"
)

#: Config settings that may change after rounds are committed, unless the creator says
#: otherwise: how many rounds to play in all and whether to train the baselines at the
#: end change nothing already computed. Migrated directories take these too.
MUTABLE_KEYS = ("baselines", "rounds")

#: The stage of the votes on a round's candidate; a proposal's screening votes are
#: stored under ``proposal:POSITION``.
CANDIDATE_STAGE = "candidate"

# meta keys the store owns: written only through its own methods
_OWN_META = frozenset(
    {"schema_version", "config", "initial_weights_id", "mutable_config_keys", "chain_head"}
)

_FIX_DAMAGED = (
    "Run `colearn verify {dir}` for every problem found; restore the directory from a "
    "copy, or start a new experiment"
)


@dataclass(frozen=True)
class Damage:
    """One thing wrong in an experiment directory: where (a round, or ``None`` for the
    directory as a whole) and what."""

    round_index: int | None
    message: str

    def __str__(self) -> str:
        return (
            self.message
            if self.round_index is None
            else f"round {self.round_index}: {self.message}"
        )


@dataclass(frozen=True)
class ChainHead:
    """The last link of the chain: how many rounds it holds and the last record's hash
    (the genesis hash when there are no rounds)."""

    rounds: int
    record_hash: str


@dataclass(frozen=True)
class Inspection:
    """What :meth:`ExperimentStore.inspect` found."""

    records: list[RoundRecord]
    damage: list[Damage]
    head: ChainHead


class ExperimentStore:
    """An experiment directory on disk. Create with :meth:`create`, reopen with :meth:`open`."""

    def __init__(
        self,
        directory: Path,
        conn: sqlite3.Connection,
        *,
        readonly: bool = False,
        lock: _DirectoryLock | None = None,
        notes: Sequence[str] = (),
        keep: Any = None,
    ) -> None:
        self.directory = directory
        self._conn = conn
        self.readonly = readonly
        self._lock = lock
        #: Things worth saying about how the directory was opened (a migration in memory).
        self.notes = list(notes)
        self._keep = keep  # a temporary copy of the database, removed with this store
        self._records: list[RoundRecord] | None = None
        self._head: ChainHead | None = None

    # -- opening ----------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        directory: str | os.PathLike[str],
        config: Mapping[str, Any],
        learner_ids: Sequence[str],
        *,
        mutable_keys: Iterable[str] | None = None,
    ) -> ExperimentStore:
        """Make a new experiment directory; refuse one that already holds anything.

        The directory is built under a temporary name beside ``directory`` and renamed
        into place, so a process killed meanwhile leaves no half-made experiment.
        ``mutable_keys`` name config settings that may be changed later with
        :meth:`update_config` (default :data:`MUTABLE_KEYS`); the chain commits to
        every other one.
        """
        path = Path(directory)
        ids = _checked_learner_ids(learner_ids)
        mutable = sorted({str(k) for k in (MUTABLE_KEYS if mutable_keys is None else mutable_keys)})
        config_text = _config_text(config)
        cls.check_new(path)
        parent = path.absolute().parent
        with _os_errors(f"cannot create the experiment directory {path}"):
            parent.mkdir(parents=True, exist_ok=True)
            _remove_stale_partials(parent, path.name)
            # a plain mkdir (not mkdtemp, which makes it 0700): the directory keeps
            # the permissions any directory made here would have
            partial = parent / f".{path.name}.partial-{os.getpid()}-{secrets.token_hex(4)}"
            partial.mkdir()
        try:
            with _os_errors(f"cannot create the experiment directory {path}"):
                (partial / "blobs").mkdir()
                conn = _connect(partial / DB_NAME)
                try:
                    with conn:
                        conn.executescript(_BASE_SCHEMA + _ROUND_SCHEMA)
                        conn.executemany(
                            "INSERT INTO meta VALUES (?, ?)",
                            [
                                ("schema_version", str(SCHEMA_VERSION)),
                                ("config", config_text),
                                ("mutable_config_keys", json.dumps(mutable)),
                                ("created_at", repr(time.time())),
                            ],
                        )
                        conn.executemany("INSERT INTO learners VALUES (?, ?)", enumerate(ids))
                finally:
                    conn.close()
                lock = _DirectoryLock.take(partial, shown=path)
                try:
                    # replaces an empty directory too, at once; the lock moves with it
                    os.rename(partial, path)
                except OSError as exc:
                    lock.release()
                    if exc.errno != errno.EBUSY or not path.is_dir():
                        raise
                    # an empty mount point cannot be replaced: fill it instead, the
                    # database first (alone it is an experiment that has not started,
                    # which --resume starts; blobs/ is made again when needed)
                    lock = _DirectoryLock.take(path, shown=path)
                    try:
                        os.rename(partial / DB_NAME, path / DB_NAME)
                        os.rename(partial / "blobs", path / "blobs")
                    except BaseException:
                        lock.release()
                        raise
                    partial.rmdir()
                except BaseException:
                    lock.release()
                    raise
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        try:
            conn = _connect(path / DB_NAME)
        except sqlite3.Error as exc:
            lock.release()
            raise StoreError(f"cannot open the new experiment database in {path}: {exc}") from exc
        return cls(path, conn, lock=lock)

    @staticmethod
    def check_new(directory: str | os.PathLike[str]) -> None:
        """Raise :class:`StoreError` unless :meth:`create` can make ``directory``: it
        is absent or an empty directory, under directories (not files), with names the
        operating system allows. Cheap: run it before any slow work."""
        path = Path(directory)
        refuse = "; choose another directory (--out, or run_task(config, out=...))"
        if not str(directory).strip():
            raise StoreError("the experiment directory name is empty" + refuse)
        try:
            info: os.stat_result | None = path.lstat()
        except (FileNotFoundError, NotADirectoryError):
            info = None  # absent, or under a file (named below)
        except OSError as exc:
            raise StoreError(
                f"{str(path)[:80]} cannot be an experiment directory: "
                f"{os_message(exc, with_name=False)}" + refuse
            ) from None
        if info is not None and (not stat.S_ISDIR(info.st_mode) or any(path.iterdir())):
            if stat.S_ISLNK(info.st_mode):
                what = "a symbolic link"
            elif not stat.S_ISDIR(info.st_mode):
                what = "a file"
            else:
                what = "an experiment" if (path / DB_NAME).exists() else "other files"
            raise StoreError(
                f"{path} already holds {what}; continue an experiment with `colearn run "
                f"--resume {path}` (or resume_task({str(path)!r}) from Python), or choose a "
                "new, empty directory (--out, or run_task(config, out=...))"
            )
        for ancestor in path.absolute().parents:
            try:
                mode = ancestor.stat().st_mode
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as exc:
                raise StoreError(
                    f"cannot use {path}: {ancestor}: {os_message(exc, with_name=False)}" + refuse
                ) from None
            if not stat.S_ISDIR(mode):
                raise StoreError(
                    f"cannot create {path}: {ancestor} is a file, not a directory" + refuse
                )
            if not os.access(ancestor, os.W_OK | os.X_OK):
                raise StoreError(f"cannot create {path}: {ancestor} is not writable" + refuse)
            break

    @classmethod
    def open(cls, directory: str | os.PathLike[str], *, readonly: bool = False) -> ExperimentStore:
        """Open an existing experiment directory, checking it is one of ours.

        ``readonly=True`` never writes (a read-only copy can be shown, plotted,
        exported and verified); an older schema is then migrated in memory only.
        Otherwise this process takes the directory's write lock, and an older schema
        is migrated in place.
        """
        path = Path(directory)
        db = path / DB_NAME
        try:
            is_dir = path.is_dir()
        except OSError as exc:  # a name too long, say
            raise StoreError(
                f"{str(path)[:80]} cannot be an experiment directory: "
                f"{os_message(exc, with_name=False)}; pass the experiment directory of an "
                "earlier run (its --out, or run_task's out=)"
            ) from None
        if not is_dir:
            raise StoreError(
                f"{path} is not a directory; pass the experiment directory of an earlier "
                "run (its --out, or run_task's out=)"
            )
        if not db.is_file() or db.is_symlink():
            raise StoreError(
                f"{path} is not a colearning experiment directory (no {DB_NAME} in it); "
                "pass the experiment directory of an earlier run (its --out, or run_task's out=)"
            )
        lock = None if readonly else _DirectoryLock.take(path, shown=path)
        notes: list[str] = []
        keep: Any = None
        try:
            if readonly:
                conn, keep = _connect_readonly(db)
            else:
                conn = _connect(db)
            try:
                stored = _version(_meta_row(conn, "schema_version"))
            except DB_ERRORS as exc:
                conn.close()
                raise StoreError(
                    f"{db} cannot be read as an experiment database ({exc}); it is damaged "
                    "or was not written by colearning"
                ) from exc
            if stored is None or stored < 1:
                conn.close()
                raise StoreDamagedError(
                    f"{db} has no readable schema version (meta 'schema_version'); it is "
                    "damaged or was not written by colearning. " + _FIX_DAMAGED.format(dir=path)
                )
            if stored not in READABLE_VERSIONS:
                conn.close()
                raise StoreError(
                    f"{db} has schema version {stored}; this colearning reads versions "
                    f"{', '.join(map(str, READABLE_VERSIONS))}. Open it with the colearning "
                    "version that wrote it (a newer one), or start a new experiment"
                )
            if stored != SCHEMA_VERSION:
                if readonly:
                    conn = _in_memory(conn)
                    notes.append(
                        f"schema version {stored}: migrated in memory for reading (the "
                        "directory was not changed); its chain of record hashes was "
                        "computed now, from the rows as they are"
                    )
                _migrate(conn, db, stored)
        except BaseException:
            if lock is not None:
                lock.release()
            if keep is not None:
                keep.cleanup()
            raise
        if lock is not None:
            _remove_unfinished_blobs(path)
        return cls(path, conn, readonly=readonly, lock=lock, notes=notes, keep=keep)

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        if self._keep is not None:
            self._keep.cleanup()
            self._keep = None

    def __enter__(self) -> ExperimentStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- config and learners ----------------------------------------------------------

    @property
    def config(self) -> dict[str, Any]:
        raw = self._meta("config")
        if raw is None:
            return {}
        value = _parse_json(raw, f"the stored config of {self.directory}", self.directory)
        if not isinstance(value, dict):
            raise self._damaged(
                f"the stored config is a {type(value).__name__}, not a table of settings"
            )
        return value

    @property
    def mutable_config_keys(self) -> frozenset[str]:
        raw = self._meta("mutable_config_keys")
        if raw is None:
            return frozenset()
        value = _parse_json(raw, "the stored list of changeable settings", self.directory)
        if not isinstance(value, list) or not all(isinstance(k, str) for k in value):
            raise self._damaged("the stored list of changeable settings is not a list of names")
        return frozenset(value)

    def update_config(self, config: Mapping[str, Any]) -> None:
        """Store a new config that differs from the stored one only in settings named
        changeable when the directory was created (``mutable_keys``)."""
        new = json.loads(_config_text(config))
        old = self.config
        mutable = self.mutable_config_keys
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        fixed = [k for k in changed if k not in mutable]
        if fixed:
            raise StoreError(
                f"{self.directory}: setting {fixed[0]!r} cannot change once an experiment "
                f"exists (was {old.get(fixed[0])!r}, got {new.get(fixed[0])!r}); only "
                f"{', '.join(sorted(mutable)) or 'nothing'} may"
            )
        if changed:
            self._write_meta("config", _config_text(config))
            self._records = self._head = None

    @property
    def learner_ids(self) -> list[str]:
        try:
            rows = self._conn.execute(
                "SELECT position, learner_id FROM learners ORDER BY position"
            ).fetchall()
        except DB_ERRORS as exc:
            raise self._damaged(f"the learners table cannot be read ({exc})") from exc
        ids = [r[1] for r in rows]
        if [r[0] for r in rows] != list(range(len(rows))) or not all(
            isinstance(i, str) and i for i in ids
        ):
            raise self._damaged(
                "the learners table is not a list of names at positions 0, 1, 2, ..."
            )
        return ids

    @property
    def initial_weights_id(self) -> str | None:
        raw = self._meta("initial_weights_id")
        if raw is None:
            return None
        if not is_weights_id(raw):
            raise self._damaged(
                f"the initial weights id {raw[:80]!r} is not 64 lowercase hex digits"
            )
        return raw

    def set_initial_weights(self, blob: bytes) -> str:
        """Store the weights every learner starts from; returns their id."""
        wid = weights_id(blob)
        existing = self.initial_weights_id
        if existing is not None and existing != wid:
            raise StoreError(
                f"{self.directory} already starts from weights {existing[:12]}...; an "
                "experiment's initial weights cannot change"
            )
        self.put_blob(blob, wid)
        if existing is None:
            self._write_meta("initial_weights_id", wid)
            self._records = self._head = None  # the genesis commits to it: read again
        return wid

    def put_meta(self, key: str, value: Any) -> None:
        """Store a JSON value under ``key`` (the summary, a transport's details);
        ``"config"`` goes through :meth:`update_config` (only changeable settings)."""
        if key == "config":
            self.update_config(value)
            return
        if key in _OWN_META:
            raise StoreError(
                f"meta key {key!r} is the store's own; use update_config or set_initial_weights"
            )
        self._write_meta(key, json.dumps(value))

    def get_meta(self, key: str) -> Any:
        raw = self._meta(key)
        return None if raw is None else _parse_json(raw, f"the stored {key}", self.directory)

    def _meta(self, key: str) -> str | None:
        try:
            row = _meta_row(self._conn, key)
        except DB_ERRORS as exc:
            raise self._damaged(f"the meta table cannot be read ({exc})") from exc
        if row is None:
            return None
        if not isinstance(row[0], str):
            raise self._damaged(f"meta {key!r} holds a {type(row[0]).__name__}, not text")
        return row[0]

    def _write_meta(self, key: str, text: str) -> None:
        self._writable()
        with self._writing(f"cannot write {key} to {self.directory}"), self._conn:
            self._conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, text))

    # -- blobs ------------------------------------------------------------------------

    def blob_path(self, wid: str) -> Path:
        """Where the blob of ``wid`` lives (the id is checked first: never a path)."""
        try:
            check_weights_id(wid, "a blob's id")
        except WeightsError as exc:
            raise StoreError(str(exc)) from None
        return self.directory / "blobs" / wid[:2] / f"{wid}.safetensors"

    def put_blob(self, blob: bytes, wid: str | None = None) -> str:
        """Write ``blob`` under its id (atomically; a no-op if already there)."""
        self._writable()
        wid = wid or weights_id(blob)
        target = self.blob_path(wid)
        with self._writing(f"cannot write weights {wid[:12]}... to {self.directory}"):
            try:
                if stat.S_ISREG(target.lstat().st_mode):
                    return wid
            except FileNotFoundError:
                pass
            _real_directory(self.directory / "blobs", self.directory)
            target.parent.mkdir(exist_ok=True)
            _real_directory(target.parent, self.directory)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(blob)
                # replaces a link or anything else left at the name, too
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return wid

    def get_blob(self, wid: str) -> bytes:
        """The blob of ``wid``, read only if it is a regular file whose size is the one
        its header declares, and returned only if it hashes to ``wid``."""
        path = self.blob_path(wid)
        blob = _read_blob(path, wid, self.directory)
        if weights_id(blob) != wid:
            raise StoreDamagedError(
                f"{path} does not hash to its id {wid[:12]}...; the file is damaged. "
                + _FIX_DAMAGED.format(dir=self.directory)
            )
        return blob

    def blob_ids(self) -> list[str]:
        """Ids of the weights the experiment needs: the initial ones and every round's."""
        wanted = [] if self.initial_weights_id is None else [self.initial_weights_id]
        for record in self.rounds():
            if record.current_weights_id not in wanted:
                wanted.append(record.current_weights_id)
        return wanted

    # -- rounds -----------------------------------------------------------------------

    def commit_round(self, record: RoundRecord, blob: bytes | None = None) -> None:
        """Record a round (and the blob of its accepted weights) in one transaction,
        as the next link of the chain."""
        self._writable()
        self.rounds()
        assert self._records is not None
        rounds = self._records
        expected = rounds[-1].round_index + 1 if rounds else 0
        if record.round_index != expected:
            raise StoreError(
                f"round {record.round_index} cannot be committed to {self.directory}: the "
                f"next round there is {expected}"
            )
        before = rounds[-1].current_weights_id if rounds else self.initial_weights_id
        if record.previous_weights_id != before:
            raise StoreError(
                f"round {record.round_index} starts from weights "
                f"{record.previous_weights_id[:12]}... but the experiment holds "
                f"{str(before)[:12]}...; it does not follow the committed rounds"
            )
        problem = _outcome_problem(record)
        if problem:
            raise StoreError(f"round {record.round_index} cannot be committed: {problem}")
        head = self.chain_head()
        document = _dump({**record.to_dict(), "previous_record_hash": head.record_hash})
        record_hash = _sha256(document)
        if blob is not None:
            self.put_blob(blob, record.current_weights_id)
        where = f"cannot commit round {record.round_index} to {self.directory}"
        try:
            with self._writing(where), self._conn:
                _insert_round(
                    self._conn, record, document, time.time(), head.record_hash, record_hash
                )
                self._conn.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('chain_head', ?)",
                    (_dump({"rounds": record.round_index + 1, "record_hash": record_hash}),),
                )
        except sqlite3.IntegrityError as exc:
            raise StoreError(
                f"{where}: {exc}; another process may be writing the same experiment"
            ) from exc
        rounds.append(record)
        self._head = ChainHead(record.round_index + 1, record_hash)

    def rounds(self) -> list[RoundRecord]:
        """Every committed round, in order, after checking the whole chain.

        Raises
        ------
        StoreError
            Naming the first round whose record, chain link, SQL rows or outcome is
            damaged.
        """
        if self._records is None:
            records, damage, head = self._check()
            if damage:
                raise self._damaged(str(damage[0]))
            self._records, self._head = records, head
        return list(self._records)

    def last_round(self) -> RoundRecord | None:
        rounds = self.rounds()
        return rounds[-1] if rounds else None

    def current_weights_id(self) -> str | None:
        last = self.last_round()
        return last.current_weights_id if last else self.initial_weights_id

    def genesis_hash(self) -> str:
        """The hash round 0 links to: config (but its changeable settings), learners
        and the initial weights id."""
        return _genesis(
            self.config, self.mutable_config_keys, self.learner_ids, self.initial_weights_id
        )

    def chain_head(self) -> ChainHead:
        """The last link: the number of rounds and the last record's hash."""
        if self._head is None:
            self.rounds()
        assert self._head is not None
        return self._head

    def inspect(self) -> Inspection:
        """Every round that can be read, everything wrong with the rounds and the meta
        data (the blobs are :mod:`colearning.core.verify`'s), and the chain's head.
        Unlike :meth:`rounds` it does not stop at the first problem."""
        records, found, head = self._check()
        return Inspection(records, found, head)

    def to_json(self) -> dict[str, Any]:
        """The whole experiment as one JSON-ready value."""
        rounds = self.rounds()
        return {
            "config": self.config,
            "learners": self.learner_ids,
            "initial_weights_id": self.initial_weights_id,
            "final_weights_id": self.current_weights_id(),
            "chain": {
                "genesis_hash": self.genesis_hash(),
                "head_hash": self.chain_head().record_hash,
            },
            "rounds": [r.to_dict() for r in rounds],
            "summary": self.get_meta("summary"),
        }

    # -- checks -----------------------------------------------------------------------

    def _check(self) -> tuple[list[RoundRecord], list[Damage], ChainHead]:
        """Read every round and check it; return the records, what is wrong, the head.

        Everything is read in one transaction: a reader sees one snapshot even while
        another process commits rounds (WAL readers do not block the writer)."""
        if self._conn.in_transaction:
            return self._check_snapshot()
        try:
            self._conn.execute("BEGIN")
        except DB_ERRORS as exc:
            raise self._damaged(f"the database cannot be read ({exc})") from exc
        try:
            return self._check_snapshot()
        finally:
            with contextlib.suppress(*DB_ERRORS):
                self._conn.rollback()

    def _check_snapshot(self) -> tuple[list[RoundRecord], list[Damage], ChainHead]:
        learners = self.learner_ids
        config = self.config
        mutable = self.mutable_config_keys
        initial = self.initial_weights_id
        genesis = _genesis(config, mutable, learners, initial)
        try:
            rows = self._conn.execute(
                f"SELECT {_ROUND_COLUMNS} FROM rounds ORDER BY round_index"
            ).fetchall()
            children = _children(self._conn)
        except DB_ERRORS as exc:
            raise self._damaged(f"the rounds cannot be read ({exc})") from exc
        threshold = _config_threshold(config)
        checker = _ChainChecker(learners, initial, genesis, threshold)
        checker.damage += _schema_damage(self._conn)
        records = [r for r in (checker.row(row, children) for row in rows) if r is not None]
        found = checker.damage
        head = ChainHead(checker.count, checker.previous_hash)
        stored_head = self._meta("chain_head")
        if stored_head is None:
            if rows:
                found.append(Damage(None, "the chain head (meta 'chain_head') is missing"))
        else:
            found.extend(_head_damage(stored_head, head))
        if rows and initial is None:
            found.append(Damage(None, "rounds are committed but the initial weights id is missing"))
        return records, found, head

    # -- helpers ----------------------------------------------------------------------

    def _damaged(self, what: str) -> StoreError:
        return StoreDamagedError(
            f"{self.directory} is damaged: {what}. " + _FIX_DAMAGED.format(dir=self.directory)
        )

    def _writable(self) -> None:
        if self.readonly:
            raise StoreError(f"{self.directory} was opened read-only; it cannot be written")

    @contextmanager
    def _writing(self, what: str) -> Iterator[None]:
        """Turn a full disk or an unwritable directory into one :class:`StoreError`."""
        try:
            yield
        except sqlite3.IntegrityError:
            raise
        except sqlite3.OperationalError as exc:
            raise StoreWriteError(f"{what}: {exc}. {self._intact()}") from exc
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
            raise StoreDamagedError(
                f"{what}: the database is damaged ({exc}). "
                + _FIX_DAMAGED.format(dir=self.directory)
            ) from exc
        except OSError as exc:
            raise StoreWriteError(f"{what}: {os_message(exc)}. {self._intact()}") from exc

    def _intact(self) -> str:
        return (
            "Every round committed before is intact; free some space (or make the directory "
            f"writable) and continue with `colearn run --resume {self.directory}`"
        )


# -- the chain ---------------------------------------------------------------------------


def _dump(value: Any) -> str:
    """The one serialization of stored JSON (what the hashes are taken over)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _genesis(
    config: Mapping[str, Any],
    mutable: Iterable[str],
    learners: Sequence[str],
    initial: str | None,
) -> str:
    keys = set(mutable)
    return _sha256(
        _dump(
            {
                "colearning_experiment": SCHEMA_VERSION,
                "config": {k: v for k, v in config.items() if k not in keys},
                "mutable_config_keys": sorted(keys),
                "learners": list(learners),
                "initial_weights_id": initial,
            }
        )
    )


def _config_threshold(config: Mapping[str, Any]) -> tuple[int, int] | None:
    from colearning.core.tally import threshold_fraction

    value = config.get("vote_threshold")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return threshold_fraction(value)
    except ValueError:
        return None


def _schema_of(conn: sqlite3.Connection) -> set[tuple[str, str, str, str | None]]:
    rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
    return {
        (t, n, tb, None if sql is None else " ".join(str(sql).split())) for t, n, tb, sql in rows
    }


_EXPECTED_SCHEMA: set[tuple[str, str, str, str | None]] | None = None


def _schema_damage(conn: sqlite3.Connection) -> list[Damage]:
    """The tables must be exactly this version's: no constraint changed, no trigger,
    view or index added (a trigger could rewrite what is committed)."""
    global _EXPECTED_SCHEMA
    if _EXPECTED_SCHEMA is None:
        memory = sqlite3.connect(":memory:")
        memory.executescript(_BASE_SCHEMA + _ROUND_SCHEMA)
        _EXPECTED_SCHEMA = _schema_of(memory)
        memory.close()
    try:
        found = _schema_of(conn)
    except DB_ERRORS as exc:
        return [Damage(None, f"the database schema cannot be read ({exc})")]
    extra = sorted(f"{t} {n}" for t, n, _, _ in found - _EXPECTED_SCHEMA)
    missing = sorted(f"{t} {n}" for t, n, _, _ in _EXPECTED_SCHEMA - found)
    if not extra and not missing:
        return []
    changed = sorted(set(extra) & set(missing))
    what = (
        f"{', '.join(changed)} changed"
        if changed
        else "; ".join(
            part
            for part in (
                f"{', '.join(extra)} added" if extra else "",
                f"{', '.join(missing)} missing" if missing else "",
            )
            if part
        )
    )
    return [Damage(None, f"the database schema is not colearning's: {what}")]


def _head_damage(stored: str, head: ChainHead) -> list[Damage]:
    try:
        value = json.loads(stored)
        rounds, record_hash = int(value["rounds"]), str(value["record_hash"])
    except (ValueError, KeyError, TypeError, RecursionError):
        return [
            Damage(None, f"the chain head (meta 'chain_head') is not readable: {stored[:80]!r}")
        ]
    if rounds > head.rounds:
        gone = (
            f"round {head.rounds} was"
            if rounds == head.rounds + 1
            else f"rounds {head.rounds}-{rounds - 1} were"
        )
        return [
            Damage(
                None,
                f"the chain head says {rounds} rounds were committed but the rounds table "
                f"holds {head.rounds}: {gone} deleted",
            )
        ]
    if rounds < head.rounds:
        return [
            Damage(
                None,
                f"the chain head says {rounds} rounds were committed but the rounds table "
                f"holds {head.rounds}: rounds were added after the last commit",
            )
        ]
    if record_hash != head.record_hash:
        return [
            Damage(
                None if rounds == 0 else rounds - 1,
                f"the record's hash {head.record_hash[:12]}... is not the chain head's "
                f"{record_hash[:12]}...: the last round was rewritten",
            )
        ]
    return []


class _ChainChecker:
    """Walks the rounds in order, checking each against the one before."""

    def __init__(
        self,
        learners: Sequence[str],
        initial: str | None,
        genesis: str,
        threshold: tuple[int, int] | None,
    ) -> None:
        self.learners = list(learners)
        self.known = set(learners)
        self.previous_hash = genesis
        self.previous_weights = initial
        self.threshold = threshold
        self.count = 0
        self.damage: list[Damage] = []

    def row(self, row: tuple[Any, ...], children: _Children) -> RoundRecord | None:
        index = row[0]
        expected = self.count
        self.count += 1
        where = index if isinstance(index, int) else expected
        problems: list[str] = []
        if index != expected:
            if isinstance(index, int) and index > expected:
                gone = (
                    f"round {expected}"
                    if index == expected + 1
                    else f"rounds {expected}-{index - 1}"
                )
                problems.append(f"comes after round {expected - 1}: {gone} deleted or renumbered")
            else:
                problems.append(f"is stored as round {index!r} where round {expected} belongs")
        record_json, previous_hash, record_hash = row[13], row[15], row[16]
        record, document, problem = _parse_record(record_json)
        if problem:
            problems.append(problem)
        if isinstance(record_json, str) and _sha256(record_json) != record_hash:
            problems.append(
                "its record was changed after it was committed (the record hashes to "
                f"{_sha256(record_json)[:12]}..., the stored hash is {str(record_hash)[:12]}...)"
            )
        if document is not None and document.get("previous_record_hash") != previous_hash:
            problems.append(
                "the record's previous_record_hash and the column disagree "
                f"({str(document.get('previous_record_hash'))[:12]}... against "
                f"{str(previous_hash)[:12]}...)"
            )
        if previous_hash != self.previous_hash:
            if expected == 0:
                what = "the genesis (config, learners, initial weights)"
                why = "the stored config, learners or initial weights id were changed"
            else:
                what = f"round {expected - 1}"
                why = "the round before was changed, deleted or renumbered"
            problems.append(
                f"does not follow {what}: it links to {str(previous_hash)[:12]}..., but "
                f"{what} hashes to {self.previous_hash[:12]}... ({why})"
            )
        if record is not None:
            problems += self._record_problems(record, document, row, children, expected)
        self.damage += [Damage(where, p) for p in problems]
        self.previous_hash = str(record_hash)
        if record is not None:
            self.previous_weights = record.current_weights_id
        return record

    def _record_problems(
        self,
        record: RoundRecord,
        document: dict[str, Any] | None,
        row: tuple[Any, ...],
        children: _Children,
        expected: int,
    ) -> list[str]:
        problems = []
        if record.round_index != row[0]:
            problems.append(f"its record says round {record.round_index}, its row {row[0]!r}")
        if document is not None:
            canonical = _dump({**record.to_dict(), "previous_record_hash": row[15]})
            if canonical != row[13]:
                problems.append(
                    "its record JSON holds fields that contradict each other or unknown keys"
                )
        # the SQL rows must say what the record says
        want_round, want_proposals, want_votes, want_committee = _rows_of(record)
        if tuple(row[:13]) != want_round:
            columns = _ROUND_COLUMNS.split(", ")
            diff = [columns[i] for i in range(13) if row[i] != want_round[i]]
            problems.append(f"its rounds row disagrees with its record on {', '.join(diff)}")
        r = row[0]
        if sorted(children.proposals.get(r, [])) != sorted(want_proposals):
            problems.append("its proposals rows disagree with its record")
        if sorted(children.votes.get(r, []), key=_vote_key) != sorted(want_votes, key=_vote_key):
            problems.append("its votes rows disagree with its record")
        if sorted(children.committees.get(r, [])) != sorted(want_committee):
            problems.append("its committee rows disagree with its record")
        # ids, learners, the weights chain and the outcome
        problems += _id_problems(record)
        named = (
            {v.learner_id for v in record.votes}
            | {p.proposer_id for p in record.proposals}
            | {v.learner_id for p in record.proposals for v in p.screening}
            | set(record.committee or ())
        )
        unknown = sorted(named - self.known)
        if unknown:
            problems.append(f"names learner {unknown[0]!r}, which is not one of {self.learners}")
        if len({v.learner_id for v in record.votes}) != len(record.votes):
            problems.append("holds two votes of one learner")
        if record.previous_weights_id != self.previous_weights:
            what = "the initial weights" if expected == 0 else f"round {expected - 1}'s weights"
            problems.append(
                f"starts from weights {record.previous_weights_id[:12]}... but {what} are "
                f"{str(self.previous_weights)[:12]}..."
            )
        outcome = _outcome_problem(record)
        if outcome:
            problems.append(outcome)
        d = record.decision
        if d is not None and self.threshold is not None and tuple(d.threshold) != self.threshold:
            problems.append(
                f"was decided with threshold {d.threshold[0]}/{d.threshold[1]}, not the "
                f"experiment's {self.threshold[0]}/{self.threshold[1]}"
            )
        return problems


# who decides a round without a vote on its candidate, and can therefore only refuse
# it: the proposal check (malformed), and a screening that no proposal passed
_REFUSERS = frozenset({"check", "screening"})


def _outcome_problem(record: RoundRecord) -> str | None:
    """Whether a round's status, decision, candidate and weights agree with its votes."""
    d, c = record.decision, record.candidate
    if record.status == "skipped":
        if d is not None or c is not None:
            return "is marked skipped but holds a decision or a candidate"
        if any(p.usable for p in record.proposals):
            return "is marked skipped but holds a usable proposal"
    elif d is None:
        return f"is marked {record.status} but holds no decision"
    elif d.accepted != (record.status == "accepted"):
        return f"is marked {record.status} but its decision says accepted={d.accepted}"
    if record.status != "accepted" and record.current_weights_id != record.previous_weights_id:
        return (
            f"was {record.status} but moved the shared weights from "
            f"{record.previous_weights_id[:12]}... to {record.current_weights_id[:12]}..."
        )
    if record.status == "accepted":
        if c is None:
            return "was accepted without a candidate"
        if record.current_weights_id != c.weights_id:
            return (
                f"accepted candidate {c.weights_id[:12]}... but recorded weights "
                f"{record.current_weights_id[:12]}... as the result"
            )
    if d is None:
        return None
    approvals = sum(v.ballot is Ballot.APPROVE for v in record.votes)
    if d.approvals != approvals:
        return f"its decision counts {d.approvals} approvals, its votes hold {approvals}"
    # a record holds the votes of the learners asked; a round refused before anyone
    # was asked (a malformed proposal) holds none
    asked = len(record.votes)
    if not 0 <= d.approvals <= d.eligible or 0 < asked < d.eligible:
        return (
            f"its decision counts {d.approvals} approvals of {d.eligible} eligible voters "
            f"among {len(record.votes)} learners"
        )
    num, den = d.threshold
    if not (isinstance(num, int) and isinstance(den, int) and 0 <= num <= den and den > 0):
        return f"its decision's threshold {num}/{den} is not a fraction in [0, 1]"
    if d.decided_by in _REFUSERS:
        if d.accepted:
            return f"was accepted by {d.decided_by!r}, which can only refuse"
    elif d.accepted != (d.approvals * den >= num * d.eligible):
        return (
            f"{d.approvals} approvals of {d.eligible} at threshold {num}/{den} "
            f"{'pass' if not d.accepted else 'do not pass'}, but the round was "
            f"{'rejected' if not d.accepted else 'accepted'}"
        )
    return None


def _id_problems(record: RoundRecord) -> list[str]:
    ids = [
        ("previous weights id", record.previous_weights_id),
        ("current weights id", record.current_weights_id),
    ]
    if record.candidate is not None:
        ids.append(("candidate weights id", record.candidate.weights_id))
    ids += [
        (f"proposal {i}'s weights id", p.weights_id)
        for i, p in enumerate(record.proposals)
        if p.weights_id is not None
    ]
    return [
        f"its {what} {str(value)[:80]!r} is not 64 lowercase hex digits"
        for what, value in ids
        if not is_weights_id(value)
    ]


def _parse_record(text: Any) -> tuple[RoundRecord | None, dict[str, Any] | None, str | None]:
    if not isinstance(text, str):
        return None, None, f"its record is a {type(text).__name__}, not JSON text"
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        return None, None, f"its record is not valid JSON ({exc})"
    if not isinstance(document, dict):
        return None, None, f"its record is a JSON {type(document).__name__}, not an object"
    try:
        record = RoundRecord.from_dict(document)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError) as exc:
        what = f"missing {exc}" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}"
        return None, document, f"its record cannot be read ({what})"
    return record, document, None


@dataclass
class _Children:
    proposals: dict[Any, list[tuple[Any, ...]]]
    votes: dict[Any, list[tuple[Any, ...]]]
    committees: dict[Any, list[tuple[Any, ...]]]


def _children(conn: sqlite3.Connection) -> _Children:
    out = _Children({}, {}, {})
    for table, target in (
        ("proposals", out.proposals),
        ("votes", out.votes),
        ("committees", out.committees),
    ):
        for row in conn.execute(f"SELECT * FROM {table}"):
            target.setdefault(row[0], []).append(tuple(row))
    return out


def _vote_key(row: tuple[Any, ...]) -> tuple[str, str]:
    return (str(row[1]), str(row[2]))


def _rows_of(
    record: RoundRecord,
) -> tuple[tuple[Any, ...], list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The SQL rows a record is stored as (the rounds row without its JSON and hashes)."""
    t = record.timings
    d = record.decision
    r = record.round_index
    round_row = (
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
    )
    proposals = [
        (r, i, p.proposer_id, p.weights_id, p.reason and p.reason.value, p.detail)
        for i, p in enumerate(record.proposals)
    ]
    stages = [(CANDIDATE_STAGE, record.votes)] + [
        (f"proposal:{i}", p.screening) for i, p in enumerate(record.proposals) if p.screening
    ]
    votes = [
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
        for stage, stage_votes in stages
        for v in stage_votes
    ]
    committee = [] if record.committee is None else [(r, lid) for lid in record.committee]
    return round_row, proposals, votes, committee


def _insert_round(
    conn: sqlite3.Connection,
    record: RoundRecord,
    record_json: str,
    committed_at: float,
    previous_record_hash: str,
    record_hash: str,
) -> None:
    round_row, proposals, votes, committee = _rows_of(record)
    conn.execute(
        f"INSERT INTO rounds ({_ROUND_COLUMNS}) VALUES ({', '.join('?' * 17)})",
        (*round_row, record_json, committed_at, previous_record_hash, record_hash),
    )
    conn.executemany("INSERT INTO proposals VALUES (?,?,?,?,?,?)", proposals)
    conn.executemany("INSERT INTO votes VALUES (?,?,?,?,?,?,?,?,?)", votes)
    conn.executemany("INSERT INTO committees VALUES (?,?)", committee)


# -- migrations --------------------------------------------------------------------------


def _migrate(conn: sqlite3.Connection, db: Path, version: int) -> None:
    """Rewrite a schema-1 or schema-2 database as schema 3, in one transaction: every
    record is converted (schema 1) and chained; config, learners and blobs stay."""
    from colearning.core.tally import threshold_fraction

    try:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        config = json.loads(meta.get("config", "{}"))
        if not isinstance(config, dict):
            raise TypeError(f"the config is a {type(config).__name__}, not a table")
        learners = [r[0] for r in conn.execute("SELECT learner_id FROM learners ORDER BY position")]
        initial = meta.get("initial_weights_id")
        rows = conn.execute(
            "SELECT record_json, committed_at FROM rounds ORDER BY round_index"
        ).fetchall()
        records: list[tuple[RoundRecord, float]] = []
        if version == 1:
            value = config.get("vote_threshold")
            threshold = threshold_fraction(float(value) if value is not None else 0.5)
            previous = str(initial or "")
            for record_json, committed_at in rows:
                record = RoundRecord.from_v1(json.loads(record_json), previous, threshold)
                previous = record.current_weights_id
                records.append((record, float(committed_at)))
        else:
            records = [(RoundRecord.from_dict(json.loads(text)), float(at)) for text, at in rows]
    except (
        sqlite3.DatabaseError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        RecursionError,
    ) as exc:
        conn.close()
        raise StoreError(
            f"{db} holds an experiment of schema version {version} that cannot be migrated "
            f"to version {SCHEMA_VERSION} ({type(exc).__name__}: {exc}); it is damaged"
        ) from exc
    # what the old schema could not make evident is checked before it is chained
    checker = _ChainChecker(learners, initial, "", _config_threshold(config))
    for i, (record, _) in enumerate(records):
        problems = _id_problems(record)
        outcome = _outcome_problem(record)
        if outcome:
            problems.append(outcome)
        if record.round_index != i:
            problems.append(f"is stored where round {i} belongs")
        if record.previous_weights_id != checker.previous_weights:
            problems.append("does not start from the weights the round before ended with")
        if problems:
            conn.close()
            raise StoreError(
                f"{db} holds an experiment of schema version {version} that cannot be "
                f"migrated to version {SCHEMA_VERSION}: round {i} {problems[0]}; it is damaged"
            )
        checker.previous_weights = record.current_weights_id
    mutable = json.loads(meta.get("mutable_config_keys", json.dumps(list(MUTABLE_KEYS))))
    genesis = _genesis(config, mutable, learners, initial)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("DROP TABLE IF EXISTS committees")
        conn.execute("DROP TABLE IF EXISTS proposals")
        conn.execute("DROP TABLE votes")
        conn.execute("DROP TABLE rounds")
        for statement in _ROUND_SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        previous_hash = genesis
        for record, committed_at in records:
            document = _dump({**record.to_dict(), "previous_record_hash": previous_hash})
            record_hash = _sha256(document)
            _insert_round(conn, record, document, committed_at, previous_hash, record_hash)
            previous_hash = record_hash
        conn.execute(
            "INSERT OR REPLACE INTO meta VALUES ('chain_head', ?)",
            (_dump({"rounds": len(records), "record_hash": previous_hash}),),
        )
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('migrated_from', ?)", (str(version),))
        conn.execute(
            "INSERT OR REPLACE INTO meta VALUES ('mutable_config_keys', ?)", (json.dumps(mutable),)
        )
        conn.execute(
            "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),)
        )
        conn.commit()
    except sqlite3.Error as exc:
        conn.rollback()
        conn.close()
        raise StoreError(
            f"{db} holds an experiment of schema version {version}, which must be migrated "
            f"to version {SCHEMA_VERSION} before use, and migrating failed ({exc}). Nothing "
            "was changed; make the directory writable (or copy it somewhere writable) "
            "and open it again, or read it with colearn show/plot/export/verify, which "
            "need no write access"
        ) from exc


# -- files and connections ---------------------------------------------------------------


def _text(raw: bytes) -> str:
    """Stored text as str; bytes that are not UTF-8 (a damaged file) are replaced, so
    the hashes no longer match and the damage is named, instead of a decode error."""
    return raw.decode("utf-8", "replace")


def _connect(path: Path) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level="DEFERRED")
        conn.text_factory = _text
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
    except DB_ERRORS as exc:
        if isinstance(exc, sqlite3.OperationalError) and "not a database" not in str(exc):
            raise StoreWriteError(
                f"{path} cannot be opened for writing ({exc}): the directory or the file "
                "system is not writable, or the disk is full. Make it writable (or copy "
                "the directory somewhere writable) to run or resume; colearn show, plot, "
                "export and verify read it as it is"
            ) from exc
        raise StoreError(
            f"{path} cannot be read as an experiment database ({exc}); it is damaged "
            "or was not written by colearning"
        ) from exc
    return conn


class _TemporaryCopy:
    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="colearning-read-"))

    def cleanup(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _connect_readonly(db: Path) -> tuple[sqlite3.Connection, _TemporaryCopy | None]:
    """A connection that never writes the directory.

    ``mode=ro`` where SQLite can share the WAL index (a writable directory); else
    ``immutable=1`` when no write-ahead log is left over; else (a read-only copy of a
    killed run, with its log) a private copy of the database and its log, so the
    committed rounds in the log are read too.
    """
    uri = "file:" + urllib.parse.quote(str(db.absolute()))
    wal = db.with_name(db.name + "-wal")
    try:
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, check_same_thread=False)
        conn.text_factory = _text
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn, None
    except DB_ERRORS as exc:
        if "file is not a database" in str(exc) or "malformed" in str(exc):
            raise StoreError(
                f"{db} cannot be read as an experiment database ({exc}); it is damaged "
                "or was not written by colearning"
            ) from exc
    try:
        has_wal = wal.is_file() and wal.stat().st_size > 0
    except OSError:
        has_wal = False
    if not has_wal:
        try:
            conn = sqlite3.connect(f"{uri}?immutable=1", uri=True, check_same_thread=False)
            conn.text_factory = _text
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn, None
        except DB_ERRORS as exc:
            raise StoreError(
                f"{db} cannot be read as an experiment database ({exc}); it is damaged "
                "or was not written by colearning"
            ) from exc
    copy = _TemporaryCopy()
    try:
        shutil.copyfile(db, copy.path / DB_NAME)
        shutil.copyfile(wal, copy.path / (DB_NAME + "-wal"))
        conn = sqlite3.connect(copy.path / DB_NAME, check_same_thread=False)
        conn.text_factory = _text
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except (OSError, sqlite3.DatabaseError, UnicodeDecodeError) as exc:
        copy.cleanup()
        raise StoreError(f"{db} cannot be read ({exc}); it is damaged or unreadable") from exc
    return conn, copy


def _in_memory(conn: sqlite3.Connection) -> sqlite3.Connection:
    memory = sqlite3.connect(":memory:", check_same_thread=False)
    memory.text_factory = _text
    conn.backup(memory)
    conn.close()
    return memory


def _meta_row(conn: sqlite3.Connection, key: str) -> Any:
    return conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()


def _version(row: Any) -> int | None:
    try:
        return None if row is None else int(row[0])
    except (TypeError, ValueError):
        return None


def _parse_json(text: str, what: str, directory: Path) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise StoreDamagedError(
            f"{directory} is damaged: {what} is not valid JSON ({exc}). "
            + _FIX_DAMAGED.format(dir=directory)
        ) from None


def _config_text(config: Mapping[str, Any]) -> str:
    if not isinstance(config, Mapping):
        raise StoreError(f"an experiment's config must be a mapping; got {type(config).__name__}")
    try:
        return json.dumps(dict(config), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"the experiment's config cannot be stored as JSON ({exc})") from exc


def _checked_learner_ids(learner_ids: Sequence[str]) -> list[str]:
    ids = list(learner_ids)
    if not all(isinstance(i, str) and i for i in ids) or len(set(ids)) != len(ids):
        raise StoreError(f"learner ids must be distinct, non-empty strings; got {ids!r}")
    return ids


def _real_directory(path: Path, root: Path) -> None:
    """Refuse a blob directory that is a link or not a directory: blobs stay inside."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        path.mkdir()
        return
    if not stat.S_ISDIR(mode):
        raise StoreError(
            f"{path} is {'a symbolic link' if stat.S_ISLNK(mode) else 'not a directory'}; "
            f"the blobs of {root} must be plain files in plain directories"
        )


def _read_blob(path: Path, wid: str, root: Path) -> bytes:
    """Read a blob without following links, only from a regular file, and only as many
    bytes as its header declares (after checking the file has exactly that size)."""
    for directory in (root / "blobs", path.parent):
        try:
            mode = directory.lstat().st_mode
        except FileNotFoundError:
            break
        except OSError as exc:
            raise StoreError(f"cannot read {directory}: {os_message(exc)}") from exc
        if not stat.S_ISDIR(mode):
            raise StoreDamagedError(
                f"{directory} is {'a symbolic link' if stat.S_ISLNK(mode) else 'not a directory'}; "
                f"blobs are read only from plain directories inside {root}. "
                + _FIX_DAMAGED.format(dir=root)
            )
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError as exc:
        raise StoreDamagedError(
            f"weights {wid[:12]}... are recorded but {path} is missing; the experiment "
            "directory is incomplete. " + _FIX_DAMAGED.format(dir=root)
        ) from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StoreDamagedError(
                f"{path} is a symbolic link; blobs are read only from regular files inside "
                f"the experiment directory. " + _FIX_DAMAGED.format(dir=root)
            ) from exc
        raise StoreError(f"cannot read {path}: {os_message(exc)}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise StoreDamagedError(
                f"{path} is not a regular file; blobs are read only from regular files. "
                + _FIX_DAMAGED.format(dir=root)
            )
        with os.fdopen(os.dup(fd), "rb") as fh:
            head = fh.read(8)
            try:
                n = header_length(head)
                if 8 + n > info.st_size:
                    raise WeightsError(
                        f"it declares a {n}-byte header but is only {info.st_size} bytes"
                    )
                head += fh.read(n)
                header: BlobHeader = read_header(head)
            except WeightsError as exc:
                raise StoreDamagedError(
                    f"{path} is not a weights blob: {exc}. " + _FIX_DAMAGED.format(dir=root)
                ) from None
            if info.st_size != header.total_size:
                raise StoreDamagedError(
                    f"{path} is {info.st_size} bytes but its header declares "
                    f"{header.total_size}; the file is damaged. " + _FIX_DAMAGED.format(dir=root)
                )
            rest = fh.read(header.total_size - len(head))
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {os_message(exc)}") from exc
    finally:
        os.close(fd)
    blob = head + rest
    if len(blob) != header.total_size:  # the file shrank while being read
        raise StoreError(f"{path} changed while it was read; read it again")
    return blob


def os_message(exc: OSError, with_name: bool = True) -> str:
    text = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC:
        text = "the disk is full"
    elif exc.errno == errno.EROFS:
        text = "the file system is read-only"
    elif exc.errno in (errno.EACCES, errno.EPERM):
        text = "permission denied"
    elif exc.errno == errno.ENAMETOOLONG:
        text = "the path is longer than the operating system allows"
    elif exc.errno == errno.EFBIG:
        text = "the file grew past the size this process may write"
    name = exc.filename if with_name and exc.filename is not None else None
    if name is not None and len(str(name)) > 80:
        name = str(name)[:77] + "..."
    return f"{text} ({name})" if name else text


@contextmanager
def _os_errors(what: str) -> Iterator[None]:
    """A failed creation as one line: a :class:`StoreWriteError` when the disk or the
    file system failed, a :class:`StoreError` when the path cannot be used."""
    try:
        yield
    except sqlite3.Error as exc:
        raise StoreWriteError(
            f"{what}: {exc}; free some space or choose another directory"
        ) from exc
    except OSError as exc:
        text = os_message(exc, with_name=False)
        if exc.errno in _DISK_ERRNOS:
            raise StoreWriteError(
                f"{what}: {text}; free some space or choose another directory"
            ) from exc
        raise StoreError(f"{what}: {text}; choose another directory (--out)") from exc


# a full disk, a quota, a file-size limit, a failing device, a read-only file system
_DISK_ERRNOS = frozenset(
    getattr(errno, name)
    for name in ("ENOSPC", "EDQUOT", "EFBIG", "EIO", "EROFS")
    if hasattr(errno, name)
)


def _remove_stale_partials(parent: Path, name: str) -> None:
    """Remove directories a killed :meth:`ExperimentStore.create` left beside ``name``."""
    for candidate in parent.glob(f".{name}.partial-*"):
        try:
            pid = int(candidate.name[len(name) + 10 :].split("-", 1)[0])
        except ValueError:
            continue
        if pid != os.getpid() and not _alive(pid):
            shutil.rmtree(candidate, ignore_errors=True)


def _remove_unfinished_blobs(directory: Path) -> None:
    """Remove the temporary files of blob writes that never finished (a run killed
    mid-write leaves one). Only the holder of the write lock calls this, so no writer
    is alive to finish them; anything that cannot be removed is left for later."""
    try:
        subs = [e for e in os.scandir(directory / "blobs") if e.is_dir(follow_symlinks=False)]
    except OSError:
        return
    for sub in subs:
        try:
            leftovers = [e for e in os.scandir(sub.path) if e.name.startswith(".tmp-")]
        except OSError:
            continue
        for entry in leftovers:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _DirectoryLock:
    """An exclusive OS lock (``flock``) on the experiment directory, held by the one
    process that writes it; released when closed or when the process dies."""

    def __init__(self, fd: int | None) -> None:
        self._fd = fd

    @classmethod
    def take(cls, directory: Path, shown: Path) -> _DirectoryLock:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock
            return cls(None)
        try:
            fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError as exc:
            raise StoreError(f"cannot open {shown}: {os_message(exc)}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            pid = _lock_holder(directory)
            if pid == os.getpid():
                raise StoreError(
                    f"{shown} is already open for writing in this process; close that "
                    "ExperimentStore (or the Experiment using it) before opening it again"
                ) from None
            holder = "" if pid is None else f" (pid {pid})"
            raise StoreError(
                f"{shown} is being written by another process{holder} (a colearn run or "
                "resume); one process at a time may write an experiment. Wait for it to "
                f"finish or stop it, then retry; `colearn show {shown}` reads it meanwhile"
            ) from None
        except OSError:  # a file system without locks: carry on unlocked
            pass
        return cls(fd)

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        self.release()


def _lock_holder(directory: Path) -> int | None:
    """The pid holding a flock on ``directory``, where the OS says (/proc/locks)."""
    try:
        inode = directory.stat().st_ino
        with open("/proc/locks") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) > 5 and parts[1] == "FLOCK" and parts[5].endswith(f":{inode}"):
                    return int(parts[4])
    except (OSError, ValueError):
        pass
    return None


@contextmanager
def opened(directory: str | os.PathLike[str]) -> Iterator[ExperimentStore]:
    """Open an experiment directory read-only (no write access needed) and close it
    afterwards."""
    store = ExperimentStore.open(directory, readonly=True)
    try:
        yield store
    finally:
        store.close()
