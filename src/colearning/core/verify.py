"""Checking a whole experiment directory: what ``colearn verify DIR`` runs.

:func:`verify` opens the directory read-only and checks, without stopping at the first
problem:

- the database: SQLite's own integrity check, the schema version, the stored config,
  learners, initial weights id and summary (readable JSON of the right shape);
- the chain: every round's record hash, its link to the round before (round 0's to
  the genesis: config, learners, initial weights), no round missing or renumbered,
  the chain head in ``meta`` (a deleted last round), the SQL rows against the record,
  each round starting from the weights the round before ended with, and each outcome
  following from its votes and the experiment's threshold;
- the blobs: every weights blob the experiment needs (the initial weights and each
  round's) is a regular file, not a link, of the size its header declares, hashes to
  its id, and decodes to weights with the initial weights' names, dtypes and shapes;
- the rest of ``blobs/``: links, foreign files and blobs no round refers to;
- the summary: its final weights are the weights after the rounds it counts.

The report says precisely what is wrong and where (``round 3: its record was changed
after it was committed ...``), and prints the chain head: keep it elsewhere to catch
a history rewritten consistently from some round on.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from colearning.core.codec import WeightsSpec, decode, is_weights_id
from colearning.core.exceptions import StoreDamagedError, StoreError, WeightsError
from colearning.core.records import RoundRecord
from colearning.core.store import DB_ERRORS, DB_NAME, ChainHead, Damage, ExperimentStore


@dataclass
class Report:
    """What :func:`verify` found."""

    directory: Path
    schema_version: int | None = None
    rounds: int = 0
    blobs_checked: int = 0
    genesis_hash: str | None = None
    head: ChainHead | None = None
    final_weights_id: str | None = None
    damage: list[Damage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.damage

    def to_dict(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory),
            "ok": self.ok,
            "schema_version": self.schema_version,
            "rounds": self.rounds,
            "blobs_checked": self.blobs_checked,
            "genesis_hash": self.genesis_hash,
            "head_hash": None if self.head is None else self.head.record_hash,
            "final_weights_id": self.final_weights_id,
            "damage": [{"round_index": d.round_index, "message": d.message} for d in self.damage],
            "notes": list(self.notes),
        }


def verify(directory: str | os.PathLike[str]) -> Report:
    """Check everything in the experiment directory (see the module docstring).

    Raises
    ------
    StoreError
        Only when ``directory`` is not an experiment directory at all (or its database
        cannot be opened); every other problem is listed in the :class:`Report`.
    """
    path = Path(directory)
    report = Report(path)
    try:
        store = ExperimentStore.open(path, readonly=True)
    except StoreError as exc:
        newer = "schema version" in str(exc) and not isinstance(exc, StoreDamagedError)
        try:
            has_db = (path / DB_NAME).is_file()
        except OSError:
            has_db = False
        if not has_db or newer:
            raise  # not an experiment directory, or one of a newer colearning
        report.damage.append(Damage(None, _advice_removed(str(exc))))
        return report
    try:
        report.notes += store.notes
        _check_database(store, report)
        records = _check_chain(store, report)
        if records is not None:
            _check_blobs(store, records, report)
            _check_summary(store, records, report)
    finally:
        store.close()
    seen: set[str] = set()
    unique = []
    for d in report.damage:  # one cause read twice is said once
        if str(d) not in seen:
            seen.add(str(d))
            unique.append(d)
    report.damage = unique
    return report


def _check_database(store: ExperimentStore, report: Report) -> None:
    conn = store._conn
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    except DB_ERRORS as exc:
        report.damage.append(Damage(None, f"SQLite cannot check the database: {exc}"))
        return
    bad = [str(r[0]) for r in rows if r[0] != "ok"]
    for line in bad[:10]:
        report.damage.append(Damage(None, f"SQLite integrity check: {line}"))
    try:
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        report.schema_version = int(version[0]) if version else None
    except (sqlite3.DatabaseError, TypeError, ValueError):  # UnicodeDecodeError is one
        report.schema_version = None
    for what, read in (
        ("config", lambda: store.config),
        ("learners", lambda: store.learner_ids),
        ("initial weights id", lambda: store.initial_weights_id),
        ("changeable settings", lambda: store.mutable_config_keys),
        ("summary", lambda: store.get_meta("summary")),
    ):
        try:
            read()
        except StoreError as exc:
            report.damage.append(Damage(None, _short(str(exc), store)))
            if what in ("config", "learners"):
                return
    summary = _safe(lambda: store.get_meta("summary"))
    if summary is not None and not isinstance(summary, dict):
        report.damage.append(
            Damage(None, f"the stored summary is a {type(summary).__name__}, not a table")
        )
    migrated = _safe(lambda: store.get_meta("migrated_from"))
    if migrated is not None:
        report.notes.append(
            f"migrated from schema version {migrated}: the chain starts at the migration, "
            "so it vouches for the rounds as they were then"
        )


def _check_chain(store: ExperimentStore, report: Report) -> list[RoundRecord] | None:
    try:
        found = store.inspect()
    except StoreError as exc:  # the meta data the chain starts from is unreadable
        report.damage.append(Damage(None, _short(str(exc), store)))
        return None
    report.damage += found.damage
    report.rounds = found.head.rounds
    report.head = found.head
    report.genesis_hash = _safe(store.genesis_hash)
    records = found.records
    report.final_weights_id = (
        records[-1].current_weights_id if records else _safe(lambda: store.initial_weights_id)
    )
    return records


def _check_blobs(store: ExperimentStore, records: list[RoundRecord], report: Report) -> None:
    initial = _safe(lambda: store.initial_weights_id)
    needed: dict[str, str] = {}
    if initial is not None:
        needed[initial] = "the initial weights"
    for r in records:
        if r.accepted and is_weights_id(r.current_weights_id):
            needed.setdefault(r.current_weights_id, f"round {r.round_index}'s accepted weights")
    spec: WeightsSpec | None = None
    for wid, what in needed.items():
        try:
            weights = decode(store.get_blob(wid))
            if spec is None:
                spec = WeightsSpec.of(weights)  # the initial weights come first
            else:
                from colearning.core.codec import check_weights

                check_weights(weights, spec)
        except (StoreError, WeightsError) as exc:
            where = _round_of(what)
            report.damage.append(
                Damage(where, f"{what} ({wid[:12]}...): {_short(str(exc), store)}")
            )
        report.blobs_checked += 1
    _check_blob_tree(store, set(needed), report)


def _check_blob_tree(store: ExperimentStore, needed: set[str], report: Report) -> None:
    root = store.directory / "blobs"
    try:
        mode = root.lstat().st_mode
    except FileNotFoundError:
        if needed:
            report.damage.append(Damage(None, f"{root} is missing"))
        return
    if not stat.S_ISDIR(mode):
        report.damage.append(Damage(None, f"{root} is not a plain directory"))
        return
    unreferenced = 0
    leftovers = 0
    for sub in sorted(root.iterdir()):
        sub_mode = sub.lstat().st_mode
        if not stat.S_ISDIR(sub_mode):
            report.damage.append(Damage(None, f"{sub} is not a plain directory of blobs"))
            continue
        for item in sorted(sub.iterdir()):
            item_mode = item.lstat().st_mode
            name = item.name
            wid = name.removesuffix(".safetensors")
            if name.startswith(".tmp-"):
                leftovers += 1
                continue
            if stat.S_ISLNK(item_mode):
                report.damage.append(Damage(None, f"{item} is a symbolic link"))
            elif not stat.S_ISREG(item_mode):
                report.damage.append(Damage(None, f"{item} is not a regular file"))
            elif not (name.endswith(".safetensors") and is_weights_id(wid) and wid[:2] == sub.name):
                report.damage.append(Damage(None, f"{item} is not a blob of this experiment"))
            elif wid not in needed:
                unreferenced += 1
    if unreferenced:
        report.notes.append(
            f"{unreferenced} blob(s) no round refers to (weights written by a commit that "
            "was interrupted, or by another version): harmless"
        )
    if leftovers:
        report.notes.append(f"{leftovers} unfinished temporary blob file(s) from a killed run")


def _check_summary(store: ExperimentStore, records: list[RoundRecord], report: Report) -> None:
    summary = _safe(lambda: store.get_meta("summary"))
    if not isinstance(summary, dict):
        return
    rounds, final = summary.get("rounds"), summary.get("final_weights_id")
    if not isinstance(rounds, int) or isinstance(rounds, bool) or not isinstance(final, str):
        report.damage.append(Damage(None, "the summary lacks its rounds or final_weights_id"))
        return
    if rounds > len(records):
        report.damage.append(
            Damage(
                None,
                f"the summary counts {rounds} rounds but {len(records)} are committed",
            )
        )
        return
    after = (
        records[rounds - 1].current_weights_id
        if rounds
        else _safe(lambda: store.initial_weights_id)
    )
    if final != after:
        report.damage.append(
            Damage(
                None,
                f"the summary's final weights {final[:12]}... are not the weights after "
                f"its {rounds} rounds ({str(after)[:12]}...)",
            )
        )
    elif rounds < len(records):
        report.notes.append(
            f"the summary is of the first {rounds} rounds (the run was resumed and has "
            "not finished since)"
        )


def _safe(read: Any) -> Any:
    try:
        return read()
    except StoreError:
        return None


def _round_of(what: str) -> int | None:
    if what.startswith("round "):
        return int(what.split()[1].removesuffix("'s"))
    return None


def _short(message: str, store: ExperimentStore) -> str:
    """A store error without the advice that the report gives once, at the end."""
    return _advice_removed(message.removeprefix(f"{store.directory} is damaged: "))


def _advice_removed(message: str) -> str:
    return message.split(". Run `colearn verify")[0]
