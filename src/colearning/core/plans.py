"""Who proposes and who votes in a round: the plan seam.

A :class:`Planner` turns a round index and the learners' ids into a :class:`RoundPlan`.
The plan depends only on ``(seed, round_index)`` and the ids, never on the history, so
a resumed experiment plans exactly the rounds an uninterrupted one would.

Bundled planners: :class:`RoundRobin` (``round_index % n``, the default) and
:class:`RandomProposer` (seeded per round) plan the single-proposer round;
:class:`AggregatePlanner` plans the ``aggregate`` and ``screened`` rounds (k proposers,
all or a sample seeded by ``(seed, round_index)``, one combined candidate that every
learner votes on). Committees of voters plug in here too.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from colearning.core.combiners import Combiner
from colearning.core.exceptions import ConfigError, ConfigTypeError

#: The names ``Experiment(proposer=...)`` and ``colearn run --proposer`` take.
PROPOSER_POLICIES = ("round-robin", "random")
#: The round modes ``Experiment(mode=...)`` and ``colearn run --mode`` take.
ROUND_MODES = ("single", "aggregate", "screened")


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
        ``"single"``: the one proposal is the candidate. ``"aggregate"``: the
        proposals are combined into the candidate. ``"screened"``: each proposal is
        first voted on by the voters other than its proposer, and the approved ones
        are combined.
    committee
        The sampled voters when the round uses a committee, else ``None``.
    options
        Settings of the mode: ``options["combiner"]`` is the
        :class:`~colearning.core.combiners.Combiner` of an aggregate or screened round.
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
        if self.mode not in ROUND_MODES:
            raise ConfigError(
                f"round {self.round_index}: mode must be one of {', '.join(ROUND_MODES)}; "
                f"got {self.mode!r}"
            )
        if self.mode == "single" and len(self.proposers) != 1:
            raise ConfigError(
                f"round {self.round_index}: a single-mode plan has one proposer; got "
                f"{len(self.proposers)} (use mode 'aggregate' to combine several)"
            )

    @property
    def combiner(self) -> Combiner:
        """The combiner of an aggregate or screened round (the weighted mean unless the
        plan's ``options`` name another)."""
        chosen = self.options.get("combiner", "mean")
        if isinstance(chosen, (str, Combiner)):
            return Combiner.parse(chosen)
        raise ConfigTypeError(
            f"round {self.round_index}: options['combiner'] must be a Combiner or a name "
            f"such as 'median'; got {type(chosen).__name__}"
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


class AggregatePlanner(Planner):
    """``k`` proposers train from the same current model; their proposals are combined
    into one candidate, and every learner (the proposers too) votes on it.

    Parameters
    ----------
    proposers
        How many learners propose each round: all (``None``, the default) or a sample
        of ``proposers`` drawn from a generator seeded with ``(seed, round_index)``, so a
        resumed run draws the same ones. Listed in experiment order.
    seed
        Seeds the sample.
    combiner
        A :class:`~colearning.core.combiners.Combiner` or its name (``"mean"``,
        ``"median"``, ``"trimmed-mean"``, ``"trimmed-mean:0.25"``).
    screened
        Plan ``screened`` rounds: each proposal is first voted on by the others and
        only the approved ones are combined.

    Examples
    --------
    >>> plan = AggregatePlanner(proposers=2, seed=1).plan(4, ["a", "b", "c"])
    >>> plan.mode, len(plan.proposers), plan.voters
    ('aggregate', 2, ('a', 'b', 'c'))
    >>> AggregatePlanner(screened=True).plan(0, ["a", "b"]).mode
    'screened'
    """

    def __init__(
        self,
        proposers: int | None = None,
        seed: int = 0,
        combiner: str | Combiner = "mean",
        screened: bool = False,
    ) -> None:
        if proposers is not None and (
            isinstance(proposers, bool)
            or not isinstance(proposers, int | np.integer)
            or proposers < 1
        ):
            raise ConfigError(
                f"proposers must be a whole number >= 1, or None for every learner; "
                f"got {proposers!r}"
            )
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ConfigError(f"seed must be an integer >= 0; got {seed!r}")
        self.proposers = None if proposers is None else int(proposers)
        self.seed = int(seed)
        self.combiner = Combiner.parse(combiner)
        self.mode = "screened" if screened else "aggregate"
        self.name = self.mode

    def plan(self, round_index: int, learner_ids: Sequence[str]) -> RoundPlan:
        _check_round(round_index, learner_ids)
        ids = tuple(learner_ids)
        k = len(ids) if self.proposers is None else min(self.proposers, len(ids))
        if k < len(ids):
            rng = np.random.default_rng([self.seed, round_index])
            picked = sorted(int(i) for i in rng.choice(len(ids), size=k, replace=False))
            chosen = tuple(ids[i] for i in picked)
        else:
            chosen = ids
        return RoundPlan(
            round_index=round_index,
            proposers=chosen,
            testers=ids,
            voters=ids,
            mode=self.mode,
            options={"combiner": self.combiner},
        )

    def describe(self) -> dict[str, object]:
        return {
            "planner": self.name,
            "proposers": self.proposers,
            "seed": self.seed,
            "combiner": self.combiner.spec,
        }


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


def planner_for_mode(
    mode: str,
    proposer: str | Planner = "round-robin",
    seed: int = 0,
    combiner: str | Combiner = "mean",
    proposers: int | None = None,
) -> Planner:
    """The planner of a round mode: ``proposer``'s for ``"single"`` rounds, an
    :class:`AggregatePlanner` for ``"aggregate"`` and ``"screened"`` ones.

    >>> planner_for_mode("screened", proposers=2).describe()["planner"]
    'screened'
    """
    if mode not in ROUND_MODES:
        raise ConfigError(f"mode must be one of {', '.join(ROUND_MODES)}; got {mode!r}")
    if mode == "single":
        if proposers is not None:
            raise ConfigError(
                f"proposers={proposers} sets how many learners propose in an aggregate or "
                "screened round; a single round has one proposer (drop it, or choose mode "
                "aggregate)"
            )
        Combiner.parse(combiner)  # a typo fails here too, not only in another mode
        return planner_for(proposer, seed)
    if isinstance(proposer, Planner) or proposer != "round-robin":
        shown = type(proposer).__name__ if isinstance(proposer, Planner) else repr(proposer)
        raise ConfigError(
            f"proposer {shown} picks the one proposer of a single round; the proposers "
            f"of a {mode} round are every learner or a seeded sample (set proposers=K "
            "instead)"
        )
    return AggregatePlanner(proposers, seed, combiner, screened=mode == "screened")


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
