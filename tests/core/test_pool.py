"""LocalPool's own concurrency: keyed by id, typed failures, one call per learner at a
time, and replacement of a worker stuck in an abandoned call."""

import threading

import numpy as np
import pytest

from colearning import ConfigError, Weights
from colearning.core.pool import LocalPool
from colearning.core.protocol import Reason
from colearning.core.weights_ref import WeightsRef
from colearning.testing import FaultyLearner, QuadraticLearner


def ref(value=1.0):
    return WeightsRef.of(Weights({"w": np.full(2, value)}))


def test_calls_are_keyed_by_learner_id_in_the_order_asked(quads):
    pool = LocalPool(quads(3), learner_ids=["a", "b", "c"])
    try:
        got = pool.test(["c", "a"], ref(), None)
        assert list(got) == ["c", "a"]
        assert all(o.ok for o in got.values())
        assert pool.current_weights("b", None).ok
    finally:
        pool.close()


def test_a_mapping_of_learners_and_unknown_or_duplicate_ids(quads):
    a, b = quads(2)
    pool = LocalPool({"x": a, "y": b})
    try:
        assert list(pool.learner_ids) == ["x", "y"]
        with pytest.raises(ConfigError, match="no learner 'z'"):
            pool.test(["z"], ref(), None)
    finally:
        pool.close()
    with pytest.raises(ConfigError, match="unique"):
        LocalPool(quads(2), learner_ids=["same", "same"])


def test_failures_are_typed(quads):
    learners = quads(2)
    learners[1] = FaultyLearner(learners[1], "raise")
    pool = LocalPool(learners)
    try:
        got = pool.test(pool.learner_ids, ref(), None)
    finally:
        pool.close()
    assert got["learner-0"].ok
    failure = got["learner-1"].failure
    assert failure.reason is Reason.RAISED and "injected failure" in failure.message
    assert got["learner-1"].error.startswith("raised: RuntimeError")


def test_calls_to_one_learner_never_overlap():
    # Two batches hit the same learner from two threads at once; the learner counts how
    # many of its calls run at the same moment, each staying inside for a while (long
    # enough for the other thread's call to enter, were there no lock). The
    # per-learner lock keeps it at 1.
    running, peak, lock = [0], [0], threading.Lock()
    entered = threading.Event()
    release = threading.Event()  # never set before both calls ended: each waits 0.5 s

    class Counting(QuadraticLearner):
        def mli_test_weights(self, weights):
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            entered.set()
            release.wait(0.5)
            with lock:
                running[0] -= 1
            return super().mli_test_weights(weights)

    pool = LocalPool([Counting(target=[1.0, 2.0])], max_workers=4)
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(pool.test(["learner-0"], ref(), None)))
        for _ in range(2)
    ]
    try:
        for t in threads:
            t.start()
        assert entered.wait(30)
        for t in threads:
            t.join(30)
    finally:
        release.set()
        pool.close()
    assert peak[0] == 1
    assert len(results) == 2 and all(r["learner-0"].ok for r in results)


def test_a_stuck_worker_is_replaced_so_the_pool_keeps_its_capacity():
    # One worker thread only. A call hangs past its timeout: the pool abandons it and
    # starts a replacement, so a call to another learner still runs while the first
    # is stuck (without the replacement it would wait behind the hung call).
    hang = threading.Event()

    class Hanging(QuadraticLearner):
        def mli_test_weights(self, weights):
            hang.wait(60)
            return super().mli_test_weights(weights)

    pool = LocalPool(
        [Hanging(target=[1.0, 2.0]), QuadraticLearner(target=[1.0, 2.0])], max_workers=1
    )
    try:
        first = pool.test(["learner-0"], ref(), 0.2)
        assert first["learner-0"].failure.reason is Reason.TIMED_OUT
        second = pool.test(["learner-1"], ref(), 30)
        assert second["learner-1"].ok
        assert not hang.is_set()  # the first call is still stuck while the second ran
    finally:
        hang.set()
        pool.close()


def test_a_learner_whose_previous_call_hangs_times_out_its_next_call():
    hang = threading.Event()

    class Hanging(QuadraticLearner):
        def mli_test_weights(self, weights):
            hang.wait(60)
            return super().mli_test_weights(weights)

    pool = LocalPool([Hanging(target=[1.0, 2.0])], max_workers=2)
    try:
        pool.test(["learner-0"], ref(), 0.2)
        again = pool.test(["learner-0"], ref(), 0.2)
        # its call waits for the lock the hung call holds, and times out
        assert again["learner-0"].failure.reason is Reason.TIMED_OUT
    finally:
        hang.set()
        pool.close()


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf"), 1e300, True, "5"])
def test_a_timeout_that_cannot_be_waited_for_is_refused(quads, timeout):
    pool = LocalPool(quads(1))
    try:
        with pytest.raises(ConfigError, match=r"timeout must be a number of seconds in \(0, "):
            pool.test(["learner-0"], ref(), timeout)
    finally:
        pool.close()


# -- deferred adoption ------------------------------------------------------------------------


def test_adoption_waits_for_each_learners_next_call(quads):
    learners = [FaultyLearner(q, "raise", on=()) for q in quads(3)]  # counts calls only
    pool = LocalPool(learners)
    shared = ref(5.0)
    try:
        assert pool.adopt(shared, None) == {}
        assert all("accept" not in x.calls for x in learners)  # nobody called yet
        got = pool.current_weights("learner-1", None)
        assert got.value == shared.weights  # caught up inside that call
        assert learners[1].calls == {"accept": 1}
        assert "accept" not in learners[0].calls and "accept" not in learners[2].calls
        pool.test(["learner-1"], ref(6.0), None)
        assert learners[1].calls["accept"] == 1  # once per adoption, not per call
        caught = pool.catch_up(None)
        assert sorted(caught) == ["learner-0", "learner-2"] and all(o.ok for o in caught.values())
        assert [x.mli_get_current_weights() for x in learners] == [shared.weights] * 3
        assert pool.catch_up(None) == {}
    finally:
        pool.close()


def test_only_the_latest_shared_weights_are_accepted(quads):
    learners = [FaultyLearner(q, "raise", on=()) for q in quads(2)]
    pool = LocalPool(learners)
    try:
        for value in (1.0, 2.0, 3.0):
            pool.adopt(ref(value), None)
        pool.test(pool.learner_ids, ref(9.0), None)
        assert [x.calls["accept"] for x in learners] == [1, 1]
        assert learners[0].mli_get_current_weights() == ref(3.0).weights
    finally:
        pool.close()


def test_an_explicit_accept_is_not_overwritten_by_an_older_adoption(quads):
    pool = LocalPool(quads(2))
    try:
        pool.adopt(ref(1.0), None)
        pool.accept(["learner-0"], ref(2.0), None)
        assert pool.current_weights("learner-0", None).value == ref(2.0).weights
        assert pool.current_weights("learner-1", None).value == ref(1.0).weights
    finally:
        pool.close()


def test_a_learner_that_cannot_adopt_fails_its_next_call_with_the_reason(quads):
    learners = quads(2)
    learners[1] = FaultyLearner(learners[1], "raise", on={"accept"})
    pool = LocalPool(learners)
    try:
        pool.adopt(ref(1.0), None)
        got = pool.test(pool.learner_ids, ref(2.0), None)
        assert got["learner-0"].ok
        failure = got["learner-1"].failure
        assert failure.reason is Reason.RAISED
        assert failure.message.startswith("could not adopt the shared weights")
        assert "injected failure in accept" in failure.message
        # it is asked again at its next call (and fails again, as it still cannot)
        assert not pool.test(["learner-1"], ref(2.0), None)["learner-1"].ok
        assert learners[1].calls["accept"] == 2
    finally:
        pool.close()


def test_a_pool_without_adopt_gets_accept_for_everyone(quads):
    from colearning.core.pool import adopt, catch_up

    class Eager:
        def __init__(self, inner):
            self.inner = inner
            self.learner_ids = inner.learner_ids
            self.accepted = []

        def accept(self, ids, weights, timeout):
            self.accepted.append(list(ids))
            return self.inner.accept(ids, weights, timeout)

    local = LocalPool(quads(3))
    try:
        eager = Eager(local)
        assert adopt(eager, ref(), None).keys() == {"learner-0", "learner-1", "learner-2"}
        assert eager.accepted == [["learner-0", "learner-1", "learner-2"]]
        assert catch_up(eager, None) == {}
    finally:
        local.close()


def test_test_each_answers_every_request_in_order_one_call_per_learner_at_a_time():
    # One batch of three requests over the same two learners: each request gets its
    # own answers (scored on its own weights), and no learner runs two calls at once.
    running, peak, lock = {}, {}, threading.Lock()

    class Counting(QuadraticLearner):
        def mli_test_weights(self, weights):
            with lock:
                running[id(self)] = running.get(id(self), 0) + 1
                peak[id(self)] = max(peak.get(id(self), 0), running[id(self)])
            threading.Event().wait(0.01)  # long enough for another call to enter
            with lock:
                running[id(self)] -= 1
            return super().mli_test_weights(weights)

    learners = [Counting(target=[1.0, 2.0], seed=i) for i in range(2)]
    pool = LocalPool(learners, max_workers=8)
    refs = [ref(v) for v in (1.0, 5.0, -3.0)]
    try:
        batched = pool.test_each([(["learner-1", "learner-0"], r) for r in refs], None)
        one_by_one = [pool.test(["learner-1", "learner-0"], r, None) for r in refs]
    finally:
        pool.close()
    assert [list(answers) for answers in batched] == [["learner-1", "learner-0"]] * 3
    scores = [[o.value.vote_score for o in answers.values()] for answers in batched]
    assert scores == [[o.value.vote_score for o in a.values()] for a in one_by_one]
    assert len({tuple(s) for s in scores}) == 3  # three different weights, three answers
    assert set(peak.values()) == {1}


def test_test_each_with_a_timeout_gives_each_request_a_batch_of_its_own(quads):
    batches = []

    class Counted(LocalPool):
        def _run_calls(self, calls, timeout, *args, **kwargs):
            batches.append(len(calls))
            return super()._run_calls(calls, timeout, *args, **kwargs)

    pool = Counted(quads(3))
    try:
        pool.test_each([(pool.learner_ids, ref(1.0)), (pool.learner_ids, ref(2.0))], None)
        assert batches == [6]
        pool.test_each([(pool.learner_ids, ref(1.0)), (pool.learner_ids, ref(2.0))], 30.0)
        assert batches == [6, 3, 3]
    finally:
        pool.close()


class _Where(FaultyLearner):
    """A FaultyLearner that notes the thread of each test call."""

    def __init__(self, inner, mode, on):
        super().__init__(inner, mode, on=on)
        self.threads = []

    def mli_test_weights(self, weights):
        self.threads.append(threading.get_ident())
        return super().mli_test_weights(weights)


def test_short_calls_run_on_the_calling_thread_with_the_same_typed_outcomes(quads, monkeypatch):
    # After a batch of short calls the next batch of that kind runs on the calling
    # thread (no job, no worker): its failures must read exactly as a worker's would.
    # What counts as short is raised far above these calls' time: on a loaded machine
    # (CI) a call of a few microseconds now and then loses its core for longer than
    # the real bound, and the next batch rightly goes to the workers.
    monkeypatch.setattr("colearning.core.pool.INLINE_BELOW", 60.0)
    learners = [
        _Where(learner, mode, on)
        for learner, (mode, on) in zip(
            quads(3),
            [("raise", {"never"}), ("raise", {"accept"}), ("raise", {"test"})],
            strict=True,
        )
    ]
    pool = LocalPool(learners)
    try:
        first = pool.test(pool.learner_ids, ref(), None)
        assert [o.ok for o in first.values()] == [True, True, False]
        pool.adopt(ref(1.0), None)
        learners[0].threads.clear()
        got = pool.test(pool.learner_ids, ref(2.0), None)
        assert learners[0].threads == [threading.get_ident()]  # run here
        assert got["learner-0"].ok and got["learner-0"].seconds >= 0
        assert got["learner-1"].failure.reason is Reason.RAISED
        assert got["learner-1"].error.startswith("raised: could not adopt the shared weights")
        assert "injected failure in accept" in got["learner-1"].error
        assert got["learner-2"].failure.reason is Reason.RAISED
        assert got["learner-2"].error.startswith("raised: RuntimeError: injected failure in test")
        # the adoption happened inside learner-0's call, under its lock
        assert np.array_equal(learners[0].mli_get_current_weights().weights["w"], [1.0, 1.0])
    finally:
        pool.close()


def test_defers_adoption_is_answered_per_pool_class():
    from colearning.core.pool import defers_adoption

    class Adopts:
        def adopt(self, weights, timeout):
            return {}

        def catch_up(self, timeout):
            return {}

    class AcceptsOnly:
        adopt = None  # an attribute, not a method: not a deferring pool

    assert defers_adoption(Adopts()) and defers_adoption(Adopts())
    assert not defers_adoption(AcceptsOnly())
    assert not defers_adoption(object())


def test_an_outcome_made_on_the_hot_path_is_the_outcome_its_class_makes():
    import dataclasses

    from colearning.core.pool import Outcome, made_outcome
    from colearning.core.protocol import Failure

    for args in [(3, None, 0.5), (None, Failure(Reason.RAISED, "boom"), 0.25)]:
        fast, slow = made_outcome(*args), Outcome(*args)
        assert fast == slow and repr(fast) == repr(slow)
        assert (fast.ok, fast.error) == (slow.ok, slow.error)
        assert list(vars(fast)) == [f.name for f in dataclasses.fields(Outcome)]
        with pytest.raises(dataclasses.FrozenInstanceError):
            fast.value = 4  # type: ignore[misc]
