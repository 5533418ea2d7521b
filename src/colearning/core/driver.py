"""One round of the protocol, and Colearn's ``run_one_round`` entry point.

A round, top to bottom (see ``play_round``):

1. **propose**: the proposer trains on its data and returns weights. A proposer that
   fails, or reports an exhausted privacy budget, has its turn skipped (recorded).
2. **check**: the proposal must have the shared model's names, shapes and dtypes and
   no NaN/Inf; a malformed proposal is rejected without asking anyone.
3. **validate**: every learner scores the proposal in parallel; all but the proposer
   vote. Meanwhile the proposal is encoded and hashed off the critical path.
4. **tally**: approvals >= vote_threshold x eligible voters (``tally.tally``);
   failures count as not approving.
5. **accept**: on approval every learner adopts the weights, in parallel.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from colearning.core.codec import WeightsSpec, check_finite, check_weights, id_of
from colearning.core.exceptions import WeightsError
from colearning.core.interface import (
    DiffPrivBudget,
    ErrorCodes,
    MachineLearningInterface,
    ProposedWeights,
    Weights,
)
from colearning.core.pool import LearnerPool, LocalPool, Outcome
from colearning.core.records import PhaseTimings, RoundRecord, RoundStatus, VoteRecord
from colearning.core.tally import tally, threshold_fraction

BUDGET_EXHAUSTED = "privacy budget exhausted"


@dataclass(frozen=True)
class RoundResult:
    """A played round: its record, the proposal, and each learner's verdict."""

    record: RoundRecord
    proposal: Weights | None
    verdicts: tuple[ProposedWeights, ...]


def play_round(
    pool: LearnerPool,
    round_index: int,
    proposer: int,
    vote_threshold: float,
    *,
    current_weights_id: str,
    expected: WeightsSpec | None = None,
    timeout: float | None = None,
    encode_in_background: Callable[[Weights], Future[str]] | None = None,
) -> RoundResult:
    """Play one round over ``pool`` and return what happened; never raises for a
    learner's failure.

    ``encode_in_background`` starts computing the proposal's id while validators
    work; without it the id is computed after the round.
    """
    threshold_fraction(vote_threshold)  # a bad threshold is the caller's error: fail first
    ids = list(pool.learner_ids)
    n = len(ids)
    start = time.perf_counter()

    # -- propose --------------------------------------------------------------------
    proposed = pool.propose(proposer, round_index, timeout)
    t_propose = time.perf_counter() - start

    def unvoted(status: RoundStatus, reason: str, dp: DiffPrivBudget | None) -> RoundResult:
        record = RoundRecord(
            round_index=round_index,
            proposer_id=ids[proposer],
            status=status,
            weights_id=None,
            current_weights_id=current_weights_id,
            approvals=0,
            eligible=n - 1,
            votes=tuple(VoteRecord(i, None, None, None) for i in ids),
            timings=_timings(t_propose, 0.0, 0.0, start),
            reason=reason,
            dp_budget=dp,
        )
        # a malformed proposal counts as rejected by every voter, though none was asked
        refused = status == "rejected"
        verdicts = tuple(
            ProposedWeights(None, None, None, False if refused and i != proposer else None, reason)
            for i in range(n)
        )
        return RoundResult(record, None, verdicts)

    weights, reason = _usable_proposal(proposed)
    if weights is None:
        return unvoted("skipped", reason, None)
    summary = weights.training_summary
    dp_budget = summary.dp_budget if summary else None
    if summary is not None and summary.error_code is ErrorCodes.DP_BUDGET_EXCEEDED:
        return unvoted("skipped", BUDGET_EXHAUSTED, dp_budget)

    # -- check ------------------------------------------------------------------------
    try:
        if expected is None:
            check_finite(weights)
        else:
            check_weights(weights, expected)
    except WeightsError as exc:
        return unvoted("rejected", f"malformed proposal: {exc}", dp_budget)

    # -- validate (in parallel; the id is computed meanwhile) -----------------------
    pending_id = encode_in_background(weights) if encode_in_background else None
    t0 = time.perf_counter()
    outcomes = pool.test(range(n), weights, timeout)
    t_validate = time.perf_counter() - t0
    verdicts = tuple(
        _verdict(outcome, weights, is_proposer=(i == proposer))
        for i, outcome in enumerate(outcomes)
    )

    # -- tally ------------------------------------------------------------------------
    accepted, approvals, eligible = tally([v.vote for v in verdicts], proposer, vote_threshold)

    # -- accept -----------------------------------------------------------------------
    t0 = time.perf_counter()
    accept_errors: dict[str, str] = {}
    if accepted:
        for i, outcome in enumerate(pool.accept(range(n), weights, timeout)):
            if not outcome.ok:
                accept_errors[ids[i]] = str(outcome.error)
    t_accept = time.perf_counter() - t0

    proposal_id = pending_id.result() if pending_id is not None else id_of(weights)
    status: RoundStatus = "accepted" if accepted else "rejected"
    record = RoundRecord(
        round_index=round_index,
        proposer_id=ids[proposer],
        status=status,
        weights_id=proposal_id,
        current_weights_id=proposal_id if accepted else current_weights_id,
        approvals=approvals,
        eligible=eligible,
        votes=tuple(
            VoteRecord(ids[i], v.vote, v.vote_score, v.test_score, v.error, outcomes[i].seconds)
            for i, v in enumerate(verdicts)
        ),
        timings=_timings(t_propose, t_validate, t_accept, start),
        dp_budget=dp_budget,
        extra={"accept_errors": accept_errors} if accept_errors else {},
    )
    return RoundResult(record, weights, verdicts)


def _usable_proposal(outcome: Outcome[Weights]) -> tuple[Weights | None, str]:
    if not outcome.ok:
        return None, f"proposer failed: {outcome.error}"
    if not isinstance(outcome.value, Weights):
        return None, (
            f"proposer returned {type(outcome.value).__name__}; mli_propose_weights must "
            "return colearning.Weights"
        )
    return outcome.value, ""


def _verdict(
    outcome: Outcome[ProposedWeights], weights: Weights, is_proposer: bool
) -> ProposedWeights:
    """Turn a test call's outcome into a verdict; garbage and failures do not approve.

    A new value is built each time: the learner's own answer is never changed in place.
    """
    if not outcome.ok:
        return ProposedWeights(weights, None, None, None if is_proposer else False, outcome.error)
    answer = outcome.value
    problem = _garbage(answer)
    if problem:
        return ProposedWeights(weights, None, None, None if is_proposer else False, problem)
    assert isinstance(answer, ProposedWeights)
    return ProposedWeights(
        weights,
        _float_or_none(answer.vote_score),
        _float_or_none(answer.test_score),
        None if is_proposer else answer.vote,
        answer.error,
    )


def _garbage(answer: object) -> str:
    if not isinstance(answer, ProposedWeights):
        return (
            f"answered {type(answer).__name__}; mli_test_weights must return "
            "colearning.ProposedWeights"
        )
    if not isinstance(answer.vote, bool):
        return f"answered vote={answer.vote!r}; a vote must be True or False"
    for name in ("vote_score", "test_score"):
        score = getattr(answer, name)
        if score is not None and not (_is_number(score) and math.isfinite(float(score))):
            return f"answered {name}={score!r}; scores must be finite numbers or None"
    return ""


def _is_number(value: object) -> bool:
    try:
        float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return not isinstance(value, (bool, str))


def _float_or_none(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def _timings(propose: float, validate: float, accept: float, start: float) -> PhaseTimings:
    return PhaseTimings(propose, validate, accept, time.perf_counter() - start)


def run_one_round(
    round_index: int,
    learners: Sequence[MachineLearningInterface],
    vote_threshold: float = 0.5,
) -> tuple[list[ProposedWeights], bool]:
    """Play one round with in-process learners, as Colearn's driver did.

    The proposer is ``learners[round_index % len(learners)]``. Validation runs in
    parallel. Returns one :class:`ProposedWeights` per learner in learner order (the
    proposer's ``vote`` is ``None``; a learner that failed has ``vote=False`` and its
    reason in ``error``) and whether the proposal was accepted.

    Examples
    --------
    >>> from colearning.testing import QuadraticLearner
    >>> learners = [QuadraticLearner(target=[1.0, 1.0], seed=i) for i in range(3)]
    >>> verdicts, accepted = run_one_round(0, learners)
    >>> [v.vote for v in verdicts], accepted
    ([None, True, True], True)
    """
    from colearning.core.exceptions import ConfigError

    if not learners:
        raise ConfigError("run_one_round needs at least 1 learner; got an empty list")
    threshold_fraction(vote_threshold)
    proposer = round_index % len(learners)
    expected = WeightsSpec.of(learners[proposer].mli_get_current_weights())
    pool = LocalPool(learners)
    try:
        result = play_round(
            pool, round_index, proposer, vote_threshold, current_weights_id="", expected=expected
        )
    finally:
        pool.close()
    return list(result.verdicts), result.record.accepted
