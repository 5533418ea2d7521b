"""Who proposes and who votes in a round: the plan seam.

A :class:`Planner` turns a round index and the learners' ids into a :class:`RoundPlan`.
The plan depends only on ``(seed, round_index)`` and the ids, never on the history, so
a resumed experiment plans exactly the rounds an uninterrupted one would.

Bundled planners: :class:`RoundRobin` (``round_index % n``, the default) and
:class:`RandomProposer` (seeded per round) plan the single-proposer round;
:class:`AggregatePlanner` plans the ``aggregate`` and ``screened`` rounds (k proposers,
all or a sample seeded by ``(seed, round_index)``, one combined candidate that every
learner votes on); :class:`CommitteePlanner` wraps any of them and lets a sampled
committee of K voters (drawn from the non-proposers) vote instead of everyone.

A committee is drawn from the non-proposers by :func:`sample_indices`, a partial
Fisher-Yates shuffle driven by SHA-256, so anyone holding the round's seed bytes can
recompute it without NumPy (an auditor, a contract). Where the seed bytes come from is
a :class:`CommitteeRandomness`: :class:`SeededRandomness` derives them from
``(seed, round_index)``; a ledger can supply the chain's randomness instead, so that no
party chooses its committee.
"""

from __future__ import annotations

import abc
import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

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


class SingleProposerPlanner(Planner):
    """A planner whose rounds have one proposer, chosen by :meth:`proposer_index`."""

    @abc.abstractmethod
    def proposer_index(self, round_index: int, n_learners: int) -> int:
        """The position of ``round_index``'s proposer among ``n_learners``."""

    def plan(self, round_index: int, learner_ids: Sequence[str]) -> RoundPlan:
        _check_round(round_index, learner_ids)
        pick = self.proposer_index(round_index, len(learner_ids))
        return single_proposer_plan(round_index, learner_ids, pick)


class RoundRobin(SingleProposerPlanner):
    """The proposer of round ``r`` is learner ``r % n``.

    >>> RoundRobin().plan(7, ["a", "b", "c"]).proposers
    ('b',)
    """

    name = "round-robin"

    def proposer_index(self, round_index: int, n_learners: int) -> int:
        return int(round_index) % n_learners


class RandomProposer(SingleProposerPlanner):
    """A proposer drawn per round from a generator seeded with ``(seed, round_index)``.

    >>> a = RandomProposer(seed=3).plan(5, ["a", "b", "c"]).proposers
    >>> a == RandomProposer(seed=3).plan(5, ["a", "b", "c"]).proposers
    True
    """

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.seed = _check_seed(seed)

    def proposer_index(self, round_index: int, n_learners: int) -> int:
        return int(np.random.default_rng([self.seed, round_index]).integers(n_learners))

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
            **self.combiner.describe(),
        }


# -- committees ---------------------------------------------------------------------------


@runtime_checkable
class CommitteeRandomness(Protocol):
    """Where a round's committee comes from: the seed bytes of its draw.

    The bytes must be fixed by the round alone (a resumed experiment draws the same
    committees) and, for a committee to bound anyone's influence, be beyond any one
    party's choosing: derived from a seed fixed in advance (:class:`SeededRandomness`)
    or taken from a ledger's randomness once the round is opened.
    """

    def round_seed(self, round_index: int) -> bytes:
        """The seed bytes of ``round_index``'s committee draw."""
        ...

    def describe(self) -> dict[str, object]:
        """What to store with the experiment to draw the same committees again."""
        ...


@dataclass(frozen=True)
class SeededRandomness:
    """Committee seed bytes from the experiment's seed and the round index:
    ``SHA-256("colearning-committee:{seed}:{round_index}")``.

    >>> SeededRandomness(0).round_seed(3).hex()[:16]
    '235207637b470f58'
    """

    seed: int = 0

    def __post_init__(self) -> None:
        _check_seed(self.seed)

    def round_seed(self, round_index: int) -> bytes:
        return hashlib.sha256(f"colearning-committee:{self.seed}:{round_index}".encode()).digest()

    def describe(self) -> dict[str, object]:
        return {"randomness": "seed", "seed": self.seed}


def sample_indices(seed: bytes, population: int, k: int) -> list[int]:
    """``k`` distinct integers from ``range(population)``, drawn from ``seed`` alone.

    A partial Fisher-Yates shuffle of ``0 .. population-1``: step ``i`` swaps position
    ``i`` with a position drawn uniformly from ``i .. population-1`` and keeps what
    lands at ``i``. The draws use a stream of 64-bit values: value ``j`` (counting from
    0 over the whole call) is bytes ``8 * (j % 4)`` to ``8 * (j % 4) + 8``, big-endian,
    of ``SHA-256(seed || (j // 4) as 8 bytes big-endian)``. A value in the top,
    incomplete multiple of the range is skipped and the next one taken (rejection
    sampling), so every position is exactly equally likely. Memory and time grow with
    ``k``, not with ``population``. Returned in draw order.

    >>> sample_indices(b"round seed", 10, 3)
    [3, 2, 1]
    >>> sorted(sample_indices(b"x", 5, 5))
    [0, 1, 2, 3, 4]
    """
    if not 0 <= k <= population:
        raise ConfigError(f"cannot draw {k} distinct values from {population}")
    base = hashlib.sha256(seed)
    stream: list[int] = []

    def extend(count: int) -> None:
        # the values of the next blocks, in stream order
        for _ in range((count + 3) // 4):
            h = base.copy()
            h.update((len(stream) // 4).to_bytes(8, "big"))
            stream.extend(_FOUR_VALUES.unpack(h.digest()))

    extend(k)  # a rejection is rarer than one in 2**44 here: the stream rarely grows
    swapped: dict[int, int] = {}
    out: list[int] = []
    space = 1 << 64
    n = 0  # values used
    for i in range(k):
        span = population - i
        limit = space - space % span
        while True:
            if n == len(stream):
                extend(4)
            value = stream[n]
            n += 1
            if value < limit:
                break
        j = i + value % span
        out.append(swapped.get(j, j))
        swapped[j] = swapped.get(i, i)
    return out


#: A digest as its four 64-bit big-endian values (bytes 0-8, 8-16, 16-24, 24-32).
_FOUR_VALUES = struct.Struct(">4Q")


class CommitteePlanner(Planner):
    """Rounds of another planner, voted on by a committee of ``size`` learners.

    The proposers are the inner planner's; the committee is ``size`` learners drawn
    from the others by :func:`sample_indices` with ``randomness``'s seed bytes for the
    round. The committee are the eligible voters (the tally's denominator, with the same
    rule); they and the proposers are asked to test (the proposer's own score is
    recorded, not counted); nobody else is called.

    Parameters
    ----------
    planner
        Who proposes (a :class:`RoundRobin` or :class:`RandomProposer`, or any planner).
    size
        Voters per round, >= 1 and at most the number of non-proposers.
    randomness
        Where each round's draw comes from; default :class:`SeededRandomness` ``(0)``.

    Examples
    --------
    >>> ids = [f"learner-{i}" for i in range(10)]
    >>> plan = CommitteePlanner(RoundRobin(), 3, SeededRandomness(0)).plan(2, ids)
    >>> plan.proposers, plan.committee
    (('learner-2',), ('learner-0', 'learner-5', 'learner-7'))
    >>> plan.voters == plan.committee and plan.testers
    ('learner-0', 'learner-2', 'learner-5', 'learner-7')
    """

    name = "committee"

    def __init__(
        self,
        planner: Planner,
        size: int,
        randomness: CommitteeRandomness | None = None,
    ) -> None:
        if isinstance(planner, CommitteePlanner):
            raise ConfigError("a CommitteePlanner wraps a proposer planner, not another committee")
        self.planner = planner
        self.size = check_committee_size(size)
        self.randomness: CommitteeRandomness = (
            randomness if randomness is not None else SeededRandomness(0)
        )

    def plan(self, round_index: int, learner_ids: Sequence[str]) -> RoundPlan:
        _check_round(round_index, learner_ids)
        n = len(learner_ids)
        inner = self.planner
        if isinstance(inner, SingleProposerPlanner):
            # the fast path: no plan of n voters is built only to be thrown away
            excluded = [inner.proposer_index(round_index, n)]
            base_mode, options = "single", {}
        else:
            base = inner.plan(round_index, learner_ids)
            position = {lid: i for i, lid in enumerate(learner_ids)}
            excluded = sorted({position[p] for p in base.proposers})
            base_mode, options = base.mode, dict(base.options)
        eligible = n - len(excluded)
        if self.size > eligible:
            raise ConfigError(
                f"round {round_index}: a committee of {self.size} needs at least "
                f"{self.size} learners besides the proposer(s); there are {eligible}. "
                "Use a smaller committee or more learners"
            )
        chosen = draw_committee(self.randomness.round_seed(round_index), n, self.size, excluded)
        committee = tuple([learner_ids[i] for i in chosen])
        testers = tuple([learner_ids[i] for i in sorted(chosen + excluded)])
        return RoundPlan(
            round_index=round_index,
            proposers=tuple([learner_ids[i] for i in excluded]),
            testers=testers,
            voters=committee,
            mode=base_mode,
            committee=committee,
            options=options,
        )

    def describe(self) -> dict[str, object]:
        return {
            **self.planner.describe(),
            "committee": self.size,
            **self.randomness.describe(),
        }


def check_committee_size(size: object, n_learners: int | None = None) -> int:
    """``size`` as an int, after checking it is a whole number >= 1 (and, given
    ``n_learners``, at most the ``n_learners - 1`` learners besides the proposer)."""
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
        raise ConfigError(f"committee must be a whole number of voters >= 1; got {size!r}")
    if n_learners is not None and size > n_learners - 1:
        raise ConfigError(
            f"committee must be at most {n_learners - 1} (the learners besides the "
            f"proposer) with {n_learners} learners; got {size}"
        )
    return int(size)


def draw_committee(seed: bytes, n_learners: int, size: int, excluded: Sequence[int]) -> list[int]:
    """The positions (sorted) of the ``size`` committee members among ``n_learners``
    drawn from ``seed``: :func:`sample_indices` over the learners not in ``excluded``
    (the proposers' positions, sorted), in experiment order. The ledger contract draws
    the same members from the same seed.

    >>> draw_committee(b"round seed", 11, 3, [2])  # sample_indices gives [3, 2, 1]
    [1, 3, 4]
    """
    picks = sample_indices(seed, n_learners - len(excluded), size)
    return sorted(_skip(picks, excluded))


def _skip(picks: Sequence[int], excluded: Sequence[int]) -> list[int]:
    """Map positions among the non-excluded back to positions among all (``excluded``
    sorted): each pick moves past every excluded position at or below it."""
    out = []
    for p in picks:
        for e in excluded:
            if e <= p:
                p += 1
            else:
                break
        out.append(p)
    return out


def planner_for(
    policy: str | Planner,
    seed: int = 0,
    committee: int | None = None,
    randomness: CommitteeRandomness | None = None,
) -> Planner:
    """The planner of a proposer policy name (``"round-robin"``, ``"random"``), or
    ``policy`` itself if it is a :class:`Planner` already; with ``committee``, wrapped
    in a :class:`CommitteePlanner` of that size drawing from ``randomness`` (default:
    :class:`SeededRandomness` of ``seed``)."""
    if committee is not None:
        draws = randomness if randomness is not None else SeededRandomness(seed)
        return CommitteePlanner(planner_for(policy, seed), committee, draws)
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
    committee: int | None = None,
    randomness: CommitteeRandomness | None = None,
) -> Planner:
    """The planner of a round mode: ``proposer``'s for ``"single"`` rounds, an
    :class:`AggregatePlanner` for ``"aggregate"`` and ``"screened"`` ones; with
    ``committee``, wrapped in a :class:`CommitteePlanner` of that size drawing from
    ``randomness`` (default: :class:`SeededRandomness` of ``seed``; the committee is
    drawn from the learners that do not propose).

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
        parsed = Combiner.parse(combiner)  # a typo fails here too, not only in another mode
        if parsed.has_server_step:
            raise ConfigError(
                f"combiner {parsed.label!r} takes a server step from combined proposals; a "
                "single round has one proposal, voted on as it is (drop server_lr and "
                "server_momentum, or choose mode aggregate)"
            )
        return planner_for(proposer, seed, committee, randomness)
    if isinstance(proposer, Planner) or proposer != "round-robin":
        shown = type(proposer).__name__ if isinstance(proposer, Planner) else repr(proposer)
        raise ConfigError(
            f"proposer {shown} picks the one proposer of a single round; the proposers "
            f"of a {mode} round are every learner or a seeded sample (set proposers=K "
            "instead)"
        )
    planner = AggregatePlanner(proposers, seed, combiner, screened=mode == "screened")
    if committee is not None:
        draws = randomness if randomness is not None else SeededRandomness(seed)
        return CommitteePlanner(planner, committee, draws)
    return planner


def choose_proposer(policy: str, round_index: int, n_learners: int, seed: int) -> int:
    """The index of ``round_index``'s proposer under a named single-proposer policy."""
    ids = [str(i) for i in range(n_learners)]
    return int(planner_for(policy, seed).plan(round_index, ids).proposers[0])


def _check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError(f"seed must be an integer >= 0; got {seed!r}")
    return int(seed)


def _check_round(round_index: int, learner_ids: Sequence[str]) -> None:
    if not learner_ids:
        raise ConfigError("a round needs at least 1 learner; got 0")
    if isinstance(round_index, bool) or not isinstance(round_index, int | np.integer):
        raise ConfigTypeError(f"round_index must be an integer >= 0; got {round_index!r}")
    if round_index < 0:
        raise ConfigError(f"round_index must be an integer >= 0; got {round_index}")
