"""``colearn bench robustness --modes``: the protocol in aggregate and screened rounds,
what "malicious proposal accepted" counts there, and cells kept apart by mode."""

import pytest

from colearning.bench.robustness import (
    Cell,
    cells_for,
    parse_mode,
    proposal_counts,
    result_key,
    run_grid,
)
from colearning.bench.robustness_report import summarize, table
from colearning.cli.main import main
from colearning.core.exceptions import ConfigError
from colearning.core.protocol import Candidate, Decision, Proposal, Reason
from colearning.core.records import RoundRecord

BAD = {"learner-3", "learner-4"}


def _round(mode, status, sources, proposers=("learner-0", "learner-3", "learner-4")):
    proposals = tuple(Proposal(p, f"w-{p}") for p in proposers)
    voted = status != "skipped" and sources
    return RoundRecord(
        round_index=0,
        status=status,
        proposals=proposals,
        votes=(),
        decision=Decision(status == "accepted", 3, 5, (1, 2)) if voted else None,
        candidate=Candidate("c", tuple(sources), None if mode == "single" else "median")
        if voted
        else None,
        previous_weights_id="p",
        current_weights_id="c" if status == "accepted" else "p",
        mode=mode,
    )


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        # single: the proposal itself, adopted or not
        (_round("single", "accepted", ["learner-3"], ["learner-3"]), (1, 1, 0, 0)),
        (_round("single", "rejected", ["learner-3"], ["learner-3"]), (1, 0, 0, 0)),
        (_round("single", "rejected", ["learner-0"], ["learner-0"]), (0, 0, 1, 1)),
        # aggregate: every usable proposal is inside the adopted candidate
        (
            _round("aggregate", "accepted", ["learner-0", "learner-3", "learner-4"]),
            (2, 2, 1, 0),
        ),
        (_round("aggregate", "rejected", ["learner-0", "learner-3", "learner-4"]), (2, 0, 1, 1)),
        # screened: only the proposals that passed screening are sources
        (_round("screened", "accepted", ["learner-0"]), (2, 0, 1, 0)),
        (_round("screened", "accepted", ["learner-0", "learner-4"]), (2, 1, 1, 0)),
        # screened out entirely: rejected without a candidate
        (_round("screened", "rejected", []), (2, 0, 1, 1)),
    ],
)
def test_malicious_accepted_means_a_source_of_an_adopted_candidate(record, expected):
    got = proposal_counts([record], BAD, changes=True)
    assert (
        got["malicious_proposals"],
        got["malicious_accepted"],
        got["honest_proposals"],
        got["honest_rejected"],
    ) == expected
    assert got["accepted"] == int(record.accepted)


def test_unusable_proposals_and_dishonest_voters_proposals_are_not_counted():
    record = _round("aggregate", "accepted", ["learner-0", "learner-4"])
    failed = Proposal("learner-3", None, reason=Reason.RAISED)
    record = RoundRecord(**{**record.__dict__, "proposals": (*record.proposals[::2], failed)})
    got = proposal_counts([record], BAD, changes=True)
    assert (got["malicious_proposals"], got["malicious_accepted"]) == (1, 1)
    # dishonest-vote: the coalition's proposals are honest ones, counted on neither side
    clean = proposal_counts([record], BAD, changes=False)
    assert (clean["malicious_proposals"], clean["honest_proposals"]) == (0, 1)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("bogus", "mode must be one of"),
        ("aggregate:medain", "combiner must be one of"),
        ("single:median", "a single round combines nothing"),
        ("screened:trimmed-mean:x", "trimmed-mean:TRIM needs a number"),
    ],
)
def test_bad_modes_are_refused(spec, match):
    with pytest.raises(ConfigError, match=match):
        parse_mode(spec)


def test_bad_modes_are_one_line_on_the_command_line(tmp_path, capsys):
    flags = ["--out", str(tmp_path / "o"), "--modes", "single", "aggregate:medain"]
    assert main(["bench", "robustness", *flags]) == 2
    err = capsys.readouterr().err
    assert "combiner must be one of" in err and len(err.strip().splitlines()) == 1


def test_single_keys_are_unchanged_and_other_modes_name_theirs():
    single = Cell("t", 5, "iid", 1, 0.4, "noise", 20, defences=())
    assert single.key == "t-n5-iid-s1-noise-m2-r20-vote-only"
    robust = Cell("t", 5, "iid", 1, 0.4, "noise", 20, defences=(), mode="screened:median")
    assert robust.key == "t-n5-iid-s1-noise-m2-r20-screened-median-vote-only"
    # a raw file written before modes existed reads back as the single cell
    old = {"cell": {k: v for k, v in single.__dict__.items() if k != "mode"}}
    assert result_key({"cell": {**old["cell"], "defences": []}}) == single.key


def test_every_mode_has_its_clean_cell_and_the_defences_run_once():
    cells = cells_for(
        ["digits-mlp"],
        [5],
        ["iid"],
        [0.0, 0.4],
        ["noise"],
        [0],
        4,
        defence_seeds=[0],
        modes=["single", "aggregate:median"],
    )
    assert sorted((c.mode, c.attack is None) for c in cells) == [
        ("aggregate:median", False),
        ("aggregate:median", True),
        ("single", False),
        ("single", True),
    ]
    assert {c.mode for c in cells if c.defences} == {"single"}
    assert len({c.key for c in cells}) == len(cells)


def _raw(mode, attack, seed, final, accepted=0):
    cell = Cell("t", 5, "iid", seed, 0.4 if attack else 0.0, attack, 20, defences=(), mode=mode)
    protocol = {
        "final": final,
        "backdoor": 0.0,
        "malicious_proposals": 8 if attack else 0,
        "malicious_accepted": accepted,
        "honest_proposals": 12,
        "honest_rejected": 1,
    }
    raw = {"cell": {**cell.__dict__, "defences": [], "malicious": 2 if attack else 0}}
    if mode == "single":
        del raw["cell"]["mode"]  # as the raw files written before modes read
    return {**raw, "protocol": protocol, "defences": {}}


def test_the_drop_is_against_the_same_modes_clean_run():
    results = [
        _raw("single", None, 0, 0.90),
        _raw("single", "noise", 0, 0.88),
        _raw("aggregate:median", None, 0, 0.96),
        _raw("aggregate:median", "noise", 0, 0.955, accepted=8),
    ]
    rows = summarize(results)
    by = {(r["mode"], r["attack"]): r for r in rows}
    assert round(by["single", "noise"]["drop_points"], 6) == 2.0
    assert round(by["aggregate:median", "noise"]["drop_points"], 6) == 0.5
    assert by["aggregate:median", "noise"]["malicious_accepted"] == 8
    md = table(rows)
    assert "| t | 5 | iid | aggregate:median | 40% (2) | noise | 1 |" in md
    assert "| t | 5 | iid | single | 40% (2) | noise | 1 |" in md


def test_robust_rounds_on_real_learners(tmp_path):
    """Two attackers of five flip their updates' sign; in aggregate rounds both are a
    source of every adopted median, in screened rounds the honest voters screen them out."""
    cells = cells_for(
        ["digits-mlp"],
        [5],
        ["iid"],
        [0.4],
        ["sign-flip"],
        [0],
        3,
        defences=[],
        modes=["aggregate:median", "screened:median"],
    )
    results = {(r["cell"]["mode"], r["cell"]["attack"]): r for r in run_grid(cells, tmp_path)}
    assert len(results) == 4
    agg = results["aggregate:median", "sign-flip"]["protocol"]
    assert agg["malicious_proposals"] == 2 * 3 and agg["honest_proposals"] == 3 * 3
    assert agg["malicious_accepted"] == 2 * agg["accepted"] > 0
    assert "vote+margin" not in results["aggregate:median", "sign-flip"]
    screened = results["screened:median", "sign-flip"]["protocol"]
    assert screened["malicious_proposals"] == 6 and screened["malicious_accepted"] == 0
    assert screened["accepted"] > 0
    clean = results["screened:median", None]["protocol"]
    assert screened["final"] > clean["final"] - 0.1
    assert sorted(p.name for p in (tmp_path / "raw").glob("*.json")) == sorted(
        f"{c.key}.json" for c in cells
    )


def test_the_modes_side_by_side_put_each_cell_in_its_modes_column():
    from colearning.bench.robustness_report import mode_table

    rows = summarize(
        [
            _raw("single", None, 0, 0.90),
            _raw("single", "noise", 0, 0.88),
            _raw("aggregate:median", None, 0, 0.96),
            _raw("aggregate:median", "noise", 0, 0.955, accepted=8),
            _raw("screened:median", "noise", 0, 0.955),
        ]
    )
    lines = mode_table(rows).splitlines()
    assert lines[0].endswith("| single | aggregate:median | screened:median |")
    assert (
        lines[2] == "| t | 5 | iid | 20 | 0.5 | 0% (0) | none | 0.900 (+0.0) | 0.960 (+0.0) | - |"
    )
    # the screened cell has no clean run of its mode: no drop, and the goal holds on
    # the other two bounds only
    assert lines[3] == (
        "| t | 5 | iid | 20 | 0.5 | 40% (2) | noise | 0.880 (-2.0), 0/8, **no** "
        "| 0.955 (-0.5), 8/8, **no** | 0.955, 0/8, yes |"
    )
