"""The ledger from the command line: real subprocesses, real experiment directories,
the embedded chain and a real anvil node; tampering caught by `colearn ledger verify`."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys

import pytest

from colearning.cli.main import main
from colearning.core.store import opened

pytestmark = pytest.mark.slow

COLEARN = [sys.executable, "-m", "colearning.cli.main"]
RUN = ["--task", "digits-sgd", "--learners", "4", "--rounds", "6", "--partition", "iid"]
RUN += ["--no-baselines", "--ledger", "evm"]


def colearn(*args, check=True):
    proc = subprocess.run([*COLEARN, *map(str, args)], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"colearn {args} exited {proc.returncode}:\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def ledger_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ledger") / "exp"
    proc = colearn("run", *RUN, "--out", out)
    assert "for simulations only" in proc.stderr
    return out


@pytest.fixture
def copy(ledger_run, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(ledger_run, target)
    return target


class Verified:
    def __init__(self, returncode: int, stdout: str) -> None:
        self.returncode, self.stdout = returncode, stdout


def verify(directory, *extra, capsys):
    """``colearn ledger verify`` in this process (its exit code and stdout)."""
    code = main(["ledger", "verify", str(directory), *map(str, extra)])
    return Verified(code, capsys.readouterr().out)


def accepted_round(directory):
    with opened(directory) as store:
        return next(r for r in store.rounds() if r.accepted and r.round_index > 0)


def test_a_ledger_run_verifies_and_shows(ledger_run):
    proc = colearn("ledger", "verify", ledger_run, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "verified:" in proc.stdout
    shown = colearn("ledger", "show", ledger_run).stdout
    assert "round  proposer" in shown and "learner-1" in shown
    data = json.loads(colearn("ledger", "show", ledger_run, "--format", "json").stdout)
    with opened(ledger_run) as store:
        records = store.rounds()
        assert store.get_meta("summary")["ledger"]["chain"] == "embedded"
    assert [r["status"] for r in data["rounds"]] == [r.status for r in records]
    assert [r["weights_id"] for r in data["rounds"]] == [r.weights_id for r in records]


def test_verify_catches_a_changed_blob(copy, capsys):
    record = accepted_round(copy)
    wid = record.current_weights_id
    blob = copy / "blobs" / wid[:2] / f"{wid}.safetensors"
    data = bytearray(blob.read_bytes())
    data[-1] ^= 1
    blob.write_bytes(bytes(data))
    proc = verify(copy, capsys=capsys)
    assert proc.returncode == 3
    assert (
        f"round {record.round_index}: the blob of accepted weights {wid[:12]}... "
        f"({blob}) does not hash to its id" in proc.stdout
    )


def test_verify_catches_a_changed_database_row(copy, capsys):
    record = accepted_round(copy)
    with sqlite3.connect(copy / "experiment.sqlite") as conn:
        conn.execute(
            "UPDATE rounds SET status = 'rejected' WHERE round_index = ?", (record.round_index,)
        )
    proc = verify(copy, capsys=capsys)
    assert proc.returncode == 3
    assert (
        f"round {record.round_index}: the rounds table says rejected, its record says accepted"
        in proc.stdout
    )


def test_verify_catches_a_changed_vote(copy, capsys):
    record = accepted_round(copy)
    r = record.round_index
    voter = next(v for v in record.votes if v.ballot.value == "approve")
    with sqlite3.connect(copy / "experiment.sqlite") as conn:
        (text,) = conn.execute(
            "SELECT record_json FROM rounds WHERE round_index = ?", (r,)
        ).fetchone()
        data = json.loads(text)
        for v in data["votes"]:
            if v["learner_id"] == voter.learner_id:
                v["ballot"], v["vote"] = "reject", False
        conn.execute(
            "UPDATE rounds SET record_json = ? WHERE round_index = ?", (json.dumps(data), r)
        )
        conn.execute(
            "UPDATE votes SET ballot = 'reject' WHERE round_index = ? AND learner_id = ?",
            (r, voter.learner_id),
        )
    proc = verify(copy, capsys=capsys)
    assert proc.returncode == 3
    where = f"round {r}, {voter.learner_id}"
    assert f"{where}: the directory's vote is reject, the chain's approve" in proc.stdout
    assert (
        f"{where}: the recorded signature is not {voter.learner_id}'s over (reject" in proc.stdout
    )


def test_verify_json_lists_discrepancies(copy, capsys):
    (copy / "blobs").rename(copy / "gone")
    (copy / "blobs").mkdir()
    proc = verify(copy, "--format", "json", capsys=capsys)
    assert proc.returncode == 3
    report = json.loads(proc.stdout)
    assert not report["ok"]
    assert any("are not in the blob store" in d for d in report["discrepancies"])


BAD = [
    (
        ["run", "--task", "digits-sgd", "--chain-url", "http://127.0.0.1:1"],
        "--chain-url needs --ledger evm",
    ),
    (
        ["run", "--task", "digits-sgd", "--ledger", "evm", "--proposer", "random"],
        "the ledger contract chooses proposers round-robin",
    ),
    (
        ["run", "--task", "digits-sgd", "--ledger", "evm", "--chain-url", "http://127.0.0.1:9"],
        "cannot reach the chain at http://127.0.0.1:9",
    ),
    (["ledger", "verify", "nowhere"], "not a directory"),
    (["ledger"], "name a ledger command"),
]


@pytest.mark.parametrize("args, message", BAD)
def test_bad_ledger_input_is_one_clear_line(tmp_path, args, message):
    extra = ["--out", str(tmp_path / "never")] if args[0] == "run" else []
    proc = colearn(*args, *extra, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "never").exists()


def test_verify_of_a_run_without_ledger_is_one_clear_line(tmp_path):
    colearn("run", "--task", "digits-sgd", "--learners", "2", "--rounds", "1", "--no-baselines",
            "--out", tmp_path / "plain")  # fmt: skip
    proc = colearn("ledger", "verify", tmp_path / "plain", check=False)
    assert proc.returncode == 2
    assert "has no ledger (it was not run with --ledger evm)" in proc.stderr
