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


#: The largest value each integer task option takes: beyond these a model or a run
#: cannot fit in memory or finish (a hidden layer of 10**11 units is 46 TiB of weights),
#: and refusing them at once beats failing after the data set loaded.
INT_LIMITS: Mapping[str, int] = {
    "hidden": 100_000,
    "epochs": 10_000,
    "batch_size": 10_000_000,
    "num_batches": 10_000_000,
    "max_depth": 64,
    "trees_per_proposal": 10_000,
    "rounds_per_proposal": 10_000,
    "planned_proposals": 1_000_000,
}
_DEFAULT_LIMIT = 10**9


def int_option(
    task: str, name: str, value: Any, minimum: int = 1, maximum: int | None = None
) -> int:
    """``value`` as a whole number in ``[minimum, maximum]`` (``2`` and ``2.0`` pass,
    ``2.5`` not); ``maximum`` defaults to :data:`INT_LIMITS` for the option's name."""
    top = maximum if maximum is not None else INT_LIMITS.get(name, _DEFAULT_LIMIT)
    try:
        number = int(value)
        ok = not isinstance(value, bool) and float(value) == number
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok or number < minimum:
        raise ConfigError(
            f"task {task!r} option {name} must be an integer >= {minimum}; got {value!r}"
        )
    if number > top:
        raise ConfigError(
            f"task {task!r} option {name} must be at most {top:,}; got {value!r} (a larger "
            "value would not fit in memory or finish)"
        )
    return number


def positive_option(task: str, name: str, value: Any) -> float:
    """``value`` as a finite number > 0."""
    try:
        number = float(value)
        ok = not isinstance(value, bool) and number > 0 and bool(np.isfinite(number))
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ConfigError(f"task {task!r} option {name} must be a number > 0; got {value!r}")
    return number
