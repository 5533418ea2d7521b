"""The coordinator SIGKILLed at named points of the round, in every round mode and with
the ledger, then resumed: the same final weights id as the uninterrupted run, round by
round, and a directory ``colearn verify`` (and ``colearn ledger verify``) passes.

Each test kills one run several times (each resume is the next victim), so the points
cost a process each; ``bench/faults.py`` kills one run per point and prints the table.
The fast cases kill at a few points of each mode; the slow ones at every other point, so
that the two together kill at every point once (a process start each, the chain's
costing about 2 s) and ``-m "not slow"`` still kills every mode somewhere.
"""

import harness
import pytest
from harness import assert_ok, choose_round, play, points_for, points_in, reference

#: the points each fast case kills at, in order (one run, resumed after each kill)
FAST = {
    "single": points_for("single"),  # all of them
    "aggregate": ["propose", "combine", "encode", "decided", "blob-write", "rows"],
    "momentum": ["combine", "validate", "decided", "blob-write", "committed"],
    "screened": ["screen", "combine", "validate", "adopt", "sql-commit", "committed"],
    "committee": ["round", "voted", "commit", "summary"],
    "aggregate-committee": ["validate", "decide", "blob-write", "committed"],
    "screened-committee": ["screen", "voted", "commit", "rows"],
    "evm": ["deploy", "round", "validate", "decide", "chain-block", "decided", "commit"],
}
#: the points each fast case kills at inside the mode's first rejected round from round
#: 1 on (single: round 3; screened: round 4, where both proposals fail their screening,
#: so no candidate is validated)
REJECTED = {
    "single": ["validate", "voted", "decided", "commit-start", "sql-commit", "committed"],
    "screened": ["propose", "screen", "commit-start", "rows", "committed"],
}
#: rounds enough for the mode's uninterrupted run to reject one (aggregate accepts its
#: first 10)
REJECTING_ROUNDS = {"aggregate": 12}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    made = {}

    def get(mode, **kw):
        key = (mode, tuple(sorted(kw.items())))
        if key not in made:
            made[key] = reference(mode, tmp_path_factory.mktemp(f"whole-{mode}") / "exp", **kw)
        return made[key]

    return get


def test_the_schedules_name_known_points():
    assert set(FAST) == set(harness.MODES)
    assert FAST["single"] == points_for("single")  # single has no slow case
    assert set(harness.POINTS) >= {p for points in FAST.values() for p in points}
    assert set(harness.POINTS) >= {p for points in REJECTED.values() for p in points}
    assert len(harness.POINTS) >= 20


@pytest.mark.parametrize("mode", sorted(FAST))
def test_killed_at_every_point_resumes_to_the_uninterrupted_weights(tmp_path, mode, uninterrupted):
    ref = uninterrupted(mode)
    statuses = {r["status"] for r in ref.rounds}
    assert "accepted" in statuses
    outcome = play(mode, FAST[mode], ref, tmp_path)
    assert [k.point for k in outcome.kills] == FAST[mode]
    assert_ok(outcome)


@pytest.mark.parametrize("mode", sorted(REJECTED))
def test_killed_inside_a_rejected_round_resumes_to_the_uninterrupted_weights(
    tmp_path, mode, uninterrupted
):
    ref = uninterrupted(mode)
    schedule = [(p, choose_round(p, ref, 0, status="rejected")) for p in REJECTED[mode]]
    assert all(ref.rounds[r]["status"] == "rejected" for _, r in schedule)
    outcome = play(mode, schedule, ref, tmp_path)
    assert [(k.point, k.round_index) for k in outcome.kills] == schedule
    assert_ok(outcome)


@pytest.mark.slow
@pytest.mark.parametrize("mode", sorted(harness.MODES))
def test_every_other_point_of_a_rejected_round_of_every_mode(tmp_path, mode, uninterrupted):
    longer = {"rounds": REJECTING_ROUNDS[mode]} if mode in REJECTING_ROUNDS else {}
    rounds = longer.get("rounds", harness.ROUNDS)
    ref = uninterrupted(mode, **longer)  # the default run is shared with the other tests
    every = points_in(mode, ref, "rejected")
    assert len(every) >= 7, every  # round, propose, ..., committed at least
    fast = set(REJECTED.get(mode, ()))
    assert fast <= {p for p, _ in every}
    schedule = [(p, r) for p, r in every if p not in fast]
    assert all(ref.rounds[r]["status"] == "rejected" for _, r in schedule)
    outcome = play(mode, schedule, ref, tmp_path, rounds=rounds)
    assert [(k.point, k.round_index) for k in outcome.kills] == schedule
    assert_ok(outcome)


@pytest.mark.slow
@pytest.mark.parametrize("mode", sorted(set(harness.MODES) - {"single"}))
def test_every_other_point_of_every_mode(tmp_path, mode, uninterrupted):
    ref = uninterrupted(mode)
    every = points_for(mode)
    assert set(FAST[mode]) <= set(every)
    points = [p for p in every if p not in FAST[mode]]
    outcome = play(mode, points, ref, tmp_path)
    assert [k.point for k in outcome.kills] == points
    assert_ok(outcome)


@pytest.mark.slow
def test_on_anvil_killed_after_the_chain_decided_and_mid_commit(tmp_path, uninterrupted):
    from colearning.ledger.anvil import Anvil

    with Anvil() as node:
        ref = reference("evm", tmp_path / "whole", chain_url=node.url)
        # the same rounds as on the embedded chain: the contract decides alike
        assert ref.outline() == uninterrupted("evm").outline()
        outcome = play(
            "evm",
            ["deploy", "validate", "decide", "decided", "commit", "committed"],
            ref,
            tmp_path / "killed",
            chain_url=node.url,
        )
    assert_ok(outcome)
