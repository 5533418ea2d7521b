"""Learner factories for ``colearn learner serve --factory`` in the integration tests
(the servers import this module: the tests put this directory on PYTHONPATH)."""

import os

from colearning.testing import QuadraticLearner


def quadratic():
    """A quadratic learner seeded by ``COLEARN_TEST_SEED``, with the shared target."""
    seed = int(os.environ.get("COLEARN_TEST_SEED", "0"))
    return QuadraticLearner(target=[1.0, 2.0], seed=seed)


def not_a_learner():
    return "nope"
