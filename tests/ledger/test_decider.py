"""The contract decides: with an EvmDecider the driver obeys the chain; failed voters
abstain (signed), a proposer without a usable proposal passes, and the audit agrees."""

from __future__ import annotations

import warnings

import pytest

from colearning.core.exceptions import ConfigError
from colearning.core.experiment import Experiment
from colearning.core.protocol import Ballot
from colearning.core.store import ExperimentStore
from colearning.ledger import EvmDecider, Ledger, SimulationKeysWarning
from colearning.ledger.audit import verify
from colearning.ledger.contract import ABSTAIN
from colearning.ledger.history import rebuild
from colearning.testing import FaultyLearner, QuadraticLearner


def run(tmp_path, learners, rounds, threshold=0.5):
    ids = [f"learner-{i}" for i in range(len(learners))]
    store = ExperimentStore.create(tmp_path / "exp", {"vote_threshold": threshold}, ids)
    with pytest.warns(SimulationKeysWarning, match="for simulations only"):
        ledger = Ledger.open(tmp_path / "exp", ids)
    decider = EvmDecider(ledger, threshold)
    with Experiment(learners, store=store, decider=decider, vote_threshold=threshold) as e:
        decider.start(store.initial_weights_id)
        result = e.run(rounds)
        history = rebuild(decider.client.events())
    return result, history


def test_the_driver_obeys_the_contract_and_records_signed_votes(tmp_path):
    learners = [QuadraticLearner(target=[1.0, 2.0], seed=i) for i in range(4)]
    result, history = run(tmp_path, learners, 5)
    assert [r.decision.decided_by for r in result.rounds] == ["contract"] * 5
    for record, onchain in zip(result.rounds, history.rounds, strict=True):
        assert record.status == onchain.status
        assert record.weights_id == onchain.weights.hex()
        voters = [v for v in record.votes if v.ballot is not Ballot.ABSTAIN]
        assert voters and all(v.signature for v in voters)
        proposer = [v for v in record.votes if v.learner_id == record.proposer_id]
        assert proposer[0].signature is None  # the proposer does not vote
    assert result.final_weights_id == history.current_weights().hex()
    assert verify(tmp_path / "exp", replay=True).ok


def test_failed_voters_abstain_and_failed_proposers_pass(tmp_path):
    learners = [QuadraticLearner(target=[1.0, 2.0], seed=i) for i in range(4)]
    learners[2] = FaultyLearner(learners[2], "raise", on=("test",))
    learners[1] = FaultyLearner(learners[1], "raise", on=("propose",))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the skipped proposer's warning
        result, history = run(tmp_path, learners, 4)
    skipped = result.rounds[1]
    assert skipped.status == "skipped"
    assert (history.rounds[1].status, history.rounds[1].skip_reason) == ("skipped", 1)
    for r in (0, 3):
        assert history.rounds[r].ballots[2] == ABSTAIN
        assert history.rounds[r].eligible == 3
    report = verify(tmp_path / "exp")
    assert report.ok, report.discrepancies


def test_a_malformed_proposal_passes_on_chain(tmp_path):
    learners = [QuadraticLearner(target=[1.0, 2.0], seed=i) for i in range(3)]
    learners[0] = FaultyLearner(learners[0], "nan", on=("propose",))
    result, history = run(tmp_path, learners, 1)
    assert (result.rounds[0].status, result.rounds[0].decision.decided_by) == ("rejected", "check")
    assert history.rounds[0].status == "skipped"
    assert verify(tmp_path / "exp").ok


def test_the_ledger_refuses_a_non_round_robin_plan(tmp_path):
    learners = [QuadraticLearner(target=[1.0], seed=i) for i in range(3)]
    ids = [f"learner-{i}" for i in range(3)]
    ledger = Ledger.open(None, ids)
    decider = EvmDecider(ledger)
    with Experiment(learners, decider=decider, proposer="random", seed=1) as e:
        decider.start(e.current_weights_id)
        with pytest.raises(ConfigError, match="chooses the proposer round-robin"):
            e.run(3)
