"""Fuzz the experiment directory: an experiment written once, then one of its files
(the SQLite database, a weights blob) replaced by the input, and the directory opened
and read as ``colearn show``/``export`` and ``colearn verify`` read it.

    python -m fuzz.store -runs=1000

The first byte picks the file; the rest is its new content (the seeds are the files
as written). Every input must end in a ``StoreError`` (the damage named), or in a
directory that reads, whose final weights read back and hash to their id.
``tests/core/test_chain.py`` generates named corruptions (edited records, deleted rows,
links); this harness adds byte-level, coverage-guided ones.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["colearning"]):
    from colearning.core.codec import weights_id
    from colearning.core.exceptions import StoreError
    from colearning.core.experiment import Experiment
    from colearning.core.store import ExperimentStore, opened
    from colearning.core.verify import verify
    from colearning.testing import FaultyLearner, QuadraticLearner

import contextlib

from fuzz._common import main

ROOT = Path(tempfile.mkdtemp(prefix="colearning-fuzz-store-"))
WRITTEN = ROOT / "written"
COPY = ROOT / "copy"


def _write() -> list[Path]:
    """Four learners, five rounds (accepted, skipped, rejected); the files to replace."""
    if not WRITTEN.exists():
        learners = [
            QuadraticLearner(target=[1.0, 2.0], seed=0),
            FaultyLearner(QuadraticLearner(target=[1.0, 2.0], seed=1), "raise", on={"propose"}),
            FaultyLearner(QuadraticLearner(target=[1.0, 2.0], seed=2), "raise", on={"test"}),
            QuadraticLearner(target=[1.0, 2.0], seed=3),
        ]
        ids = [f"learner-{i}" for i in range(4)]
        store = ExperimentStore.create(WRITTEN, {"task": "quadratic", "seed": 0}, ids)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Experiment(learners, store=store) as experiment:
                experiment.run(5)
    blobs = sorted((WRITTEN / "blobs").rglob("*.safetensors"))
    return [WRITTEN / "experiment.sqlite", *blobs[:3]]


FILES = _write()


def seeds() -> list[bytes]:
    return [bytes([i]) + f.read_bytes() for i, f in enumerate(FILES)]


def test_one(data: bytes) -> None:
    if not data:
        return
    target = FILES[data[0] % len(FILES)].relative_to(WRITTEN)
    if COPY.exists():
        shutil.rmtree(COPY)
    shutil.copytree(WRITTEN, COPY)
    (COPY / target).write_bytes(data[1:])
    try:
        with opened(COPY) as store:
            document = store.to_json()
            final = document["final_weights_id"]
            if final is not None and weights_id(store.get_blob(final)) != final:
                raise AssertionError("a blob read back does not hash to its id")
    except StoreError:
        pass
    with contextlib.suppress(StoreError):
        verify(COPY)


if __name__ == "__main__":
    main(test_one, seeds, sys.argv, max_len=1 << 17)
