"""``colearn attacks`` and ``colearn run --malicious N --attack NAME``: listed, run,
stored, resumed to the same final weights, and bad input is one line."""

import json

import pytest

from colearning.cli.main import main
from colearning.core.store import opened


def test_attacks_lists_every_attack_with_its_options(capsys):
    assert main(["attacks"]) == 0
    out = capsys.readouterr().out
    for name in ("label-flip", "noise", "sign-flip", "backdoor", "free-rider", "adaptive"):
        assert name in out
    assert "options: k=4.0, vote='dishonest'" in out
    assert main(["attacks", "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert next(a["name"] for a in listed) == "label-flip"


def run(tmp_path, name, *extra):
    return main(
        [
            "run",
            "--task",
            "digits-mlp",
            "--learners",
            "4",
            "--partition",
            "iid",
            "--no-baselines",
            "--out",
            str(tmp_path / name),
            *extra,
        ]
    )


def final_id(directory):
    with opened(directory) as store:
        return store.to_json()["summary"]["final_weights_id"]


def test_a_malicious_run_is_stored_and_resumes_to_the_same_weights(tmp_path, capsys):
    attack = ["--malicious", "1", "--attack", "sign-flip:k=2"]
    assert run(tmp_path, "whole", "--rounds", "4", *attack) == 0
    assert run(tmp_path, "part", "--rounds", "2", *attack) == 0
    with opened(tmp_path / "part") as store:
        assert (store.config["malicious"], store.config["attack"]) == (1, "sign-flip:k=2")
    assert main(["run", "--resume", str(tmp_path / "part"), "--rounds", "4"]) == 0
    assert final_id(tmp_path / "part") == final_id(tmp_path / "whole")
    # the attacker's round is rejected by the honest majority (learner-3 proposes round 3)
    with opened(tmp_path / "whole") as store:
        rounds = store.to_json()["rounds"]
    assert [r["status"] for r in rounds if r["proposals"][0]["proposer_id"] == "learner-3"] == [
        "rejected"
    ]
    # without the attack the same run ends elsewhere
    assert run(tmp_path, "clean", "--rounds", "4") == 0
    assert final_id(tmp_path / "clean") != final_id(tmp_path / "whole")
    capsys.readouterr()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--malicious", "1"], "--malicious 1 needs an attack: add --attack NAME"),
        (["--attack", "noise"], "--attack noise needs --malicious N"),
        (["--malicious", "4", "--attack", "noise"], "from 0 to 3"),
        (["--malicious", "1", "--attack", "nosie"], "unknown attack 'nosie'; attacks are:"),
        (["--malicious", "1", "--attack", "noise:sigma=x"], "sigma must be a number > 0; got 'x'"),
        (["--malicious", "1", "--attack", "noise", "--processes"], "cannot reach learner servers"),
        (["--malicious", "1", "--attack", "noise", "--pool", "ray"], "or Ray actors"),
    ],
)
def test_bad_attack_flags_are_one_line(tmp_path, capsys, flags, message):
    assert run(tmp_path, "bad", "--rounds", "1", *flags) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "bad").exists()
