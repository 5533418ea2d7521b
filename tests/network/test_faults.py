"""Learner processes that fail mid-round: killed, frozen with SIGSTOP past the deadline,
cut off mid-stream, or killed mid-stream. In each case the round completes without the
learner (it abstains with the fault's reason code), and the learner rejoins (restarted,
or sent SIGCONT) and votes again in a later round.

The learners are real ``colearn learner serve`` processes; the coordinator is a
GrpcPool in this process. Each fault is made to happen at a point proven reached (after
the round's proposal is back; at a byte count of the stream), never by sleeping.
"""

import os
import signal
import threading
from pathlib import Path

import pytest

from colearning.core.experiment import Experiment
from colearning.core.protocol import Ballot, Reason
from colearning.network import GrpcPool

from .cutting_proxy import CuttingProxy

DIM = 300_000  # 2.4 MB of float64: three 1 MiB chunks on the wire
WIDE = ["--factory", "factories:wide_quadratic", "--insecure"]
QUAD = ["--factory", "factories:quadratic", "--insecure"]


def state_of(pid):
    """The process's state letter (``T``: stopped)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def voted(vote):
    return vote.ballot in (Ballot.APPROVE, Ballot.REJECT)


class FaultAfterPropose(GrpcPool):
    """Runs ``fault()`` once the proposal of round ``at`` is back: mid-round."""

    def __init__(self, endpoints, at, fault):
        super().__init__(endpoints)
        self.at, self.fault = at, fault

    def propose(self, learner_ids, round_index, timeout):
        got = super().propose(learner_ids, round_index, timeout)
        if round_index == self.at:
            self.fault()
        return got


@pytest.mark.slow
def test_a_learner_frozen_past_the_deadline_abstains_and_votes_after_sigcont(serve):
    servers = [
        serve(*QUAD, "--id", f"learner-{i}", name=f"learner-{i}", COLEARN_TEST_SEED=str(i))
        for i in range(3)
    ]
    victim = servers[2]
    pid = victim.proc.pid
    pool = FaultAfterPropose(
        [(f"learner-{i}", s.address) for i, s in enumerate(servers)],
        at=1,
        fault=lambda: os.kill(pid, signal.SIGSTOP),
    )
    try:
        with Experiment(pool, timeout=3.0) as e:
            e.run(2)
            # the round completed while the learner is still frozen: nobody waited for it
            assert state_of(pid) == "T"
            vote = e.rounds[1].votes[2]
            assert vote.ballot is Ballot.ABSTAIN and vote.reason is Reason.TIMED_OUT, vote
            assert e.rounds[1].decision.eligible == 2  # it stays in the denominator
            os.kill(pid, signal.SIGCONT)
            e.run(4)
            assert voted(e.rounds[3].votes[2]), e.rounds[3].votes[2]
    finally:
        os.kill(pid, signal.SIGCONT)


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["cut", "kill"])
def test_a_stream_cut_off_or_killed_midway_abstains_and_the_learner_rejoins(serve, fault):
    servers = [
        serve(
            *WIDE,
            "--id",
            f"learner-{i}",
            name=f"learner-{i}",
            COLEARN_TEST_SEED=str(i),
            COLEARN_TEST_DIM=str(DIM),
        )
        for i in range(3)
    ]
    victim = servers[2]
    proxy = CuttingProxy(victim.port)
    killer = None
    if fault == "kill":

        def kill_when_held():
            proxy.held.wait()
            victim.kill()  # the server dies with half the candidate received
            proxy.release.set()

        killer = threading.Thread(target=kill_when_held, daemon=True)
        killer.start()
    endpoints = [(f"learner-{i}", s.address) for i, s in enumerate(servers[:2])]
    endpoints.append(("learner-2", proxy.address))
    # the candidate goes to learner-2 in round 1's validation: 1.2 MB of its 2.4 MB pass
    pool = FaultAfterPropose(
        endpoints, at=1, fault=lambda: proxy.arm("cut" if fault == "cut" else "hold", DIM * 4)
    )
    try:
        with Experiment(pool, timeout=60.0) as e:
            e.run(2)
            assert proxy.cuts == 1
            vote = e.rounds[1].votes[2]
            assert vote.ballot is Ballot.ABSTAIN and vote.reason is Reason.UNREACHABLE, vote
            assert voted(e.rounds[1].votes[0])
            if fault == "kill":
                killer.join()
                victim.start(port=victim.port)  # restarted, from its initial weights
            e.run(4)
            assert voted(e.rounds[3].votes[2]), e.rounds[3].votes[2]
            held = pool.current_weights("learner-2", 30)
            assert held.ok and e.current.weights_id == _id(held.value)
    finally:
        proxy.close()


def _id(weights):
    from colearning.core.codec import encode, weights_id

    return weights_id(encode(weights))
