"""The store is tamper-evident: the rounds are a hash chain, checked on every read.

Every corruption tried here, named or generated, ends in a :class:`StoreError` (naming
the round where there is one) or in exactly the experiment that was written; never in
a changed history read as if it were genuine.
"""

import itertools
import json
import os
import shutil
import sqlite3
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from colearning import Experiment, ExperimentStore, StoreError, Weights
from colearning.core.exceptions import StoreDamagedError
from colearning.core.store import SCHEMA_VERSION, opened
from colearning.core.verify import verify
from colearning.testing import FaultyLearner, QuadraticLearner

IDS = [f"learner-{i}" for i in range(4)]
ROUNDS = 8


class NaNAtThree(QuadraticLearner):
    def mli_propose_weights(self):
        if self._round == 3:
            return Weights({"w": np.full(2, np.nan)})
        return super().mli_propose_weights()


def learners():
    """Accepted, skipped (learner-1 cannot propose) and rejected (NaN) rounds."""
    return [
        QuadraticLearner(target=[1.0, 2.0], seed=0),
        FaultyLearner(QuadraticLearner(target=[1.0, 2.0], seed=1), "raise", on={"propose"}),
        FaultyLearner(QuadraticLearner(target=[1.0, 2.0], seed=2), "raise", on={"test"}),
        NaNAtThree(target=[1.0, 2.0], seed=3),
    ]


def play(store, rounds):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            experiment = Experiment(learners(), store=store)
        except BaseException:
            # a refused store is the caller's to close (left open, the garbage collector
            # closed it later, and SQLite removed its -shm file under the next
            # example's rmtree)
            store.close()
            raise
        with experiment:
            return experiment.run(rounds)


CONFIG = {"task": "quadratic", "vote_threshold": 0.5, "seed": 0, "rounds": ROUNDS}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """An experiment directory as written, its JSON, and the final id a resume to
    ROUNDS + 2 must reach."""
    root = tmp_path_factory.mktemp("chain")
    result = play(ExperimentStore.create(root / "e", CONFIG, IDS), ROUNDS)
    with ExperimentStore.open(root / "e") as store:  # as run_task writes it
        store.put_meta("summary", {"rounds": ROUNDS, "final_weights_id": result.final_weights_id})
    full = play(ExperimentStore.create(root / "full", CONFIG, IDS), ROUNDS + 2)
    with opened(root / "e") as store:
        document = store.to_json()
    statuses = [r["status"] for r in document["rounds"]]
    assert {"accepted", "rejected", "skipped"} <= set(statuses)
    return root / "e", document, full.final_weights_id


def copy_of(written, tmp_path, name="copy"):
    target = tmp_path / name
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(written[0], target, symlinks=True)
    return target


def sql(directory, *statements, params=()):
    conn = sqlite3.connect(directory / "experiment.sqlite")
    try:
        for statement in statements:
            conn.execute(statement, params)
        conn.commit()
    finally:
        conn.close()


def rows(directory, query):
    conn = sqlite3.connect(directory / "experiment.sqlite")
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()


def test_a_new_directory_verifies_and_its_chain_links_every_round(written, tmp_path):
    directory = copy_of(written, tmp_path)
    report = verify(directory)
    assert report.ok, report.damage
    assert report.rounds == ROUNDS and report.blobs_checked >= 2
    links = rows(
        directory, "SELECT previous_record_hash, record_hash FROM rounds ORDER BY round_index"
    )
    with opened(directory) as store:
        assert links[0][0] == store.genesis_hash()
        assert store.chain_head().record_hash == links[-1][1] == report.head.record_hash
    for (_, before), (after, _) in itertools.pairwise(links):
        assert after == before
    stored = json.loads(rows(directory, "SELECT record_json FROM rounds LIMIT 1")[0][0])
    assert stored["previous_record_hash"] == links[0][0]
    assert rows(directory, "SELECT value FROM meta WHERE key='schema_version'") == [
        (str(SCHEMA_VERSION),)
    ]


# -- the forgeries the issue names ---------------------------------------------------------


def last_index(directory):
    return rows(directory, "SELECT max(round_index) FROM rounds")[0][0]


def forge_current_id(directory):
    """Point the last round's current weights id at another valid blob."""
    other = rows(directory, "SELECT value FROM meta WHERE key='initial_weights_id'")[0][0]
    last = last_index(directory)
    (text,) = rows(directory, f"SELECT record_json FROM rounds WHERE round_index={last}")[0]
    record = json.loads(text)
    record["current_weights_id"] = other
    sql(
        directory,
        f"UPDATE rounds SET current_weights_id=?, record_json=? WHERE round_index={last}",
        params=(other, json.dumps(record)),
    )
    return last


def forge_delete_round(directory):
    for table in ("votes", "proposals", "committees", "rounds"):
        sql(directory, f"DELETE FROM {table} WHERE round_index=2")
    return 3


def forge_renumber(directory):
    for table in ("votes", "proposals", "committees", "rounds"):
        sql(directory, f"UPDATE {table} SET round_index=40 WHERE round_index=5")
    return 6  # the first round out of place: round 5 is missing before it


def forge_rejected_to_accepted(directory):
    (index, text) = rows(
        directory, "SELECT round_index, record_json FROM rounds WHERE status='rejected' LIMIT 1"
    )[0]
    record = json.loads(text)
    record["status"] = "accepted"
    record["decision"]["accepted"] = True
    sql(
        directory,
        f"UPDATE rounds SET status='accepted', record_json=? WHERE round_index={index}",
        params=(json.dumps(record),),
    )
    return index


def forge_seed(directory):
    (text,) = rows(directory, "SELECT value FROM meta WHERE key='config'")[0]
    config = json.loads(text)
    config["seed"] = 99
    sql(directory, "UPDATE meta SET value=? WHERE key='config'", params=(json.dumps(config),))
    return 0


@pytest.mark.parametrize(
    "forge",
    [forge_current_id, forge_delete_round, forge_renumber, forge_rejected_to_accepted, forge_seed],
)
def test_each_forgery_the_issue_names_is_refused_naming_the_round(written, tmp_path, forge):
    directory = copy_of(written, tmp_path)
    at = forge(directory)
    with pytest.raises(StoreDamagedError, match=f"round {at}: "), opened(directory) as store:
        store.to_json()
    with pytest.raises(StoreDamagedError, match=f"round {at}: "):
        play(ExperimentStore.open(directory), ROUNDS + 2)  # --resume
    with pytest.raises(StoreDamagedError, match=f"round {at}: "):
        from colearning.tasks.export import final_learner

        final_learner(directory)  # export --format onnx reads the same chain
    report = verify(directory)
    assert not report.ok
    assert any(d.round_index == at for d in report.damage), report.damage


def test_deleting_the_last_round_is_caught_by_the_chain_head(written, tmp_path):
    directory = copy_of(written, tmp_path)
    last = last_index(directory)
    for table in ("votes", "proposals", "committees", "rounds"):
        sql(directory, f"DELETE FROM {table} WHERE round_index={last}")
    with (
        pytest.raises(StoreDamagedError, match=f"round {last} was deleted"),
        opened(directory) as s,
    ):
        s.rounds()


def test_a_consistent_rewrite_is_caught_only_against_a_head_kept_elsewhere(written, tmp_path):
    """The documented limit: whoever can write the file can recompute every hash from
    the edit on. The head that ``colearn verify`` prints (or a ledger) then differs."""
    from colearning.core.store import _dump, _sha256

    directory = copy_of(written, tmp_path)
    kept = verify(directory).head.record_hash
    conn = sqlite3.connect(directory / "experiment.sqlite")
    rows_ = conn.execute(
        "SELECT round_index, record_json FROM rounds ORDER BY round_index"
    ).fetchall()
    previous = json.loads(rows_[0][1])["previous_record_hash"]
    for index, text in rows_:
        record = json.loads(text)
        record["timings"]["total"] += 1.0  # an edit no rule can tell from a real value
        record["previous_record_hash"] = previous
        document = _dump(record)
        previous = _sha256(document)
        conn.execute(
            "UPDATE rounds SET record_json=?, t_total=?, previous_record_hash=?, "
            "record_hash=? WHERE round_index=?",
            (document, record["timings"]["total"], record["previous_record_hash"], previous, index),
        )
    conn.execute(
        "UPDATE meta SET value=? WHERE key='chain_head'",
        (_dump({"rounds": len(rows_), "record_hash": previous}),),
    )
    conn.commit()
    conn.close()
    report = verify(directory)
    assert report.ok  # consistent in itself ...
    assert report.head.record_hash != kept  # ... but not the history that was kept


# -- generated corruptions -----------------------------------------------------------------

ROUND_COLUMNS = [
    "round_index",
    "mode",
    "status",
    "previous_weights_id",
    "current_weights_id",
    "candidate_weights_id",
    "approvals",
    "eligible",
    "decided_by",
    "t_propose",
    "t_total",
    "record_json",
    "previous_record_hash",
    "record_hash",
]
META_KEYS = [
    "config",
    "initial_weights_id",
    "chain_head",
    "schema_version",
    "summary",
    "mutable_config_keys",
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 2**64) | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
hex_ids = st.text("0123456789abcdef", min_size=64, max_size=64)
sql_values = (
    st.none()
    | st.integers(-3, 12)
    | st.floats(allow_nan=True)
    | st.text(max_size=20)
    | hex_ids
    | st.sampled_from(["../../../../etc/passwd", "accepted", "rejected", "skipped", "tally"])
    | json_values.map(json.dumps)
)


def json_paths(value, path=()):
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from json_paths(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from json_paths(item, (*path, i))


def set_path(value, path, new):
    if not path:
        return new
    target = value
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new
    return value


@st.composite
def corruptions(draw):
    kind = draw(
        st.sampled_from(
            [
                "round column",
                "record field",
                "record field, rehashed",
                "meta",
                "delete row",
                "duplicate round",
                "learners",
                "blob bytes",
                "blob link",
                "blob gone",
                "database bytes",
            ]
        )
    )
    return kind, draw(st.integers(0, ROUNDS - 1)), draw(st.data())


def corrupt(directory, kind, index, data):
    """Apply one generated corruption; returns a description for the failure message."""
    if kind == "round column":
        column = data.draw(st.sampled_from(ROUND_COLUMNS))
        value = data.draw(sql_values)
        try:
            sql(
                directory,
                f"UPDATE rounds SET {column}=? WHERE round_index={index}",
                params=(value,),
            )
        except sqlite3.IntegrityError:
            return None  # the schema refused it: nothing changed
        return f"rounds.{column} of round {index} = {value!r}"
    if kind.startswith("record field"):
        (text,) = rows(directory, f"SELECT record_json FROM rounds WHERE round_index={index}")[0]
        record = json.loads(text)
        path = data.draw(st.sampled_from(list(json_paths(record))[1:]))
        new = data.draw(json_values | hex_ids | st.sampled_from(IDS))
        record = set_path(record, path, new)
        document = json.dumps(record, sort_keys=True, separators=(",", ":"))
        if kind.endswith("rehashed"):  # the row's own hash made to match the edit
            from colearning.core.store import _sha256

            sql(
                directory,
                f"UPDATE rounds SET record_json=?, record_hash=? WHERE round_index={index}",
                params=(document, _sha256(document)),
            )
        else:
            sql(
                directory,
                f"UPDATE rounds SET record_json=? WHERE round_index={index}",
                params=(document,),
            )
        return f"round {index}'s record at {path} = {new!r} ({kind})"
    if kind == "meta":
        key = data.draw(st.sampled_from(META_KEYS))
        (text,) = rows(directory, f"SELECT value FROM meta WHERE key='{key}'")[0]
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = text
        if isinstance(parsed, dict | list) and data.draw(st.booleans()):
            path = data.draw(st.sampled_from(list(json_paths(parsed))))
            value = json.dumps(set_path(parsed, path, data.draw(json_values)))
        else:
            value = data.draw(sql_values)
        sql(directory, "UPDATE meta SET value=? WHERE key=?", params=(value, key))
        return f"meta {key} = {value!r}"
    if kind == "delete row":
        table = data.draw(st.sampled_from(["rounds", "votes", "proposals", "meta"]))
        where = f"round_index={index}" if table != "meta" else "key='initial_weights_id'"
        one = f"rowid IN (SELECT rowid FROM {table} WHERE {where} LIMIT 1)"
        sql(directory, f"DELETE FROM {table} WHERE {where} AND {one}")
        return f"a row of {table} deleted ({where})"
    if kind == "duplicate round":
        columns = ", ".join(
            c
            for c in ROUND_COLUMNS + ["t_validate", "t_accept", "committed_at"]
            if c not in ("round_index", "record_hash")
        )
        sql(
            directory,
            f"INSERT INTO rounds (round_index, {columns}, record_hash) SELECT {ROUNDS + 3}, "
            f"{columns}, record_hash || 'x' FROM rounds WHERE round_index={index}",
        )
        return f"round {index} copied as round {ROUNDS + 3}"
    if kind == "learners":
        value = data.draw(st.sampled_from(["learner-9", "", "learner-0 "]) | st.text(max_size=6))
        try:
            sql(
                directory,
                "UPDATE learners SET learner_id=? WHERE position=?",
                params=(value, index % 4),
            )
        except sqlite3.IntegrityError:
            return None
        return f"learner {index % 4} renamed {value!r}"
    blobs = sorted(p for p in (directory / "blobs").rglob("*.safetensors"))
    blob = blobs[index % len(blobs)]
    if kind == "blob bytes":
        raw = bytearray(blob.read_bytes())
        at = data.draw(st.integers(0, len(raw) - 1))
        how = data.draw(st.sampled_from(["flip", "truncate", "append"]))
        if how == "flip":
            raw[at] ^= data.draw(st.integers(1, 255))
        elif how == "truncate":
            del raw[at:]
        else:
            raw += b"\0" * data.draw(st.integers(1, 64))
        blob.write_bytes(bytes(raw))
        return f"{blob.name}: {how} at {at}"
    if kind == "blob link":
        target = data.draw(st.sampled_from(["/dev/zero", "/etc/passwd", str(blobs[0]), "nowhere"]))
        blob.unlink()
        blob.symlink_to(target)
        return f"{blob.name} -> {target}"
    if kind == "blob gone":
        blob.unlink()
        return f"{blob.name} deleted"
    db = directory / "experiment.sqlite"
    raw = bytearray(db.read_bytes())
    at = data.draw(st.integers(100, len(raw) - 1))
    raw[at : at + 16] = data.draw(st.binary(min_size=16, max_size=16))
    db.write_bytes(bytes(raw))
    return f"database bytes {at}..{at + 16} overwritten"


def comparable(document):
    """What the chain vouches for: all but the summary (derived, rewritten at the end
    of every run) and the settings that may change (how many rounds in all)."""
    out = {k: v for k, v in document.items() if k != "summary"}
    out["config"] = {k: v for k, v in out["config"].items() if k not in ("rounds", "baselines")}
    return out


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(corruption=corruptions())
def test_every_generated_corruption_is_refused_or_harmless(written, tmp_path, corruption):
    kind, index, data = corruption
    directory = copy_of(written, tmp_path)
    try:
        what = corrupt(directory, kind, index, data)
    except sqlite3.IntegrityError:
        what = "refused by the schema itself (NOT NULL, CHECK, UNIQUE): nothing changed"
    _, original, final_id = written
    # reading (show, plot, export): a StoreError, or exactly what was written
    try:
        with opened(directory) as store:
            document = store.to_json()
            blob = store.get_blob(document["final_weights_id"])
    except StoreError:
        document = None
    if document is not None:
        assert comparable(document) == comparable(original), what
        assert len(blob) > 0
    # verify: damage found (or a clean refusal), or nothing that matters was changed
    try:
        ok = verify(directory).ok
    except StoreError:  # a newer schema version: refused, not verified
        ok = False
    event(
        f"{kind}: read {'as written' if document else 'refused'}, verify {'ok' if ok else 'damage'}"
    )
    if ok:
        assert document is not None, (what, "verify saw nothing but reading refused")
    # resuming: a StoreError, or the very model an uninterrupted run ends with
    try:
        result = play(ExperimentStore.open(directory), ROUNDS + 2)
    except StoreError:
        result = None
    event(f"resume {'ran to the same model' if result else 'refused'}")
    if result is not None:  # (a damaged summary is not read by a resume: it is rewritten)
        assert result.final_weights_id == final_id, what


# -- malformed stored JSON is a StoreError naming what ------------------------------------


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("config", "{bad", "stored config .* is not valid JSON"),
        ("config", "[1, 2]", "stored config is a list"),
        ("summary", "{bad", "stored summary is not valid JSON"),
        ("schema_version", "x", "no readable schema version"),
        ("initial_weights_id", "../../../../etc/passwd", "not 64 lowercase hex digits"),
        ("chain_head", "[]", "chain head .* is not readable"),
    ],
)
def test_malformed_meta_is_a_store_error_naming_it(written, tmp_path, key, value, message):
    directory = copy_of(written, tmp_path)
    sql(directory, "UPDATE meta SET value=? WHERE key=?", params=(value, key))
    with pytest.raises(StoreDamagedError, match=message), opened(directory) as store:
        store.to_json()


def test_an_unknown_learner_in_a_record_is_named(written, tmp_path):
    directory = copy_of(written, tmp_path)
    sql(directory, "UPDATE learners SET learner_id='learner-9' WHERE position=3")
    with pytest.raises(StoreDamagedError, match="round 0: .*genesis"), opened(directory) as s:
        s.rounds()


# -- blobs: by checked id, regular files, bounded by their header -------------------------


def test_blobs_are_read_only_from_regular_files_of_their_declared_size(written, tmp_path):
    directory = copy_of(written, tmp_path)
    with opened(directory) as store:
        wid = store.current_weights_id()
        path = store.blob_path(wid)
        size = len(store.get_blob(wid))
    path.unlink()
    path.symlink_to("/dev/zero")  # read until memory runs out, before
    with opened(directory) as store, pytest.raises(StoreDamagedError, match="symbolic link"):
        store.get_blob(wid)
    path.unlink()
    os.mkfifo(path)  # would block a plain open
    with opened(directory) as store, pytest.raises(StoreDamagedError, match="not a regular file"):
        store.get_blob(wid)
    path.unlink()
    path.write_bytes(b"\x00" * size + b"more")
    with (
        opened(directory) as store,
        pytest.raises(StoreDamagedError, match="not a weights blob|declares"),
    ):
        store.get_blob(wid)


def test_an_id_from_outside_never_names_a_path(written, tmp_path):
    directory = copy_of(written, tmp_path)
    with opened(directory) as store:
        for bad in ("../../../../etc/passwd", "AB" * 32, "ab" * 31, ""):
            with pytest.raises(StoreError, match="64 lowercase hex digits"):
                store.get_blob(bad)


def test_a_linked_blob_directory_is_refused(written, tmp_path):
    directory = copy_of(written, tmp_path)
    with opened(directory) as store:
        wid = store.current_weights_id()
    sub = directory / "blobs" / wid[:2]
    elsewhere = tmp_path / "elsewhere"
    shutil.move(sub, elsewhere)
    sub.symlink_to(elsewhere)
    with opened(directory) as store, pytest.raises(StoreDamagedError, match="symbolic link"):
        store.get_blob(wid)


def test_verify_notices_damage_to_a_blob_no_reader_uses(written, tmp_path):
    directory = copy_of(written, tmp_path)
    with opened(directory) as store:
        first = next(r for r in store.rounds() if r.accepted)
        path = store.blob_path(first.current_weights_id)
        final = store.current_weights_id()
    assert first.current_weights_id != final
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF
    path.write_bytes(bytes(raw))
    with opened(directory) as store:  # the current model reads fine ...
        store.get_blob(final)
    report = verify(directory)  # ... but the history is damaged, and verify says where
    assert [d.round_index for d in report.damage] == [first.round_index]
    assert "does not hash to its id" in report.damage[0].message


# -- older schemas ------------------------------------------------------------------------

DATA = Path(__file__).parent / "data"
V2_FINAL = "22bf00ee8e5c47a71e91636b1b4a8f92310eb5ef6587dee5d8db0bc334a63803"


@pytest.mark.parametrize("fixture", ["v1-experiment", "v2-experiment"])
def test_older_directories_are_migrated_and_chained(tmp_path, fixture):
    directory = tmp_path / fixture
    shutil.copytree(DATA / fixture, directory)
    with ExperimentStore.open(directory) as store:
        assert store.current_weights_id() == V2_FINAL
        assert len(store.rounds()) == 6
    assert verify(directory).ok
    assert rows(directory, "SELECT value FROM meta WHERE key='migrated_from'") == [(fixture[1],)]
    resumed = play(ExperimentStore.open(directory), 9)
    uninterrupted = play(ExperimentStore.create(tmp_path / "new", {}, IDS), 9)
    assert resumed.final_weights_id == uninterrupted.final_weights_id


def test_a_damaged_v2_directory_is_refused_and_left_alone(tmp_path):
    directory = tmp_path / "old"
    shutil.copytree(DATA / "v2-experiment", directory)
    sql(
        directory,
        "UPDATE rounds SET current_weights_id = previous_weights_id, "
        'record_json = replace(record_json, \'"status": "accepted"\', \'"status": "rejected"\') '
        "WHERE round_index = 2",
    )
    before = (directory / "experiment.sqlite").read_bytes()
    with pytest.raises(StoreError, match="schema version 2 that cannot be migrated.*round 2"):
        ExperimentStore.open(directory)
    assert (directory / "experiment.sqlite").read_bytes() == before


# -- one writer at a time ----------------------------------------------------------------


def test_a_second_writer_is_refused_while_the_first_holds_the_directory(written, tmp_path):
    import subprocess
    import sys

    directory = copy_of(written, tmp_path)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from colearning import ExperimentStore; "
            "s = ExperimentStore.open(sys.argv[1]); print('held', flush=True); sys.stdin.read()",
            str(directory),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "held\n"  # it holds the lock from here on
        with pytest.raises(
            StoreError, match=rf"being written by another process \(pid {holder.pid}\)"
        ):
            ExperimentStore.open(directory)
        with opened(directory) as store:  # readers need no lock
            assert len(store.rounds()) == ROUNDS
    finally:
        holder.stdin.close()
        holder.wait()
    ExperimentStore.open(directory).close()  # released when the holder ended


def test_the_same_process_opening_twice_is_told_to_close_the_first(written, tmp_path):
    directory = copy_of(written, tmp_path)
    first = ExperimentStore.open(directory)
    try:
        with pytest.raises(StoreError, match="already open for writing in this process"):
            ExperimentStore.open(directory)
    finally:
        first.close()


# -- creation is atomic ------------------------------------------------------------------


def test_a_creation_that_fails_leaves_nothing_behind(tmp_path, monkeypatch):
    from colearning.core import store as store_module

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_module.os, "rename", fail)
    with pytest.raises(StoreError, match="disk is full"):
        ExperimentStore.create(tmp_path / "e", {}, ["a"])
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    ExperimentStore.create(tmp_path / "e", {}, ["a"]).close()  # the name is still free


def test_config_changes_are_limited_to_the_changeable_settings(written, tmp_path):
    directory = copy_of(written, tmp_path)
    with ExperimentStore.open(directory) as store:
        store.update_config({**CONFIG, "rounds": 12})
        with pytest.raises(StoreError, match="'seed' cannot change"):
            store.update_config({**CONFIG, "seed": 3})
        with pytest.raises(StoreError, match="'seed' cannot change"):
            store.put_meta("config", {**CONFIG, "seed": 4})  # the same rule, by either name
        with pytest.raises(StoreError, match="store's own"):
            store.put_meta("chain_head", {})
    assert verify(directory).ok


def test_an_empty_mount_point_is_filled_instead_of_replaced(tmp_path, monkeypatch):
    import errno

    from colearning.core import store as store_module

    real_rename = os.rename

    def rename(src, dst):
        if Path(src).name.startswith(".e.partial-"):  # as rename(2) answers for a mount point
            raise OSError(errno.EBUSY, "Device or resource busy")
        real_rename(src, dst)

    (tmp_path / "e").mkdir()
    monkeypatch.setattr(store_module.os, "rename", rename)
    ExperimentStore.create(tmp_path / "e", CONFIG, IDS).close()
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e"]
    assert sorted(p.name for p in (tmp_path / "e").iterdir()) == ["blobs", "experiment.sqlite"]
    assert len(play(ExperimentStore.open(tmp_path / "e"), 2).rounds) == 2


def test_a_trigger_or_a_changed_constraint_in_the_schema_is_refused(written, tmp_path):
    directory = copy_of(written, tmp_path)
    # a trigger that would rewrite every future round's weights as it is committed
    sql(
        directory,
        "CREATE TRIGGER forge AFTER INSERT ON rounds BEGIN "
        "UPDATE rounds SET current_weights_id = previous_weights_id "
        "WHERE round_index = NEW.round_index; END",
    )
    with pytest.raises(StoreDamagedError, match="schema is not colearning's: trigger forge added"):
        play(ExperimentStore.open(directory), ROUNDS + 2)
    assert len(rows(directory, "SELECT * FROM rounds")) == ROUNDS  # nothing was committed
    assert "trigger forge added" in str(verify(directory).damage)


def test_a_directory_read_before_it_started_still_chains_to_its_initial_weights(tmp_path):
    # what resuming a run killed between creating its directory and its first round does
    store = ExperimentStore.create(tmp_path / "e", CONFIG, IDS)
    assert store.rounds() == [] and store.initial_weights_id is None
    play(store, 3)
    report = verify(tmp_path / "e")
    assert report.ok, report.damage


def test_a_reader_sees_one_snapshot_while_a_round_is_committed_meanwhile(
    written, tmp_path, monkeypatch
):
    from colearning.core import store as store_module

    directory = copy_of(written, tmp_path)
    real_children = store_module._children
    committed = []

    def children_after_a_commit(conn):
        # between the reader's first query and its next, a writer commits a round
        if not committed:
            committed.append("writing")  # (the writer's own reads come through here too)
            play(ExperimentStore.open(directory), ROUNDS + 1)
        return real_children(conn)

    monkeypatch.setattr(store_module, "_children", children_after_a_commit)
    with opened(directory) as store:
        assert len(store.rounds()) == ROUNDS  # the snapshot it started with, intact
    assert committed
    monkeypatch.undo()
    with opened(directory) as store:
        assert len(store.rounds()) == ROUNDS + 1
