"""What one round leaves behind: plain frozen values, JSON-ready via ``to_dict``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from colearning.core.interface import DiffPrivBudget

RoundStatus = Literal["accepted", "rejected", "skipped"]


@dataclass(frozen=True)
class VoteRecord:
    """One learner's part in a round.

    ``vote`` is ``None`` for the proposer (it scores its own proposal but does not
    vote) and for every learner of a skipped round; ``error`` says why a learner
    abstained (raised, timed out, answered garbage).
    """

    learner_id: str
    vote: bool | None
    vote_score: float | None
    test_score: float | None
    error: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class PhaseTimings:
    """Wall seconds of each phase of a round."""

    propose: float = 0.0
    validate: float = 0.0
    accept: float = 0.0
    total: float = 0.0


@dataclass(frozen=True)
class RoundRecord:
    """Everything the experiment records about one round."""

    round_index: int
    proposer_id: str
    status: RoundStatus
    weights_id: str | None
    current_weights_id: str
    approvals: int
    eligible: int
    votes: tuple[VoteRecord, ...]
    timings: PhaseTimings
    reason: str | None = None
    dp_budget: DiffPrivBudget | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"

    def to_dict(self) -> dict[str, Any]:
        # Written out by hand: dataclasses.asdict deep-copies every field and made up
        # most of the driver's per-round cost with 1,000 learners.
        t = self.timings
        return {
            "round_index": self.round_index,
            "proposer_id": self.proposer_id,
            "status": self.status,
            "weights_id": self.weights_id,
            "current_weights_id": self.current_weights_id,
            "approvals": self.approvals,
            "eligible": self.eligible,
            "votes": [
                {
                    "learner_id": v.learner_id,
                    "vote": v.vote,
                    "vote_score": v.vote_score,
                    "test_score": v.test_score,
                    "error": v.error,
                    "seconds": v.seconds,
                }
                for v in self.votes
            ],
            "timings": {
                "propose": t.propose,
                "validate": t.validate,
                "accept": t.accept,
                "total": t.total,
            },
            "reason": self.reason,
            "dp_budget": asdict(self.dp_budget) if self.dp_budget else None,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RoundRecord:
        dp = data.get("dp_budget")
        return cls(
            round_index=int(data["round_index"]),
            proposer_id=str(data["proposer_id"]),
            status=data["status"],
            weights_id=data.get("weights_id"),
            current_weights_id=str(data["current_weights_id"]),
            approvals=int(data["approvals"]),
            eligible=int(data["eligible"]),
            votes=tuple(VoteRecord(**v) for v in data["votes"]),
            timings=PhaseTimings(**data["timings"]),
            reason=data.get("reason"),
            dp_budget=DiffPrivBudget(**dp) if dp else None,
            extra=dict(data.get("extra") or {}),
        )
