"""Committees on the ledger, on both real chains: the contract draws each round's voters
from the chain's randomness when the round opens, exactly the members colearning's
planner draws from the same seed; only members vote, and the committee is the tally's
denominator. Then a coordinator's run with ``--committee``, its audit, and the audit
catching a committee the directory changed."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from colearning.cli.main import main
from colearning.core.exceptions import LedgerError
from colearning.core.plans import draw_committee
from colearning.core.store import opened
from colearning.ledger.client import Ballot, LedgerClient, LedgerConfig, decode_events
from colearning.ledger.contract import APPROVE, REJECT
from colearning.ledger.history import rebuild
from colearning.ledger.keys import EMBEDDED_OPERATOR_KEY, Key


def members(bits: int, n: int) -> list[int]:
    return [i for i in range(n) if (bits >> i) & 1]


def pass_round(d, r):
    """The proposer passes: the round closes and the next one opens (and is drawn)."""
    proposer = d.keys[r % len(d.keys)]
    d.client.propose(r, bytes(32), d.client.sign_proposal(proposer, r, bytes(32)))


@pytest.mark.parametrize("n, k", [(12, 5), (9, 8), (2, 1), (255, 100)])
def test_the_contract_draws_the_planners_committee_from_the_chains_seed(deploy, n, k):
    d = deploy(n, committee=k)
    assert d.client.config().committee == k
    seeds = []
    for r in range(6):
        state = d.client.state()
        assert state.index == r
        seed = d.client.round_seed(r)
        assert seed != bytes(32)
        seeds.append(seed)
        drawn = members(state.members, n)
        assert drawn == draw_committee(seed, n, k, [r % n])
        assert len(drawn) == k and r % n not in drawn
        pass_round(d, r)
    assert len(set(seeds)) == len(seeds)  # each round's own draw
    assert d.client.round_seed(6) != bytes(32) and d.client.round_seed(7) == bytes(32)


def test_the_seed_is_the_documented_hash_of_the_blocks_randao_value(deploy):
    from eth_abi import encode as abi_encode
    from eth_utils import keccak

    d = deploy(5, committee=2)
    proposer = d.keys[0]
    receipt = d.client.propose(0, bytes(32), d.client.sign_proposal(proposer, 0, bytes(32)))
    if d.chain.kind == "embedded":  # its prevrandao is keccak256(block number), documented
        randao = keccak(receipt.block_number.to_bytes(32, "big"))
        want = keccak(
            abi_encode(["bytes32", "uint256", "bytes32"], [d.config.experiment, 1, randao])
        )
        assert d.client.round_seed(1) == want
    else:  # anvil draws its own per block: the seed is one of the block, not of the round
        assert d.client.round_seed(1) not in (bytes(32), d.client.round_seed(0))


def test_only_members_vote_and_the_committee_is_the_denominator(deploy):
    n, k = 10, 3
    d = deploy(n, committee=k)
    state = d.client.state()
    committee = members(state.members, n)
    outsider = next(i for i in range(1, n) if i not in committee)
    w = os.urandom(32)
    d.client.propose(0, w, d.client.sign_proposal(d.keys[0], 0, w))
    sig = d.client.sign_vote(d.keys[outsider], 0, w, APPROVE)
    with pytest.raises(LedgerError, match="not in this round's committee"):
        d.client.vote(0, Ballot(outsider, APPROVE, sig))
    # two of the three members approve: 2 * 2 >= 1 * 3, accepted, and the round closes
    # with the third member's ballot (k ballots, not n - 1)
    codes = [APPROVE, APPROVE, REJECT]
    for member, code in zip(committee, codes, strict=True):
        receipt = d.client.vote(
            0, Ballot(member, code, d.client.sign_vote(d.keys[member], 0, w, code))
        )
    assert [e.name for e in decode_events(d.client.contract, receipt.logs)] == [
        "Ballots",
        "Finalized",
    ]
    (r,) = rebuild(d.client.events()).rounds
    assert (r.status, r.approvals, r.eligible) == ("accepted", 2, 3)
    assert d.client.state().index == 1


def test_one_approval_of_three_members_is_rejected(deploy):
    n, k = 6, 3
    d = deploy(n, committee=k)
    committee = members(d.client.state().members, n)
    w = os.urandom(32)
    sig = d.client.sign_proposal(d.keys[0], 0, w)
    ballots = [
        Ballot(m, code, d.client.sign_vote(d.keys[m], 0, w, code))
        for m, code in zip(committee, [APPROVE, REJECT, REJECT], strict=True)
    ]
    d.client.settle(0, w, sig, ballots)
    (r,) = rebuild(d.client.events()).rounds
    assert (r.status, r.approvals, r.eligible) == ("rejected", 1, 3)


@pytest.mark.parametrize("k", [4, -1, True])
def test_a_committee_as_large_as_the_learners_is_refused_before_sending(k):
    from colearning.ledger.chain import EmbeddedChain

    chain = EmbeddedChain()
    try:
        keys = [Key.generate() for _ in range(4)]
        config = LedgerConfig(
            experiment=os.urandom(32),
            learners=tuple(key.address for key in keys),
            threshold=(1, 2),
            propose_period=60,
            vote_period=60,
            initial_weights=os.urandom(32),
            committee=k,
        )
        with pytest.raises(LedgerError, match=r"committee must be 0 .* to 3 .* got"):
            LedgerClient.deploy(chain, Key.from_hex(EMBEDDED_OPERATOR_KEY), config)
        assert chain.block_number() == 0  # nothing was sent
    finally:
        chain.close()


ARGS = ["--task", "digits-sgd", "--learners", "9", "--rounds", "6", "--seed", "3"]
ARGS += ["--no-baselines", "--ledger", "evm", "--committee", "4"]


@pytest.fixture(scope="module")
def committee_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("committee") / "exp"
    proc = subprocess.run(
        [sys.executable, "-m", "colearning.cli.main", "run", *ARGS, "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    return out


def test_a_run_with_a_committee_follows_the_chains_draw_and_verifies(committee_run, capsys):
    from colearning.ledger.audit import load_history, verify

    info, chain, client, history = load_history(committee_run, None)
    try:
        ids = list(info.learners)
        with opened(committee_run) as store:
            rounds = list(store.rounds())
        assert [r.round_index for r in rounds] == list(range(6))
        for record in rounds:
            r = record.round_index
            seed = client.round_seed(r)
            drawn = [ids[i] for i in draw_committee(seed, 9, 4, [r % 9])]
            assert record.committee is not None and sorted(record.committee) == sorted(drawn)
            assert {v.learner_id for v in record.votes} <= {*drawn, ids[r % 9]}
            assert record.decision is not None and record.decision.eligible == 4
        closed = {r.round_index: r for r in history.closed_rounds()}
        assert all(closed[r].eligible == 4 for r in closed if closed[r].status != "skipped")
    finally:
        chain.close()
    assert verify(committee_run).ok
    # the embedded chain rebuilt from its signed transactions: the same RANDAO values,
    # so the same seeds and committees in every block's state root
    assert verify(committee_run, replay=True).ok
    assert main(["ledger", "verify", str(committee_run)]) == 0
    assert "verified" in capsys.readouterr().out
    assert main(["ledger", "show", str(committee_run)]) == 0
    assert "a committee of 4 drawn by the chain each round" in capsys.readouterr().out
    assert main(["ledger", "show", str(committee_run), "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["committee"] == 4
    assert all(len(r["ballots"]) == 4 for r in shown["rounds"] if r["status"] != "skipped")


def test_verify_catches_a_committee_the_directory_changed(committee_run, tmp_path, capsys):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(committee_run, copy)
    with sqlite3.connect(copy / "experiment.sqlite") as conn:
        (text,) = conn.execute("SELECT record_json FROM rounds WHERE round_index = 2").fetchone()
        data = json.loads(text)
        ids = [f"learner-{i}" for i in range(9)]
        outsider = next(x for x in ids if x not in data["committee"] and x != "learner-2")
        data["committee"] = sorted([*data["committee"][1:], outsider])
        conn.execute("UPDATE rounds SET record_json = ? WHERE round_index = 2", (json.dumps(data),))
    assert main(["ledger", "verify", str(copy)]) == 3
    out = capsys.readouterr().out
    assert "round 2: the directory's committee is" in out
    assert "the chain's seed" in out
