"""``colearn bench robustness`` at a tiny size: the cells it plays, what it measures
(real learners, real attacks), the resumable raw files, the table, JSON and plot."""

import json

import pytest

from colearning.bench.robustness import Cell, cells_for, malicious_count, run_grid
from colearning.bench.robustness_report import meets_goal, summarize, table, write_reports
from colearning.cli.main import main
from colearning.core.exceptions import ConfigError


def test_malicious_counts_round_half_up():
    assert [malicious_count(s, 5) for s in (0.0, 0.2, 0.4)] == [0, 1, 2]
    assert [malicious_count(s, 10) for s in (0.0, 0.2, 0.4)] == [0, 2, 4]
    assert malicious_count(0.1, 5) == 1  # 0.5 rounds up, not to the even 0


def test_the_grid_has_one_clean_cell_per_group_and_defences_where_asked():
    cells = cells_for(
        ["digits-mlp"],
        [5],
        ["iid", "dirichlet:0.5"],
        [0.0, 0.4],
        ["noise", "dishonest-vote"],
        [0, 1],
        8,
        defence_seeds=[0],
        defence_shares=[0.4],
    )
    assert len(cells) == 2 * 2 * (1 + 2)
    assert sum(c.attack is None for c in cells) == 4
    with_defences = [c for c in cells if c.defences]
    assert {(c.seed, c.share, c.attack) for c in with_defences} == {(0, 0.4, "noise")}
    assert len({c.key for c in cells}) == len(cells)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"attacks": ["bogus"]}, "attack must be among"),
        ({"defences": ["krum"]}, "defence must be among"),
        ({"shares": [0.5]}, "shares must be in"),
    ],
)
def test_bad_grids_are_refused(kwargs, match):
    from colearning.core.exceptions import ConfigError

    args = dict(
        tasks=["digits-mlp"],
        learners=[5],
        partitions=["iid"],
        shares=[0.4],
        attacks=["noise"],
        seeds=[0],
        rounds=2,
    )
    with pytest.raises(ConfigError, match=match):
        cells_for(**{**args, **kwargs})


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    out = tmp_path_factory.mktemp("robustness")
    cells = cells_for(
        ["digits-mlp"],
        [5],
        ["iid"],
        [0.0, 0.4],
        ["sign-flip", "backdoor"],
        [0],
        5,
        defence_rounds=1,
    )
    lines = []
    results = run_grid(cells, out, log=lines.append)
    return out, cells, results, lines


def test_the_vote_keeps_sign_flips_out_where_fedavg_is_wrecked(grid):
    _, _, results, lines = grid
    assert len(lines) == 3
    by = {r["cell"]["attack"]: r for r in results}
    flip = by["sign-flip"]
    assert flip["cell"]["malicious"] == 2
    p = flip["protocol"]
    # learners 3 and 4 propose in rounds 3, 4: both sign flips are rejected
    assert (p["malicious_proposals"], p["malicious_accepted"]) == (2, 0)
    assert p["honest_proposals"] == 3
    assert p["final"] > 0.5
    assert flip["defences"]["fedavg"]["final"] < p["final"] - 0.3
    assert set(flip["defences"]) == {"fedavg", "median", "trimmed-mean", "multi-krum", "fltrust"}
    # FedAvg takes the boosted backdoor in: the trigger works on most images
    assert by["backdoor"]["defences"]["fedavg"]["backdoor"] > 0.5
    assert by[None]["protocol"]["malicious_proposals"] == 0


def test_a_stopped_grid_resumes_without_playing_again(grid):
    out, cells, results, _ = grid
    lines = []
    again = run_grid(cells, out, log=lines.append)
    assert lines == [] and again == results
    assert len(list((out / "raw").glob("*.json"))) == 3


def test_the_report_has_a_row_per_attack_and_checks_the_goal(grid):
    out, _, results, _ = grid
    rows = summarize(results)
    assert [r["attack"] for r in rows] == ["none", "sign-flip", "backdoor"]
    assert rows[0]["drop_points"] == 0.0
    flip = rows[1]
    assert flip["malicious_accepted"] == 0
    assert meets_goal(flip) == (flip["drop_points"] <= 1.0 and flip["backdoor"] < 0.05)
    md = table(rows)
    assert md.count("\n") == 2 + len(rows)
    assert "| digits-mlp | 5 | iid | single | 40% (2) | sign-flip | 1 |" in md
    _md_path, json_path, png = write_reports(out)
    assert json.loads(json_path.read_text())[1]["attack"] == "sign-flip"
    assert png is not None and png.stat().st_size > 10_000


def test_meets_goal_reads_every_bound():
    row = {"drop_points": 0.5, "malicious_accepted": 0, "backdoor": 0.01}
    assert meets_goal(row)
    assert not meets_goal({**row, "drop_points": 1.5})
    assert not meets_goal({**row, "malicious_accepted": 1})
    assert not meets_goal({**row, "backdoor": 0.05})
    # exactly one point, whatever the last bits of the difference of two ratios
    assert meets_goal({**row, "drop_points": 100 * (0.967 - 0.957)})
    assert 100 * (0.967 - 0.957) > 1.0


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--rounds", "0"], "--rounds must be a whole number >= 1; got 0"),
        (["--jobs", "0"], "--jobs must be a whole number >= 1; got 0"),
        (["--tasks", "digits-mpl"], "unknown task 'digits-mpl'"),
        (["--attacks", "nosie"], "attack must be among label-flip"),
        (["--partitions", "dirichlet"], "dirichlet"),
        (["--threshold", "2"], "vote_threshold must be in [0, 1]"),
    ],
)
def test_bad_bench_flags_are_one_line(tmp_path, capsys, flags, message):
    assert main(["bench", "robustness", "--out", str(tmp_path / "o"), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_report_only_without_results_says_so(tmp_path, capsys):
    assert main(["bench", "robustness", "--report-only", "--out", str(tmp_path)]) == 2
    assert "no results in" in capsys.readouterr().err


def test_a_split_is_its_own_cells_and_partition_rows(tmp_path):
    from colearning.bench.partitions import read_partition

    args = (["digits-mlp"], [5], ["iid"], [0.0], ["noise"], [0], 2)
    plain = cells_for(*args, defences=())
    assert cells_for(*args, defences=(), split="0.6,0.2,0.2") == plain  # the default
    split = cells_for(*args, defences=(), split="0.4,0.4,0.2")
    assert (
        [c.key for c in split]
        == ["digits-mlp-n5-iid-s0-split0.4-0.4-0.2-clean-r2-vote-only"]
        != [c.key for c in plain]
    )
    with pytest.raises(ConfigError, match="sum to 1"):
        cells_for(*args, split="0.4,0.4,0.4")
    results = run_grid(split, tmp_path, log=lambda _: None)
    (spec,) = [read_partition(p) for p in (tmp_path / "partitions").glob("*.json")]
    for part in spec.parts:
        assert abs(len(part["vote"]) - len(part["train"])) <= 1  # 0.4 and 0.4
    (row,) = summarize(results)
    assert row["partition"] == "iid split 0.4,0.4,0.2"


def test_cell_keys_name_what_differs():
    a = Cell("t", 5, "dirichlet:0.5", 1, 0.4, "noise", 20)
    assert a.key == "t-n5-dirichlet0.5-s1-noise-m2-r20"
    assert (
        Cell("t", 5, "iid", 1, 0.0, None, 20, defences=()).key == "t-n5-iid-s1-clean-r20-vote-only"
    )
