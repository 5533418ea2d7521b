"""Fixtures shared across the suite.

``pool_factory`` is parametrized over every pool the driver can run on, so each driver
test runs on each transport: in process today; the gRPC and Ray pools join the list
where their issues land.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import pytest

from colearning.core.interface import MachineLearningInterface
from colearning.core.pool import LearnerPool, LocalPool
from colearning.testing import QuadraticLearner

PoolFactory = Callable[[Sequence[MachineLearningInterface]], LearnerPool]


def _local(learners: Sequence[MachineLearningInterface]) -> LearnerPool:
    return LocalPool(learners)


POOLS: dict[str, PoolFactory] = {"local": _local}


@pytest.fixture(params=sorted(POOLS))
def pool_factory(request: pytest.FixtureRequest) -> Iterator[PoolFactory]:
    """Builds a pool over the given learners on one transport; closes them after."""
    made: list[LearnerPool] = []

    def make(learners: Sequence[MachineLearningInterface]) -> LearnerPool:
        pool = POOLS[request.param](learners)
        made.append(pool)
        return pool

    yield make
    for pool in made:
        pool.close()


@pytest.fixture
def quads() -> Callable[..., list[QuadraticLearner]]:
    """``quads(n, target=..., **kw)``: n seeded quadratic learners sharing a target."""

    def make(n: int, target: Sequence[float] = (1.0, 2.0), **kw: object) -> list[QuadraticLearner]:
        return [QuadraticLearner(target=list(target), seed=i, **kw) for i in range(n)]  # type: ignore[arg-type]

    return make
