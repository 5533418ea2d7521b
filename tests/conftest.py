"""Fixtures shared across the suite.

``pool_factory`` is parametrized over every pool the driver can run on, so each driver
test runs on each transport: in process, over real gRPC (a learner server on a
127.0.0.1 port per learner, in this process, hosting the very learner objects the test
made, so a test can still inspect them), and in a Ray actor (the learners are pickled
to one actor holding them all, as a Ray pool packs many learners per actor; a test
inspects them through ``pool.learner(id)``, which fetches a copy).

Ray starts once per test process (``ray_session``, when a test first needs it) with a
temporary home, since Ray 2.60 writes ``~/.ray/auth_token``, and is shut down when the
session ends, taking its processes with it.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator, Sequence

import pytest

from colearning.core.interface import MachineLearningInterface
from colearning.core.pool import LearnerPool, LocalPool
from colearning.testing import QuadraticLearner

PoolFactory = Callable[[Sequence[MachineLearningInterface]], LearnerPool]

# A suite started in the background by a shell without job control (``scripts/test &``,
# nohup) inherits SIGINT ignored, and so would every command a test starts: the tests
# that press Ctrl-C on one (SIGINT) would then wait for a run that never hears it. The
# suite's commands get SIGINT as a terminal gives it.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _local(learners: Sequence[MachineLearningInterface]) -> LearnerPool:
    return LocalPool(learners)


class _ServedPool:
    """A GrpcPool over learner servers started for it; closing it stops them."""

    def __init__(self, learners: Sequence[MachineLearningInterface]) -> None:
        from colearning.network import GrpcPool, LearnerServer

        self.learners = list(learners)
        self.servers = [
            LearnerServer(learner, f"learner-{i}", max_workers=4).start()
            for i, learner in enumerate(learners)
        ]
        self.pool = GrpcPool([(f"learner-{i}", s.address) for i, s in enumerate(self.servers)])

    def __getattr__(self, name: str) -> object:
        return getattr(self.pool, name)

    def learner(self, learner_id: str) -> MachineLearningInterface:
        """The served learner object itself."""
        return self.learners[list(self.pool.learner_ids).index(learner_id)]

    def close(self) -> None:
        self.pool.close()
        for server in self.servers:
            server.stop(grace=0)


def _grpc(learners: Sequence[MachineLearningInterface]) -> LearnerPool:
    return _ServedPool(learners)  # type: ignore[return-value]


def _ray(learners: Sequence[MachineLearningInterface]) -> LearnerPool:
    from colearning.scale import RayPool

    return RayPool(learners, actors=1)


POOLS: dict[str, PoolFactory] = {"local": _local, "grpc": _grpc, "ray": _ray}


@pytest.fixture(scope="session")
def ray_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A local Ray for this test process, with a temporary home; shut down at the end."""
    import ray

    home = os.environ.get("HOME")
    os.environ["HOME"] = str(tmp_path_factory.mktemp("ray-home"))
    try:
        ray.init(
            num_cpus=4,
            include_dashboard=False,
            logging_level="warning",
            log_to_driver=False,
            address="local",
        )
    finally:
        if home is None:
            del os.environ["HOME"]
        else:
            os.environ["HOME"] = home
    yield
    ray.shutdown(wait_for_processes=True)


def _factory(name: str) -> Iterator[PoolFactory]:
    made: list[LearnerPool] = []

    def make(learners: Sequence[MachineLearningInterface]) -> LearnerPool:
        pool = POOLS[name](learners)
        made.append(pool)
        return pool

    yield make
    for pool in made:
        pool.close()


@pytest.fixture(params=sorted(POOLS))
def pool_factory(request: pytest.FixtureRequest) -> Iterator[PoolFactory]:
    """Builds a pool over the given learners on one transport; closes them after."""
    if request.param == "ray":
        request.getfixturevalue("ray_session")
    yield from _factory(request.param)


@pytest.fixture(params=["grpc", "local"])
def inspectable_pool_factory(request: pytest.FixtureRequest) -> Iterator[PoolFactory]:
    """:func:`pool_factory` on the transports whose learners stay the test's own objects
    (in this process), so a test can count their calls; a Ray pool holds copies."""
    yield from _factory(request.param)


@pytest.fixture
def quads() -> Callable[..., list[QuadraticLearner]]:
    """``quads(n, target=..., **kw)``: n seeded quadratic learners sharing a target."""

    def make(n: int, target: Sequence[float] = (1.0, 2.0), **kw: object) -> list[QuadraticLearner]:
        return [QuadraticLearner(target=list(target), seed=i, **kw) for i in range(n)]  # type: ignore[arg-type]

    return make
