"""The contract and the Python tally decide every vote pattern alike: approvals,
rejections, failures (signed abstentions) and missing ballots (the deadline passes),
sent in one batch or one by one, for any number of learners and threshold."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from colearning.core.decider import TallyDecider
from colearning.core.protocol import Ballot as B
from colearning.core.protocol import Candidate, Reason, Vote
from colearning.core.tally import threshold_fraction
from colearning.ledger.chain import EmbeddedChain
from colearning.ledger.client import Ballot, LedgerClient, LedgerConfig, decode_events
from colearning.ledger.contract import ABSTAIN, APPROVE, REJECT
from colearning.ledger.keys import EMBEDDED_OPERATOR_KEY, Key

OPERATOR = Key.from_hex(EMBEDDED_OPERATOR_KEY)
KEYS = [Key.generate() for _ in range(9)]
# what each eligible learner does
PATTERN = st.sampled_from(["approve", "reject", "failed", "missing"])


def python_decision(ids, proposer, pattern, threshold):
    votes = []
    for lid, what in zip(ids, pattern, strict=True):
        if lid == proposer:
            votes.append(Vote(lid, B.ABSTAIN, reason=Reason.PROPOSER))
        elif what == "approve":
            votes.append(Vote(lid, B.APPROVE))
        elif what == "reject":
            votes.append(Vote(lid, B.REJECT))
        elif what == "failed":
            votes.append(Vote(lid, B.ABSTAIN, reason=Reason.TIMED_OUT))
        # "missing": no entry at all
    eligible = [lid for lid in ids if lid != proposer]
    d = TallyDecider(threshold).decide(0, Candidate("w", (proposer,)), votes, eligible)
    return d.accepted, d.approvals, d.eligible


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 9),
    round_index=st.integers(0, 20),
    data=st.data(),
    threshold=st.sampled_from([0.0, 0.25, 0.5, 2 / 3, 0.7, 0.75, 1.0]),
    batched=st.booleans(),
)
def test_contract_and_python_tally_agree(n, round_index, data, threshold, batched):
    pattern = data.draw(st.lists(PATTERN, min_size=n, max_size=n))
    keys = KEYS[:n]
    ids = [f"learner-{i}" for i in range(n)]
    chain = EmbeddedChain()
    try:
        config = LedgerConfig(
            os.urandom(32),
            tuple(k.address for k in keys),
            threshold_fraction(threshold),
            3600,
            600,
            os.urandom(32),
        )
        client, _ = LedgerClient.deploy(chain, OPERATOR, config)
        # reach the drawn round: earlier proposers pass
        for r in range(round_index):
            client.propose(r, bytes(32), client.sign_proposal(keys[r % n], r, bytes(32)))
        p = round_index % n
        w = os.urandom(32)
        codes = {"approve": APPROVE, "reject": REJECT, "failed": ABSTAIN}
        ballots = [
            Ballot(i, codes[what], client.sign_vote(keys[i], round_index, w, codes[what]))
            for i, what in enumerate(pattern)
            if i != p and what != "missing"
        ]
        proposal = client.sign_proposal(keys[p], round_index, w)
        receipts = []
        if batched:
            receipts.append(client.settle(round_index, w, proposal, ballots))
        else:
            receipts.append(client.propose(round_index, w, proposal))
            receipts += [client.vote(round_index, b) for b in ballots]
        events = [e for rec in receipts for e in decode_events(client.contract, rec.logs)]
        if not any(e.name == "Finalized" for e in events):
            chain.advance_time(601)  # some ballot is missing: wait out the vote deadline
            events = decode_events(client.contract, client.finalize(round_index).logs)
        (fin,) = [e for e in events if e.name == "Finalized"]
        got = (fin.fields["accepted"], fin.fields["approvals"], fin.fields["eligible"])
        assert got == python_decision(ids, ids[p], pattern, threshold)
        state = client.state()
        assert state.index == round_index + 1
        assert state.current_weights == (w if got[0] else config.initial_weights)
    finally:
        chain.close()
