"""Tools for testing learners: the conformance suite and tiny framework-free learners.

:func:`check_learner` runs every check that applies to a learner and lists what to
fix; :func:`parametrize_with_checks` makes each check its own pytest test;
:func:`learner_checks` yields the ``(name, check)`` pairs (the checks themselves live
in :mod:`colearning.testing.checks`). Nothing here imports an ML framework or pytest.
"""

from colearning.testing.conformance import (
    LearnerContractError,
    check_learner,
    learner_checks,
    parametrize_with_checks,
)
from colearning.testing.faults import FaultyLearner
from colearning.testing.toys import InstantLearner, QuadraticLearner

__all__ = [
    "FaultyLearner",
    "InstantLearner",
    "LearnerContractError",
    "QuadraticLearner",
    "check_learner",
    "learner_checks",
    "parametrize_with_checks",
]
