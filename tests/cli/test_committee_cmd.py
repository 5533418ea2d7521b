"""`colearn committee` and the scale options of `colearn run` (without Ray)."""

import json

import pytest

from colearning.cli.main import main
from colearning.scale import committee_risk, committee_size


def test_the_smallest_committee_for_a_risk(capsys):
    assert main(["committee", "--learners", "10000", "--malicious-share", "0.2"]) == 0
    out = capsys.readouterr().out
    expected = committee_size(10_000, 0.2, 1e-6)
    assert f"smallest committee: {expected.committee} voters of the 9,999 non-proposers" in out
    assert "2,000 malicious learners of 10,000" in out


def test_json_prints_committee_and_risk(capsys):
    args = ["committee", "--learners", "1000", "--malicious-share", "0.33", "--risk", "1e-9"]
    assert main([*args, "--threshold", "0.5", "--format", "json"]) == 0
    got = json.loads(capsys.readouterr().out)
    expected = committee_size(1000, 0.33, 1e-9)
    assert got["committee"] == expected.committee and got["risk"] == expected.risk
    assert got["risk"] < got["target_risk"] == 1e-9


def test_the_risk_of_a_given_size(capsys):
    args = ["committee", "--learners", "100", "--malicious-share", "0.1", "--size", "9"]
    assert main([*args, "--format", "json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got == {
        "committee": 9,
        "risk": committee_risk(100, 10, 9),
        "learners": 100,
        "malicious": 10,
        "vote_threshold": 0.5,
        "approvals_needed": 5,
    }


@pytest.mark.parametrize(
    "args, message",
    [
        (["--learners", "10", "--malicious-share", "0.5"], "no committee is safe"),
        (["--learners", "1", "--malicious-share", "0.1"], "learners must be a whole number >= 2"),
        (["--learners", "10", "--malicious-share", "1.5"], "malicious share must be in [0, 1)"),
        (["--learners", "10", "--malicious-share", "0.1", "--risk", "2"], "risk must be"),
        (["--learners", "10", "--malicious-share", "0.1", "--size", "10"], "in [1, 9]"),
    ],
)
def test_bad_values_are_refused_in_one_line(args, message, capsys):
    assert main(["committee", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_run_with_a_committee_records_it(tmp_path, capsys):
    out = tmp_path / "exp"
    args = ["run", "--task", "synthetic-softmax", "--learners", "12", "--rounds", "3"]
    args += ["--committee", "4", "--no-baselines", "-c", "params.rows=600"]
    assert main([*args, "--out", str(out), "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["config"]["committee"] == 4
    for record in document["rounds"]:
        assert len(record["committee"]) == 4
        assert {v["learner_id"] for v in record["votes"]} == {
            record["proposer_id"],
            *record["committee"],
        }
    from colearning.core.store import opened

    with opened(out) as store:
        rows = store._conn.execute("SELECT COUNT(*) FROM committees").fetchone()[0]
    assert rows == 3 * 4
    # a resume may not change the committee
    assert main(["run", "--resume", str(out), "--committee", "5", "--rounds", "4"]) == 2
    assert "committee=4" in capsys.readouterr().err


def test_a_committee_as_large_as_the_learners_is_refused(capsys):
    args = ["run", "--task", "synthetic-softmax", "--learners", "5", "--committee", "5"]
    assert main(args) == 2
    assert "committee must be at most 4" in capsys.readouterr().err


def test_ray_options_need_the_ray_pool_and_no_other_transport(capsys):
    base = ["run", "--task", "synthetic-softmax", "--learners", "3"]
    assert main([*base, "--ray-actors", "2"]) == 2
    assert "--ray-actors is for the Ray pool" in capsys.readouterr().err
    assert main([*base, "--pool", "ray", "--processes"]) == 2
    assert "choose one" in capsys.readouterr().err


def test_the_summary_of_many_learners_stays_short():
    from colearning.cli.display import format_summary

    alone = {f"learner-{i}": i / 1000 for i in range(1000)}
    summary = {
        "task": "t",
        "metric": "accuracy",
        "higher_is_better": True,
        "learners": 1000,
        "rounds": 3,
        "accepted": 2,
        "rejected": 1,
        "skipped": 0,
        "initial": {"score": 0.1},
        "collective": {"score": 0.5},
        "individual": alone,
        "best_individual": {"score": 0.999},
        "pooled": {"score": 0.9},
        "dp_budgets": {
            lid: {"consumed_epsilon": 1.0, "target_epsilon": 2.0, "target_delta": 1e-5}
            for lid in alone
        },
        "committee": 31,
    }
    text = format_summary(summary, "runs/x")
    assert len(text.splitlines()) <= 14
    assert "median of 1,000 learners alone" in text and "worst learner alone" in text
    assert "1,000 learners spent privacy budget" in text and "committee of 31" in text


def test_the_ray_pool_without_ray_names_the_pip_install(monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a, **k: None if name == "ray" else real(name, *a, **k),
    )
    args = ["run", "--task", "synthetic-softmax", "--learners", "3", "--pool", "ray"]
    assert main([*args, "-c", "params.rows=300", "--no-baselines"]) == 2
    err = capsys.readouterr().err.strip()
    assert "pip install 'colearning[ray]'" in err and len(err.splitlines()) == 1
