"""Sampled committees as a plan: who is drawn, from what, and how the round uses them."""

import hashlib
from collections import Counter

import pytest

from colearning import ConfigError, Experiment
from colearning.core.plans import (
    CommitteePlanner,
    CommitteeRandomness,
    Planner,
    RandomProposer,
    RoundPlan,
    RoundRobin,
    SeededRandomness,
    planner_for,
    sample_indices,
)
from colearning.core.protocol import Reason
from colearning.testing import FaultyLearner

IDS = [f"learner-{i}" for i in range(12)]


def test_sample_indices_follows_its_documented_recipe():
    # recomputed here from the docstring alone, as an auditor or a contract would
    seed, population, k = b"audit me", 1000, 7
    stream = (
        int.from_bytes(
            hashlib.sha256(seed + (j // 4).to_bytes(8, "big")).digest()[8 * (j % 4) :][:8],
            "big",
        )
        for j in range(10_000)
    )
    values, swapped = [], {}
    for i in range(k):
        span = population - i
        limit = 2**64 - 2**64 % span
        v = next(stream)
        while v >= limit:
            v = next(stream)
        j = i + v % span
        values.append(swapped.get(j, j))
        swapped[j] = swapped.get(i, i)
    assert sample_indices(seed, population, k) == values
    assert len(set(values)) == k


def test_sample_indices_is_uniform_over_positions():
    counts = Counter()
    draws = 6000
    for d in range(draws):
        counts.update(sample_indices(d.to_bytes(4, "big"), 6, 2))
    # each of 6 positions appears with probability 2/6; 6 standard errors either side
    expected = draws * 2 / 6
    sigma = (draws * (1 / 3) * (2 / 3)) ** 0.5
    assert all(abs(counts[p] - expected) < 6 * sigma for p in range(6))


def test_a_committee_plan_draws_k_non_proposers_in_learner_order():
    planner = CommitteePlanner(RoundRobin(), 4, SeededRandomness(7))
    for r in range(30):
        plan = planner.plan(r, IDS)
        proposer = IDS[r % len(IDS)]
        assert plan.proposers == (proposer,)
        assert len(plan.committee) == 4 and proposer not in plan.committee
        assert plan.voters == plan.committee
        assert plan.testers == tuple(sorted({proposer, *plan.committee}, key=IDS.index))
        assert list(plan.committee) == sorted(plan.committee, key=IDS.index)


def test_the_draw_depends_on_the_seed_and_round_only():
    a = CommitteePlanner(RoundRobin(), 5, SeededRandomness(3))
    b = CommitteePlanner(RoundRobin(), 5, SeededRandomness(3))
    assert [a.plan(r, IDS) for r in range(10)] == [b.plan(r, IDS) for r in range(10)]
    other = CommitteePlanner(RoundRobin(), 5, SeededRandomness(4))
    assert [a.plan(r, IDS).committee for r in range(10)] != [
        other.plan(r, IDS).committee for r in range(10)
    ]
    # rounds differ from one another
    assert len({a.plan(r, IDS).committee for r in range(10)}) > 5


def test_randomness_is_pluggable():
    class Chain:
        """Stands in for a ledger's randomness (a block hash per round)."""

        def round_seed(self, round_index):
            return hashlib.sha256(b"block %d" % round_index).digest()

        def describe(self):
            return {"randomness": "chain"}

    assert isinstance(Chain(), CommitteeRandomness)
    planner = CommitteePlanner(RoundRobin(), 3, Chain())
    plan = planner.plan(5, IDS)
    pid = IDS.index("learner-5")
    others = [i for i in range(len(IDS)) if i != pid]
    drawn = sample_indices(hashlib.sha256(b"block 5").digest(), len(others), 3)
    assert plan.committee == tuple(IDS[others[d]] for d in sorted(drawn))
    assert planner.describe() == {"planner": "round-robin", "committee": 3, "randomness": "chain"}


def test_any_planner_can_be_wrapped():
    class TwoProposers(Planner):
        name = "two"

        def plan(self, round_index, learner_ids):
            ids = tuple(learner_ids)
            return RoundPlan(round_index, ids[:2], ids, ids[2:], mode="aggregate")

    plan = CommitteePlanner(TwoProposers(), 3).plan(0, IDS)
    assert plan.proposers == ("learner-0", "learner-1") and plan.mode == "aggregate"
    assert not set(plan.committee) & set(plan.proposers) and len(plan.committee) == 3


def test_random_proposer_under_a_committee_is_the_plain_random_proposer():
    plain = RandomProposer(seed=9)
    wrapped = planner_for("random", seed=9, committee=2)
    assert [wrapped.plan(r, IDS).proposers for r in range(20)] == [
        plain.plan(r, IDS).proposers for r in range(20)
    ]


@pytest.mark.parametrize("size", [0, -1, 2.5, True, "3"])
def test_bad_sizes_are_refused(size):
    with pytest.raises(ConfigError, match="committee must be a whole number"):
        CommitteePlanner(RoundRobin(), size)


def test_a_committee_larger_than_the_non_proposers_is_refused(quads):
    with pytest.raises(ConfigError, match="committee must be at most 3"):
        Experiment(quads(4), committee=4)
    with pytest.raises(ConfigError, match="needs at least 5 learners besides"):
        CommitteePlanner(RoundRobin(), 5).plan(0, IDS[:4])


def test_a_round_asks_the_committee_only_and_tallies_over_it(quads):
    learners = quads(10)
    asked = Counter()
    for i, learner in enumerate(learners):
        learners[i] = FaultyLearner(learner, "approve", on=())
    with Experiment(learners, committee=3, seed=5) as experiment:
        result = experiment.run(6)
    plans = [planner_for("round-robin", 5, 3).plan(r, IDS[:10]) for r in range(6)]
    for record, learner_plan in zip(result.rounds, plans, strict=True):
        assert record.committee == learner_plan.committee
        assert [v.learner_id for v in record.votes] == list(learner_plan.testers)
        assert record.eligible == 3
        proposer_vote = next(v for v in record.votes if v.learner_id == record.proposer_id)
        assert proposer_vote.reason is Reason.PROPOSER
        asked.update(learner_plan.testers)
    for i, learner in enumerate(learners):
        # nobody outside the round was called to test (the wrapper counts every call)
        assert learner.calls.get("test", 0) == asked[f"learner-{i}"]
