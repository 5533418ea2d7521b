import threading
import time

import numpy as np
import pytest

from colearning import ConfigError, Weights, run_one_round
from colearning.core.driver import play_round
from colearning.core.pool import LocalPool
from colearning.testing import FaultyLearner, QuadraticLearner


def quads(n, **kw):
    return [QuadraticLearner(target=[1.0, 2.0], seed=i, **kw) for i in range(n)]


def test_round_robin_proposer_does_not_vote_and_everyone_accepts():
    learners = quads(4)
    verdicts, accepted = run_one_round(6, learners)  # proposer 6 % 4 == 2
    assert [v.vote for v in verdicts] == [True, True, None, True]
    assert accepted
    current = [learner.mli_get_current_weights() for learner in learners]
    assert all(w == current[2] for w in current)
    assert verdicts[2].vote_score is not None  # the proposer's own score is kept


def test_rejected_proposal_leaves_every_model_alone():
    # targets far apart: learner 0 proposes towards (10, 10); the others are at 0
    learners = [QuadraticLearner(target=[10.0, 10.0], noise=0.0)] + [
        QuadraticLearner(target=[-1.0, -1.0], seed=i) for i in range(1, 4)
    ]
    before = [learner.mli_get_current_weights() for learner in learners]
    verdicts, accepted = run_one_round(0, learners)
    assert not accepted
    assert [v.vote for v in verdicts] == [None, False, False, False]
    assert [learner.mli_get_current_weights() for learner in learners] == before


def test_single_learner_always_accepts():
    learner = QuadraticLearner(target=[-5.0], noise=0.0, start=[0.0])
    verdicts, accepted = run_one_round(0, [learner], vote_threshold=1.0)
    assert accepted and verdicts[0].vote is None


def test_verdicts_are_new_objects_not_the_learners_answers_changed_in_place():
    class Recording(QuadraticLearner):
        answers: list = []

        def mli_test_weights(self, weights):
            answer = super().mli_test_weights(weights)
            Recording.answers.append(answer)
            return answer

    learners = [Recording(target=[1.0], seed=i) for i in range(3)]
    verdicts, _ = run_one_round(0, learners)
    assert verdicts[0].vote is None
    proposer_answer = Recording.answers[
        [a.vote_score for a in Recording.answers].index(verdicts[0].vote_score)
    ]
    assert proposer_answer.vote in (True, False)  # its own object was not overwritten


@pytest.mark.parametrize("mode", ["raise", "garbage"])
def test_failing_voter_abstains_with_reason_and_counts_against(mode):
    learners = quads(3)
    learners[1] = FaultyLearner(learners[1], mode)
    verdicts, accepted = run_one_round(0, learners, vote_threshold=1.0)
    assert verdicts[1].vote is False
    assert verdicts[1].error
    assert not accepted  # a failure can never help a proposal pass


def test_all_voters_failing_rejects():
    learners = [quads(1)[0]] + [FaultyLearner(x, "raise") for x in quads(3)[1:]]
    verdicts, accepted = run_one_round(0, learners, vote_threshold=0.01)
    assert not accepted
    assert all("injected failure" in v.error for v in verdicts[1:])


def test_nan_proposal_is_rejected_without_asking_anyone():
    learners = quads(3)
    learners[0] = FaultyLearner(learners[0], "nan", on={"propose"})
    spy = FaultyLearner(learners[1], "approve", on=set())
    learners[1] = spy
    verdicts, accepted = run_one_round(0, learners)
    assert not accepted
    assert [v.vote for v in verdicts] == [None, False, False]
    assert "NaN" in verdicts[1].error
    assert spy.calls.get("test", 0) == 0


def test_garbage_proposal_skips_the_turn():
    learners = quads(3)
    learners[0] = FaultyLearner(learners[0], "garbage", on={"propose"})
    pool = LocalPool(learners)
    result = play_round(pool, 0, 0, 0.5, current_weights_id="x")
    assert result.record.status == "skipped"
    assert "must return colearning.Weights" in result.record.reason
    assert result.record.current_weights_id == "x"


def test_timeout_counts_as_not_approving_and_round_goes_on():
    learners = quads(3)
    slow = FaultyLearner(learners[2], "hang", hang_seconds=5)
    learners[2] = slow
    pool = LocalPool(learners)
    start = time.perf_counter()
    result = play_round(pool, 0, 0, 0.5, current_weights_id="x", timeout=0.3)
    elapsed = time.perf_counter() - start
    slow.release()
    assert elapsed < 3
    vote = result.record.votes[2]
    assert vote.vote is False and "timed out after 0.3 s" in vote.error
    assert result.record.approvals <= 1


def test_validation_runs_in_parallel():
    # Every validator waits at one barrier: run one after another, the first would wait
    # alone until the barrier's timeout broke it; run in parallel, all pass together.
    barrier = threading.Barrier(4)

    class Meeting(QuadraticLearner):
        def mli_test_weights(self, weights):
            barrier.wait(timeout=10)
            return super().mli_test_weights(weights)

    pool = LocalPool([Meeting(target=[1.0, 2.0], seed=i) for i in range(4)])
    result = play_round(pool, 0, 0, 0.5, current_weights_id="x")
    assert [v.error for v in result.record.votes] == [None] * 4
    pool.close()


def test_threshold_and_empty_learners_are_refused():
    with pytest.raises(ConfigError, match="got 1.5"):
        run_one_round(0, quads(2), vote_threshold=1.5)
    with pytest.raises(ConfigError, match="at least 1 learner"):
        run_one_round(0, [])


def test_wrong_shape_proposal_is_rejected():
    class Shapeshifter(QuadraticLearner):
        def mli_propose_weights(self):
            return Weights({"w": np.zeros(5)})

    learners = [Shapeshifter(target=[1.0, 1.0])] + quads(2)
    verdicts, accepted = run_one_round(0, learners)
    assert not accepted and "shape" in verdicts[1].error
