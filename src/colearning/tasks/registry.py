"""Named tasks: a data set and a model recipe, so a run is one name and a few numbers.

A task never imports its framework at module import; ``make_learner`` and
``load_dataset`` import what they need when called, after checking the extra is there.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from colearning.core.exceptions import ConfigError
from colearning.core.interface import MachineLearningInterface
from colearning.data.types import Dataset, LearnerData


@dataclass(frozen=True)
class BuildContext:
    """What a task's ``make_learner`` knows besides the learner's data.

    ``learner_index`` is the learner's position, or -1 for reference learners (the
    pooled baseline and the judge that scores the final model). ``params`` holds the
    task's own options (``-c task.NAME=VALUE`` on the command line).
    """

    seed: int
    learner_index: int
    dataset: Dataset
    data_dir: Path | None = None
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Task:
    """A named recipe.

    Parameters
    ----------
    name
        What ``colearn run --task`` takes, e.g. ``"digits-mlp"``.
    description
        One line for ``colearn tasks``.
    extra
        The colearning extra its learners need, e.g. ``"sklearn"``; ``None`` for a task
        that needs only the core install (NumPy).
    load_dataset
        ``(data_dir, params) -> Dataset``.
    make_learner
        ``(LearnerData, BuildContext) -> learner``; must be deterministic in
        ``(context.seed, context.learner_index)``.
    metric
        Name of the test score, for tables ("accuracy", "rmse").
    defaults
        Default ``learners``, ``rounds``, ``partition``, ``vote_threshold``.
    params
        The task's own options and their defaults, documented in ``colearn tasks``.
    check_options
        ``params -> anything``: checks the task's options (types, ranges) and raises
        ``ConfigError``; called before the data set loads, so a bad option is refused
        at once. ``make_learner`` checks them again where it uses them.
    """

    name: str
    description: str
    extra: str | None
    load_dataset: Callable[[Path | None, Mapping[str, Any]], Dataset]
    make_learner: Callable[[LearnerData, BuildContext], MachineLearningInterface]
    metric: str = "accuracy"
    higher_is_better: bool = True
    defaults: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    check_options: Callable[[Mapping[str, Any]], object] | None = None


_TASKS: dict[str, Task] = {}
# Modules that register the bundled tasks; imported on first look-up only.
_BUILTIN_MODULES = (
    "colearning.tasks.sklearn_tasks",
    "colearning.tasks.tree_tasks",
    "colearning.tasks.keras_tasks",
    "colearning.tasks.torch_tasks",
    "colearning.tasks.scale_tasks",
)
_loaded = False


def register_task(task: Task, *, replace: bool = False) -> Task:
    """Add ``task`` to the registry (refusing a name already taken unless ``replace``)."""
    if task.name in _TASKS and not replace:
        raise ConfigError(f"a task named {task.name!r} is already registered")
    _TASKS[task.name] = task
    return task


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in _BUILTIN_MODULES:
            importlib.import_module(module)


def get_task(name: str) -> Task:
    """The task called ``name``; the error lists the known names."""
    _load_builtins()
    try:
        return _TASKS[name]
    except KeyError:
        known = ", ".join(sorted(_TASKS))
        raise ConfigError(
            f"unknown task {name!r}; known tasks: {known} (see `colearn tasks`)"
        ) from None


def list_tasks() -> list[Task]:
    """Every registered task, by name."""
    _load_builtins()
    return [_TASKS[n] for n in sorted(_TASKS)]
