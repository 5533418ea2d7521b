"""Who proposes and who votes in a round: the plan seam.

A :class:`Planner` turns a round index and the learners' ids into a :class:`RoundPlan`.
The plan depends only on ``(seed, round_index)`` and the ids, never on the history, so
a resumed experiment plans exactly the rounds an uninterrupted one would.

Bundled planners: :class:`RoundRobin` (``round_index % n``, the default) and
:class:`RandomProposer` (seeded per round). Round modes with several proposers and
committees of voters plug in here.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from colearning.core.exceptions import ConfigError, ConfigTypeError

#: The names ``Experiment(proposer=...)`` and ``colearn run --proposer`` take.
PROPOSER_POLICIES = ("round-robin", "random")


@dataclass(frozen=True)
class RoundPlan:
    """One round's roles.

    Attributes
    ----------
    round_index
        The round.
    proposers
        Who trains and proposes (one, in the default single-proposer mode).
    testers
        Who is asked to score the candidate; includes the proposer in single mode (its
        own score is recorded, not counted).
    voters
        Whose ballots count: the eligible voters of the tally.
    mode
        ``"single"``: the one proposal is the candidate. Other modes combine proposals.
    committee
        The sampled voters when the round uses a committee, else ``None``.
    """

    round_index: int
    proposers: tuple[str, ...]
    testers: tuple[str, ...]
    voters: tuple[str, ...]
    mode: str = "single"
    committee: tuple[str, ...] | None = None
    options: dict[str, object] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not self.proposers:
            raise ConfigError(f"round {self.round_index}: a plan needs at least one proposer")
        missing = set(self.voters) - set(self.testers)
        if missing:
            raise ConfigError(
                f"round {self.round_index}: voters {sorted(missing)} are not asked to test"
            )


class Planner(abc.ABC):
    """Makes each round's :class:`RoundPlan`."""

    #: A short name for records and the CLI.
    name: str = "planner"

    @abc.abstractmethod
    def plan(self, round_index: int, learner_ids: Sequence[str]) -> RoundPlan:
        """The plan of ``round_index`` over ``learner_ids`` (in experiment order)."""

    def describe(self) -> dict[str, object]:
        """The planner's settings, as stored with the experiment."""
        return {"planner": self.name}


def single_proposer_plan(round_index: int, learner_ids: Sequence[str], proposer: int) -> RoundPlan:
    """DESIGN.md's round: ``proposer`` proposes, everyone scores, all others vote."""
    ids = tuple(learner_ids)
    pid = ids[proposer]
    return RoundPlan(
        round_index=round_index,
        proposers=(pid,),
        testers=ids,
        voters=tuple(i for i in ids if i != pid),
    )


class RoundRobin(Planner):
    """The proposer of round ``r`` is learner ``r % n``.

    >>> RoundRobin().plan(7, ["a", "b", "c"]).proposers
    ('b',)
    """

    name = "round-robin"

    def plan(self, round_index: int, learner_ids: Sequence[str]) -> RoundPlan:
        _check_round(round_index, learner_ids)
        return single_proposer_plan(round_index, learner_ids, round_index % len(learner_ids))


class RandomProposer(Planner):
    """A proposer drawn per round from a generator seeded with ``(seed, round_index)``.

    >>> a = RandomProposer(seed=3).plan(5, ["a", "b", "c"]).proposers
    >>> a == RandomProposer(seed=3).plan(5, ["a", "b", "c"]).proposers
    True
    """

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ConfigError(f"seed must be an integer >= 0; got {seed!r}")
        self.seed = int(seed)

    def plan(self, round_index: int, learner_ids: Sequence[str]) -> RoundPlan:
        _check_round(round_index, learner_ids)
        pick = int(np.random.default_rng([self.seed, round_index]).integers(len(learner_ids)))
        return single_proposer_plan(round_index, learner_ids, pick)

    def describe(self) -> dict[str, object]:
        return {"planner": self.name, "seed": self.seed}


def planner_for(policy: str | Planner, seed: int = 0) -> Planner:
    """The planner of a proposer policy name (``"round-robin"``, ``"random"``), or
    ``policy`` itself if it is a :class:`Planner` already."""
    if isinstance(policy, Planner):
        return policy
    if policy == "round-robin":
        return RoundRobin()
    if policy == "random":
        return RandomProposer(seed)
    if not isinstance(policy, str):
        raise ConfigTypeError(
            f"proposer must be one of {', '.join(PROPOSER_POLICIES)} or a Planner; "
            f"got {type(policy).__name__}"
        )
    raise ConfigError(
        f"proposer policy must be one of {', '.join(PROPOSER_POLICIES)}; got {policy!r}"
    )


def choose_proposer(policy: str, round_index: int, n_learners: int, seed: int) -> int:
    """The index of ``round_index``'s proposer under a named single-proposer policy."""
    ids = [str(i) for i in range(n_learners)]
    return int(planner_for(policy, seed).plan(round_index, ids).proposers[0])


def _check_round(round_index: int, learner_ids: Sequence[str]) -> None:
    if not learner_ids:
        raise ConfigError("a round needs at least 1 learner; got 0")
    if isinstance(round_index, bool) or not isinstance(round_index, int | np.integer):
        raise ConfigTypeError(f"round_index must be an integer >= 0; got {round_index!r}")
    if round_index < 0:
        raise ConfigError(f"round_index must be an integer >= 0; got {round_index}")
