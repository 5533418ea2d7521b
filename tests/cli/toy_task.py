"""A task with no ML framework, for command-line tests that start many processes.

    python tests/cli/toy_task.py ARGS...     # colearn ARGS, with the task "toy-cli"

Its learners are :class:`~colearning.testing.QuadraticLearner` on 300 random points,
so a process spends its time in colearning, not in importing scikit-learn.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from colearning.data import Dataset
from colearning.tasks import Task, register_task
from colearning.testing import QuadraticLearner

NAME = "toy-cli"


def _points(data_dir: Any, params: Any) -> Dataset:
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(300, 2)) + [3.0, -2.0]).astype(np.float32)
    return Dataset("points", X, (X[:, 0] > 3).astype(np.int64))


def _learner(part: Any, ctx: Any) -> QuadraticLearner:
    return QuadraticLearner(target=part.train[0].mean(axis=0), seed=ctx.learner_index + 1)


def register() -> None:
    register_task(
        Task(
            name=NAME,
            description="QuadraticLearner on random points (tests only)",
            extra="numpy",
            load_dataset=_points,
            make_learner=_learner,
            metric="neg-mse",
            defaults={"learners": 3, "rounds": 2, "partition": "iid"},
            params={"unused": 1},
        ),
        replace=True,
    )


if __name__ == "__main__":
    from colearning.cli.main import main

    register()
    sys.exit(main(sys.argv[1:]))
