"""An experiment's history rebuilt from the contract's events alone.

The contract emits ``Opened`` once, then per round ``Proposed`` (or ``Skipped``),
``Ballots`` (one or more bitmaps of ballots) and ``Finalized``. :func:`rebuild` folds
them into one :class:`ChainRound` per round, and notes anything a well-behaved
contract cannot emit (an auditor's red flag, not an exception).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from colearning.ledger.client import ChainEvent
from colearning.ledger.contract import ABSTAIN, APPROVE, REJECT, SKIP_DEADLINE, SKIP_PASSED

ChainStatus = Literal["accepted", "rejected", "skipped", "voting", "open"]

BALLOT_NAMES = {APPROVE: "approve", REJECT: "reject", ABSTAIN: "abstain"}
SKIP_NAMES = {SKIP_PASSED: "the proposer passed", SKIP_DEADLINE: "the proposal deadline passed"}


@dataclass
class ChainRound:
    """One round as the chain recorded it."""

    round_index: int
    proposer: bytes | None = None
    weights: bytes | None = None
    status: ChainStatus = "open"
    skip_reason: int | None = None
    ballots: dict[int, int] = field(default_factory=dict)  # learner index -> ballot code
    approvals: int | None = None
    eligible: int | None = None
    blocks: list[int] = field(default_factory=list)

    @property
    def closed(self) -> bool:
        return self.status in ("accepted", "rejected", "skipped")


@dataclass
class ChainHistory:
    opened: dict[str, Any] | None
    rounds: list[ChainRound]
    anomalies: list[str]

    @property
    def learners(self) -> list[bytes]:
        if self.opened is None:
            return []
        return [_address(a) for a in self.opened["learners"]]

    @property
    def initial_weights(self) -> bytes | None:
        return None if self.opened is None else bytes(self.opened["initial_weights"])

    def current_weights(self) -> bytes | None:
        """The last accepted weights (the initial ones if none was accepted)."""
        current = self.initial_weights
        for r in self.rounds:
            if r.status == "accepted":
                current = r.weights
        return current

    def closed_rounds(self) -> list[ChainRound]:
        return [r for r in self.rounds if r.closed]


def _address(value: Any) -> bytes:
    if isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x"))
    return bytes(value)


def rebuild(events: Sequence[ChainEvent]) -> ChainHistory:
    """Fold the contract's events (in chain order) into rounds."""
    opened: dict[str, Any] | None = None
    rounds: dict[int, ChainRound] = {}
    anomalies: list[str] = []

    def at(index: int) -> ChainRound:
        if index not in rounds:
            rounds[index] = ChainRound(index)
        return rounds[index]

    for e in events:
        if e.name == "Opened":
            if opened is not None:
                anomalies.append(f"block {e.block_number}: a second Opened event")
            opened = e.fields
            continue
        if e.name == "Announced":
            continue
        index = e.round_index
        assert index is not None
        r = at(index)
        r.blocks.append(e.block_number)
        if r.closed:
            anomalies.append(
                f"round {index}: a {e.name} event after the round was closed "
                f"(block {e.block_number})"
            )
            continue
        if e.name == "Proposed":
            if r.weights is not None:
                anomalies.append(f"round {index}: proposed twice")
            r.proposer = _address(e.fields["proposer"])
            r.weights = bytes(e.fields["weights"])
            r.status = "voting"
        elif e.name == "Skipped":
            r.proposer = _address(e.fields["proposer"])
            r.status = "skipped"
            r.skip_reason = int(e.fields["reason"])
        elif e.name == "Ballots":
            voters = int(e.fields["voters"])
            approvals = int(e.fields["approvals"])
            abstentions = int(e.fields["abstentions"])
            i = 0
            while voters >> i:
                if (voters >> i) & 1:
                    if i in r.ballots:
                        anomalies.append(f"round {index}: learner {i} cast two ballots")
                    code = REJECT
                    if (approvals >> i) & 1:
                        code = APPROVE
                    elif (abstentions >> i) & 1:
                        code = ABSTAIN
                    r.ballots[i] = code
                i += 1
        elif e.name == "Finalized":
            if r.weights is not None and bytes(e.fields["weights"]) != r.weights:
                anomalies.append(f"round {index}: finalized other weights than proposed")
            r.weights = bytes(e.fields["weights"])
            r.status = "accepted" if e.fields["accepted"] else "rejected"
            r.approvals = int(e.fields["approvals"])
            r.eligible = int(e.fields["eligible"])
    ordered = [rounds[i] for i in sorted(rounds)]
    for expected, r in enumerate(ordered):
        if r.round_index != expected:
            anomalies.append(f"round {expected} has no event, yet round {r.round_index} has")
            break
    return ChainHistory(opened, ordered, anomalies)
