"""Peer mode over gRPC: each party serves its own weights by id (``colearning.v1.Weights``,
real servers on 127.0.0.1, mutual TLS) and fetches the others' from the endpoint they
announced on chain. In process on the embedded chain first (fast), then as real
``colearn peer`` processes on anvil, ending with ``colearn ledger verify`` on every
party's record."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from colearning.cli.main import main
from colearning.core.codec import encode, weights_id
from colearning.core.exceptions import LedgerError
from colearning.ledger.anvil import Anvil
from colearning.ledger.chain import EmbeddedChain, RpcChain
from colearning.ledger.client import LedgerClient, LedgerConfig
from colearning.ledger.contract import ABSTAIN
from colearning.ledger.history import rebuild
from colearning.ledger.keys import ANVIL_OPERATOR_KEY, EMBEDDED_OPERATOR_KEY, Key
from colearning.ledger.peer import GrpcExchange, Peer
from colearning.network import tls
from colearning.network.transfer import TransferError
from colearning.testing import QuadraticLearner

HERE = Path(__file__).resolve().parent


@pytest.fixture
def certs(tmp_path):
    d = tmp_path / "certs"
    tls.init_ca(d)
    for i in range(4):
        tls.issue(d, f"learner-{i}")
    return d


def blob_of(seed: int) -> tuple[str, bytes]:
    target = [1.0] * (seed + 2)  # distinct weights for each seed
    blob = encode(QuadraticLearner(target=target).mli_get_current_weights())
    return weights_id(blob), blob


def test_a_party_fetches_weights_by_id_over_mutual_tls(certs):
    a = GrpcExchange("learner-0", certs=certs)
    b = GrpcExchange("learner-1", certs=certs)
    try:
        wid, blob = blob_of(0)
        a.publish(wid, blob)
        assert a.endpoint().startswith("grpcs://127.0.0.1:")
        assert b.fetch(wid, a.endpoint(), source=0) == blob
        # not held: refused with the id named
        other, _ = blob_of(1)
        with pytest.raises(LedgerError, match=f"does not hold weights {other[:12]}"):
            b.fetch(other, a.endpoint(), source=0)
        # the server's certificate names learner-0, not the learner the contract says
        with pytest.raises(LedgerError, match="'learner-2'"):
            b.fetch(wid, a.endpoint(), source=2)
        # an honest party never serves bytes under another id
        with pytest.raises(Exception, match="do not hash to"):
            a.publish(other, blob)
    finally:
        a.close()
        b.close()


def test_no_fallback_between_tls_and_plaintext(certs):
    tls_side = GrpcExchange("learner-0", certs=certs)
    plain = GrpcExchange("learner-1")
    try:
        wid, blob = blob_of(0)
        tls_side.publish(wid, blob)
        plain.publish(wid, blob)
        assert plain.endpoint().startswith("grpc://")
        with pytest.raises(LedgerError, match="serves over mutual TLS; .* --certs"):
            plain.fetch(wid, tls_side.endpoint(), source=0)
        with pytest.raises(LedgerError, match="no fallback to plaintext"):
            tls_side.fetch(wid, plain.endpoint(), source=1)
        with pytest.raises(LedgerError, match="not grpc://HOST:PORT"):
            plain.fetch(wid, "file:///tmp/x", source=1)
    finally:
        tls_side.close()
        plain.close()


def test_substituted_bytes_are_refused_on_arrival():
    server, client = GrpcExchange("learner-0"), GrpcExchange("learner-1")
    try:
        wid, blob = blob_of(0)
        server.server.publish(wid, blob[:-1] + bytes([blob[-1] ^ 0xFF]))  # bypasses the check
        with pytest.raises(TransferError, match="not to the id they came with"):
            client.fetch(wid, server.endpoint(), source=0)
    finally:
        server.close()
        client.close()


class Substituting(GrpcExchange):
    def publish(self, wid, blob):
        self.server.publish(wid, blob[:-1] + bytes([blob[-1] ^ 0xFF]))


def step(peers, client, rounds, limit=200):
    for peer in peers:
        peer.start()
    for _ in range(limit):
        if client.state().index >= rounds:
            for peer in peers:
                peer._read_events()
            return
        acted = False
        for peer in peers:
            peer._read_events()
            acted = peer._act(client.state()) or acted
        if not acted:
            client.chain.advance_time(101)
    raise AssertionError("the peers made no progress")


def grpc_peers(tmp_path, n, certs=None, substituting=()):
    chain = EmbeddedChain()
    operator = Key.from_hex(EMBEDDED_OPERATOR_KEY)
    keys = [Key.generate() for _ in range(n)]
    learners = [QuadraticLearner(target=[1.0, 2.0], seed=i) for i in range(n)]
    initial = weights_id(encode(learners[0].mli_get_current_weights()))
    config = LedgerConfig(
        os.urandom(32), tuple(k.address for k in keys), (1, 2), 100, 100, bytes.fromhex(initial)
    )
    client, _ = LedgerClient.deploy(chain, operator, config)
    client.fund([k.address for k in keys], 10**18)
    exchanges = [
        (Substituting if i in substituting else GrpcExchange)(f"learner-{i}", certs=certs)
        for i in range(n)
    ]
    peers = [
        Peer(LedgerClient(chain, client.address, operator), k, learner, ex,
             record_dir=tmp_path / f"peer-{i}")
        for i, (k, learner, ex) in enumerate(zip(keys, learners, exchanges, strict=True))
    ]  # fmt: skip
    return chain, client, peers, exchanges


def test_peers_exchange_weights_over_grpc_in_process(tmp_path, certs):
    chain, client, peers, exchanges = grpc_peers(tmp_path, 3, certs=certs)
    try:
        step(peers, client, 4)
        history = rebuild(client.events())
        assert [r.status for r in history.rounds[:4]] == ["accepted"] * 4
        assert {p.current_id for p in peers} == {history.current_weights().hex()}
        # every party fetched what it validated from the proposer's own server
        assert all(len(r.ballots) == 2 for r in history.rounds[:4])
    finally:
        for ex in exchanges:
            ex.close()
        chain.close()


def test_a_party_serving_substituted_bytes_is_refused_and_the_round_closes(tmp_path):
    chain, client, peers, exchanges = grpc_peers(tmp_path, 3, substituting={1})
    try:
        step(peers, client, 3)
        history = rebuild(client.events())
        bad = history.rounds[1]  # learner 1's proposal: its bytes do not hash to the id
        assert bad.status == "rejected"
        assert bad.ballots == {0: ABSTAIN, 2: ABSTAIN}
        assert history.rounds[0].status == history.rounds[2].status == "accepted"
        assert {p.current_id for p in peers} == {history.current_weights().hex()}
        assert bad.weights.hex() not in {p.current_id for p in peers}
    finally:
        for ex in exchanges:
            ex.close()
        chain.close()


# -- real processes on anvil ------------------------------------------------------------

COLEARN = [sys.executable, "-m", "colearning.cli.main"]
TASK = ["--task", "digits-sgd", "--partition", "iid", "--seed", "1"]


def deploy(tmp_path, node, n, propose_period=900, vote_period=900, committee=0):
    """A contract for ``n`` parties. The periods are long: here every party proposes and
    votes, so each round closes as its last ballot lands and no deadline is waited for;
    a long one keeps a loaded machine's slow party from missing it."""
    keys = [Key.generate() for _ in range(n)]
    files = []
    for i, key in enumerate(keys):
        path = tmp_path / f"key-{i}.hex"
        path.write_text(key.hex())
        path.chmod(0o600)
        files.append(path)
    (tmp_path / "addresses").write_text("\n".join(k.checksum for k in keys))
    deployed = subprocess.run(
        [*COLEARN, "ledger", "deploy", *TASK, "--learners", str(n), "--chain-url", node.url,
         "--addresses", str(tmp_path / "addresses"), "--propose-period", str(propose_period),
         "--vote-period", str(vote_period), "--fund", "1", "--committee", str(committee)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert deployed.returncode == 0, deployed.stderr
    return json.loads(deployed.stdout)["contract"], files


def start_peers(tmp_path, node, contract, files, rounds, extra, program=None):
    n = len(files)
    procs = []
    for i, f in enumerate(files):
        cmd = (program or {}).get(i, COLEARN)
        procs.append(
            subprocess.Popen(
                [
                    *cmd,
                    "peer",
                    *TASK,
                    "--learners",
                    str(n),
                    "--chain-url",
                    node.url,
                    "--contract",
                    contract,
                    "--key-file",
                    str(f),
                    "--rounds",
                    str(rounds),
                    "--poll",
                    "0.05",
                    "--serve",
                    "127.0.0.1:0",
                    "--out",
                    str(tmp_path / f"peer-{i}"),
                    *extra,
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = [p.communicate(timeout=240) for p in procs]
    for p, (_out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    finals = [json.loads(out.strip().splitlines()[-1])["final_weights_id"] for out, _ in outputs]
    return finals, [err for _, err in outputs]


def verify(tmp_path, i, capsys):
    """``colearn ledger verify DIR --format json`` (the CLI's own entry point, in this
    process: an interpreter start less per audit): ``(exit code, output)``."""
    capsys.readouterr()
    code = main(["ledger", "verify", str(tmp_path / f"peer-{i}"), "--format", "json"])
    return code, capsys.readouterr().out


@pytest.mark.slow
def test_four_peer_processes_over_grpc_with_mutual_tls_end_verified(tmp_path, certs, capsys):
    with Anvil() as node:
        contract, files = deploy(tmp_path, node, 4)
        finals, errors = start_peers(tmp_path, node, contract, files, 4, ["--certs", str(certs)])
        assert len(set(finals)) == 1
        chain = RpcChain(node.url)
        try:
            client = LedgerClient(chain, bytes.fromhex(contract[2:]), Key.generate())
            history = rebuild(client.events())
            announced = [e.fields["endpoint"] for e in client.events() if e.name == "Announced"]
        finally:
            chain.close()
        assert len(announced) == 4 and all(e.startswith("grpcs://127.0.0.1:") for e in announced)
        # every party proposed once; each proposal fetched by the three others over gRPC,
        # voted and closed (a proposal that scores worse is rightly rejected)
        assert all(r.status in ("accepted", "rejected") for r in history.rounds[:4])
        assert any(r.status == "accepted" for r in history.rounds[:4])
        ballots = [r.ballots for r in history.rounds[:4]]
        assert all(len(b) == 3 and ABSTAIN not in b.values() for b in ballots), (ballots, errors)
        assert history.current_weights().hex() == finals[0]
        for i in range(4):
            code, out = verify(tmp_path, i, capsys)
            assert code == 0, out
            report = json.loads(out)
            assert report["ok"] and report["final_weights_id"] == finals[0]
            assert report["rounds_on_chain"] == 4
        # the audit notices a changed blob in a party's record
        blob = tmp_path / "peer-2" / "blobs" / f"{finals[0]}.safetensors"
        blob.write_bytes(blob.read_bytes()[:-1] + b"\x00")
        code, out = verify(tmp_path, 2, capsys)
        assert code == 3
        assert "does not hash to its id" in out


@pytest.mark.slow
def test_a_peer_process_serving_substituted_bytes_is_refused(tmp_path, capsys):
    with Anvil() as node:
        contract, files = deploy(tmp_path, node, 3)
        cheat = [sys.executable, str(HERE / "substituting_peer.py")]
        finals, errors = start_peers(
            tmp_path, node, contract, files, 2, ["--insecure"], program={1: cheat}
        )
        assert len(set(finals)) == 1
        chain = RpcChain(node.url)
        try:
            history = rebuild(
                LedgerClient(chain, bytes.fromhex(contract[2:]), Key.generate()).events()
            )
        finally:
            chain.close()
        bad = history.rounds[1]
        assert bad.status == "rejected" and bad.ballots == {0: ABSTAIN, 2: ABSTAIN}
        assert history.rounds[0].status == "accepted"
        assert history.current_weights().hex() == finals[0]
        for i in (0, 2):
            assert "not to the id they came with" in errors[i]
            assert verify(tmp_path, i, capsys)[0] == 0


@pytest.mark.slow
def test_peer_processes_with_a_committee_vote_only_when_drawn_and_verify(tmp_path, capsys):
    """A committee of 2 of 4, drawn by the contract: each round only its members cast
    ballots (the others sit it out), the round closes on their two ballots, and every
    party's record verifies against the chain's draws."""
    from colearning.core.plans import draw_committee

    with Anvil() as node:
        contract, files = deploy(tmp_path, node, 4, committee=2)
        finals, errors = start_peers(tmp_path, node, contract, files, 4, ["--insecure"])
        assert len(set(finals)) == 1, errors
        chain = RpcChain(node.url)
        try:
            client = LedgerClient(chain, bytes.fromhex(contract[2:]), Key.generate())
            history = rebuild(client.events())
            drawn = [set(draw_committee(client.round_seed(r), 4, 2, [r % 4])) for r in range(4)]
        finally:
            chain.close()
        for r, members in zip(history.rounds[:4], drawn, strict=True):
            assert r.status in ("accepted", "rejected") and set(r.ballots) == members
            assert r.eligible == 2
        for i in range(4):
            code, out = verify(tmp_path, i, capsys)
            assert code == 0, out


PEER = ["peer", "--task", "digits-sgd", "--chain-url", "http://127.0.0.1:9", "--contract",
        "0x" + "00" * 20, "--key-file", "nowhere.hex", "--rounds", "1"]  # fmt: skip
BAD_PEER = [
    ([], "give exactly one of --serve HOST:PORT (serve weights over gRPC) and --exchange-dir "
         "DIR (a shared directory); got neither"),
    (["--serve", "127.0.0.1:0", "--exchange-dir", "x", "--insecure"], "got both"),
    (["--serve", "localhost", "--insecure"],
     "--serve 'localhost' must be HOST:PORT with a port in 0-65535 (0: a free one); e.g."),
    (["--serve", "127.0.0.1:70000", "--insecure"], "with a port in 0-65535"),
    (["--serve", "127.0.0.1:0"], "without --certs would serve plaintext; give --certs DIR"),
    (["--serve", "127.0.0.1:0", "--certs", "c", "--insecure"], "exclude each other"),
    (["--serve", "0.0.0.0:7001", "--insecure"], "add --announce HOST:PORT"),
    (["--serve", "0.0.0.0:7001", "--insecure", "--announce", "10.0.0.5:0"],
     "--announce '10.0.0.5:0' must be HOST:PORT with a port in 1-65535"),
    (["--exchange-dir", "x", "--certs", "c"], "--certs goes with --serve, not --exchange-dir"),
]  # fmt: skip


@pytest.mark.parametrize("extra, message", BAD_PEER)
def test_bad_peer_exchange_options_are_one_clear_line(extra, message, capsys):
    assert main([*PEER, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_party_without_its_certificate_is_told_which_file(tmp_path, certs, anvil, capsys):
    keys = [Key.generate() for _ in range(2)]
    chain = RpcChain(anvil.url)
    try:
        config = LedgerConfig(
            os.urandom(32), tuple(k.address for k in keys), (1, 2), 60, 60, os.urandom(32)
        )
        client, _ = LedgerClient.deploy(chain, Key.from_hex(ANVIL_OPERATOR_KEY), config)
    finally:
        chain.close()
    key_file = tmp_path / "key-1.hex"
    key_file.write_text(keys[1].hex())
    key_file.chmod(0o600)
    (certs / "learner-1.key").unlink()
    contract = "0x" + client.address.hex()
    code = main([*PEER[:4], anvil.url, "--contract", contract, "--key-file", str(key_file),
                 "--rounds", "1", "--serve", "127.0.0.1:0", "--certs", str(certs)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert f"the private key of 'learner-1' {certs}/learner-1.key does not exist" in err
    assert f"colearn certs issue {certs} learner-1" in err
