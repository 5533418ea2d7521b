"""What one round leaves behind: a frozen :class:`RoundRecord`, JSON-ready via ``to_dict``.

A record holds the round's proposals, the candidate, one vote per learner asked and the
decision (the values of :mod:`colearning.core.protocol`), the shared weights it moved
from and to, and phase timings. Records written by the first version of the store
(schema 1, one proposal a round, votes as booleans) are read with :meth:`from_v1`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from colearning.core.interface import DiffPrivBudget
from colearning.core.protocol import Ballot, Candidate, Decision, Proposal, Reason, Vote

RoundStatus = Literal["accepted", "rejected", "skipped"]

#: Colearn-era name of one learner's entry in a round.
VoteRecord = Vote


@dataclass(frozen=True)
class PhaseTimings:
    """Wall seconds of each phase of a round."""

    propose: float = 0.0
    validate: float = 0.0
    accept: float = 0.0
    total: float = 0.0


@dataclass(frozen=True)
class RoundRecord:
    """Everything the experiment records about one round.

    ``status`` is ``"accepted"`` or ``"rejected"`` (the candidate was voted on, or a
    malformed proposal was refused before any vote), or ``"skipped"`` (no usable
    proposal). ``votes`` has one entry per learner asked to test the candidate (every
    learner, unless a committee voted), in the experiment's learner order; a learner
    without an entry was not asked (none is, in a round with nothing to vote on).
    ``committee`` lists the learners drawn to vote when the round used a committee.
    """

    round_index: int
    status: RoundStatus
    proposals: tuple[Proposal, ...]
    votes: tuple[Vote, ...]
    decision: Decision | None
    candidate: Candidate | None
    previous_weights_id: str
    current_weights_id: str
    timings: PhaseTimings = PhaseTimings()
    mode: str = "single"
    committee: tuple[str, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    # -- views for one-proposal rounds (Colearn's vocabulary) ------------------------

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"

    @property
    def proposer_id(self) -> str:
        """The (first) proposer."""
        return self.proposals[0].proposer_id if self.proposals else ""

    @property
    def proposer_ids(self) -> tuple[str, ...]:
        return tuple(p.proposer_id for p in self.proposals)

    @property
    def weights_id(self) -> str | None:
        """The id of the weights put to the vote (``None`` if nothing was)."""
        return None if self.candidate is None else self.candidate.weights_id

    @property
    def approvals(self) -> int:
        return 0 if self.decision is None else self.decision.approvals

    @property
    def eligible(self) -> int:
        return 0 if self.decision is None else self.decision.eligible

    @property
    def reason(self) -> str | None:
        """Why a proposal brought nothing usable, for people (first such proposal)."""
        for p in self.proposals:
            if p.reason is not None:
                return p.detail or p.reason.value
        return None

    @property
    def reason_code(self) -> Reason | None:
        for p in self.proposals:
            if p.reason is not None:
                return p.reason
        return None

    @property
    def dp_budget(self) -> DiffPrivBudget | None:
        for p in self.proposals:
            if p.dp_budget is not None:
                return p.dp_budget
        return None

    # -- JSON -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        # Written out by hand: dataclasses.asdict deep-copies every field and made up
        # most of the driver's per-round cost with 1,000 learners.
        t = self.timings
        return {
            "round_index": self.round_index,
            "mode": self.mode,
            "status": self.status,
            # derived, for readers of the JSON (from_dict ignores them)
            "proposer_id": self.proposer_id,
            "weights_id": self.weights_id,
            "previous_weights_id": self.previous_weights_id,
            "current_weights_id": self.current_weights_id,
            "proposals": [p.to_dict() for p in self.proposals],
            "candidate": None if self.candidate is None else self.candidate.to_dict(),
            "votes": [v.to_dict() for v in self.votes],
            "decision": None if self.decision is None else self.decision.to_dict(),
            "committee": None if self.committee is None else list(self.committee),
            "timings": {
                "propose": t.propose,
                "validate": t.validate,
                "accept": t.accept,
                "total": t.total,
            },
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RoundRecord:
        candidate = data.get("candidate")
        decision = data.get("decision")
        committee = data.get("committee")
        status = data["status"]
        if status not in ("accepted", "rejected", "skipped"):
            raise ValueError(f"status must be accepted, rejected or skipped; got {status!r}")
        return cls(
            round_index=int(data["round_index"]),
            status=status,
            proposals=tuple(Proposal.from_dict(p) for p in data["proposals"]),
            votes=tuple(Vote.from_dict(v) for v in data["votes"]),
            decision=None if decision is None else Decision.from_dict(decision),
            candidate=None if candidate is None else Candidate.from_dict(candidate),
            previous_weights_id=str(data["previous_weights_id"]),
            current_weights_id=str(data["current_weights_id"]),
            timings=PhaseTimings(**data["timings"]),
            mode=str(data.get("mode", "single")),
            committee=None if committee is None else tuple(str(c) for c in committee),
            extra=dict(data.get("extra") or {}),
        )

    @classmethod
    def from_v1(
        cls, data: dict[str, Any], previous_weights_id: str, threshold: tuple[int, int]
    ) -> RoundRecord:
        """A record of the first store schema (one proposal, boolean votes).

        The first schema did not keep the weights a round moved from, nor the
        threshold: the caller passes them (the round before's weights, the stored
        config's threshold).
        """
        status = data["status"]
        proposer = str(data["proposer_id"])
        text = data.get("reason")
        reason = _v1_reason(text)
        weights_id = data.get("weights_id")
        dp = data.get("dp_budget")
        proposal = Proposal(
            proposer_id=proposer,
            weights_id=weights_id if reason is None else None,
            reason=reason,
            detail=text,
            dp_budget=DiffPrivBudget(**dp) if dp else None,
            seconds=float(data["timings"].get("propose", 0.0)),
        )
        voted = status != "skipped" and reason is None
        votes = tuple(_v1_vote(v, proposer, voted) for v in data["votes"])
        decision = None
        if status != "skipped":
            decision = Decision(
                accepted=status == "accepted",
                approvals=int(data["approvals"]),
                eligible=int(data["eligible"]),
                threshold=threshold,
                decided_by="tally" if voted else "check",
            )
        return cls(
            round_index=int(data["round_index"]),
            status=status,
            proposals=(proposal,),
            votes=votes,
            decision=decision,
            candidate=Candidate(str(weights_id), (proposer,)) if voted and weights_id else None,
            previous_weights_id=previous_weights_id,
            current_weights_id=str(data["current_weights_id"]),
            timings=PhaseTimings(**data["timings"]),
            extra=dict(data.get("extra") or {}),
        )


def _v1_reason(text: str | None) -> Reason | None:
    if not text:
        return None
    if text == Reason.BUDGET_EXHAUSTED.value:
        return Reason.BUDGET_EXHAUSTED
    if text.startswith("malformed proposal"):
        return Reason.MALFORMED
    if text.startswith("proposer returned"):
        return Reason.BAD_ANSWER
    if "timed out" in text:
        return Reason.TIMED_OUT
    return Reason.RAISED


def _v1_vote(data: dict[str, Any], proposer: str, voted: bool) -> Vote:
    learner_id = str(data["learner_id"])
    vote_score = data.get("vote_score")
    test_score = data.get("test_score")
    seconds = float(data.get("seconds") or 0.0)
    error = data.get("error")
    ballot = Ballot.ABSTAIN
    reason: Reason | None = Reason.NOT_ASKED
    if voted and learner_id == proposer:
        reason = Reason.PROPOSER if not error else _v1_failure(error)
    elif voted and error:
        reason = _v1_failure(error)
    elif voted:
        ballot = Ballot.APPROVE if data.get("vote") else Ballot.REJECT
        reason = None
    return Vote(
        learner_id,
        ballot,
        vote_score=None if vote_score is None else float(vote_score),
        test_score=None if test_score is None else float(test_score),
        reason=reason,
        detail=error if voted else None,
        seconds=seconds,
    )


def _v1_failure(error: str) -> Reason:
    if error.startswith("timed out"):
        return Reason.TIMED_OUT
    if error.startswith("answered"):
        return Reason.BAD_ANSWER
    return Reason.RAISED


def proposals_made(rounds: Sequence[RoundRecord], learner_id: str) -> int:
    """How many proposals ``learner_id`` made (trained) in ``rounds``: every proposal it
    returned, malformed ones included, but not failed calls or refused budgets."""
    made = 0
    for record in rounds:
        for p in record.proposals:
            if p.proposer_id == learner_id and (p.reason is None or p.reason is Reason.MALFORMED):
                made += 1
    return made
