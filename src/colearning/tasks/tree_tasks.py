"""The bundled tree tasks: boosted trees (XGBoost) and a random forest (scikit-learn).

Classification tasks vote on log-loss (smooth: a small vote set still tells a better
model apart) and report accuracy as the test score.

Nothing here imports XGBoost or scikit-learn at module import; ``make_learner`` and
``load_dataset`` do, when called. Every learner gets the data set's full class list, so
learners whose share lacks a class still build the same model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from colearning.core.interface import MachineLearningInterface
from colearning.data.types import Dataset, LearnerData
from colearning.tasks.options import int_option, learner_seed, positive_option, task_options
from colearning.tasks.registry import BuildContext, Task, register_task


def _loader(name: str) -> Callable[[Path | None, Mapping[str, Any]], Dataset]:
    def load(data_dir: Path | None, params: Mapping[str, Any]) -> Dataset:
        from colearning.data.datasets import load_dataset

        return load_dataset(name, data_dir)

    return load


_XGB_PARAMS: Mapping[str, Any] = {
    "max_depth": 3,
    "eta": 0.3,
    "subsample": 0.8,
    "rounds_per_proposal": 5,
}


def _xgb_options(
    task: str, defaults: Mapping[str, Any], params: Mapping[str, Any]
) -> dict[str, Any]:
    options = task_options(task, defaults, params)
    return {
        "max_depth": int_option(task, "max_depth", options["max_depth"]),
        "eta": positive_option(task, "eta", options["eta"]),
        "subsample": positive_option(task, "subsample", options["subsample"]),
        "rounds": int_option(task, "rounds_per_proposal", options["rounds_per_proposal"]),
    }


def _xgb_maker(
    task: str, defaults: Mapping[str, Any], objective: str, metric: str, vote_metric: str
) -> Callable[[LearnerData, BuildContext], MachineLearningInterface]:
    def make_learner(data: LearnerData, context: BuildContext) -> MachineLearningInterface:
        o = _xgb_options(task, defaults, context.params)
        max_depth, eta, subsample, rounds = o["max_depth"], o["eta"], o["subsample"], o["rounds"]
        from colearning.learners.xgboost import XGBoostLearner

        classification = not objective.startswith("reg:")
        return XGBoostLearner(
            {
                "objective": objective,
                "max_depth": max_depth,
                "eta": eta,
                "subsample": min(subsample, 1.0),
            },
            data,
            rounds_per_proposal=rounds,
            vote_metric=vote_metric,
            test_metric=metric,
            classes=context.dataset.classes if classification else None,
            seed=learner_seed(context),
        )

    return make_learner


_FOREST_PARAMS: Mapping[str, Any] = {"trees_per_proposal": 5, "max_depth": 4}


def _forest_options(
    task: str, defaults: Mapping[str, Any], params: Mapping[str, Any]
) -> dict[str, Any]:
    options = task_options(task, defaults, params)
    return {
        "trees": int_option(task, "trees_per_proposal", options["trees_per_proposal"]),
        "max_depth": int_option(task, "max_depth", options["max_depth"]),
    }


def _forest_maker(
    task: str, defaults: Mapping[str, Any]
) -> Callable[[LearnerData, BuildContext], MachineLearningInterface]:
    def make_learner(data: LearnerData, context: BuildContext) -> MachineLearningInterface:
        o = _forest_options(task, defaults, context.params)
        trees, max_depth = o["trees"], o["max_depth"]
        from colearning.learners.forest import RandomForestLearner

        return RandomForestLearner(
            data,
            trees_per_proposal=trees,
            max_depth=max_depth,
            task="classification",
            classes=context.dataset.classes,
            vote_metric="log_loss",
            test_metric="accuracy",
            seed=learner_seed(context),
        )

    return make_learner


TASKS: tuple[Task, ...] = (
    Task(
        name="breast-cancer-xgb",
        description="Wisconsin breast cancer (569 rows, 30 features, 2 classes), "
        "gradient-boosted trees (XGBoost)",
        extra="xgboost",
        load_dataset=_loader("breast-cancer"),
        make_learner=_xgb_maker(
            "breast-cancer-xgb", _XGB_PARAMS, "binary:logistic", "accuracy", "log_loss"
        ),
        metric="accuracy",
        higher_is_better=True,
        defaults={"learners": 5, "rounds": 10, "partition": "iid", "vote_threshold": 0.5},
        params=dict(_XGB_PARAMS),
        check_options=lambda given: _xgb_options("breast-cancer-xgb", _XGB_PARAMS, given),
    ),
    Task(
        name="diabetes-xgb",
        description="diabetes progression (442 rows, 10 features, regression), "
        "gradient-boosted trees (XGBoost), scored by RMSE",
        extra="xgboost",
        load_dataset=_loader("diabetes"),
        make_learner=_xgb_maker(
            "diabetes-xgb",
            {**_XGB_PARAMS, "max_depth": 2, "eta": 0.1},
            "reg:squarederror",
            "rmse",
            "rmse",
        ),
        metric="rmse",
        higher_is_better=False,
        defaults={"learners": 5, "rounds": 10, "partition": "iid", "vote_threshold": 0.5},
        params={**_XGB_PARAMS, "max_depth": 2, "eta": 0.1},
        check_options=lambda given: _xgb_options("diabetes-xgb", _XGB_PARAMS, given),
    ),
    Task(
        name="iris-forest",
        description="iris flowers (150 rows, 4 features, 3 classes), random forest (scikit-learn)",
        extra="sklearn",
        load_dataset=_loader("iris"),
        make_learner=_forest_maker("iris-forest", _FOREST_PARAMS),
        metric="accuracy",
        higher_is_better=True,
        defaults={"learners": 3, "rounds": 10, "partition": "iid", "vote_threshold": 0.5},
        params=dict(_FOREST_PARAMS),
        check_options=lambda given: _forest_options("iris-forest", _FOREST_PARAMS, given),
    ),
)

for _task in TASKS:
    register_task(_task)
