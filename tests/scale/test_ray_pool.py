"""The Ray pool: the same results as in process, packed actors, data through the object
store, and a dead actor handled as a learner failure.

Every test here shares one local Ray per test process (``ray_session``, in conftest),
started with a temporary home and shut down at the end of the session. The driver's
own tests run on the Ray pool too (``pool_factory``).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from colearning import Experiment
from colearning.core.protocol import Reason
from colearning.scale import RayPool, ray_pool_factory
from colearning.tasks import RunConfig, run_task
from colearning.tasks.runner import build
from colearning.testing import QuadraticLearner

pytestmark = pytest.mark.usefixtures("ray_session")


def quads(n):
    return [QuadraticLearner(target=[float(i % 4), 1.0 - i % 3], seed=i) for i in range(n)]


def test_the_same_seeds_end_with_the_same_weights_as_in_process():
    with Experiment(quads(9), committee=4, seed=3) as local:
        expected = local.run(12)
    pool = RayPool(quads(9), actors=3)
    with Experiment(pool, committee=4, seed=3) as remote:
        got = remote.run(12)
    assert got.final_weights_id == expected.final_weights_id
    assert [r.status for r in got.rounds] == [r.status for r in expected.rounds]
    assert {"accepted", "rejected"} <= {r.status for r in got.rounds}
    assert [r.committee for r in got.rounds] == [r.committee for r in expected.rounds]


@pytest.mark.parametrize(
    "config",
    [
        RunConfig(task="digits-sgd", learners=4, rounds=5, baselines=False),
        RunConfig(
            task="synthetic-softmax",
            learners=30,
            rounds=8,
            committee=7,
            baselines=False,
            params={"rows": 3000},
        ),
    ],
    ids=["digits-sgd", "synthetic-softmax-committee"],
)
def test_a_task_run_on_ray_ends_with_the_in_process_weights(config, tmp_path):
    local = run_task(config, out=tmp_path / "local")
    remote = run_task(config, out=tmp_path / "ray", pool_factory=ray_pool_factory(actors=2))
    assert remote.result.final_weights_id == local.result.final_weights_id
    assert remote.summary["collective"]["score"] == local.summary["collective"]["score"]
    assert (
        remote.summary["collective"]["own_test_scores"]
        == (local.summary["collective"]["own_test_scores"])
    )


def test_learners_are_packed_in_blocks_one_actor_per_cpu():
    pool = RayPool(quads(10))  # the session's Ray has 4 CPUs
    try:
        assert pool.actors == 4
        blocks = [[lid for lid in pool.learner_ids if pool._actor_of(lid) == a] for a in range(4)]
        assert [len(b) for b in blocks] == [3, 3, 2, 2]
        assert [lid for b in blocks for lid in b] == list(pool.learner_ids)  # contiguous
    finally:
        pool.close()
    with RayPool(quads(2)) as small:
        assert small.actors == 2  # never more actors than learners


def test_actors_build_their_learners_from_one_copy_of_the_data():
    class Probe:
        """Builds the task's learners and notes whether they read the shared buffer."""

        def __init__(self, inner):
            self.inner = inner

        def build(self, indices, shared):
            _, shares = shared
            learners = self.inner.build(indices, shared)
            for learner in learners:
                learner.reads_shared = bool(
                    np.shares_memory(learner._X_train, shares.X)
                    and np.shares_memory(learner._X_scored, shares.X)
                    and not shares.X.flags.writeable
                )
            return learners

    setup = build(
        RunConfig(task="synthetic-softmax", learners=12, params={"rows": 1200}), learners=False
    )
    assert setup.built is None  # nothing is built in the coordinator for a remote pool
    pool = RayPool(
        builder=Probe(setup.learner_builder()),
        shared=(setup.dataset, setup.shares),
        n_learners=12,
        actors=2,
    )
    try:
        assert all(pool.learner(lid).reads_shared for lid in pool.learner_ids)
    finally:
        pool.close()


def test_big_weights_go_through_the_object_store_once():
    pool = RayPool(quads(4), actors=2, inline_bytes=0)  # everything counts as big
    try:
        with Experiment(pool) as experiment:
            result = experiment.run(4)
        assert len(pool._puts) <= 2  # the candidate and the shared weights, no more
    finally:
        pool.close()
    with Experiment(quads(4)) as local:
        assert result.final_weights_id == local.run(4).final_weights_id


def test_a_dead_actor_is_a_failure_like_any_other_and_comes_back(tmp_path):
    marker = str(tmp_path / "crashed")

    class Learner(QuadraticLearner):
        restored = None
        tests = 0

        def mli_restore_progress(self, proposals_made):
            self.restored = proposals_made

        def mli_test_weights(self, weights):
            self.tests += 1
            if self.index == 4 and self.tests == 5 and not os.path.exists(marker):
                # learner-4's test in round 4 ends its actor's process, once
                open(marker, "w").close()
                os._exit(70)
            return super().mli_test_weights(weights)

    learners = []
    for i in range(6):
        learner = Learner(target=[float(i % 3), 1.0], seed=i)
        learner.index = i
        learners.append(learner)
    pool = RayPool(learners, actors=2)  # learners 0-2 and 3-5
    with Experiment(pool) as experiment:  # closes the pool at the end
        result = experiment.run(8)
        final = result.final_weights
        held = [pool.current_weights(lid, None).value for lid in pool.learner_ids]
        # rebuilt learners got back how many proposals they had made before the crash
        restored = [pool.learner(f"learner-{i}").restored for i in (3, 4, 5)]
    assert os.path.exists(marker)
    crashed = result.rounds[4]
    reasons = {v.learner_id: v.reason for v in crashed.votes}
    assert [reasons[f"learner-{i}"] for i in (3, 4, 5)] == [Reason.UNREACHABLE] * 3
    assert "Ray actor died" in next(v.detail for v in crashed.votes if v.error)
    assert [reasons[f"learner-{i}"] for i in (0, 1, 2)] == [None, None, None]
    assert crashed.decision is not None and crashed.eligible == 5  # decided, as always
    for record in result.rounds[5:]:  # restarted and rebuilt: everyone takes part again
        assert record.status != "skipped" and len(record.votes) == 6
        assert all(v.error is None for v in record.votes), record.votes
    assert held == [final] * 6
    assert restored == [1, 1, None]


# -- a single-proposer round in one wave ------------------------------------------------


def test_a_proposal_and_its_tests_are_one_wave_with_the_answers_of_two():
    from colearning.core.weights_ref import WeightsRef

    testers = ["learner-0", "learner-1", "learner-4", "learner-5"]
    with RayPool(quads(6), actors=2) as one, RayPool(quads(6), actors=2) as two:
        waves = []
        send = one._send
        one._send = lambda calls, *a, **kw: (
            waves.append([c.kind for c in calls]) or send(calls, *a, **kw)
        )
        proposal, tested = one.propose_and_test("learner-1", 3, testers, None)
        # one wave: the proposer's call and a test call to each of the two actors
        assert waves == [["propose", "test_proposal", "test_proposal"]]
        step = two.propose(["learner-1"], 3, None)["learner-1"]
        stepped = two.test(testers, WeightsRef.of(step.value), None)
        assert proposal.ok and proposal.value == step.value
        assert list(tested) == testers
        for lid in testers:
            assert tested[lid].ok, tested[lid].error
            assert tested[lid].value.weights is proposal.value  # what was proposed
            got, want = tested[lid].value, stepped[lid].value
            assert (got.vote_score, got.test_score, got.vote) == (
                want.vote_score,
                want.test_score,
                want.vote,
            )
        assert one._made == two._made == {"learner-1": 1}


def test_a_failed_proposal_leaves_its_testers_untouched_and_unvoted():
    from colearning.testing import FaultyLearner

    learners = quads(6)
    learners[4] = FaultyLearner(learners[4], "raise", on={"propose"})
    with RayPool(learners, actors=2) as pool:  # learners 0-2 and 3-5
        before = list(pool._instances)
        proposal, tested = pool.propose_and_test("learner-4", 4, pool.learner_ids, None)
        assert not proposal.ok and "injected failure in propose" in proposal.error
        assert tested == {}
        assert pool._instances == before  # no actor taken for dead
        with Experiment(pool) as experiment:
            result = experiment.run(6)
    assert result.rounds[4].status == "skipped" and result.rounds[4].votes == ()
    assert all(r.status != "skipped" for i, r in enumerate(result.rounds) if i != 4)


def test_a_proposers_actor_that_dies_costs_the_round_not_the_other_actors(tmp_path):
    marker = str(tmp_path / "crashed")

    class Dies(QuadraticLearner):
        def mli_propose_weights(self):
            if not os.path.exists(marker):
                open(marker, "w").close()
                os._exit(70)
            return super().mli_propose_weights()

    learners = quads(6)
    learners[4] = Dies(target=[1.0, 1.0], seed=4)
    with RayPool(learners, actors=2) as pool:
        proposal, tested = pool.propose_and_test("learner-4", 4, pool.learner_ids, None)
        assert proposal.failure is not None and proposal.failure.reason is Reason.UNREACHABLE
        assert tested == {}
        assert pool._instances[0] != "lost" and pool._instances[1] == "lost"
        # the restarted actor is rebuilt at its next call, and the next wave is whole
        proposal, tested = pool.propose_and_test("learner-4", 4, pool.learner_ids, None)
        assert proposal.ok and all(o.ok for o in tested.values())


def test_a_pipelined_pool_keeps_its_own_proposals():
    from colearning.core.pipeline import PipelinedPool
    from colearning.core.plans import RoundRobin

    class Inner:
        learner_ids = ["a", "b"]
        description = "inner"

        def tags(self, learner_id):
            from colearning.core.interface import LearnerTags

            return LearnerTags()

        def propose_and_test(self, *args):
            raise AssertionError("the pipeline's early proposal would be trained again")

    pipelined = PipelinedPool(Inner(), RoundRobin())  # type: ignore[arg-type]
    assert pipelined.description == "inner"  # the rest is passed through
    assert not hasattr(pipelined, "propose_and_test")
