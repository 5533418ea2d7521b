"""Peer mode: parties with their own keys follow the contract and play the rounds
with no coordinator. In process, stepped one action at a time on the embedded chain;
then as real processes on anvil, one of them killed mid-experiment."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from colearning.core.codec import encode, weights_id
from colearning.ledger.anvil import Anvil
from colearning.ledger.chain import EmbeddedChain
from colearning.ledger.client import LedgerClient, LedgerConfig
from colearning.ledger.history import rebuild
from colearning.ledger.keys import EMBEDDED_OPERATOR_KEY, Key
from colearning.ledger.peer import DirectoryExchange, Peer
from colearning.testing import QuadraticLearner


def peers_on_embedded_chain(tmp_path, n, propose_period=100, vote_period=100, committee=0):
    chain = EmbeddedChain()
    operator = Key.from_hex(EMBEDDED_OPERATOR_KEY)
    keys = [Key.generate() for _ in range(n)]
    learners = [QuadraticLearner(target=[1.0, 2.0], seed=i) for i in range(n)]
    initial = weights_id(encode(learners[0].mli_get_current_weights()))
    config = LedgerConfig(
        os.urandom(32), tuple(k.address for k in keys), (1, 2), propose_period, vote_period,
        bytes.fromhex(initial), committee,
    )  # fmt: skip
    client, _ = LedgerClient.deploy(chain, operator, config)
    client.fund([k.address for k in keys], 10**18)
    exchange = DirectoryExchange(tmp_path / "exchange")
    peers = [
        Peer(LedgerClient(chain, client.address, operator), k, learner, exchange)
        for k, learner in zip(keys, learners, strict=True)
    ]
    return chain, client, peers


def step(peers, client, rounds, limit=200):
    """Let each peer act in turn; when none can, move the chain's clock past the
    deadline (a silent party is waited for no longer)."""
    for peer in peers:
        peer.start()
    for _ in range(limit):
        if client.state().index >= rounds:
            return
        acted = False
        for peer in peers:
            peer._read_events()
            acted = peer._act(client.state()) or acted
        if not acted:
            client.chain.advance_time(101)
    raise AssertionError("the peers made no progress")


def test_peers_play_rounds_without_a_coordinator(tmp_path):
    chain, client, peers = peers_on_embedded_chain(tmp_path, 3)
    step(peers, client, 4)
    for peer in peers:
        peer._read_events()
    history = rebuild(client.events())
    assert [r.status for r in history.rounds][:4] == ["accepted"] * 4
    finals = {peer.current_id for peer in peers}
    assert finals == {history.current_weights().hex()}
    assert all(len(r.ballots) == 2 for r in history.rounds[:4])
    chain.close()


def test_peers_outside_the_round_committee_do_not_vote(tmp_path):
    from colearning.core.plans import draw_committee

    chain, client, peers = peers_on_embedded_chain(tmp_path, 6, committee=2)
    step(peers, client, 4)
    history = rebuild(client.events())
    assert [r.status for r in history.rounds][:4] == ["accepted"] * 4
    for r in history.rounds[:4]:
        i = r.round_index
        assert set(r.ballots) == set(draw_committee(client.round_seed(i), 6, 2, [i % 6]))
        assert r.eligible == 2
    for peer in peers:
        peer._read_events()
    assert {peer.current_id for peer in peers} == {history.current_weights().hex()}
    chain.close()


def test_a_peer_outside_the_committee_fetches_the_candidate_while_it_is_voted_on(tmp_path):
    # so that it can adopt it once accepted, even if the proposer has finished and gone
    chain, client, peers = peers_on_embedded_chain(tmp_path, 6, committee=2)
    for peer in peers:
        peer.start()
    assert peers[0]._act(client.state())  # learner 0 proposes round 0
    state = client.state()
    assert state.voting
    outsider = next(p for p in peers[1:] if not state.eligible(p.index))
    assert state.candidate.hex() not in outsider._blobs
    assert outsider._act(state)  # no ballot: a fetch
    assert state.candidate.hex() in outsider._blobs
    assert client.state().ballots == 0
    assert not outsider._act(client.state())  # once
    chain.close()


def test_a_silent_peer_is_handled_by_the_deadline(tmp_path):
    chain, client, peers = peers_on_embedded_chain(tmp_path, 3)
    step(peers, client, 1)
    survivors = [peers[0], peers[2]]  # learner 1 goes quiet: round 1 is its turn
    for _ in range(5):
        for peer in survivors:
            peer._read_events()
            assert not peer._act(client.state())
    assert client.state().index == 1  # waiting for learner 1's proposal
    step(survivors, client, 3)  # round 1 skipped; round 2 finalized without its vote
    history = rebuild(client.events())
    assert history.rounds[1].status == "skipped"
    assert history.rounds[2].status in ("accepted", "rejected")
    assert 1 not in history.rounds[2].ballots
    assert history.rounds[2].eligible == 2
    chain.close()


COLEARN = [sys.executable, "-m", "colearning.cli.main"]
TASK = ["--task", "digits-sgd", "--learners", "3", "--partition", "iid", "--seed", "1"]


@pytest.mark.slow
def test_peer_processes_on_anvil_survive_a_killed_peer(tmp_path):
    keys = [Key.generate() for _ in range(3)]
    files = []
    for i, key in enumerate(keys):
        path = tmp_path / f"key-{i}.hex"
        path.write_text(key.hex())
        path.chmod(0o600)
        files.append(path)
    (tmp_path / "addresses").write_text("\n".join(k.checksum for k in keys))
    exchange = tmp_path / "exchange"
    with Anvil() as node:
        common = [*TASK, "--chain-url", node.url, "--exchange-dir", str(exchange)]
        deployed = subprocess.run(
            [*COLEARN, "ledger", "deploy", *common, "--addresses", str(tmp_path / "addresses"),
             "--propose-period", "25", "--vote-period", "8", "--fund", "1"],
            capture_output=True, text=True,
        )  # fmt: skip
        assert deployed.returncode == 0, deployed.stderr
        contract = json.loads(deployed.stdout)["contract"]
        procs = [
            subprocess.Popen(
                [
                    *COLEARN,
                    "peer",
                    *common,
                    "--contract",
                    contract,
                    "--key-file",
                    str(f),
                    "--rounds",
                    "4",  # rounds 0-3: learner 1's turn (round 1) and two rounds after it
                    "--poll",
                    "0.05",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for f in files
        ]
        # learner 1 takes part until round 0 is closed, then dies (no clean-up). It may
        # still get one transaction into round 1 (its turn) before the signal lands.
        victim = procs[1]
        assert victim.stdout is not None
        for line in victim.stdout:
            if json.loads(line).get("round_index") == 0:
                break
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        survivors = [procs[0], procs[2]]
        outputs = [p.communicate(timeout=300) for p in survivors]
        for p, (_out, err) in zip(survivors, outputs, strict=True):
            assert p.returncode == 0, err
        finals = [
            json.loads(out.strip().splitlines()[-1])["final_weights_id"] for out, _ in outputs
        ]
        assert finals[0] == finals[1]
        from colearning.ledger.chain import RpcChain

        chain = RpcChain(node.url)
        client = LedgerClient(chain, bytes.fromhex(contract[2:]), Key.generate())
        history = rebuild(client.events())
        assert len(history.closed_rounds()) >= 4
        # from round 2 on learner 1 is dead: its ballot is missing, and the rounds still
        # close (at the vote deadline) with it counted in the denominator
        for r in history.rounds[2:4]:
            assert 1 not in r.ballots
            assert r.status in ("accepted", "rejected", "skipped")
            if r.status != "skipped":
                assert r.eligible == 2 and len(r.ballots) == 1
        assert any(r.status != "skipped" for r in history.rounds[2:4])
        assert history.current_weights().hex() == finals[0]
        chain.close()
