"""The protocol's values: codes, views and JSON round-trips."""

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from colearning import DiffPrivBudget, ProposedWeights, Weights
from colearning.core.decider import TallyDecider
from colearning.core.plans import RandomProposer, RoundPlan, RoundRobin, planner_for
from colearning.core.protocol import Ballot, Candidate, Decision, Failure, Proposal, Reason, Vote
from colearning.core.records import PhaseTimings, RoundRecord
from colearning.core.weights_ref import WeightsRef

ids = st.text(alphabet="abcdef-0123456789", min_size=1, max_size=8)
scores = st.none() | st.floats(allow_nan=False, allow_infinity=False)
reasons = st.none() | st.sampled_from(list(Reason))
votes = st.builds(
    Vote,
    learner_id=ids,
    ballot=st.sampled_from(list(Ballot)),
    vote_score=scores,
    test_score=scores,
    reason=reasons,
    detail=st.none() | st.text(max_size=20),
    seconds=st.floats(min_value=0, max_value=100),
)
decisions = st.builds(
    Decision,
    accepted=st.booleans(),
    approvals=st.integers(0, 50),
    eligible=st.integers(0, 50),
    threshold=st.tuples(st.integers(0, 5), st.integers(1, 5)),
    decided_by=st.sampled_from(["tally", "contract", "check"]),
)
budgets = st.none() | st.builds(DiffPrivBudget, *(st.floats(0, 10) for _ in range(4)))
proposals = st.builds(
    Proposal,
    proposer_id=ids,
    weights_id=st.none() | st.text("0123456789abcdef", min_size=64, max_size=64),
    reason=reasons,
    detail=st.none() | st.text(max_size=20),
    dp_budget=budgets,
    screening=st.lists(votes, max_size=3).map(tuple),
    screened=st.none() | decisions,
)
records = st.builds(
    RoundRecord,
    round_index=st.integers(0, 10**6),
    status=st.sampled_from(["accepted", "rejected", "skipped"]),
    proposals=st.lists(proposals, min_size=1, max_size=3).map(tuple),
    votes=st.lists(votes, max_size=5).map(tuple),
    decision=st.none() | decisions,
    candidate=st.none()
    | st.builds(Candidate, weights_id=ids, sources=st.lists(ids, max_size=3).map(tuple)),
    previous_weights_id=ids,
    current_weights_id=ids,
    timings=st.builds(PhaseTimings, *(st.floats(0, 10) for _ in range(4))),
    committee=st.none() | st.lists(ids, max_size=4).map(tuple),
)


@given(records)
def test_round_records_survive_json(record):
    assert RoundRecord.from_dict(json.loads(json.dumps(record.to_dict()))) == record


def test_vote_views():
    assert Vote("a", Ballot.APPROVE).vote is True
    assert Vote("a", Ballot.REJECT).vote is False
    failed = Vote("a", Ballot.ABSTAIN, reason=Reason.TIMED_OUT, detail="timed out after 1 s")
    assert failed.vote is None and failed.error == "timed out after 1 s"
    assert Vote("a", Ballot.ABSTAIN, reason=Reason.PROPOSER).error is None


def test_a_failure_must_be_a_failed_call():
    assert str(Failure(Reason.RAISED, "boom")) == "raised: boom"
    with pytest.raises(ValueError, match="failed call"):
        Failure(Reason.PROPOSER, "x")


@pytest.mark.parametrize(
    "ballots, eligible, threshold, accepted",
    [
        (["approve", "reject"], ["a", "b"], 0.5, True),  # a tie passes
        (["approve", "abstain"], ["a", "b"], 0.51, False),  # an abstention does not help
        (["reject", "reject"], ["a", "b"], 0.0, True),  # threshold 0
        ([], [], 1.0, True),  # no eligible voter: one learner alone
        (["approve", "approve"], ["b"], 1.0, True),  # only eligible voters count
        (["approve", "reject"], ["b"], 0.5, False),
    ],
)
def test_tally_decider(ballots, eligible, threshold, accepted):
    vs = [Vote(lid, Ballot(b)) for lid, b in zip("ab", ballots, strict=False)]
    decision = TallyDecider(threshold).decide(0, Candidate("w", ("p",)), vs, eligible)
    assert decision.accepted is accepted
    assert decision.eligible == len(eligible)


def test_plans():
    plan = RoundRobin().plan(4, ["a", "b", "c"])
    assert (
        plan.proposers == ("b",) and plan.voters == ("a", "c") and plan.testers == ("a", "b", "c")
    )
    assert [RandomProposer(1).plan(r, ["a", "b"]).proposers for r in range(20)] == [
        RandomProposer(1).plan(r, ["a", "b"]).proposers for r in range(20)
    ]
    with pytest.raises(ValueError, match="not asked to test"):
        RoundPlan(0, ("a",), ("a",), ("b",))
    with pytest.raises(ValueError, match="one of round-robin, random"):
        planner_for("best")
    with pytest.raises(TypeError, match="Planner"):
        planner_for(3)  # type: ignore[arg-type]


def test_weights_ref_checks_bytes_against_their_id():
    ref = WeightsRef.of(Weights({"w": np.arange(3.0)}))
    blob = ref.blob()
    assert WeightsRef.from_blob(blob, ref.weights_id).weights == ref.weights
    with pytest.raises(ValueError, match="damaged or substituted"):
        WeightsRef.from_blob(blob[:-1] + b"\x01", ref.weights_id)


def test_a_vote_the_driver_keeps_is_one_object_for_the_garbage_collector():
    """Every round's votes stay in memory with its record, and a full collection walks
    each tracked object: a vote must not carry a materialized ``__dict__`` besides
    (made through ``vote.__dict__.update``, it did: two tracked objects a vote)."""
    import gc

    from colearning.core.driver import _vote
    from colearning.core.pool import made_outcome

    answer = ProposedWeights(None, 0.25, 0.5, True)
    outcome = made_outcome(answer, None, 0.125)
    gc.collect()
    before = len(gc.get_objects())
    kept = [_vote(f"learner-{i % 7}", outcome, True, False) for i in range(1000)]
    assert len(gc.get_objects()) - before <= 1001  # the votes and the list
    assert kept[0] == Vote("learner-0", Ballot.APPROVE, 0.25, 0.5, seconds=0.125)
