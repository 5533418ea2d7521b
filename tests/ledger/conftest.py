"""Fixtures of the ledger tests: real chains (the embedded py-evm chain and a real
anvil node) and a deployed contract with fresh learner keys."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import eth  # noqa: F401 - py-evm raises the recursion limit on import; before hypothesis runs
import pytest

from colearning.ledger.anvil import Anvil
from colearning.ledger.chain import Chain, EmbeddedChain, RpcChain
from colearning.ledger.client import LedgerClient, LedgerConfig
from colearning.ledger.keys import ANVIL_OPERATOR_KEY, EMBEDDED_OPERATOR_KEY, Key


@pytest.fixture(scope="session")
def anvil() -> Iterator[Anvil]:
    """One anvil node for the session; fails (never skips) if anvil is not installed."""
    node = Anvil()
    try:
        yield node
    finally:
        node.stop()


def make_chain(kind: str, anvil_node: Anvil | None) -> tuple[Chain, Key]:
    if kind == "embedded":
        return EmbeddedChain(), Key.from_hex(EMBEDDED_OPERATOR_KEY)
    assert anvil_node is not None
    return RpcChain(anvil_node.url), Key.from_hex(ANVIL_OPERATOR_KEY)


@dataclass
class Deployed:
    chain: Chain
    client: LedgerClient
    keys: list[Key]
    config: LedgerConfig


DeployFn = Callable[..., Deployed]


@pytest.fixture(params=["embedded", "anvil"])
def deploy(request: pytest.FixtureRequest) -> Iterator[DeployFn]:
    """``deploy(n, threshold=(1, 2), vote_period=3600, committee=0)``: a fresh contract
    on each chain."""
    node = request.getfixturevalue("anvil") if request.param == "anvil" else None
    made: list[Chain] = []

    def make(
        n: int,
        threshold: tuple[int, int] = (1, 2),
        propose_period: int = 3600,
        vote_period: int = 3600,
        committee: int = 0,
    ) -> Deployed:
        chain, operator = make_chain(request.param, node)
        made.append(chain)
        keys = [Key.generate() for _ in range(n)]
        config = LedgerConfig(
            experiment=os.urandom(32),
            learners=tuple(k.address for k in keys),
            threshold=threshold,
            propose_period=propose_period,
            vote_period=vote_period,
            initial_weights=os.urandom(32),
            committee=committee,
        )
        client, _ = LedgerClient.deploy(chain, operator, config)
        return Deployed(chain, client, keys, config)

    yield make
    for chain in made:
        chain.close()
