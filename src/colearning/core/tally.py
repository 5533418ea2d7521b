"""The vote tally: a pure function, the same arithmetic a ledger contract uses.

A proposal passes when ``approvals >= vote_threshold * eligible``, where the eligible
voters are all learners but the proposer. The threshold is taken as the nearest
fraction ``num/den`` with ``den <= 1_000_000`` and compared in integers
(``approvals * den >= num * eligible``), so 0.28 of 25 voters is exactly 7 and ``2/3``
of 3 is exactly 2, here and on chain (in floats ``25 * 0.28`` is 7.000000000000001,
which would wrongly reject 7 approvals out of 25, as Colearn's float rule did).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

from colearning.core.exceptions import ConfigError, ConfigTypeError

MAX_DENOMINATOR = 1_000_000


#: Fractions already found for float thresholds (every round's tally asks again).
_FRACTIONS: dict[float, tuple[int, int]] = {}


def threshold_fraction(vote_threshold: float) -> tuple[int, int]:
    """``vote_threshold`` as ``(numerator, denominator)``, after checking it is in [0, 1].

    >>> threshold_fraction(0.5), threshold_fraction(2 / 3)
    ((1, 2), (2, 3))
    """
    if isinstance(vote_threshold, bool) or not isinstance(vote_threshold, (int, float)):
        raise ConfigTypeError(f"vote_threshold must be a number in [0, 1]; got {vote_threshold!r}")
    if not 0.0 <= float(vote_threshold) <= 1.0:
        raise ConfigError(
            f"vote_threshold must be in [0, 1]; got {vote_threshold} "
            "(0.5 means half of the voters must approve)"
        )
    if type(vote_threshold) is float:
        known = _FRACTIONS.get(vote_threshold)
        if known is not None:
            return known
    frac = Fraction(float(vote_threshold)).limit_denominator(MAX_DENOMINATOR)
    found = frac.numerator, frac.denominator
    if type(vote_threshold) is float and len(_FRACTIONS) < 64:
        _FRACTIONS[vote_threshold] = found
    return found


def passes(approvals: int, eligible: int, vote_threshold: float) -> bool:
    """Whether ``approvals`` out of ``eligible`` voters carry the proposal.

    With no eligible voter (a single learner) every proposal passes.

    Examples
    --------
    >>> passes(1, 2, 0.5)   # an exact tie passes
    True
    >>> passes(0, 0, 1.0)   # one learner alone always accepts
    True
    >>> passes(6, 10, 0.7)
    False
    """
    if approvals < 0 or eligible < 0 or approvals > eligible:
        raise ConfigError(f"approvals={approvals} must be within [0, eligible={eligible}]")
    num, den = threshold_fraction(vote_threshold)
    return approvals * den >= num * eligible


def tally(
    votes: Sequence[bool | None], proposer: int, vote_threshold: float
) -> tuple[bool, int, int]:
    """Count ``votes`` (one per learner, in learner order) and decide.

    The proposer's entry is ignored; ``None`` (abstained, failed) counts as not
    approving and stays in the denominator, so failures never help a proposal pass.

    Returns
    -------
    (accepted, approvals, eligible)
    """
    if not 0 <= proposer < len(votes):
        raise ConfigError(f"proposer index {proposer} outside 0..{len(votes) - 1}")
    approvals = sum(1 for i, v in enumerate(votes) if i != proposer and v is True)
    eligible = len(votes) - 1
    return passes(approvals, eligible, vote_threshold), approvals, eligible
