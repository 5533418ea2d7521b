"""Who watches a round: observers see it as it happens and never change it.

Subclass :class:`RoundObserver` and override the steps you care about; every value
handed over is frozen. A plain callable ``f(record)`` is an observer of committed
rounds only (what the progress table uses).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from colearning.core.plans import RoundPlan
from colearning.core.protocol import Decision, Proposal, Vote
from colearning.core.records import RoundRecord


class RoundObserver:
    """Called at each step of each round, in order: ``round_started``, ``proposed``,
    ``voted`` (only when a candidate was put to the vote), ``decided`` (likewise),
    ``committed`` (always, after the round is durable)."""

    def round_started(self, plan: RoundPlan) -> None:
        """The round's plan is made; nobody has been called yet."""

    def proposed(self, round_index: int, proposals: Sequence[Proposal]) -> None:
        """Every proposal of the round is in (usable or not)."""

    def voted(self, round_index: int, votes: Sequence[Vote]) -> None:
        """Every learner's entry on the candidate is in."""

    def decided(self, round_index: int, decision: Decision) -> None:
        """The decider decided; accepted weights are being adopted."""

    def committed(self, record: RoundRecord) -> None:
        """The round is recorded (in the experiment directory, if there is one)."""


class _Committed(RoundObserver):
    def __init__(self, fn: Callable[[RoundRecord], None]) -> None:
        self.fn = fn

    def committed(self, record: RoundRecord) -> None:
        self.fn(record)


def as_observer(observer: RoundObserver | Callable[[RoundRecord], None]) -> RoundObserver:
    """``observer`` itself, or a callable wrapped as an observer of committed rounds."""
    if isinstance(observer, RoundObserver):
        return observer
    if callable(observer):
        return _Committed(observer)
    from colearning.core.exceptions import ConfigTypeError

    raise ConfigTypeError(
        f"an observer must be a RoundObserver or a callable(record); got {type(observer).__name__}"
    )


class Observers(RoundObserver):
    """Several observers called in order."""

    def __init__(
        self, observers: Sequence[RoundObserver | Callable[[RoundRecord], None]] = ()
    ) -> None:
        self.members = [as_observer(o) for o in observers]

    def round_started(self, plan: RoundPlan) -> None:
        for o in self.members:
            o.round_started(plan)

    def proposed(self, round_index: int, proposals: Sequence[Proposal]) -> None:
        for o in self.members:
            o.proposed(round_index, proposals)

    def voted(self, round_index: int, votes: Sequence[Vote]) -> None:
        for o in self.members:
            o.voted(round_index, votes)

    def decided(self, round_index: int, decision: Decision) -> None:
        for o in self.members:
            o.decided(round_index, decision)

    def committed(self, record: RoundRecord) -> None:
        for o in self.members:
            o.committed(record)
