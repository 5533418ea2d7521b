"""The protocol's values: what a round is made of, as frozen data.

A round holds one or more **proposals** (who proposed, the weights id, or why nothing
usable came), the **candidate** put to the vote (a proposal as it is, or several
combined), one **vote** on the candidate per learner asked (approve, reject, or abstain
with a reason code) and the **decision**. Every reason is a :class:`Reason` code; the
prose beside it (``detail``) is for people and is never matched by code.

These values are what observers see, what the store records, what the wire carries
and what a ledger signs; nothing here imports anything but the standard library.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from colearning.core.interface import DiffPrivBudget


class Ballot(enum.Enum):
    """What a learner's entry on a candidate says."""

    APPROVE = "approve"
    REJECT = "reject"
    ABSTAIN = "abstain"


class Reason(enum.Enum):
    """Why a vote abstained or a proposal brought nothing usable.

    The first four are the ways a call to a learner can fail, whatever the transport.
    """

    RAISED = "raised"
    """The call raised an exception (in process) or the learner reported an error."""
    TIMED_OUT = "timed out"
    """The call ran past its deadline."""
    BAD_ANSWER = "bad answer"
    """The call returned something that is not a valid answer."""
    UNREACHABLE = "unreachable"
    """The learner could not be reached (down, disconnected, refused)."""
    NOT_ASKED = "not asked"
    """The learner was not asked: not in this round's committee, or nothing to vote on."""
    PROPOSER = "proposer"
    """The proposer scores its own proposal for the record; it does not vote on it."""
    BUDGET_EXHAUSTED = "privacy budget exhausted"
    """The proposer's differential-privacy budget cannot afford another proposal."""
    MALFORMED = "malformed proposal"
    """The proposal does not fit the shared model (names, shapes, dtypes) or holds NaN."""

    @property
    def is_failure(self) -> bool:
        """Whether this reason is a failed call (as opposed to a protocol choice)."""
        return self in _FAILURES


_FAILURES = frozenset({Reason.RAISED, Reason.TIMED_OUT, Reason.BAD_ANSWER, Reason.UNREACHABLE})


@dataclass(frozen=True)
class Failure:
    """A failed call to a learner: its :class:`Reason` and a message for people."""

    reason: Reason
    message: str

    def __post_init__(self) -> None:
        if not self.reason.is_failure:
            raise ValueError(f"a Failure's reason must be a failed call; got {self.reason}")

    def __str__(self) -> str:
        return (
            self.message
            if self.message.startswith(self.reason.value)
            else (f"{self.reason.value}: {self.message}")
        )


@dataclass(frozen=True)
class Vote:
    """One learner's entry on a candidate.

    ``ballot`` is approve, reject or abstain; an abstention carries its ``reason``
    (a failed call, not asked, or the proposer's own score). Only approvals of eligible
    voters count; everything else counts as not approving.
    """

    learner_id: str
    ballot: Ballot
    vote_score: float | None = None
    test_score: float | None = None
    reason: Reason | None = None
    detail: str | None = None
    seconds: float = 0.0
    signature: str | None = None

    @property
    def vote(self) -> bool | None:
        """``True`` approve, ``False`` reject, ``None`` abstain (Colearn's view)."""
        if self.ballot is Ballot.APPROVE:
            return True
        if self.ballot is Ballot.REJECT:
            return False
        return None

    @property
    def approves(self) -> bool:
        return self.ballot is Ballot.APPROVE

    @property
    def error(self) -> str | None:
        """Why the learner failed, if its call failed."""
        if self.reason is not None and self.reason.is_failure:
            return self.detail or self.reason.value
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "learner_id": self.learner_id,
            "ballot": self.ballot.value,
            "vote": self.vote,  # derived, for readers of the JSON
            "vote_score": self.vote_score,
            "test_score": self.test_score,
            "reason": None if self.reason is None else self.reason.value,
            "detail": self.detail,
            "seconds": self.seconds,
            "signature": self.signature,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Vote:
        reason = data.get("reason")
        return cls(
            learner_id=str(data["learner_id"]),
            ballot=Ballot(data["ballot"]),
            vote_score=_opt_float(data.get("vote_score")),
            test_score=_opt_float(data.get("test_score")),
            reason=None if reason is None else Reason(reason),
            detail=data.get("detail"),
            seconds=float(data.get("seconds") or 0.0),
            signature=data.get("signature"),
        )


@dataclass(frozen=True)
class Decision:
    """Whether the candidate was adopted, and the count behind it.

    ``threshold`` is the vote threshold as the integer fraction ``(num, den)`` the
    tally compares with (``approvals * den >= num * eligible``); ``decided_by`` names
    who decided: ``"tally"`` (the Python tally), ``"contract"`` (a ledger), or
    ``"check"`` (a malformed proposal, refused before any vote).
    """

    accepted: bool
    approvals: int
    eligible: int
    threshold: tuple[int, int]
    decided_by: str = "tally"

    def to_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "approvals": self.approvals,
            "eligible": self.eligible,
            "threshold": list(self.threshold),
            "decided_by": self.decided_by,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Decision:
        num, den = data["threshold"]
        return cls(
            accepted=bool(data["accepted"]),
            approvals=int(data["approvals"]),
            eligible=int(data["eligible"]),
            threshold=(int(num), int(den)),
            decided_by=str(data.get("decided_by", "tally")),
        )


@dataclass(frozen=True)
class Proposal:
    """One learner's proposal in a round.

    ``weights_id`` is ``None`` when nothing usable was proposed; ``reason`` then says
    why (a failed call, an exhausted privacy budget, a malformed proposal). In a
    screened round ``screening`` holds the votes on this proposal alone and
    ``screened`` their decision.
    """

    proposer_id: str
    weights_id: str | None
    reason: Reason | None = None
    detail: str | None = None
    dp_budget: DiffPrivBudget | None = None
    seconds: float = 0.0
    screening: tuple[Vote, ...] = ()
    screened: Decision | None = None

    @property
    def usable(self) -> bool:
        return self.reason is None

    def to_dict(self) -> dict[str, Any]:
        dp = self.dp_budget
        return {
            "proposer_id": self.proposer_id,
            "weights_id": self.weights_id,
            "reason": None if self.reason is None else self.reason.value,
            "detail": self.detail,
            "dp_budget": None
            if dp is None
            else {
                "target_epsilon": dp.target_epsilon,
                "target_delta": dp.target_delta,
                "consumed_epsilon": dp.consumed_epsilon,
                "consumed_delta": dp.consumed_delta,
            },
            "seconds": self.seconds,
            "screening": [v.to_dict() for v in self.screening],
            "screened": None if self.screened is None else self.screened.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Proposal:
        reason = data.get("reason")
        dp = data.get("dp_budget")
        screened = data.get("screened")
        return cls(
            proposer_id=str(data["proposer_id"]),
            weights_id=data.get("weights_id"),
            reason=None if reason is None else Reason(reason),
            detail=data.get("detail"),
            dp_budget=None if not dp else DiffPrivBudget(**dp),
            seconds=float(data.get("seconds") or 0.0),
            screening=tuple(Vote.from_dict(v) for v in data.get("screening") or ()),
            screened=None if screened is None else Decision.from_dict(screened),
        )


@dataclass(frozen=True)
class Candidate:
    """What the round's final vote is on: one proposal as it is (``combiner`` None),
    or proposals combined (``"mean"``, ``"median"``, ...) from ``sources``."""

    weights_id: str
    sources: tuple[str, ...]
    combiner: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "weights_id": self.weights_id,
            "sources": list(self.sources),
            "combiner": self.combiner,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Candidate:
        return cls(
            weights_id=str(data["weights_id"]),
            sources=tuple(str(s) for s in data.get("sources") or ()),
            combiner=data.get("combiner"),
        )


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)
