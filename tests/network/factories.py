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


def wide_quadratic():
    """A quadratic learner over ``COLEARN_TEST_DIM`` coordinates (its weights span
    several 1 MiB chunks on the wire), seeded by ``COLEARN_TEST_SEED``."""
    import numpy as np

    seed = int(os.environ.get("COLEARN_TEST_SEED", "0"))
    dim = int(os.environ["COLEARN_TEST_DIM"])
    target = np.random.default_rng(seed).normal(size=dim)
    return QuadraticLearner(target=target, seed=seed)
