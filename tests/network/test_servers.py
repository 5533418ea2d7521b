"""Real ``colearn learner serve`` processes on 127.0.0.1 driven by a real GrpcPool:
rounds, a learner killed mid-round and restarted, mutual TLS, refused transfers."""

import hashlib

import grpc
import numpy as np
import pytest

from colearning.core.codec import encode
from colearning.core.exceptions import ConfigError
from colearning.core.experiment import Experiment
from colearning.core.interface import Weights
from colearning.core.protocol import Ballot, Reason
from colearning.network import GrpcPool, NetworkError, tls
from colearning.network._proto import colearning_pb2 as pb
from colearning.network._proto import colearning_pb2_grpc as pb_grpc
from colearning.network.server import META_PROTOCOL
from colearning.network.transfer import header_message, send_weights
from colearning.testing import QuadraticLearner

QUAD = ["--factory", "factories:quadratic", "--insecure"]


def quads(serve, n):
    return [
        serve(*QUAD, "--id", f"learner-{i}", name=f"learner-{i}", COLEARN_TEST_SEED=str(i))
        for i in range(n)
    ]


def in_process(n, rounds):
    learners = [QuadraticLearner(target=[1.0, 2.0], seed=i) for i in range(n)]
    with Experiment(learners) as e:
        result = e.run(rounds)
    return result.final_weights_id, [r.status for r in result.rounds]


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """Three quadratic learner servers for the tests that need no fresh ones: the
    refusals change nothing, and the rounds test checks its own start (each server's
    initial weights) before it plays. A 4 KiB limit, for the refused transfers; the
    learners' weights are far smaller."""
    from .conftest import Served, env

    tmp = tmp_path_factory.mktemp("shared")
    servers = [
        Served(
            tmp,
            [*QUAD, "--id", f"learner-{i}", "--max-bytes", "4096"],
            f"learner-{i}",
            env(COLEARN_TEST_SEED=str(i)),
        ).start()
        for i in range(3)
    ]
    yield servers
    for s in servers:
        s.stop()


@pytest.mark.slow
def test_rounds_across_real_servers_end_as_in_process(shared):
    servers = shared
    initial = encode(QuadraticLearner(target=[1.0, 2.0]).mli_get_current_weights())
    for s in servers:  # as started: the other tests sharing them change nothing
        channel, stub = _stub(s)
        assert _current_id(stub) == hashlib.sha256(initial).hexdigest()
        channel.close()
    pool = GrpcPool([(f"learner-{i}", s.address) for i, s in enumerate(servers)])
    with Experiment(pool) as e:
        result = e.run(5)
    assert (result.final_weights_id, [r.status for r in result.rounds]) == in_process(3, 5)
    log = servers[1].log.read_text()
    assert "round 1: proposed" in log and "accepted" in log and "sent by id" in log


@pytest.mark.slow
def test_a_learner_killed_mid_round_abstains_then_rejoins_in_sync(serve):
    servers = quads(serve, 3)
    victim = servers[2]

    class KillAfterPropose(GrpcPool):
        def propose(self, learner_ids, round_index, timeout):
            got = super().propose(learner_ids, round_index, timeout)
            if round_index == 1:
                victim.kill()  # between the proposal and the votes: mid-round
            return got

    pool = KillAfterPropose([(f"learner-{i}", s.address) for i, s in enumerate(servers)])
    with Experiment(pool) as e:
        e.run(2)
        vote = e.rounds[1].votes[2]
        assert vote.ballot is Ballot.ABSTAIN and vote.reason is Reason.UNREACHABLE
        assert "learner-2" in vote.detail
        assert e.rounds[1].status == "accepted"  # the round completed without it

        victim.start(port=victim.port)  # restarted on its port, from its initial weights
        e.run(4)
        later = e.rounds[3].votes[2]
        assert later.ballot in (Ballot.APPROVE, Ballot.REJECT), later
        held = pool.current_weights("learner-2", 10)
        assert encode(held.value) == e.current.blob()  # re-synchronised, by id


@pytest.fixture
def certs(tmp_path):
    d = tmp_path / "certs"
    tls.init_ca(d)
    for name in ("learner-0", "learner-1", "coordinator"):
        tls.issue(d, name)
    other = tmp_path / "other-ca"
    tls.init_ca(other)
    tls.issue(other, "coordinator")
    return d, other


@pytest.mark.slow
def test_mutual_tls_refuses_an_untrusted_client_and_a_wrong_identity(serve, certs):
    d, other = certs
    s0 = serve(
        "--factory",
        "factories:quadratic",
        "--id",
        "learner-0",
        "--certs",
        str(d),
        "--host",
        "127.0.0.1",
        name="learner-0",
    )
    good = GrpcPool([("learner-0", s0.address)], credentials=tls.client_credentials(d))
    assert good.description("learner-0").learner_id == "learner-0"
    good.close()

    with pytest.raises(NetworkError, match="TLS handshake failed|no answer"):
        GrpcPool(
            [("learner-0", s0.address)],
            credentials=tls.client_credentials(other),
            connect_timeout=2,
        )
    with pytest.raises(NetworkError, match="pass --certs here too"):
        GrpcPool([("learner-0", s0.address)], connect_timeout=2)  # plaintext to a TLS server
    # another party, with a certificate from the same CA, is not the coordinator
    with pytest.raises(NetworkError, match="takes calls only from 'coordinator'.*'learner-1'"):
        GrpcPool(
            [("learner-0", s0.address)],
            credentials=tls.client_credentials(d, "learner-1"),
            connect_timeout=10,
        )

    # a learner presenting learner-1's certificate where learner-0 is expected (a server
    # in this process: what is under test is the coordinator's check of the name)
    from colearning.network import LearnerServer

    impostor = LearnerServer(
        QuadraticLearner(target=[1.0, 2.0]),
        "learner-0",
        credentials=tls.server_credentials(d, "learner-1"),
    ).start()
    try:
        with pytest.raises(NetworkError, match="name 'learner-0'"):
            GrpcPool(
                [("learner-0", impostor.address)],
                credentials=tls.client_credentials(d),
                connect_timeout=2,
            )
    finally:
        impostor.stop(grace=0)
    log = s0.log.read_text()
    assert "describe from ipv4:127.0.0.1:" in log and "as 'coordinator' (protocol 1" in log
    assert "mutual TLS" in log and "its certificate names ['learner-1'], not 'coordinator'" in log


def test_a_learner_may_name_the_coordinators_it_takes(certs):
    """``coordinators`` (``colearn learner serve --coordinator-name``): the names a
    client certificate must carry; every other call is refused, Describe included."""
    from colearning.network import LearnerServer

    d, _ = certs
    tls.issue(d, "ops")
    server = LearnerServer(
        QuadraticLearner(target=[1.0, 2.0]),
        "learner-0",
        credentials=tls.server_credentials(d, "learner-0"),
        coordinators=("ops",),
    ).start()
    try:
        with GrpcPool(
            [("learner-0", server.address)], credentials=tls.client_credentials(d, "ops")
        ) as pool:
            assert pool.current_weights("learner-0", 10).ok
        with pytest.raises(NetworkError, match="refused this coordinator.*only from 'ops'"):
            GrpcPool([("learner-0", server.address)], credentials=tls.client_credentials(d))
    finally:
        server.stop(grace=0)
    with pytest.raises(ConfigError, match="only with TLS"):
        LearnerServer(QuadraticLearner(target=[1.0]), "learner-0", coordinators=("ops",))


def _stub(server):
    channel = grpc.insecure_channel(server.address)
    return channel, pb_grpc.LearnerStub(channel)


META = [(META_PROTOCOL, "1")]


def _current_id(stub):
    return stub.Describe(pb.DescribeRequest(), metadata=META, timeout=10).current_weights_id


@pytest.mark.slow
def test_damaged_transfers_are_refused_and_the_model_is_unchanged(shared):
    server = shared[0]
    channel, stub = _stub(server)
    before = _current_id(stub)
    good = encode(Weights({"w": np.array([0.5, 0.5])}))
    gid = hashlib.sha256(good).hexdigest()
    wrong_shape = encode(Weights({"w": np.zeros(3)}))
    big = encode(Weights({"w": np.zeros(1000)}))

    def accept(messages):
        # the plain generated stub, protobuf messages: any client of the schema works
        as_pb = [pb.WeightsMessage.FromString(m) if isinstance(m, bytes) else m for m in messages]
        reply = stub.Accept(iter(as_pb), metadata=META, timeout=10)
        assert reply.HasField("failure")
        return reply.failure.message

    cases = {
        "truncated": list(send_weights(gid, good))[:-1] + [pb.WeightsMessage(chunk=good[:10])],
        "not to the id they came with": [
            header_message(gid, len(good)),
            pb.WeightsMessage(chunk=good[:-1] + b"x"),
        ],
        "shape (3,); expected (2,)": list(
            send_weights(hashlib.sha256(wrong_shape).hexdigest(), wrong_shape)
        ),
        "accepts at most 4.0 KiB": list(send_weights(hashlib.sha256(big).hexdigest(), big)),
        "does not hold": list(send_weights("ab" * 32, None)),
    }
    for expected, messages in cases.items():
        assert expected in accept(messages), expected
    assert _current_id(stub) == before
    log = server.log.read_text()
    assert "refused the weights" in log
    channel.close()


@pytest.mark.slow
def test_another_protocol_version_is_refused_readably(shared):
    server = shared[0]
    channel, stub = _stub(server)
    with pytest.raises(grpc.RpcError) as info:
        stub.RestoreProgress(
            pb.RestoreProgressRequest(proposals_made=1),
            metadata=[(META_PROTOCOL, "99")],
            timeout=10,
        )
    assert info.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "speaks colearning wire protocol 1" in info.value.details()
    assert "caller speaks 99" in info.value.details()
    channel.close()
    with pytest.raises(NetworkError, match="says it is 'learner-0'; expected 'learner-1'"):
        GrpcPool([("learner-1", server.address)], connect_timeout=10)


def test_a_learner_of_another_protocol_is_refused_readably_at_the_start(tmp_path, capsys):
    """The coordinator's side: a learner that says (in Describe, which every version
    answers) that it speaks another wire protocol is refused before any round, with one
    line naming both versions and the fix."""
    import dataclasses

    from colearning.cli.main import main
    from colearning.network import LearnerServer

    server = LearnerServer(QuadraticLearner(target=[1.0, 2.0]), "learner-0")
    ours = server.service.description
    server.service.description = lambda: dataclasses.replace(
        ours(), protocol_version=2, library_version="0.3.0"
    )  # a later colearning: a real server whose Describe says it speaks protocol 2
    server.start()
    try:
        with pytest.raises(NetworkError, match="speaks colearning wire protocol 2"):
            GrpcPool([("learner-0", server.address)], connect_timeout=10)
        code = main(["run", "--remote", server.address, "--insecure", "--out", str(tmp_path / "o")])
    finally:
        server.stop(grace=0)
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert (
        f"learner-0 at {server.address} speaks colearning wire protocol 2 (colearning 0.3.0); "
        "this coordinator speaks 1" in err
    )
    assert "Install the same colearning version on the coordinator and every learner" in err
