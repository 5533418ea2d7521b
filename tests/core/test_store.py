import sqlite3

import numpy as np
import pytest

from colearning import ExperimentStore, StoreError, Weights, encode, id_of


def test_create_refuses_a_non_empty_directory_and_touches_nothing(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="choose a new, empty --out"):
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


def test_config_and_learners_round_trip(tmp_path):
    ExperimentStore.create(tmp_path / "e", {"task": "t", "n": 3}, ["a", "b"]).close()
    store = ExperimentStore.open(tmp_path / "e")
    assert store.config == {"task": "t", "n": 3}
    assert store.learner_ids == ["a", "b"]
