"""Calls run with one BLAS thread; torch gets one thread per call of a parallel batch
and every core for a lone call."""

import os

import numpy as np
from threadpoolctl import threadpool_info

from colearning import ProposedWeights, Weights
from colearning.core.pool import LocalPool
from colearning.core.weights_ref import WeightsRef
from colearning.runtime.threads import one_blas_thread
from colearning.testing import QuadraticLearner


def blas_threads() -> list[int]:
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_one_blas_thread_limits_blas_and_restores():
    before = blas_threads()
    with one_blas_thread():
        assert set(blas_threads()) == {1}
    assert blas_threads() == before


class Spy(QuadraticLearner):
    """Records the torch and BLAS thread counts its calls ran with."""

    seen: list[tuple[str, int, list[int]]] = []

    def mli_test_weights(self, weights: Weights) -> ProposedWeights:
        import torch

        Spy.seen.append(("test", torch.get_num_threads(), blas_threads()))
        return super().mli_test_weights(weights)

    def mli_propose_weights(self) -> Weights:
        import torch

        Spy.seen.append(("propose", torch.get_num_threads(), blas_threads()))
        return super().mli_propose_weights()


def test_pool_limits_blas_always_and_torch_in_parallel_batches_only():
    import torch

    torch.set_num_threads(2)
    Spy.seen.clear()
    pool = LocalPool([Spy(target=[1.0], seed=i) for i in range(3)])
    try:
        pool.propose(["learner-0"], 0, None)
        pool.test(pool.learner_ids, WeightsRef.of(Weights({"w": np.ones(1)})), None)
    finally:
        pool.close()
    propose = [s for s in Spy.seen if s[0] == "propose"]
    tests = [s for s in Spy.seen if s[0] == "test"]
    assert propose[0][1] == len(os.sched_getaffinity(0))  # every core for torch
    assert set(propose[0][2]) == {1}  # but one BLAS thread
    assert [t[1] for t in tests] == [1, 1, 1]
    assert all(set(t[2]) == {1} for t in tests)
    assert torch.get_num_threads() == 2  # the dispatching thread is left alone
