"""The ledger: the driver as a smart contract on an Ethereum chain.

Weights stay off chain; the chain holds their SHA-256 ids, every learner's signed
ballot and the contract's decision of every round. See ``docs/ledger.md``.

Needs the ``ledger`` extra: ``pip install 'colearning[ledger]'``.
"""

from __future__ import annotations

from colearning.core.exceptions import require_extra

for _module in ("web3", "eth_tester", "eth_account", "eth_abi", "eth"):
    require_extra(_module, "ledger", "the ledger (--ledger evm)")

from colearning.ledger.decider import ChainRandomness, EvmDecider, TallyMismatchWarning  # noqa: E402
from colearning.ledger.keys import SimulationKeysWarning  # noqa: E402
from colearning.ledger.session import Ledger, has_ledger  # noqa: E402

__all__ = [
    "ChainRandomness",
    "EvmDecider",
    "Ledger",
    "SimulationKeysWarning",
    "TallyMismatchWarning",
    "has_ledger",
]
