"""Aggregate and screened rounds over every pool (``pool_factory`` is in conftest)."""

import numpy as np
import pytest

from colearning import ConfigError, Experiment, ExperimentStore, Weights
from colearning.core.combiners import Combiner
from colearning.core.decider import TallyDecider
from colearning.core.driver import play_round
from colearning.core.observers import RoundObserver
from colearning.core.plans import AggregatePlanner, RoundPlan, planner_for_mode
from colearning.core.pool import catch_up
from colearning.core.protocol import Ballot, Reason
from colearning.core.store import opened
from colearning.core.wrapper import LearnerWrapper
from colearning.testing import FaultyLearner, QuadraticLearner


class Poisoner(LearnerWrapper):
    """Proposes its honest update pushed far away: a model-poisoning attacker."""

    def __init__(self, inner, scale=1e4):
        super().__init__(inner)
        self.scale = scale

    def mli_propose_weights(self):
        honest = self.inner.mli_propose_weights()
        return Weights({k: a * self.scale for k, a in honest.arrays.items()})


class Counting(QuadraticLearner):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.proposed = 0

    def mli_propose_weights(self):
        self.proposed += 1
        return super().mli_propose_weights()


def play(pool, mode="aggregate", combiner="mean", proposers=None, threshold=0.5, **kw):
    planner = AggregatePlanner(proposers, seed=0, combiner=combiner, screened=mode == "screened")
    plan = planner.plan(kw.pop("round_index", 0), pool.learner_ids)
    result = play_round(pool, plan, current_weights_id="x", decider=TallyDecider(threshold), **kw)
    catch_up(pool, None)  # a pool that defers adoption: every learner holds the weights now
    return result


def current(learners):
    return [x.mli_get_current_weights().arrays["w"].tolist() for x in learners]


# -- plans --------------------------------------------------------------------------------


def test_aggregate_plan_every_learner_proposes_and_votes():
    plan = AggregatePlanner().plan(3, ["a", "b", "c"])
    assert plan.mode == "aggregate"
    assert plan.proposers == plan.testers == plan.voters == ("a", "b", "c")
    assert plan.combiner == Combiner("mean")


def test_a_proposer_sample_is_seeded_per_round_and_in_experiment_order():
    ids = [f"l{i}" for i in range(10)]
    planner = AggregatePlanner(proposers=3, seed=5)
    draws = [planner.plan(r, ids).proposers for r in range(8)]
    assert draws == [AggregatePlanner(proposers=3, seed=5).plan(r, ids).proposers for r in range(8)]
    assert all(len(d) == 3 and list(d) == sorted(d, key=ids.index) for d in draws)
    assert len(set(draws)) > 1  # the sample changes from round to round
    assert draws != [AggregatePlanner(proposers=3, seed=6).plan(r, ids).proposers for r in range(8)]
    assert planner.plan(0, ids).voters == tuple(ids)  # everyone votes, sampled or not


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "averaged"}, "mode must be one of single, aggregate, screened; got 'averaged'"),
        ({"mode": "single", "proposers": 2}, "a single round has one proposer"),
        ({"mode": "aggregate", "proposer": "random"}, "set proposers=K instead"),
        ({"mode": "aggregate", "proposers": 0}, "proposers must be a whole number >= 1"),
        ({"mode": "screened", "combiner": "mode"}, "combiner must be one of"),
        ({"mode": "single", "combiner": "avg"}, "combiner must be one of"),
    ],
)
def test_bad_mode_settings_name_the_value_and_the_fix(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        planner_for_mode(**kwargs)


def test_a_single_plan_with_two_proposers_is_refused():
    with pytest.raises(ConfigError, match="a single-mode plan has one proposer; got 2"):
        RoundPlan(0, ("a", "b"), ("a", "b"), ("a", "b"))


# -- aggregate rounds -------------------------------------------------------------------


def test_aggregate_round_combines_every_proposal_and_everyone_votes(inspectable_pool_factory):
    learners = [Counting(target=[1.0, 2.0], seed=i) for i in range(4)]
    proposals = [x.mli_propose_weights() for x in learners]  # deterministic per round
    for x in learners:
        x.proposed = 0
    result = play(inspectable_pool_factory(learners))
    record = result.record
    assert [x.proposed for x in learners] == [1, 1, 1, 1]
    assert record.mode == "aggregate" and record.status == "accepted"
    assert len(record.proposals) == 4 and all(p.weights_id for p in record.proposals)
    assert record.candidate.sources == tuple(f"learner-{i}" for i in range(4))
    assert record.candidate.combiner == "mean"
    expected = np.mean([p.arrays["w"] for p in proposals], axis=0)
    np.testing.assert_allclose(result.candidate.weights.arrays["w"], expected, rtol=1e-12)
    # every learner, the proposers too, votes on the combined candidate
    assert record.decision.eligible == 4
    assert all(v.ballot is Ballot.APPROVE for v in record.votes)
    assert all(w == current(learners)[0] for w in current(learners))
    assert current(learners)[0] == result.candidate.weights.arrays["w"].tolist()


def test_a_sampled_aggregate_round_asks_only_the_sample_to_train(inspectable_pool_factory):
    learners = [Counting(target=[1.0], seed=i) for i in range(6)]
    result = play(inspectable_pool_factory(learners), proposers=2)
    assert sum(x.proposed for x in learners) == 2
    assert len(result.record.proposals) == 2
    assert result.record.decision.eligible == 6


def test_a_rejected_candidate_changes_no_model(pool_factory):
    # every learner pulls towards its own target; the mean helps nobody enough
    learners = [
        QuadraticLearner(target=[10.0], noise=0.0, start=[0.0]),
        QuadraticLearner(target=[-10.0], noise=0.0, start=[0.0]),
        QuadraticLearner(target=[0.0], noise=0.0, start=[0.0]),
    ]
    before = current(learners)
    result = play(pool_factory(learners), threshold=1.0)
    assert result.record.status == "rejected"
    assert current(learners) == before


def test_one_poisoned_proposal_does_not_move_a_median_candidate(pool_factory, quads):
    learners = quads(5, target=(1.0, 2.0), noise=0.0)
    learners[4] = Poisoner(learners[4])
    result = play(pool_factory(learners), combiner="median")
    w = result.candidate.weights.arrays["w"]
    np.testing.assert_allclose(w, [0.5, 1.0])  # every honest learner steps halfway
    assert result.record.status == "accepted"


def test_a_mean_steered_by_poison_is_voted_down_and_adopted_by_nobody(pool_factory, quads):
    learners = quads(5, target=(1.0, 2.0), noise=0.0)
    learners[4] = Poisoner(learners[4])
    before = current(learners)
    result = play(pool_factory(learners), combiner="mean")
    assert abs(result.candidate.weights.arrays["w"][0]) > 100  # the poison steered it
    assert result.record.status == "rejected"
    assert result.record.approvals <= 1  # at most the attacker approves its own work
    assert current(learners) == before


def test_a_failing_proposer_is_recorded_and_the_others_combined(pool_factory, quads):
    learners = quads(4)
    learners[1] = FaultyLearner(learners[1], "raise", on={"propose"})
    record = play(pool_factory(learners)).record
    assert record.proposals[1].reason is Reason.RAISED and record.proposals[1].weights_id is None
    assert record.candidate.sources == ("learner-0", "learner-2", "learner-3")
    assert record.status == "accepted"


def test_failing_voters_count_against_the_candidate(pool_factory, quads):
    learners = quads(4)
    for i in (1, 2, 3):
        learners[i] = FaultyLearner(learners[i], "raise")
    record = play(pool_factory(learners), threshold=0.5).record
    assert record.approvals == 1 and record.eligible == 4
    assert record.status == "rejected"


def test_a_malformed_proposal_is_left_out_of_the_combination(pool_factory, quads):
    from colearning.core.codec import WeightsSpec

    learners = quads(3)
    learners[2] = FaultyLearner(learners[2], "nan", on={"propose"})
    spec = WeightsSpec.of(learners[0].mli_get_current_weights())
    record = play(pool_factory(learners), expected=spec).record
    assert record.proposals[2].reason is Reason.MALFORMED
    assert record.candidate.sources == ("learner-0", "learner-1")
    assert np.isfinite(learners[0].mli_get_current_weights().arrays["w"]).all()


def test_an_encoded_model_cannot_be_aggregated(pool_factory):
    class Encoded(QuadraticLearner):
        def mli_propose_weights(self):
            return Weights({"model": np.frombuffer(b"booster", np.uint8)})

    with pytest.raises(ConfigError, match="mode 'aggregate' cannot combine.*single round mode"):
        play(pool_factory([Encoded(target=[1.0]), Encoded(target=[1.0])]))


# -- screened rounds --------------------------------------------------------------------


def test_screening_leaves_out_the_poisoned_proposal_and_records_every_vote(pool_factory, quads):
    learners = quads(5, target=(1.0, 2.0), noise=0.0)
    learners[4] = Poisoner(learners[4])
    result = play(pool_factory(learners), mode="screened", combiner="mean")
    record = result.record
    assert record.mode == "screened" and record.status == "accepted"
    poisoned = record.proposals[4]
    assert poisoned.screened is not None and not poisoned.screened.accepted
    assert poisoned.screened.eligible == 4  # everyone but its proposer
    own = {v.learner_id: v for v in poisoned.screening}["learner-4"]
    assert own.ballot is Ballot.ABSTAIN and own.reason is Reason.PROPOSER
    assert all(p.screened.accepted for p in record.proposals[:4])
    assert record.candidate.sources == tuple(f"learner-{i}" for i in range(4))
    np.testing.assert_allclose(result.candidate.weights.arrays["w"], [0.5, 1.0])
    assert record.decision.eligible == 5  # the combination: everyone votes again


def test_a_screened_round_with_nothing_approved_is_rejected_without_a_candidate(pool_factory):
    learners = [QuadraticLearner(target=[t], noise=0.0, start=[0.0]) for t in (10.0, -10.0, 0.0)]
    before = current(learners)
    result = play(pool_factory(learners), mode="screened", threshold=1.0)
    record = result.record
    assert record.status == "rejected" and record.candidate is None
    assert record.decision.decided_by == "screening" and not record.decision.accepted
    assert all(p.screened is not None and not p.screened.accepted for p in record.proposals)
    assert all(v.reason is Reason.NOT_ASKED for v in record.votes)
    assert current(learners) == before


def test_the_decider_decides_screening_votes_too(pool_factory, quads):
    decided = []

    class Recording(TallyDecider):
        def decide(self, round_index, candidate, votes, eligible):
            decided.append((candidate.sources, len(eligible)))
            return super().decide(round_index, candidate, votes, eligible)

    pool = pool_factory(quads(3))
    plan = AggregatePlanner(screened=True).plan(0, pool.learner_ids)
    play_round(pool, plan, current_weights_id="x", decider=Recording(0.5))
    assert decided == [
        (("learner-0",), 2),
        (("learner-1",), 2),
        (("learner-2",), 2),
        (("learner-0", "learner-1", "learner-2"), 3),
    ]


def test_observers_see_proposals_with_their_screening(pool_factory, quads):
    seen = []

    class Watch(RoundObserver):
        def proposed(self, round_index, proposals):
            seen.append([p.screened.accepted for p in proposals])

        def voted(self, round_index, votes):
            seen.append(len(votes))

    play(pool_factory(quads(3)), mode="screened", observer=Watch())
    assert seen == [[True, True, True], 3]


# -- experiments: stored, resumed --------------------------------------------------------


@pytest.mark.parametrize("mode", ["aggregate", "screened"])
def test_every_proposal_vote_and_candidate_is_stored(tmp_path, quads, mode):
    learners = quads(4)
    learners[3] = Poisoner(learners[3])
    store = ExperimentStore.create(tmp_path / "e", {}, [f"learner-{i}" for i in range(4)])
    with Experiment(learners, store=store, mode=mode, combiner="median") as experiment:
        played = experiment.run(3).rounds
    with opened(tmp_path / "e") as reopened:
        stored = reopened.rounds()
        stages = reopened._conn.execute(
            "SELECT stage, COUNT(*) FROM votes WHERE round_index = 0 GROUP BY stage ORDER BY stage"
        ).fetchall()
        n_proposals = reopened._conn.execute(
            "SELECT COUNT(*) FROM proposals WHERE round_index = 0"
        ).fetchone()[0]
    assert stored == played
    assert n_proposals == 4
    expected = [("candidate", 4)] + (
        [(f"proposal:{i}", 4) for i in range(4)] if mode == "screened" else []
    )
    assert stages == expected
    assert stored[0].candidate.combiner == "median"


@pytest.mark.parametrize("mode", ["aggregate", "screened"])
def test_a_resumed_experiment_ends_with_the_uninterrupted_weights(tmp_path, mode):
    def make():
        return [QuadraticLearner(target=[1.0, -1.0], seed=i, noise=0.3) for i in range(5)]

    ids = [f"learner-{i}" for i in range(5)]
    options = {"mode": mode, "combiner": "trimmed-mean", "proposers": 3, "seed": 4}
    with Experiment(make(), **options) as whole:
        expected = whole.run(8)
    store = ExperimentStore.create(tmp_path / "e", {}, ids)
    with Experiment(make(), store=store, **options) as first:
        first.run(3)
    with Experiment(make(), store=ExperimentStore.open(tmp_path / "e"), **options) as resumed:
        got = resumed.run(8)
    assert got.final_weights_id == expected.final_weights_id
    assert [r.proposer_ids for r in got.rounds] == [r.proposer_ids for r in expected.rounds]
    assert [r.status for r in got.rounds] == [r.status for r in expected.rounds]


# -- the server step ---------------------------------------------------------------------


def _stepped(**kw):
    return Combiner.parse("mean", server_lr=1.5, server_momentum=0.5, **kw)


def test_a_server_step_changes_the_candidate_and_is_recorded_with_it():
    def run(combiner):
        learners = [QuadraticLearner(target=[1.0, -1.0], seed=i, noise=0.3) for i in range(5)]
        with Experiment(learners, mode="aggregate", combiner=combiner) as experiment:
            return experiment.run(6)

    plain, stepped = run("mean"), run(_stepped())
    assert plain.final_weights_id != stepped.final_weights_id
    assert stepped.rounds[0].candidate.combiner == "mean server-lr=1.5 server-momentum=0.5"
    assert plain.rounds[0].candidate.combiner == "mean"


def test_the_momentum_is_the_step_the_last_round_adopted_and_a_rejection_restarts_it():
    seen = []  # (current, previous, candidate) of each round, as the combiner saw them

    class Seen(Combiner):
        def combine(self, proposals, current=None, previous=None):
            out = super().combine(proposals, current, previous)
            w = [None if x is None else x.arrays["w"].copy() for x in (current, previous, out)]
            seen.append(w)
            return out

    learners = [QuadraticLearner(target=[1.0, -1.0], seed=i, noise=0.3) for i in range(5)]
    combiner = Seen("mean", server_lr=1.5, server_momentum=0.5)
    with Experiment(learners, mode="aggregate", combiner=combiner) as experiment:
        rounds = experiment.run(8).rounds
    assert {r.status for r in rounds[:-1]} == {"accepted", "rejected"}  # both cases played
    assert seen[0][1] is None  # nothing adopted before the first round
    for i in range(1, len(rounds)):
        (cur0, _, out0), (cur1, prev1, _) = seen[i - 1], seen[i]
        if rounds[i - 1].accepted:
            assert np.array_equal(cur1, out0) and np.array_equal(prev1, cur0)
        else:
            assert np.array_equal(cur1, cur0) and prev1 is None


def test_a_resumed_experiment_takes_the_same_server_steps(tmp_path):
    def make():
        return [QuadraticLearner(target=[1.0, -1.0], seed=i, noise=0.3) for i in range(5)]

    ids = [f"learner-{i}" for i in range(5)]
    options = {"mode": "aggregate", "combiner": _stepped(), "seed": 4}
    with Experiment(make(), **options) as whole:
        expected = whole.run(8)
    # stopped after each round in turn, so a resume follows an accepted and a rejected one
    for stop in range(1, 8):
        store = ExperimentStore.create(tmp_path / f"e{stop}", {}, ids)
        with Experiment(make(), store=store, **options) as first:
            first.run(stop)
        with Experiment(
            make(), store=ExperimentStore.open(tmp_path / f"e{stop}"), **options
        ) as resumed:
            got = resumed.run(8)
        assert [r.candidate for r in got.rounds] == [r.candidate for r in expected.rounds]
        assert got.final_weights_id == expected.final_weights_id
    assert {r.status for r in expected.rounds} == {"accepted", "rejected"}


def test_a_single_round_refuses_a_server_step():
    with pytest.raises(ConfigError, match="a single round has one proposal"):
        planner_for_mode("single", combiner=_stepped())


def test_a_screened_round_on_a_local_pool_screens_every_proposal_in_one_batch():
    from colearning.core.pool import LocalPool

    batches = []

    class Counted(LocalPool):
        def _run_calls(self, calls, timeout, *args, **kwargs):
            batches.append(len(calls))
            return super()._run_calls(calls, timeout, *args, **kwargs)

    learners = [QuadraticLearner(target=[1.0, 2.0], seed=i) for i in range(4)]
    pool = Counted(learners)
    try:
        record = play(pool, mode="screened", combiner="mean").record
    finally:
        pool.close()
    # propose (4), screen every proposal by every tester (4 x 4), the candidate (4)
    assert batches[:3] == [4, 16, 4]
    assert all(p.screened is not None and len(p.screening) == 4 for p in record.proposals)
