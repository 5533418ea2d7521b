"""Partitions as files of row indices, so two systems train on the very same shares.

``colearn bench collaboration`` writes one JSON file per (task, learners, partition,
seed): for every learner the row indices of its train, vote and test splits into the
task's data set, exactly the rows :func:`colearning.data.partition_dataset` gives it.
This project's side and Flower's side both build their learners from that file with
:func:`build_learners`, so both train the same model on the same rows, and both are
scored by the same judge (a learner holding the union of every learner's test split).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from colearning.core.interface import MachineLearningInterface, Weights
from colearning.data.partition import learner_data, partition_indices
from colearning.data.types import Dataset, LearnerData, pool_data
from colearning.tasks.registry import BuildContext, get_task

#: ``build_learners``' index of the judge (and of the pooled-data reference learner).
POOLED = -1


@dataclass(frozen=True)
class PartitionFile:
    """What a partition file holds: the run's settings and each learner's rows."""

    task: str
    learners: int
    partition: str
    seed: int
    params: Mapping[str, Any] = field(default_factory=dict)
    parts: Sequence[Mapping[str, Any]] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "learners": self.learners,
            "partition": self.partition,
            "seed": self.seed,
            "params": dict(self.params),
            "parts": [dict(p) for p in self.parts],
        }


def write_partition(
    path: str | os.PathLike[str],
    task: str,
    learners: int,
    partition: str,
    seed: int,
    params: Mapping[str, Any] | None = None,
    split: str | None = None,
) -> PartitionFile:
    """Share ``task``'s data set out as ``colearn run`` would (with ``--split``, if
    given) and write the rows."""
    from colearning.data.partition import DEFAULT_FRACTIONS, parse_split

    params = dict(params or {})
    dataset = _dataset(task, json.dumps(params, sort_keys=True))
    fractions = DEFAULT_FRACTIONS if split is None else parse_split(split)
    rows = partition_indices(dataset, learners, partition, seed, fractions)
    parts = [
        {
            "train": train.tolist(),
            "vote": vote.tolist(),
            "test": test.tolist(),
            "train_rows": len(train),
        }
        for train, vote, test in rows
    ]
    spec = PartitionFile(task, learners, partition, seed, params, parts)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(spec.to_dict()))
    return spec


def read_partition(path: str | os.PathLike[str]) -> PartitionFile:
    data = json.loads(Path(path).read_text())
    return PartitionFile(
        task=str(data["task"]),
        learners=int(data["learners"]),
        partition=str(data["partition"]),
        seed=int(data["seed"]),
        params=dict(data.get("params") or {}),
        parts=list(data["parts"]),
    )


def learner_shares(spec: PartitionFile) -> list[LearnerData]:
    """Every learner's data, in learner order."""
    dataset = _dataset(spec.task, json.dumps(dict(spec.params), sort_keys=True))
    return [
        learner_data(
            dataset.X,
            dataset.y,
            tuple(np.asarray(part[k], dtype=np.int64) for k in ("train", "vote", "test")),  # type: ignore[arg-type]
        )
        for part in spec.parts
    ]


def build_learners(
    spec: PartitionFile, indices: Sequence[int], params: Mapping[str, Any] | None = None
) -> list[MachineLearningInterface]:
    """The task's learners of ``indices`` (``POOLED``: one on everyone's data, which
    serves as the judge and as the pooled-data reference). ``params`` overrides task
    options (the judge and the learners that never vote need no vote metric)."""
    task = get_task(spec.task)
    dataset = _dataset(spec.task, json.dumps(dict(spec.params), sort_keys=True))
    shares = learner_shares(spec)
    options = {**spec.params, **(params or {})}
    made = []
    for index in indices:
        data = pool_data(shares) if index == POOLED else shares[index]
        context = BuildContext(seed=spec.seed, learner_index=index, dataset=dataset, params=options)
        made.append(task.make_learner(data, context))
    return made


def no_vote(spec: PartitionFile) -> dict[str, Any]:
    """Task options for learners that never vote (the judge, learners alone, pooled
    training, Flower's clients): the cheapest vote metric, since none is used."""
    return {"vote_metric": "accuracy"} if "vote_metric" in get_task(spec.task).params else {}


def epochs_per_proposal(spec: PartitionFile) -> int:
    """Local epochs of one proposal (one FedAvg client update) under the task's options."""
    return int({**get_task(spec.task).params, **spec.params}.get("epochs", 1))


def judge_score(judge: MachineLearningInterface, weights: Weights) -> float:
    """The judge's test score of ``weights`` (the union of every learner's test split)."""
    score = judge.mli_test_weights(weights).test_score
    return float("nan") if score is None else float(score)


@functools.lru_cache(maxsize=4)
def _dataset(task: str, params_json: str) -> Dataset:
    return get_task(task).load_dataset(None, json.loads(params_json))
