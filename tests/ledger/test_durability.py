"""A ledger run killed with SIGKILL and resumed continues on the same chain and ends
with the same final weights id and on-chain history as an uninterrupted run.

The victim is a real ``colearn run`` subprocess that kills itself (SIGKILL, no
clean-up) at an exact point: right after the chain closed a round and before the
experiment directory committed it (the worst moment), or right after a commit. The
test waits for the process to exit: no timing, no polling.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

from colearning.cli.main import main
from colearning.core.store import opened
from colearning.ledger.anvil import Anvil
from colearning.ledger.audit import load_history, verify

pytestmark = pytest.mark.slow

COLEARN = [sys.executable, "-m", "colearning.cli.main"]
ARGS = ["--task", "digits-mlp", "--learners", "4", "--rounds", "8", "--seed", "7"]
ARGS += ["--partition", "dirichlet:0.5", "--no-baselines", "--ledger", "evm"]

VICTIM = textwrap.dedent(
    """
    import os, signal, sys
    from colearning.core.store import ExperimentStore
    from colearning.ledger.decider import EvmDecider
    from colearning.cli.main import main

    kill_at, window = int(sys.argv[1]), sys.argv[2]

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    decide = EvmDecider.decide
    def decide_then_die(self, round_index, *args, **kw):
        decision = decide(self, round_index, *args, **kw)
        if window == "after-chain" and round_index == kill_at:
            die()  # the chain closed the round; the directory never commits it
        return decision
    EvmDecider.decide = decide_then_die

    commit = ExperimentStore.commit_round
    def commit_then_die(self, record, blob=None):
        commit(self, record, blob)
        if window == "after-commit" and record.round_index == kill_at:
            die()
    ExperimentStore.commit_round = commit_then_die

    sys.exit(main(sys.argv[3:]))
    """
)


def colearn(*args, capsys=None):
    """``colearn`` in this process (only the victim needs a process of its own)."""
    code = main([str(a) for a in args])
    out = capsys.readouterr().out if capsys is not None else ""
    assert code == 0
    return out


def killed_run(tmp_path, out, kill_at, window, *extra):
    script = tmp_path / "victim.py"
    script.write_text(VICTIM)
    args = [sys.executable, str(script), str(kill_at), window, "run", *ARGS, "--out", str(out)]
    proc = subprocess.run([*args, *extra], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr


def history(out, chain_url=None):
    info, chain, _client, chain_history = load_history(out, chain_url)
    chain.close()
    ids = list(info.learners)
    names = {bytes.fromhex(a[2:]): lid for lid, a in info.learners.items()}
    return [
        (r.round_index, names.get(r.proposer or b""), r.status,
         None if r.weights is None else r.weights.hex(),
         {ids[i]: code for i, code in r.ballots.items()})
        for r in chain_history.rounds
    ]  # fmt: skip


def final(out):
    with opened(out) as store:
        return store.current_weights_id(), [r.round_index for r in store.rounds()]


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    out = tmp_path_factory.mktemp("whole") / "exp"
    proc = subprocess.run(
        [*COLEARN, "run", *ARGS, "--out", str(out)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.mark.parametrize("window", ["after-chain", "after-commit"])
def test_embedded_chain_resumes_after_sigkill(tmp_path, whole, window, capsys):
    out = tmp_path / "killed"
    killed_run(tmp_path, out, 3, window)
    committed = final(out)[1]
    assert committed == ([0, 1, 2] if window == "after-chain" else [0, 1, 2, 3])
    if window == "after-chain":
        report = verify(out)
        assert not report.ok
        assert any("round 3: closed on chain" in str(d) and "--resume" in str(d)
                   for d in report.discrepancies)  # fmt: skip
    resumed = colearn("run", "--resume", out, capsys=capsys)
    assert f"resuming at round {len(committed)}" in resumed
    assert final(out) == final(whole)
    assert history(out) == history(whole)
    assert verify(out).ok


def test_anvil_resumes_after_sigkill_and_a_node_restart(tmp_path, whole, capsys):
    state = tmp_path / "anvil-state.json"
    out = tmp_path / "killed"
    with Anvil(state=state) as node:
        killed_run(tmp_path, out, 4, "after-chain", "--chain-url", node.url)
    # the node stopped (SIGTERM saves its state); a new one loads it, on another port
    with Anvil(state=state) as node:
        resumed = colearn("run", "--resume", out, "--chain-url", node.url, capsys=capsys)
        assert "resuming at round 4" in resumed
        assert final(out) == final(whole)
        assert history(out, node.url) == history(whole)
        assert verify(out, node.url).ok


def test_a_committee_run_resumes_after_sigkill_with_the_chains_committees(tmp_path, capsys):
    """The committees come from the chain's seeds (each run's contract has its own
    experiment id, so two runs draw differently and are not compared): the resumed run
    reads them back, replays the round the chain closed before the kill with the very
    committee and ballots the chain holds, and the whole directory verifies."""
    out = tmp_path / "killed"
    killed_run(tmp_path, out, 3, "after-chain", "--committee", "2")
    assert final(out)[1] == [0, 1, 2]
    before = history(out)
    assert [r[0] for r in before] == [0, 1, 2, 3]
    assert all(len(r[4]) == 2 for r in before if r[2] != "skipped")  # two members voted
    resumed = colearn("run", "--resume", out, capsys=capsys)
    assert "resuming at round 3" in resumed
    after = history(out)
    assert after[:4] == before and [r[0] for r in after] == list(range(8))
    assert final(out)[1] == list(range(8))
    report = verify(out)  # each round's committee is the one its chain seed draws
    assert report.ok, report.discrepancies
