"""How large a committee must be: the exact chance that malicious voters carry a round.

With a committee of ``K`` voters drawn from the ``N - 1`` non-proposers, a proposal
passes when ``approvals >= vote_threshold * K`` (the tally's rule, in integers: at
least ``needed = ceil(num * K / den)`` approvals for the threshold ``num / den``). The
danger is a committee holding ``needed`` malicious voters, who can then pass a bad
proposal on their own whatever the honest voters say. If ``M`` of the learners are
malicious and all of them sit among the non-proposers (the worst case, whoever
proposes), the number of malicious voters in a committee is hypergeometric::

    risk(K) = P(X >= needed),  X ~ Hypergeometric(population N - 1, M marked, K draws)
            = sum_{x = needed}^{min(K, M)} C(M, x) C(N - 1 - M, K - x) / C(N - 1, K)

computed here exactly, in integers (:func:`committee_risk`). :func:`committee_size` is
the smallest ``K`` whose risk is below a target; the risk is not monotone in ``K``
(an even committee needs as many approvals as the odd one above it), so every ``K`` is
tried from 1 up. Nothing here imports anything but the standard library.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from colearning.core.exceptions import ConfigError
from colearning.core.tally import threshold_fraction

__all__ = [
    "CommitteeSize",
    "approvals_needed",
    "committee_risk",
    "committee_risk_exact",
    "committee_size",
    "committee_table",
    "malicious_count",
]


@dataclass(frozen=True)
class CommitteeSize:
    """A committee size and what it guarantees.

    ``risk`` is the probability that a committee of ``committee`` voters drawn from the
    ``learners - 1`` non-proposers holds at least ``approvals_needed`` of the
    ``malicious`` learners.
    """

    committee: int
    risk: float
    learners: int
    malicious: int
    vote_threshold: float
    approvals_needed: int

    def to_dict(self) -> dict[str, object]:
        return {
            "committee": self.committee,
            "risk": self.risk,
            "learners": self.learners,
            "malicious": self.malicious,
            "vote_threshold": self.vote_threshold,
            "approvals_needed": self.approvals_needed,
        }


def malicious_count(learners: int, malicious_share: float) -> int:
    """How many of ``learners`` a share of ``malicious_share`` is, rounded up (the
    share is read as the decimal it was written as: 0.33 of 100 is 33).

    >>> malicious_count(1000, 0.2), malicious_count(100, 0.33), malicious_count(10, 0.05)
    (200, 33, 1)
    """
    _check_learners(learners)
    if isinstance(malicious_share, bool) or not isinstance(malicious_share, int | float):
        raise ConfigError(f"malicious share must be a number in [0, 1); got {malicious_share!r}")
    if not 0.0 <= float(malicious_share) < 1.0:
        raise ConfigError(
            f"malicious share must be in [0, 1); got {malicious_share} (0.2 means one "
            "learner in five is malicious)"
        )
    return math.ceil(Fraction(repr(float(malicious_share))) * learners)


def approvals_needed(size: int, vote_threshold: float) -> int:
    """The fewest approvals that carry a committee of ``size`` at ``vote_threshold``.

    >>> approvals_needed(10, 0.5), approvals_needed(11, 0.5), approvals_needed(3, 2 / 3)
    (5, 6, 2)
    """
    num, den = threshold_fraction(vote_threshold)
    return -(-num * size // den)


def committee_risk_exact(
    learners: int, malicious: int, size: int, vote_threshold: float = 0.5
) -> Fraction:
    """:func:`committee_risk` as an exact fraction."""
    _check_learners(learners)
    population = learners - 1
    if isinstance(malicious, bool) or not isinstance(malicious, int) or malicious < 0:
        raise ConfigError(f"malicious must be a whole number >= 0; got {malicious!r}")
    if malicious > population:
        raise ConfigError(
            f"malicious must be at most {population} (the learners besides the proposer); "
            f"got {malicious}"
        )
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= population:
        raise ConfigError(
            f"committee size must be a whole number in [1, {population}] with {learners} "
            f"learners; got {size!r}"
        )
    needed = approvals_needed(size, vote_threshold)
    honest = population - malicious
    top = min(size, malicious)
    favourable = sum(
        math.comb(malicious, x) * math.comb(honest, size - x) for x in range(needed, top + 1)
    )
    return Fraction(favourable, math.comb(population, size))


def committee_risk(learners: int, malicious: int, size: int, vote_threshold: float = 0.5) -> float:
    """The probability that a committee of ``size`` holds enough malicious voters to pass
    a proposal on their own (see the module docstring), with ``malicious`` of
    ``learners`` malicious, all among the non-proposers.

    >>> committee_risk(10, 3, 9)   # everyone but the proposer votes: 3 of 9 cannot pass
    0.0
    >>> round(committee_risk(10, 3, 1), 4)   # one voter, malicious with chance 3/9
    0.3333
    """
    exact = committee_risk_exact(learners, malicious, size, vote_threshold)
    return exact.numerator / exact.denominator


def committee_size(
    learners: int, malicious_share: float, risk: float, vote_threshold: float = 0.5
) -> CommitteeSize:
    """The smallest committee whose :func:`committee_risk` is below ``risk``.

    Raises
    ------
    ConfigError
        For values out of range, or when no committee is safe enough: the malicious
        learners can pass a proposal on their own even when every learner votes.

    Examples
    --------
    >>> size = committee_size(10_000, 0.2, 1e-6)
    >>> size.committee, size.approvals_needed, size.risk < 1e-6
    (51, 26, True)
    """
    if isinstance(risk, bool) or not isinstance(risk, int | float) or not 0.0 < risk < 1.0:
        raise ConfigError(f"risk must be a probability in (0, 1), such as 1e-6; got {risk!r}")
    malicious = malicious_count(learners, malicious_share)
    population = learners - 1
    if malicious > population or malicious >= approvals_needed(population, vote_threshold):
        raise ConfigError(
            f"no committee is safe: {malicious} malicious learners of {learners} can pass "
            f"a proposal at threshold {vote_threshold} on their own even when all "
            f"{population} non-proposers vote; raise the threshold or lower the share"
        )
    for size in range(1, population + 1):
        p = committee_risk(learners, malicious, size, vote_threshold)
        if p < risk:
            return CommitteeSize(
                size, p, learners, malicious, vote_threshold, approvals_needed(size, vote_threshold)
            )
    raise AssertionError("unreachable: the whole population is always safe here")


def committee_table(
    learners: Sequence[int] = (100, 1_000, 10_000),
    shares: Sequence[float] = (0.1, 0.2, 0.33),
    risks: Sequence[float] = (1e-3, 1e-6, 1e-9),
    vote_threshold: float = 0.5,
) -> list[CommitteeSize | None]:
    """:func:`committee_size` for every ``learners x shares x risks`` (in that order);
    ``None`` where no committee is safe."""
    out: list[CommitteeSize | None] = []
    for n in learners:
        for share in shares:
            for risk in risks:
                try:
                    out.append(committee_size(n, share, risk, vote_threshold))
                except ConfigError:
                    out.append(None)
    return out


def _check_learners(learners: object) -> None:
    if isinstance(learners, bool) or not isinstance(learners, int) or learners < 2:
        raise ConfigError(f"learners must be a whole number >= 2; got {learners!r}")
