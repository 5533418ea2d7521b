"""One round of the protocol over a pool, and Colearn's ``run_one_round`` entry point.

A round, top to bottom (see :func:`play_round`):

1. **propose**: the plan's proposers train on their data and return weights (in
   parallel, all from the same current model, when there are several). A proposer
   that fails, answers garbage or reports an exhausted privacy budget brings nothing
   usable (recorded with its reason code).
2. **check**: a proposal must have the shared model's names, shapes and dtypes and no
   NaN/Inf; a malformed proposal is refused without asking anyone.
3. **screen** (``screened`` rounds only): each usable proposal is scored by the testers
   and decided by the voters other than its proposer; only approved ones go on.
4. **combine** (``aggregate`` and ``screened`` rounds): the plan's combiner turns the
   proposals into one candidate (:mod:`colearning.core.combiners`). In a ``single``
   round the one proposal is the candidate.
5. **validate**: the plan's testers score the candidate in parallel; only the plan's
   voters' ballots count. Meanwhile the candidate is encoded and hashed off the
   critical path.
6. **decide**: the decider (the Python tally by default, a contract with a ledger)
   decides from the votes; failures count as not approving.
7. **accept**: on approval every learner adopts the candidate
   (:func:`~colearning.core.pool.adopt`: at once, in parallel, or, on a pool that
   defers adoption, at each learner's next call).

The record holds a vote entry for each learner that was asked to test (every learner,
unless a committee votes); a learner without an entry was not asked. Nothing in a
round costs time per learner that is not in it, so a round among 10,000 learners with a
committee of 51 does the work of a round among 52.

The driver builds new values at each step; a learner's own answer is never changed.
"""

from __future__ import annotations

import functools
import math
import time
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np

from colearning.core.codec import WeightsSpec, check_finite, check_weights
from colearning.core.decider import Decider, TallyDecider
from colearning.core.exceptions import ConfigError, WeightsError
from colearning.core.interface import (
    ErrorCodes,
    MachineLearningInterface,
    ProposedWeights,
    Weights,
)
from colearning.core.observers import RoundObserver
from colearning.core.plans import RoundPlan, RoundRobin
from colearning.core.pool import LearnerPool, LocalPool, Outcome, adopt, catch_up
from colearning.core.protocol import (
    Ballot,
    Candidate,
    Decision,
    Proposal,
    Reason,
    Vote,
)
from colearning.core.records import PhaseTimings, RoundRecord, RoundStatus
from colearning.core.weights_ref import ENCODE_HERE_BYTES, WeightsRef

#: Kept for callers of the first version; the code is ``Reason.BUDGET_EXHAUSTED``.
BUDGET_EXHAUSTED = Reason.BUDGET_EXHAUSTED.value


class ProposerSkippedWarning(UserWarning):
    """A round was skipped because its proposer brought nothing usable."""


@dataclass(frozen=True)
class RoundResult:
    """A played round: its record, the candidate's weights, and (in :attr:`verdicts`)
    each learner's verdict in pool order."""

    record: RoundRecord
    candidate: WeightsRef | None
    learner_ids: Sequence[str] = ()
    #: the plan's eligible voters; ``None``: every learner but the proposers
    voters: frozenset[str] | None = None

    @property
    def proposal(self) -> Weights | None:
        """The weights voted on (``None`` if nothing was)."""
        return None if self.candidate is None else self.candidate.weights

    @functools.cached_property
    def verdicts(self) -> tuple[ProposedWeights, ...]:
        """Colearn's view: one :class:`~colearning.ProposedWeights` per learner, in pool
        order (built when first asked for: a round of many learners does not pay for
        it). A learner that was not asked has ``vote=None``; a failed voter
        ``vote=False`` and its reason in ``error``; when a malformed proposal was
        refused, every voter counts as having rejected it."""
        record = self.record
        proposers = set(record.proposer_ids)
        if self.candidate is None:
            reason = next((p.detail for p in record.proposals if p.detail), None)
            malformed = record.reason_code is Reason.MALFORMED
            voters = set(record.committee) if record.committee is not None else None

            def refused(lid: str) -> bool | None:
                if not malformed or lid in proposers:
                    return None
                return False if voters is None or lid in voters else None

            return tuple(
                ProposedWeights(None, None, None, refused(lid), reason) for lid in self.learner_ids
            )
        weights = self.candidate.weights
        entries = {v.learner_id: v for v in record.votes}
        counted = self.voters
        return tuple(
            _verdict(
                entries[lid],
                weights,
                lid not in counted if counted is not None else lid in proposers,
            )
            if lid in entries
            else ProposedWeights(weights, None, None, None, None)
            for lid in self.learner_ids
        )


@dataclass(frozen=True)
class _Received:
    """A proposal as it came back from its proposer, before its id is known."""

    proposer_id: str
    weights: Weights | None
    reason: Reason | None
    detail: str | None
    outcome: Outcome[Weights]

    def proposal(self, weights_id: str | None, screening: _Screening | None = None) -> Proposal:
        summary = self.weights.training_summary if self.weights is not None else None
        value = self.outcome.value
        if summary is None and isinstance(value, Weights):
            summary = value.training_summary
        return Proposal(
            proposer_id=self.proposer_id,
            weights_id=weights_id if self.reason is None else None,
            reason=self.reason,
            detail=self.detail,
            dp_budget=summary.dp_budget if summary is not None else None,
            seconds=self.outcome.seconds,
            screening=() if screening is None else screening.votes,
            screened=None if screening is None else screening.decision,
        )


@dataclass(frozen=True)
class _Screening:
    """The votes on one proposal alone, in a screened round, and their decision."""

    votes: tuple[Vote, ...]
    decision: Decision


def play_round(
    pool: LearnerPool,
    plan: RoundPlan,
    *,
    current_weights_id: str,
    decider: Decider,
    expected: WeightsSpec | None = None,
    timeout: float | None = None,
    encoder: Executor | None = None,
    observer: RoundObserver | None = None,
    current: Weights | None = None,
    previous: Weights | None = None,
) -> RoundResult:
    """Play one round of ``plan`` over ``pool`` and return what happened; never raises
    for a learner's failure.

    The plan's ``mode`` says what is voted on: ``"single"``, the one proposal as it is;
    ``"aggregate"``, the usable proposals combined by the plan's combiner;
    ``"screened"``, the proposals that passed their own vote first (by the plan's voters
    other than their proposer), combined. Whatever the mode, the candidate is adopted
    only when the decider approves it.

    ``encoder`` computes ids while validators work; without it an id is computed when
    first needed. ``observer`` sees each step. ``current`` (the shared model's weights)
    and ``previous`` (the shared model before its last adopted step) are what a
    combiner's server step starts from (:func:`~colearning.core.combiners.server_step`);
    other rounds do not read them.
    """
    watch = observer or RoundObserver()
    ids = pool.learner_ids
    r = plan.round_index
    start = time.perf_counter()
    decider.begin(plan)
    watch.round_started(plan)

    # -- propose and check ------------------------------------------------------------
    tested: Mapping[str, Outcome[ProposedWeights]] | None = None
    both = _propose_and_test(pool, plan)
    if both is not None:  # one wave: the tests start from the proposal as it comes
        proposal, tested = both(plan.proposers[0], r, plan.testers, timeout)
        got = {plan.proposers[0]: proposal}
    else:
        got = pool.propose(plan.proposers, r, timeout)
    received = [_receive(pid, got[pid], expected) for pid in plan.proposers]
    t_propose = time.perf_counter() - start if tested is None else got[plan.proposers[0]].seconds
    usable = [x for x in received if x.reason is None]

    if not usable:
        proposals = tuple(x.proposal(None) for x in received)
        decider.proposed(r, proposals)
        watch.proposed(r, proposals)
        return _unvoted(plan, ids, proposals, current_weights_id, t_propose, start, decider)

    refs = {x.proposer_id: WeightsRef.of(x.weights) for x in usable if x.weights is not None}
    if (
        encoder is not None
        and plan.mode != "single"
        and sum(x.weights.nbytes for x in usable if x.weights is not None) > ENCODE_HERE_BYTES
    ):
        # one job for every proposal's id: a future per proposal cost more than the
        # hashing itself with 1,000 small proposals; and small proposals are hashed
        # where their ids are needed, since waking the encoder's thread to share the
        # interpreter cost more than their hashing (as for one candidate, see
        # WeightsRef.start_encoding)
        encoder.submit(_compute_ids, list(refs.values()))

    # -- screen (screened rounds: each proposal voted on by the others first) ---------
    t0 = time.perf_counter()
    screening: dict[str, _Screening] = {}
    sources = usable
    if plan.mode == "screened":
        screening = _screen(pool, plan, usable, refs, decider, timeout)
        sources = [x for x in usable if screening[x.proposer_id].decision.accepted]
    t_screen = time.perf_counter() - t0
    if not sources:
        proposals = _proposals(received, refs, screening)
        decider.proposed(r, proposals)
        watch.proposed(r, proposals)
        return _screened_out(plan, ids, proposals, current_weights_id, t_propose, start, decider)

    # -- combine (aggregate and screened rounds) --------------------------------------
    t0 = time.perf_counter()
    combiner_name: str | None = None
    if plan.mode == "single":
        ref = refs[sources[0].proposer_id]
    else:
        combiner = plan.combiner
        combiner_name = combiner.label
        try:
            combined = combiner.combine(
                [(x.proposer_id, refs[x.proposer_id].weights) for x in sources],
                current,
                previous,
            )
        except WeightsError as exc:  # an encoded model: the mode does not fit the learner
            raise ConfigError(f"round {r}: mode {plan.mode!r} cannot combine: {exc}") from exc
        ref = WeightsRef.of(combined)
    if encoder is not None:
        ref.start_encoding(encoder)
    t_combine = time.perf_counter() - t0

    # -- validate (in parallel; the id is computed meanwhile) -------------------------
    t0 = time.perf_counter()
    answers: Mapping[str, Outcome[ProposedWeights]]
    if tested is None:
        answers = pool.test(plan.testers, ref, timeout)
        t_validate = time.perf_counter() - t0
    else:  # tested already, in the proposal's wave: the rest of that wave's time
        answers = tested
        t_validate = max(0.0, t0 - start - t_propose)
    voters = set(plan.voters)
    proposers = set(plan.proposers)
    votes = tuple(
        _vote(lid, answers.get(lid), lid in voters, lid in proposers) for lid in plan.testers
    )

    proposals = _proposals(received, refs, screening)
    candidate = Candidate(ref.weights_id, tuple(x.proposer_id for x in sources), combiner_name)
    votes = decider.sign_votes(r, candidate, votes)
    decider.proposed(r, proposals)
    watch.proposed(r, proposals)
    watch.voted(r, votes)

    # -- decide -----------------------------------------------------------------------
    decision = decider.decide(r, candidate, votes, plan.voters)
    watch.decided(r, decision)

    # -- accept -----------------------------------------------------------------------
    # What every learner adopts is sealed: views of the encoded bytes whose hash is the
    # recorded id, so a proposer that kept its arrays and edits them later changes
    # nothing but its own copy (the encoding is already done: the id needed it).
    ref = ref.sealed()
    t0 = time.perf_counter()
    accept_errors: dict[str, str] = {}
    if decision.accepted:
        for lid, outcome in adopt(pool, ref, timeout).items():
            if not outcome.ok:
                accept_errors[lid] = str(outcome.error)
    t_accept = time.perf_counter() - t0

    status: RoundStatus = "accepted" if decision.accepted else "rejected"
    extra: dict[str, Any] = {"accept_errors": accept_errors} if accept_errors else {}
    if plan.mode != "single":
        extra["timings"] = {"screen": t_screen, "combine": t_combine}
    record = RoundRecord(
        round_index=r,
        status=status,
        proposals=proposals,
        votes=votes,
        decision=decision,
        candidate=candidate,
        previous_weights_id=current_weights_id,
        current_weights_id=candidate.weights_id if decision.accepted else current_weights_id,
        timings=_timings(t_propose, t_screen + t_validate, t_accept, start),
        mode=plan.mode,
        committee=plan.committee,
        extra=extra,
    )
    return RoundResult(record, ref, ids, frozenset(plan.voters))


# -- steps --------------------------------------------------------------------------------


def _propose_and_test(pool: LearnerPool, plan: RoundPlan) -> Any:
    """The pool's ``propose_and_test`` where it has one and the round can use it (one
    proposal, put to the vote as it is), else ``None``.

    A pool whose calls cost a message each (a Ray pool) plays such a round as one wave:
    the testers are asked with the proposer, and test the proposal as soon as it exists.
    Nothing else changes: the proposal is checked as before, once tested (an unusable
    one is not voted on, whatever its testers answered), and votes are read the same."""
    if plan.mode != "single" or len(plan.proposers) != 1 or not plan.testers:
        return None
    both = getattr(pool, "propose_and_test", None)
    return both if callable(both) else None


def _screen(
    pool: LearnerPool,
    plan: RoundPlan,
    usable: Sequence[_Received],
    refs: Mapping[str, WeightsRef],
    decider: Decider,
    timeout: float | None,
) -> dict[str, _Screening]:
    """Each proposal put to the vote of the plan's voters other than its proposer. The
    testers score every proposal in one batch where the pool can (``test_each``: one
    dispatch, not one per proposal); the decisions are taken in proposal order."""
    requests = [(plan.testers, refs[x.proposer_id]) for x in usable]
    test_each = getattr(pool, "test_each", None)
    if callable(test_each):
        answered: list[Mapping[str, Outcome[ProposedWeights]]] = test_each(requests, timeout)
    else:
        answered = [pool.test(testers, ref, timeout) for testers, ref in requests]
    screening: dict[str, _Screening] = {}
    for x, answers in zip(usable, answered, strict=True):
        pid = x.proposer_id
        eligible = tuple(v for v in plan.voters if v != pid)
        counted = set(eligible)
        votes = tuple(
            _vote(lid, answers.get(lid), lid in counted, lid == pid) for lid in plan.testers
        )
        candidate = Candidate(refs[pid].weights_id, (pid,))
        screening[pid] = _Screening(
            votes, decider.decide(plan.round_index, candidate, votes, eligible)
        )
    return screening


def _compute_ids(refs: Sequence[WeightsRef]) -> None:
    for ref in refs:
        _ = ref.weights_id  # encodes and hashes, once (a ref's lock guards it)


def _proposals(
    received: Sequence[_Received],
    refs: Mapping[str, WeightsRef],
    screening: Mapping[str, _Screening],
) -> tuple[Proposal, ...]:
    """The round's proposals as recorded: each usable one with its id (and its
    screening votes, in a screened round)."""
    return tuple(
        x.proposal(
            refs[x.proposer_id].weights_id if x.proposer_id in refs else None,
            screening.get(x.proposer_id),
        )
        for x in received
    )


def _screened_out(
    plan: RoundPlan,
    ids: Sequence[str],
    proposals: tuple[Proposal, ...],
    current_weights_id: str,
    t_propose: float,
    start: float,
    decider: Decider,
) -> RoundResult:
    """A screened round in which no proposal passed its own vote: nothing is combined
    and nothing put to the final vote; the round is rejected."""
    decision = Decision(False, 0, len(plan.voters), decider.threshold, decided_by="screening")
    votes = tuple(Vote(lid, Ballot.ABSTAIN, reason=Reason.NOT_ASKED) for lid in plan.testers)
    record = RoundRecord(
        round_index=plan.round_index,
        status="rejected",
        proposals=proposals,
        votes=votes,
        decision=decision,
        candidate=None,
        previous_weights_id=current_weights_id,
        current_weights_id=current_weights_id,
        timings=_timings(t_propose, time.perf_counter() - start - t_propose, 0.0, start),
        mode=plan.mode,
        committee=plan.committee,
    )
    return RoundResult(record, None, ids)


def _receive(
    proposer_id: str, outcome: Outcome[Weights], expected: WeightsSpec | None
) -> _Received:
    """Classify one proposer's answer: usable weights, or why not."""
    if not outcome.ok:
        assert outcome.failure is not None
        failure = outcome.failure
        return _Received(proposer_id, None, failure.reason, f"proposer {failure}", outcome)
    weights = outcome.value
    if not isinstance(weights, Weights):
        return _Received(
            proposer_id,
            None,
            Reason.BAD_ANSWER,
            f"proposer returned {type(weights).__name__}; mli_propose_weights must return "
            "colearning.Weights",
            outcome,
        )
    summary = weights.training_summary
    if summary is not None and summary.error_code is ErrorCodes.DP_BUDGET_EXCEEDED:
        return _Received(proposer_id, None, Reason.BUDGET_EXHAUSTED, BUDGET_EXHAUSTED, outcome)
    try:
        if expected is None:
            check_finite(weights)
        else:
            check_weights(weights, expected)
    except WeightsError as exc:
        return _Received(proposer_id, None, Reason.MALFORMED, f"malformed proposal: {exc}", outcome)
    return _Received(proposer_id, weights, None, None, outcome)


def _unvoted(
    plan: RoundPlan,
    ids: Sequence[str],
    proposals: tuple[Proposal, ...],
    current_weights_id: str,
    t_propose: float,
    start: float,
    decider: Decider,
) -> RoundResult:
    """A round with nothing to vote on: skipped, or refused (malformed proposals)."""
    malformed = any(p.reason is Reason.MALFORMED for p in proposals)
    decision = (
        Decision(False, 0, len(plan.voters), decider.threshold, decided_by="check")
        if malformed
        else None
    )
    status: RoundStatus = "rejected" if malformed else "skipped"
    record = RoundRecord(
        round_index=plan.round_index,
        status=status,
        proposals=proposals,
        votes=(),  # nobody was asked
        decision=decision,
        candidate=None,
        previous_weights_id=current_weights_id,
        current_weights_id=current_weights_id,
        timings=_timings(t_propose, 0.0, 0.0, start),
        mode=plan.mode,
        committee=plan.committee,
    )
    return RoundResult(record, None, ids)


def _vote(
    learner_id: str,
    outcome: Outcome[ProposedWeights] | None,
    is_voter: bool,
    is_proposer: bool,
) -> Vote:
    """One learner's entry from its test call; failures and garbage abstain."""
    if outcome is not None and outcome.failure is None:
        # the common answer, checked at once (a screened round over 100 learners reads
        # 600 of them): a ProposedWeights with a bool vote and float or missing scores
        answer = outcome.value
        if type(answer) is ProposedWeights and type(answer.vote) is bool:
            vote_score, test_score = answer.vote_score, answer.test_score
            if (
                vote_score is None or (type(vote_score) is float and math.isfinite(vote_score))
            ) and (test_score is None or (type(test_score) is float and math.isfinite(test_score))):
                if is_voter:
                    ballot = Ballot.APPROVE if answer.vote else Ballot.REJECT
                    reason = None
                else:
                    ballot = Ballot.ABSTAIN
                    reason = Reason.PROPOSER if is_proposer else Reason.NOT_ASKED
                # the class's own __init__: a vote is kept with its round, and one made
                # through its __dict__ is two objects for the garbage collector to walk
                # in every full collection (a dict of its fields besides), which cost a
                # screened round over 100 learners a third of its time
                return Vote(
                    learner_id,
                    ballot,
                    vote_score,
                    test_score,
                    reason,
                    answer.error,
                    outcome.seconds,
                )
    if outcome is None:
        return Vote(learner_id, Ballot.ABSTAIN, reason=Reason.NOT_ASKED)
    if not outcome.ok:
        assert outcome.failure is not None
        return Vote(
            learner_id,
            Ballot.ABSTAIN,
            reason=outcome.failure.reason,
            detail=str(outcome.failure),
            seconds=outcome.seconds,
        )
    answer = outcome.value
    problem, vote_score, test_score = _read_answer(answer)
    if problem:
        return Vote(
            learner_id,
            Ballot.ABSTAIN,
            reason=Reason.BAD_ANSWER,
            detail=f"bad answer: {problem}",
            seconds=outcome.seconds,
        )
    assert isinstance(answer, ProposedWeights)
    if is_voter:
        ballot = Ballot.APPROVE if bool(answer.vote) else Ballot.REJECT
        reason = None
    else:
        ballot, reason = Ballot.ABSTAIN, Reason.PROPOSER if is_proposer else Reason.NOT_ASKED
    return Vote(
        learner_id,
        ballot,
        vote_score=vote_score,
        test_score=test_score,
        reason=reason,
        detail=answer.error,
        seconds=outcome.seconds,
    )


def _read_answer(answer: object) -> tuple[str, float | None, float | None]:
    """``(problem, vote_score, test_score)``: problem is "" for a valid answer."""
    if not isinstance(answer, ProposedWeights):
        return (
            f"answered {type(answer).__name__}; mli_test_weights must return "
            "colearning.ProposedWeights",
            None,
            None,
        )
    if not isinstance(answer.vote, bool | np.bool_):  # NumPy's bool, as Colearn took it
        return f"answered vote={answer.vote!r}; a vote must be True or False", None, None
    scores: list[float | None] = []
    for name in ("vote_score", "test_score"):
        raw = getattr(answer, name)
        if raw is None or type(raw) is float:  # the common case, checked cheaply
            if raw is not None and not math.isfinite(raw):
                return f"answered {name}={raw!r}; scores must be finite numbers or None", None, None
            scores.append(raw)
            continue
        if isinstance(raw, Mapping):  # later Colearn: {criterion: score}
            key = answer.criterion if answer.criterion in raw else None
            if key is None and len(raw) == 1:
                key = next(iter(raw))
            if key is None:
                return (
                    f"answered {name}={raw!r} without a criterion naming its entry",
                    None,
                    None,
                )
            raw = raw[key]
        if raw is not None and not (_is_number(raw) and math.isfinite(float(raw))):
            return f"answered {name}={raw!r}; scores must be finite numbers or None", None, None
        scores.append(None if raw is None else float(raw))
    return "", scores[0], scores[1]


def _verdict(vote: Vote, weights: Weights, ineligible: bool) -> ProposedWeights:
    """Colearn's view of one entry; a failed voter has ``vote=False`` and its reason."""
    if vote.reason is not None and vote.reason.is_failure:
        return ProposedWeights(weights, None, None, None if ineligible else False, vote.detail)
    return ProposedWeights(weights, vote.vote_score, vote.test_score, vote.vote, vote.detail)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool | str):
        return False
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


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
    reason in ``error``) and whether the proposal was accepted. A round whose proposer
    brought nothing usable warns (:class:`ProposerSkippedWarning`) with the reason.

    Examples
    --------
    >>> from colearning.testing import QuadraticLearner
    >>> learners = [QuadraticLearner(target=[1.0, 1.0], seed=i) for i in range(3)]
    >>> verdicts, accepted = run_one_round(0, learners)
    >>> [v.vote for v in verdicts], accepted
    ([None, True, True], True)
    """
    if not learners:
        raise ConfigError("run_one_round needs at least 1 learner; got an empty list")
    decider = TallyDecider(vote_threshold)
    pool = LocalPool(learners)
    try:
        plan = RoundRobin().plan(round_index, pool.learner_ids)
        proposer = pool.learner(plan.proposers[0])
        expected = WeightsSpec.of(proposer.mli_get_current_weights())
        result = play_round(pool, plan, current_weights_id="", decider=decider, expected=expected)
        catch_up(pool, None)  # every learner holds the outcome when this returns
    finally:
        pool.close()
    record = result.record
    code = record.reason_code
    if code is not None and (code.is_failure or code is Reason.MALFORMED):
        warnings.warn(
            f"round {round_index}: {record.proposer_id}'s proposal was not voted on "
            f"({record.reason})",
            ProposerSkippedWarning,
            stacklevel=2,
        )
    return list(result.verdicts), record.accepted
