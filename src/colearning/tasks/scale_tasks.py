"""Tasks for simulating many learners: a generated data set of any size and a model that
needs NumPy alone (:class:`~colearning.learners.softmax.SoftmaxLearner`).

``synthetic-softmax`` gives every learner a few dozen rows, so 10,000 learners fit in
one process and a round's time is the protocol's own::

    colearn run --task synthetic-softmax --learners 10000 -c params.rows=400000 \\
        --committee 51 --no-baselines
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from colearning.core.exceptions import ConfigError
from colearning.core.interface import MachineLearningInterface
from colearning.data.types import Dataset, LearnerData
from colearning.tasks.options import int_option, learner_seed, positive_option, task_options
from colearning.tasks.registry import BuildContext, Task, register_task

NAME = "synthetic-softmax"
_PARAMS: Mapping[str, Any] = {
    "rows": 20_000,
    "features": 20,
    "classes": 10,
    "spread": 0.5,
    "data_seed": 0,
    "learning_rate": 0.5,
    "epochs": 1,
    "batch_size": 32,
}
#: The most values (rows x features) the generated set may hold: 2 GB of float32.
MAX_VALUES = 500_000_000


def _options(given: Mapping[str, Any]) -> dict[str, Any]:
    o = task_options(NAME, _PARAMS, given)
    out = {
        "rows": int_option(NAME, "rows", o["rows"], maximum=MAX_VALUES),
        "features": int_option(NAME, "features", o["features"], maximum=100_000),
        "classes": int_option(NAME, "classes", o["classes"], minimum=2, maximum=100_000),
        "spread": positive_option(NAME, "spread", o["spread"]),
        "data_seed": int_option(NAME, "data_seed", o["data_seed"], minimum=0),
        "learning_rate": positive_option(NAME, "learning_rate", o["learning_rate"]),
        "epochs": int_option(NAME, "epochs", o["epochs"]),
        "batch_size": int_option(NAME, "batch_size", o["batch_size"]),
    }
    if out["rows"] * out["features"] > MAX_VALUES:
        raise ConfigError(
            f"task {NAME!r}: rows x features must be at most {MAX_VALUES:,} (2 GB of "
            f"float32); got {out['rows']:,} x {out['features']:,}"
        )
    return out


def _load(data_dir: Path | None, params: Mapping[str, Any]) -> Dataset:
    from colearning.data.datasets import synthetic_classification

    o = _options(params)
    return synthetic_classification(
        o["rows"], o["features"], o["classes"], seed=o["data_seed"], spread=o["spread"]
    )


def _make_learner(data: LearnerData, context: BuildContext) -> MachineLearningInterface:
    from colearning.learners.softmax import SoftmaxLearner

    o = _options(context.params)
    return SoftmaxLearner(
        data,
        classes=context.dataset.classes,
        learning_rate=o["learning_rate"],
        epochs=o["epochs"],
        batch_size=o["batch_size"],
        seed=learner_seed(context),
    )


TASK = register_task(
    Task(
        name=NAME,
        description="generated Gaussian classes (20 features, 10 classes, any number of "
        "rows), softmax regression in NumPy: for simulating thousands of learners",
        extra=None,
        load_dataset=_load,
        make_learner=_make_learner,
        metric="accuracy",
        higher_is_better=True,
        defaults={"learners": 100, "rounds": 20, "partition": "iid", "vote_threshold": 0.5},
        params=dict(_PARAMS),
        check_options=_options,
    )
)
