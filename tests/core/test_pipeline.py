"""Pipelined rounds end exactly as unpipelined ones, over every pool."""

import threading

import pytest

from colearning.core.experiment import Experiment
from colearning.core.pipeline import PipelinedPool
from colearning.core.plans import RoundRobin
from colearning.testing import FaultyLearner, QuadraticLearner


def skewed(n=4):
    # targets far apart: most proposals are rejected, as under label skew
    return [QuadraticLearner(target=[float(i) * 3, -float(i)], seed=i) for i in range(n)]


def final_id(pool_factory, learners, rounds, pipeline, inspect=None):
    pool = pool_factory(learners)
    if pipeline:
        pool = PipelinedPool(pool, RoundRobin(), rounds=rounds)
    with Experiment(pool) as experiment:
        result = experiment.run(rounds)
        if inspect is not None:  # while the pool is open: the learner as it runs
            inspect.append(pool.learner(inspect.pop()))
    statuses = [r.status for r in result.rounds]
    return result.final_weights_id, statuses, pool.stats if pipeline else None


def test_pipelined_and_unpipelined_runs_end_with_the_same_weights(pool_factory):
    plain, statuses, _ = final_id(pool_factory, skewed(), 12, pipeline=False)
    piped, statuses2, stats = final_id(pool_factory, skewed(), 12, pipeline=True)
    assert piped == plain and statuses2 == statuses
    assert "rejected" in statuses and "accepted" in statuses  # both paths were taken
    rejected_before = sum(1 for r in range(1, 12) if statuses[r - 1] == "rejected")
    assert stats.used == rejected_before  # after every rejected round, the early one served
    assert stats.discarded == sum(1 for r in range(1, 12) if statuses[r - 1] == "accepted")


def test_learners_that_are_not_deterministic_are_never_asked_early(pool_factory):
    class Undeclared(QuadraticLearner):
        def mli_tags(self):
            return super().mli_tags().__class__()

    learners = [Undeclared(target=[1.0], seed=i) for i in range(3)]
    _, _, stats = final_id(pool_factory, learners, 5, pipeline=True)
    assert stats.started == 0


def test_a_learner_training_early_votes_first_and_trains_after(pool_factory):
    # The next proposer's vote is never delayed by its early training: it votes on
    # round r, then trains for r + 1, while another voter is still validating.
    # The event is made where the learners run (this process, or the Ray actor holding
    # them all), hence a dictionary both classes share, filled on first use.
    shared: dict = {}

    def release():
        return shared.setdefault("release", threading.Event())

    class SlowVoter(QuadraticLearner):
        def mli_test_weights(self, weights):
            release().wait(30)
            return super().mli_test_weights(weights)

    class Next(QuadraticLearner):
        def mli_propose_weights(self):
            release().set()  # only an early proposal can run while SlowVoter waits
            return super().mli_propose_weights()

    learners = [
        QuadraticLearner(target=[5.0], seed=0, noise=0.0),
        Next(target=[-5.0], seed=1),
        SlowVoter(target=[-5.0], seed=2),
    ]
    pool = PipelinedPool(pool_factory(learners), RoundRobin(), rounds=3)
    with Experiment(pool) as experiment:
        # round 1's proposal is made early, while round 0 waits on SlowVoter
        result = experiment.run(2)
    assert [v.error for v in result.rounds[0].votes] == [None, None, None]
    assert pool.stats.started >= 1


def test_a_failed_early_proposal_is_trained_again(pool_factory):
    learners = skewed(3)
    learners[1] = FaultyLearner(learners[1], "raise", on={"propose"})
    seen = ["learner-1"]
    with pytest.warns(UserWarning, match="injected failure"):
        _, statuses, stats = final_id(pool_factory, learners, 3, pipeline=True, inspect=seen)
    assert statuses[1] == "skipped"  # it failed early, was asked again, and failed again
    assert 1 not in stats.rounds
    assert seen[0].calls["propose"] == 2


@pytest.mark.parametrize("rounds", [1, 2])
def test_nothing_is_trained_early_past_the_last_round(pool_factory, rounds):
    _, _, stats = final_id(pool_factory, skewed(3), rounds, pipeline=True)
    assert stats.started <= rounds - 1 + (1 if rounds > 1 else 0)


class _RaisingPool:
    """A pool whose early calls raise, as a gRPC pool does once its channels closed."""

    def __init__(self, pool):
        self.inner = pool

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def propose(self, learner_ids, round_index, timeout):
        if threading.current_thread() is not threading.main_thread():
            raise ValueError("Cannot invoke RPC: Channel closed!")
        return self.inner.propose(learner_ids, round_index, timeout)


def test_an_early_proposal_whose_pool_raises_fails_quietly_and_is_trained_again(monkeypatch):
    from colearning.core.pool import LocalPool

    raised = []
    monkeypatch.setattr(threading, "excepthook", raised.append)
    plain, statuses, _ = final_id(lambda ls: LocalPool(ls), skewed(), 6, pipeline=False)
    pool = PipelinedPool(_RaisingPool(LocalPool(skewed())), RoundRobin(), rounds=6)
    with Experiment(pool) as experiment:
        result = experiment.run(6)
    assert raised == []  # no traceback from the early thread
    assert pool.stats.started >= 1 and pool.stats.used == 0
    assert result.final_weights_id == plain
    assert [r.status for r in result.rounds] == statuses


def test_an_interrupt_while_an_early_proposal_starts_leaves_close_nothing_to_trip_on(
    monkeypatch,
):
    # Ctrl-C can land inside ``Thread.start()``; closing afterwards must not try to
    # join a thread that never started (it raised RuntimeError, and the run ended 1,
    # not 130)
    from colearning.core import pipeline as module
    from colearning.core.pool import LocalPool

    class Interrupted(threading.Thread):
        def start(self):
            if self.name.startswith("colearning-early-"):
                raise KeyboardInterrupt
            super().start()

    monkeypatch.setattr(module.threading, "Thread", Interrupted)
    pool = PipelinedPool(LocalPool(skewed()), RoundRobin(), rounds=6)
    with pytest.raises(KeyboardInterrupt), Experiment(pool) as experiment:
        experiment.run(6)
    assert pool._early == {}
