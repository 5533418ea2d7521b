"""Fixtures shared across the suite.

``pool_factory`` is parametrized over every pool the driver can run on, so each driver
test runs on each transport: in process, and over real gRPC (a learner server on a
127.0.0.1 port per learner, in this process, hosting the very learner objects the test
made, so a test can still inspect them); the Ray pool joins the list where its issue
lands.
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


class _ServedPool:
    """A GrpcPool over learner servers started for it; closing it stops them."""

    def __init__(self, learners: Sequence[MachineLearningInterface]) -> None:
        from colearning.network import GrpcPool, LearnerServer

        self.servers = [
            LearnerServer(learner, f"learner-{i}", max_workers=4).start()
            for i, learner in enumerate(learners)
        ]
        self.pool = GrpcPool([(f"learner-{i}", s.address) for i, s in enumerate(self.servers)])

    def __getattr__(self, name: str) -> object:
        return getattr(self.pool, name)

    def close(self) -> None:
        self.pool.close()
        for server in self.servers:
            server.stop(grace=0)


def _grpc(learners: Sequence[MachineLearningInterface]) -> LearnerPool:
    return _ServedPool(learners)  # type: ignore[return-value]


POOLS: dict[str, PoolFactory] = {"local": _local, "grpc": _grpc}


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
