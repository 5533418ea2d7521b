import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from colearning import Experiment, ExperimentStore, StoreError, Weights, encode, id_of
from colearning.core.driver import ProposerSkippedWarning
from colearning.core.protocol import Ballot, Reason
from colearning.testing import FaultyLearner, QuadraticLearner


def test_create_refuses_a_non_empty_directory_and_touches_nothing(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="choose a new, empty directory"):
        ExperimentStore.create(tmp_path, {}, ["a"])
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_create_refuses_an_existing_experiment_and_suggests_resume(tmp_path):
    ExperimentStore.create(tmp_path / "e", {}, ["a"]).close()
    with pytest.raises(StoreError, match="--resume"):
        ExperimentStore.create(tmp_path / "e", {}, ["a"])


def test_open_refuses_foreign_directories(tmp_path):
    with pytest.raises(StoreError, match="not a colearning experiment directory"):
        ExperimentStore.open(tmp_path)
    with pytest.raises(StoreError, match="is not a directory"):
        ExperimentStore.open(tmp_path / "missing")
    (tmp_path / "experiment.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot be read"):
        ExperimentStore.open(tmp_path)


def test_open_refuses_a_foreign_sqlite_database(tmp_path):
    conn = sqlite3.connect(tmp_path / "experiment.sqlite")
    conn.execute("CREATE TABLE other (x)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="cannot be read|schema version"):
        ExperimentStore.open(tmp_path)


def test_blobs_are_content_addressed_and_checked(tmp_path):
    store = ExperimentStore.create(tmp_path / "e", {"a": 1}, ["x"])
    blob = encode(Weights({"w": np.arange(4.0)}))
    wid = store.put_blob(blob)
    assert wid == id_of(Weights({"w": np.arange(4.0)}))
    assert store.get_blob(wid) == blob
    store.blob_path(wid).write_bytes(blob[:-1] + b"\x00")
    with pytest.raises(StoreError, match="damaged"):
        store.get_blob(wid)
    store.blob_path(wid).unlink()
    with pytest.raises(StoreError, match="missing"):
        store.get_blob(wid)


def test_a_writer_removes_what_a_killed_blob_write_left_and_a_reader_does_not(tmp_path):
    store = ExperimentStore.create(tmp_path / "e", {"a": 1}, ["x"])
    wid = store.put_blob(encode(Weights({"w": np.arange(4.0)})))
    store.close()
    leftover = store.blob_path(wid).parent / ".tmp-killed"
    leftover.write_bytes(b"half a blob")  # what a run killed mid-write leaves
    ExperimentStore.open(tmp_path / "e", readonly=True).close()
    assert leftover.exists()  # a reader changes nothing
    ExperimentStore.open(tmp_path / "e").close()
    assert not leftover.exists()
    assert store.blob_path(wid).exists()


def test_config_and_learners_round_trip(tmp_path):
    ExperimentStore.create(tmp_path / "e", {"task": "t", "n": 3}, ["a", "b"]).close()
    store = ExperimentStore.open(tmp_path / "e")
    assert store.config == {"task": "t", "n": 3}
    assert store.learner_ids == ["a", "b"]


# -- a directory written by the first version (schema 1) ----------------------------------

V1 = Path(__file__).parent / "data" / "v1-experiment"
V1_FINAL = "22bf00ee8e5c47a71e91636b1b4a8f92310eb5ef6587dee5d8db0bc334a63803"


def v1_learners():
    """The learners the fixture was written with (colearning 0.1.0, commit a46c88a)."""

    class NaNAtThree(QuadraticLearner):
        def mli_propose_weights(self):
            if self._round == 3:
                return Weights({"w": np.full(2, np.nan)})
            return super().mli_propose_weights()

    return [
        QuadraticLearner(target=[1.0, 2.0], seed=0),
        FaultyLearner(QuadraticLearner(target=[1.0, 2.0], seed=1), "raise", on={"propose"}),
        FaultyLearner(QuadraticLearner(target=[1.0, 2.0], seed=2), "raise", on={"test"}),
        NaNAtThree(target=[1.0, 2.0], seed=3),
    ]


def test_a_schema_1_directory_is_migrated_on_open(tmp_path):
    directory = tmp_path / "old"
    shutil.copytree(V1, directory)
    store = ExperimentStore.open(directory)
    rounds = store.rounds()
    assert [r.status for r in rounds] == [
        "accepted",
        "skipped",
        "accepted",
        "rejected",
        "accepted",
        "skipped",
    ]
    assert store.current_weights_id() == V1_FINAL
    assert rounds[1].reason_code is Reason.RAISED and rounds[3].reason_code is Reason.MALFORMED
    assert rounds[0].votes[0].reason is Reason.PROPOSER
    assert rounds[0].votes[2].reason is Reason.RAISED  # learner-2 fails every test
    assert rounds[0].votes[3].ballot is Ballot.APPROVE
    # the chain of weights follows from round to round
    previous = store.initial_weights_id
    for r in rounds:
        assert r.previous_weights_id == previous
        previous = r.current_weights_id
    store.close()
    again = ExperimentStore.open(directory)  # now schema 2: opens without migrating
    assert [r.to_dict() for r in again.rounds()] == [r.to_dict() for r in rounds]
    again.close()


def test_a_migrated_experiment_resumes_like_an_uninterrupted_one(tmp_path):
    ids = [f"learner-{i}" for i in range(4)]
    with pytest.warns(ProposerSkippedWarning):
        full = Experiment(v1_learners(), store=ExperimentStore.create(tmp_path / "new", {}, ids))
        expected = full.run(9)
    assert expected.rounds[5].current_weights_id == V1_FINAL  # the same protocol as 0.1.0
    full.close()
    shutil.copytree(V1, tmp_path / "old")
    resumed = Experiment(v1_learners(), store=ExperimentStore.open(tmp_path / "old"))
    assert resumed.next_round == 6
    assert resumed.run(9).final_weights_id == expected.final_weights_id
    resumed.close()


def test_a_damaged_schema_1_directory_is_refused_and_left_alone(tmp_path):
    directory = tmp_path / "old"
    shutil.copytree(V1, directory)
    conn = sqlite3.connect(directory / "experiment.sqlite")
    conn.execute("UPDATE rounds SET record_json = '{}' WHERE round_index = 2")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="schema version 1 that cannot be migrated"):
        ExperimentStore.open(directory)
    conn = sqlite3.connect(directory / "experiment.sqlite")
    assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("1",)
    conn.close()


def test_an_unknown_schema_version_says_what_to_do(tmp_path):
    ExperimentStore.create(tmp_path / "e", {}, ["a"]).close()
    conn = sqlite3.connect(tmp_path / "e" / "experiment.sqlite")
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="schema version 99.*colearning version that wrote it"):
        ExperimentStore.open(tmp_path / "e")
