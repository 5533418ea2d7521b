"""The bundled scikit-learn tasks: a data set and an incrementally trained model each.

Nothing here imports scikit-learn at module import; ``make_learner`` and
``load_dataset`` do, when called.

Every learner's seed is derived from ``(context.seed, context.learner_index)``, so a
run is reproducible and learners do not share random streams. Task options
(``-c params.NAME=VALUE``) are listed in each task's ``params``; an unknown option is an
error, so a typo cannot pass silently.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from colearning.core.exceptions import ConfigError
from colearning.core.interface import MachineLearningInterface
from colearning.data.types import Dataset, LearnerData
from colearning.tasks.options import int_option, learner_seed, positive_option, task_options
from colearning.tasks.registry import BuildContext, Task, register_task

_DEFAULTS: Mapping[str, Any] = {
    "learners": 5,
    "rounds": 20,
    "partition": "dirichlet:0.5",
    "vote_threshold": 0.5,
}


# -- options ----------------------------------------------------------------------------


def _hidden(task: str, value: Any) -> tuple[int, ...]:
    """``64``, ``[128, 64]`` or ``"128,64"``: the sizes of the hidden layers."""
    items: Any = value
    if isinstance(value, str):
        items = [p for p in value.strip("()[] ").split(",") if p.strip()]
    elif not isinstance(value, list | tuple):
        items = [value]
    whole = [
        v
        for v in items
        if not isinstance(v, bool) and isinstance(v, int | float | str) and _integral(v)
    ]
    if not items or len(whole) != len(items) or len(items) > MAX_LAYERS:
        raise ConfigError(
            f"task {task!r} option hidden must be 1 to {MAX_LAYERS} layer sizes >= 1, such "
            f"as 64 or [128, 64]; got {value!r}"
        )
    return tuple(int_option(task, "hidden", v) for v in items)


#: The most hidden layers a task's MLP takes.
MAX_LAYERS = 64


def _integral(value: Any) -> bool:
    try:
        return float(value) == int(float(value))
    except (TypeError, ValueError, OverflowError):
        return False


# -- recipes ----------------------------------------------------------------------------


def _loader(name: str) -> Callable[[Path | None, Mapping[str, Any]], Dataset]:
    def load(data_dir: Path | None, params: Mapping[str, Any]) -> Dataset:
        from colearning.data.datasets import load_dataset

        return load_dataset(name, data_dir)

    return load


# Votes compare a continuous score of the vote set: accuracy on a vote set of 18 rows
# moves in steps of 1/18, and most votes of 20 learners on digits were exact ties
# (docs/modes.md). Test scores, and so every table, stay accuracy.
_VOTE_METRICS = (
    "log_loss",
    "accuracy",
    "balanced_accuracy",
    "f1_macro",
    "neg_log_loss",
    "calibrated_log_loss",  # log loss after one fitted temperature (docs/modes.md)
)
_MLP_PARAMS: Mapping[str, Any] = {
    "hidden": (64,),
    "learning_rate": 0.005,
    "batch_size": 32,
    "epochs": 5,
    "alpha": 1e-4,
    "vote_metric": "log_loss",
}
_SGD_PARAMS: Mapping[str, Any] = {
    "learning_rate": 0.05,
    "alpha": 1e-4,
    "epochs": 5,
    "vote_metric": "log_loss",
}


def _learner(
    model: Any, data: LearnerData, context: BuildContext, epochs: int, vote_metric: str
) -> MachineLearningInterface:
    from colearning.learners.sklearn import SKLearnLearner

    return SKLearnLearner(
        model,
        data,
        classes=context.dataset.classes,
        vote_metric=vote_metric,
        test_metric="accuracy",
        epochs=epochs,
        seed=learner_seed(context),
    )


def _vote_metric(task: str, value: Any) -> str:
    if value not in _VOTE_METRICS:
        raise ConfigError(
            f"task {task!r} option vote_metric must be one of {', '.join(_VOTE_METRICS)}; "
            f"got {value!r}"
        )
    return str(value)


def _mlp_options(
    task: str, defaults: Mapping[str, Any], params: Mapping[str, Any]
) -> dict[str, Any]:
    options = task_options(task, defaults, params)
    return {
        "hidden": _hidden(task, options["hidden"]),
        "learning_rate": positive_option(task, "learning_rate", options["learning_rate"]),
        "batch_size": int_option(task, "batch_size", options["batch_size"]),
        "epochs": int_option(task, "epochs", options["epochs"]),
        "alpha": positive_option(task, "alpha", options["alpha"]),
        "vote_metric": _vote_metric(task, options["vote_metric"]),
    }


def _mlp_maker(
    task: str, defaults: Mapping[str, Any]
) -> Callable[[LearnerData, BuildContext], MachineLearningInterface]:
    def make_learner(data: LearnerData, context: BuildContext) -> MachineLearningInterface:
        o = _mlp_options(task, defaults, context.params)
        from sklearn.neural_network import MLPClassifier

        model = MLPClassifier(
            hidden_layer_sizes=o["hidden"],
            solver="adam",
            learning_rate_init=o["learning_rate"],
            batch_size=o["batch_size"],
            alpha=o["alpha"],
        )
        return _learner(model, data, context, o["epochs"], o["vote_metric"])

    return make_learner


def _sgd_options(
    task: str, defaults: Mapping[str, Any], params: Mapping[str, Any]
) -> dict[str, Any]:
    options = task_options(task, defaults, params)
    return {
        "learning_rate": positive_option(task, "learning_rate", options["learning_rate"]),
        "alpha": positive_option(task, "alpha", options["alpha"]),
        "epochs": int_option(task, "epochs", options["epochs"]),
        "vote_metric": _vote_metric(task, options["vote_metric"]),
    }


def _sgd_maker(
    task: str, defaults: Mapping[str, Any]
) -> Callable[[LearnerData, BuildContext], MachineLearningInterface]:
    def make_learner(data: LearnerData, context: BuildContext) -> MachineLearningInterface:
        o = _sgd_options(task, defaults, context.params)
        learning_rate, alpha, epochs = o["learning_rate"], o["alpha"], o["epochs"]
        from sklearn.linear_model import SGDClassifier

        # A constant step: each proposal restarts the optimizer (see SKLearnLearner),
        # and the "optimal" schedule would restart from its largest step every time.
        model = SGDClassifier(
            loss="log_loss", learning_rate="constant", eta0=learning_rate, alpha=alpha
        )
        return _learner(model, data, context, epochs, o["vote_metric"])

    return make_learner


def _make_task(
    name: str,
    dataset: str,
    description: str,
    base: Mapping[str, Any],
    maker: Callable[[str, Mapping[str, Any]], Callable[[LearnerData, BuildContext], Any]],
    check: Callable[[str, Mapping[str, Any], Mapping[str, Any]], object],
    overrides: Mapping[str, Any] | None = None,
) -> Task:
    params = {**base, **(overrides or {})}
    return Task(
        name=name,
        description=description,
        extra="sklearn",
        load_dataset=_loader(dataset),
        make_learner=maker(name, params),
        metric="accuracy",
        higher_is_better=True,
        defaults=dict(_DEFAULTS),
        params=params,
        check_options=lambda given: check(name, params, given),
    )


def _mlp_task(
    name: str, dataset: str, description: str, overrides: Mapping[str, Any] | None = None
) -> Task:
    return _make_task(name, dataset, description, _MLP_PARAMS, _mlp_maker, _mlp_options, overrides)


def _sgd_task(
    name: str, dataset: str, description: str, overrides: Mapping[str, Any] | None = None
) -> Task:
    return _make_task(name, dataset, description, _SGD_PARAMS, _sgd_maker, _sgd_options, overrides)


TASKS: tuple[Task, ...] = (
    _mlp_task(
        "digits-mlp",
        "digits",
        "8x8 handwritten digits (1,797 images, 10 classes), MLP with one hidden layer of 64",
    ),
    _sgd_task(
        "digits-sgd",
        "digits",
        "8x8 handwritten digits (1,797 images, 10 classes), logistic regression by SGD",
    ),
    _sgd_task(
        "breast-cancer-sgd",
        "breast-cancer",
        "Wisconsin breast cancer (569 rows, 30 features, 2 classes), logistic regression by SGD",
    ),
    _mlp_task(
        "mnist-mlp",
        "mnist-small",
        "5,000 MNIST digits (28x28, 10 classes), MLP with one hidden layer of 128",
        {"hidden": (128,), "epochs": 2},
    ),
    _mlp_task(
        "wine-mlp",
        "wine",
        "wine cultivars (178 rows, 13 features, 3 classes), MLP with one hidden layer of 16",
        {"hidden": (16,), "learning_rate": 0.01, "batch_size": 16, "epochs": 20},
    ),
)

for _task in TASKS:
    register_task(_task)
