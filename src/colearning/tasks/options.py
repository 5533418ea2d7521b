"""Helpers every bundled task shares: learner seeds and checked task options."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from colearning.core.exceptions import ConfigError
from colearning.tasks.registry import BuildContext


def learner_seed(context: BuildContext) -> int:
    """The seed of one learner: a 32-bit integer drawn from
    ``SeedSequence([context.seed, context.learner_index + 1])`` (reference learners
    have index -1).

    Examples
    --------
    >>> from colearning.data.types import Dataset
    >>> import numpy as np
    >>> ds = Dataset("toy", np.zeros((2, 1)), np.array([0, 1]))
    >>> a = learner_seed(BuildContext(seed=0, learner_index=0, dataset=ds))
    >>> b = learner_seed(BuildContext(seed=0, learner_index=1, dataset=ds))
    >>> a != b
    True
    """
    if context.seed < 0:
        raise ConfigError(f"seed must be an integer >= 0; got {context.seed}")
    sequence = np.random.SeedSequence([int(context.seed), int(context.learner_index) + 1])
    return int(sequence.generate_state(1)[0])


def task_options(
    task: str, defaults: Mapping[str, Any], given: Mapping[str, Any]
) -> dict[str, Any]:
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ConfigError(
            f"task {task!r} has no option {', '.join(map(repr, unknown))}; its options are "
            f"{', '.join(sorted(defaults))}"
        )
    return {**defaults, **given}


def int_option(task: str, name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as a whole number >= ``minimum`` (``2`` and ``2.0`` pass, ``2.5`` not)."""
    try:
        number = int(value)
        ok = not isinstance(value, bool) and float(value) == number
    except (TypeError, ValueError):
        ok = False
    if not ok or number < minimum:
        raise ConfigError(
            f"task {task!r} option {name} must be an integer >= {minimum}; got {value!r}"
        )
    return number


def positive_option(task: str, name: str, value: Any) -> float:
    """``value`` as a finite number > 0."""
    try:
        number = float(value)
        ok = not isinstance(value, bool) and number > 0 and np.isfinite(number)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ConfigError(f"task {task!r} option {name} must be a number > 0; got {value!r}")
    return number
