"""A run stopped after recording where its contract will be, before the deployment was
sent, resumes on a node another run (paid by the same operator account) used meanwhile.

The address recorded is the one the operator's next nonce gives; once another
transaction spends that nonce, the deployment can no longer land there: the address
holds another run's contract, or nothing. Nothing of the stopped run is on the chain
(no deploy block is recorded), so the resume plans anew at the operator's nonce then.
A deployment that was confirmed (its block recorded) and is gone is still an error.
"""

from __future__ import annotations

import dataclasses

import pytest

from colearning.core.exceptions import LedgerError
from colearning.ledger import session as session_mod
from colearning.ledger.client import LedgerClient
from colearning.ledger.session import INFO_NAME, Ledger, LedgerInfo, ledger_dir

pytestmark = pytest.mark.filterwarnings("ignore::colearning.ledger.SimulationKeysWarning")

LEARNERS = ["l0", "l1", "l2"]
WEIGHTS = "ab" * 32


def _stopped_before_sending(directory, url, monkeypatch) -> LedgerInfo:
    """Open the ledger of ``directory`` and stop its deployment where a SIGKILL at the
    ``deploy`` point leaves it: the info recorded, nothing sent."""

    class Stop(Exception):
        pass

    def stop(*args, **kw):
        raise Stop

    ledger = Ledger.open(directory, LEARNERS, chain_url=url)
    try:
        with monkeypatch.context() as m:
            m.setattr(session_mod.LedgerClient, "deploy", stop)
            with pytest.raises(Stop):
                ledger.deploy(0.5, WEIGHTS)
    finally:
        ledger.close()
    info = LedgerInfo.read(ledger_dir(directory) / INFO_NAME)
    assert info.deploy_block is None
    return info


def _resumed(directory, url) -> tuple[LedgerInfo, bytes]:
    ledger = Ledger.open(directory, LEARNERS, chain_url=url)
    try:
        client = ledger.deploy(0.5, WEIGHTS)
        return LedgerInfo.read(ledger_dir(directory) / INFO_NAME), client.config().experiment
    finally:
        ledger.close()


def test_resumes_where_another_run_deployed_at_its_recorded_address(tmp_path, anvil, monkeypatch):
    planned = _stopped_before_sending(tmp_path / "a", anvil.url, monkeypatch)
    other, _ = _resumed(tmp_path / "b", anvil.url)  # the node's next nonce: A's address
    assert other.contract == planned.contract

    info, experiment = _resumed(tmp_path / "a", anvil.url)
    assert info.contract != planned.contract
    assert info.deploy_block is not None
    assert info.experiment == planned.experiment  # the same run, deployed elsewhere
    assert "0x" + experiment.hex() == planned.experiment
    # and a later resume finds it where it now is
    again, _ = _resumed(tmp_path / "a", anvil.url)
    assert again == info


def test_resumes_when_another_transaction_spent_its_nonce(tmp_path, anvil, monkeypatch):
    planned = _stopped_before_sending(tmp_path / "a", anvil.url, monkeypatch)
    ledger = Ledger.open(tmp_path / "b", LEARNERS, chain_url=anvil.url)
    try:  # a plain transfer from the operator: the nonce spent, no contract anywhere
        LedgerClient(ledger.chain, b"\0" * 20, ledger.operator).fund([b"\1" * 20], 1)
    finally:
        ledger.close()

    info, experiment = _resumed(tmp_path / "a", anvil.url)
    assert info.contract != planned.contract
    assert info.deploy_nonce > planned.deploy_nonce
    assert "0x" + experiment.hex() == planned.experiment


def test_a_confirmed_deployment_that_is_gone_is_still_an_error(tmp_path, anvil):
    info, _ = _resumed(tmp_path / "a", anvil.url)
    # as if the node lost its state: the recorded contract is somewhere else
    gone = dataclasses.replace(info, contract="0x" + "11" * 20)
    (ledger_dir(tmp_path / "a") / INFO_NAME).write_text(gone.to_json())
    ledger = Ledger.open(tmp_path / "a", LEARNERS, chain_url=anvil.url)
    try:
        with pytest.raises(LedgerError, match="lost its state"):
            ledger.deploy(0.5, WEIGHTS)
    finally:
        ledger.close()


def test_deploys_when_another_run_takes_its_nonce_before_it_sends(tmp_path, anvil, monkeypatch):
    """No kill: another run paid by the same operator sends between this run's recording
    of its address and its deployment (two runs at once on one node)."""
    original = LedgerClient.deploy.__func__
    raced = []

    def deploy(cls, chain, operator, config, nonce=None):
        if not raced:
            raced.append(None)  # (the other run deploys through here too)
            raced[0] = _resumed(tmp_path / "b", anvil.url)[0]  # takes the nonce
        return original(cls, chain, operator, config, nonce=nonce)

    monkeypatch.setattr(session_mod.LedgerClient, "deploy", classmethod(deploy))
    info, experiment = _resumed(tmp_path / "a", anvil.url)
    assert info.deploy_block is not None
    assert info.contract != raced[0].contract
    assert info.deploy_nonce > raced[0].deploy_nonce
    assert "0x" + experiment.hex() == info.experiment
