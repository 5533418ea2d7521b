"""The contract's rules, on both real chains: who may propose and vote, deadlines, the
tally, and every revert turned into a LedgerError naming the contract's reason."""

from __future__ import annotations

import os

import pytest

from colearning.core.exceptions import LedgerError
from colearning.ledger.client import Ballot, decode_events
from colearning.ledger.contract import ABSTAIN, APPROVE, REJECT, SKIP_DEADLINE, SKIP_PASSED
from colearning.ledger.history import rebuild
from colearning.ledger.keys import Key


def names(deployed, receipt):
    return [e.name for e in decode_events(deployed.client.contract, receipt.logs)]


def ballot(d, voter, code, round_index=0, weights=None, key=None):
    w = weights if weights is not None else d.client.state().candidate
    sig = d.client.sign_vote(key or d.keys[voter], round_index, w, code)
    return Ballot(voter, code, sig)


def propose(d, round_index=0, weights=None):
    w = weights or os.urandom(32)
    proposer = d.keys[round_index % len(d.keys)]
    d.client.propose(round_index, w, d.client.sign_proposal(proposer, round_index, w))
    return w


def test_a_whole_round_settles_in_one_transaction(deploy):
    d = deploy(5)
    w = os.urandom(32)
    sig = d.client.sign_proposal(d.keys[0], 0, w)
    ballots = [ballot(d, i, APPROVE if i < 3 else REJECT, weights=w) for i in range(1, 5)]
    receipt = d.client.settle(0, w, sig, ballots)
    assert names(d, receipt) == ["Proposed", "Ballots", "Finalized"]
    state = d.client.state()
    assert (state.index, state.current_weights) == (1, w)  # 2 of 4 approve: a tie passes
    (r,) = rebuild(d.client.events()).rounds
    assert r.ballots == {1: APPROVE, 2: APPROVE, 3: REJECT, 4: REJECT}
    assert (r.status, r.approvals, r.eligible) == ("accepted", 2, 4)


def test_forged_altered_and_replayed_votes_are_rejected(deploy):
    d = deploy(3)
    w = propose(d)
    outsider = Key.generate()
    forged = Ballot(1, APPROVE, d.client.sign_vote(outsider, 0, w, APPROVE))
    with pytest.raises(LedgerError, match="learner 1's signature does not match"):
        d.client.vote(0, forged)
    # altered: learner 1 signed a reject; the ballot submitted says approve
    signed = d.client.sign_vote(d.keys[1], 0, w, REJECT)
    with pytest.raises(LedgerError, match="learner 1's signature does not match"):
        d.client.vote(0, Ballot(1, APPROVE, signed))
    # altered: a signature over other weights
    other = d.client.sign_vote(d.keys[1], 0, os.urandom(32), APPROVE)
    with pytest.raises(LedgerError, match="learner 1's signature does not match"):
        d.client.vote(0, Ballot(1, APPROVE, other))
    # replayed: the same valid ballot twice, then in the next round
    good = Ballot(1, REJECT, signed)
    d.client.vote(0, good)
    with pytest.raises(LedgerError, match="a learner already voted"):
        d.client.vote(0, good)
    d.client.vote(0, ballot(d, 2, APPROVE))  # completes round 0
    w1 = propose(d, 1)
    assert w1 != w
    with pytest.raises(LedgerError, match="round: not the open round"):
        d.client.vote(0, good)
    with pytest.raises(LedgerError, match="learner 2's signature does not match"):
        d.client.vote(1, Ballot(2, APPROVE, d.client.sign_vote(d.keys[2], 0, w, APPROVE)))


def test_a_signature_for_another_contract_does_not_count(deploy):
    a = deploy(3)
    b = deploy(3)
    w = propose(a)
    # the same key and message, but the domain is another contract's
    sig = b.client.sign_vote(a.keys[1], 0, w, APPROVE)
    with pytest.raises(LedgerError, match="signature does not match"):
        a.client.vote(0, Ballot(1, APPROVE, sig))


def test_only_the_round_robin_proposer_proposes(deploy):
    d = deploy(3)
    w = os.urandom(32)
    with pytest.raises(LedgerError, match="propose: signature is not the proposer's"):
        d.client.propose(0, w, d.client.sign_proposal(d.keys[1], 0, w))
    with pytest.raises(LedgerError, match="propose: sender is not the proposer"):
        d.client.propose(0, w)  # sent by the operator, unsigned
    with pytest.raises(LedgerError, match="round: not the open round"):
        d.client.propose(1, w, d.client.sign_proposal(d.keys[1], 1, w))
    propose(d, 0, w)
    with pytest.raises(LedgerError, match="propose: already proposed"):
        d.client.propose(0, w, d.client.sign_proposal(d.keys[0], 0, w))


def test_the_proposer_may_send_its_own_proposal(deploy):
    d = deploy(2)
    d.client.fund([d.keys[0].address], 10**17)
    w = os.urandom(32)
    d.client.propose(0, w, sender=d.keys[0])
    assert d.client.state().candidate == w


def test_ballot_rules(deploy):
    d = deploy(4)
    with pytest.raises(LedgerError, match="vote: nothing proposed yet"):
        d.client.vote(0, ballot(d, 1, APPROVE, weights=os.urandom(32)))
    propose(d)
    with pytest.raises(LedgerError, match="ballots: the proposer does not vote"):
        d.client.vote(0, ballot(d, 0, APPROVE))
    with pytest.raises(LedgerError, match="vote: no such learner"):
        d.client.vote(0, ballot(d, 4, APPROVE, key=d.keys[1]))
    with pytest.raises(LedgerError, match="vote: ballot must be 0 reject, 1 approve or 2 abstain"):
        d.client.vote(0, ballot(d, 1, 3))
    with pytest.raises(LedgerError, match="finalize: voting is still open"):
        d.client.finalize(0)


def test_a_missing_vote_waits_for_the_deadline_and_stays_in_the_denominator(deploy):
    d = deploy(4, vote_period=600)
    propose(d)
    d.client.vote(0, ballot(d, 1, APPROVE))
    d.client.vote(0, ballot(d, 2, ABSTAIN))  # a failed learner
    with pytest.raises(LedgerError, match="finalize: voting is still open"):
        d.client.finalize(0)
    d.chain.advance_time(601)
    with pytest.raises(LedgerError, match="vote: the vote deadline passed"):
        d.client.vote(0, ballot(d, 3, APPROVE))
    receipt = d.client.finalize(0)
    (fin,) = [e for e in decode_events(d.client.contract, receipt.logs)]
    # 1 of 3 eligible approve: not half, rejected
    assert (fin.fields["accepted"], fin.fields["approvals"], fin.fields["eligible"]) == (
        False,
        1,
        3,
    )
    assert d.client.state().current_weights == d.config.initial_weights


def test_a_proposer_that_never_proposes_is_skipped_after_its_deadline(deploy):
    d = deploy(3, propose_period=300)
    with pytest.raises(LedgerError, match="skip: the proposer still has time"):
        d.client.skip(0)
    d.chain.advance_time(301)
    outsider = Key.generate()
    d.client.fund([outsider.address], 10**17)
    d.client.skip(0, sender=outsider)  # anyone may
    (r,) = rebuild(d.client.events()).rounds
    assert (r.status, r.skip_reason, r.proposer) == ("skipped", SKIP_DEADLINE, d.keys[0].address)
    assert d.client.state().index == 1
    with pytest.raises(LedgerError, match="propose: the proposal deadline passed"):
        d.chain.advance_time(301)
        propose(d, 1)


def test_a_pass_closes_the_round_at_once(deploy):
    d = deploy(3)
    sig = d.client.sign_proposal(d.keys[0], 0, bytes(32))
    d.client.propose(0, bytes(32), sig)
    (r,) = rebuild(d.client.events()).rounds
    assert (r.status, r.skip_reason) == ("skipped", SKIP_PASSED)


def test_one_learner_alone_accepts_its_proposal(deploy):
    d = deploy(1)
    w = propose(d)
    state = d.client.state()
    assert (state.index, state.current_weights) == (1, w)


def test_threshold_in_integers_as_the_python_tally(deploy):
    # 7 of 10 with threshold 7/10 passes exactly (in floats 0.7 * 10 > 7)
    d = deploy(11, threshold=(7, 10))
    w = os.urandom(32)
    ballots = [ballot(d, i, APPROVE if i <= 7 else REJECT, weights=w) for i in range(1, 11)]
    d.client.settle(0, w, d.client.sign_proposal(d.keys[0], 0, w), ballots)
    assert d.client.state().current_weights == w


def test_deploy_refuses_bad_settings(deploy):
    with pytest.raises(LedgerError, match="deploy: threshold not in"):
        deploy(3, threshold=(3, 2))
    with pytest.raises(LedgerError, match="holds 1 to 255 learners; got 256"):
        deploy(256)
