"""Tools for testing learners: the conformance suite and tiny framework-free learners."""

from colearning.testing.conformance import LearnerContractError, check_learner
from colearning.testing.faults import FaultyLearner
from colearning.testing.toys import InstantLearner, QuadraticLearner

__all__ = [
    "FaultyLearner",
    "InstantLearner",
    "LearnerContractError",
    "QuadraticLearner",
    "check_learner",
]
