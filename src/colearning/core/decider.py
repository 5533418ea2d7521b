"""Who decides a round: the decider seam.

The driver collects the votes and asks a :class:`Decider`; it adopts the candidate
exactly when the decision says so. The default :class:`TallyDecider` is the Python
tally (:mod:`colearning.core.tally`); a ledger's decider submits the votes to a smart
contract and returns the contract's decision, and the driver obeys it all the same.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

from colearning.core.plans import CommitteeRandomness, RoundPlan
from colearning.core.protocol import Candidate, Decision, Proposal, Vote
from colearning.core.tally import passes, threshold_fraction


class Decider(abc.ABC):
    """Decides each round from its votes. Hooks let a decider follow the round."""

    #: Recorded in each :class:`~colearning.core.protocol.Decision`.
    name: str = "decider"

    def __init__(self, vote_threshold: float = 0.5) -> None:
        self.threshold = threshold_fraction(vote_threshold)
        self.vote_threshold = vote_threshold

    def committee_randomness(self) -> CommitteeRandomness | None:
        """Where committees are drawn from, if this decider says (a ledger: the
        chain's randomness); ``None``: the experiment's seed."""
        return None

    def begin(self, plan: RoundPlan) -> None:  # noqa: B027 - optional hook
        """A round starts (a ledger opens it on chain)."""

    def proposed(self, round_index: int, proposals: Sequence[Proposal]) -> None:  # noqa: B027
        """The round's proposals are in, usable or not (a ledger records their ids, or
        that the proposer passed)."""

    def sign_votes(
        self, round_index: int, candidate: Candidate, votes: tuple[Vote, ...]
    ) -> tuple[Vote, ...]:
        """The votes as recorded: a ledger returns them with each eligible voter's
        ``signature`` set; by default they are returned as they are."""
        return votes

    @abc.abstractmethod
    def decide(
        self,
        round_index: int,
        candidate: Candidate,
        votes: Sequence[Vote],
        eligible: Sequence[str],
    ) -> Decision:
        """The decision on ``candidate`` from ``votes`` of the ``eligible`` voters.

        ``votes`` may hold entries of learners that are not eligible (the proposer's
        own score); only eligible voters' approvals count, and an eligible voter
        without an approving vote counts as not approving.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class TallyDecider(Decider):
    """The Python tally: ``approvals >= vote_threshold * eligible``, in integers.

    >>> from colearning.core.protocol import Ballot, Candidate, Vote
    >>> votes = [Vote("a", Ballot.APPROVE), Vote("b", Ballot.REJECT)]
    >>> TallyDecider(0.5).decide(0, Candidate("id", ("c",)), votes, ["a", "b"]).accepted
    True
    """

    name = "tally"

    def decide(
        self,
        round_index: int,
        candidate: Candidate,
        votes: Sequence[Vote],
        eligible: Sequence[str],
    ) -> Decision:
        counted = set(eligible)
        approvals = sum(1 for v in votes if v.approves and v.learner_id in counted)
        return Decision(
            accepted=passes(approvals, len(counted), self.vote_threshold),
            approvals=approvals,
            eligible=len(counted),
            threshold=self.threshold,
            decided_by=self.name,
        )
