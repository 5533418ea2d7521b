"""The experiment loop: many rounds over a pool, each committed before the next.

Read :meth:`Experiment.run` top to bottom: it is the whole protocol over time.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from colearning.core.codec import WeightsSpec, decode
from colearning.core.combiners import Combiner
from colearning.core.decider import Decider, TallyDecider
from colearning.core.driver import BUDGET_EXHAUSTED, ProposerSkippedWarning, RoundResult, play_round
from colearning.core.exceptions import ConfigError, LearnerError, StoreError
from colearning.core.interface import MachineLearningInterface, Weights
from colearning.core.observers import Observers, RoundObserver
from colearning.core.plans import (
    PROPOSER_POLICIES,
    CommitteePlanner,
    Planner,
    check_committee_size,
    choose_proposer,
    planner_for_mode,
)
from colearning.core.pool import LearnerPool, LocalPool, catch_up, check_timeout
from colearning.core.protocol import Reason
from colearning.core.records import RoundRecord, proposals_made
from colearning.core.store import ExperimentStore
from colearning.core.weights_ref import WeightsRef

__all__ = [
    "PROPOSER_POLICIES",
    "Experiment",
    "ExperimentResult",
    "ObserverLike",
    "RoundObserver",
    "choose_proposer",
]

ObserverLike = RoundObserver | Callable[[RoundRecord], None]


@dataclass
class ExperimentResult:
    """The rounds played so far and the shared model at the end."""

    rounds: list[RoundRecord]
    final_weights_id: str
    final_weights: Weights
    stopped_early: str | None = None
    learner_ids: list[str] = field(default_factory=list)


class Experiment:
    """Many rounds of the protocol over a set of learners.

    Parameters
    ----------
    learners
        In-process learners, or a :class:`~colearning.core.pool.LearnerPool`.
    vote_threshold
        Share of eligible voters whose approval carries a proposal, in [0, 1].
    proposer
        ``"round-robin"`` (``round_index % n``), ``"random"`` (seeded per round), or a
        :class:`~colearning.core.plans.Planner`.
    seed
        Seed of the random proposer policy and of the proposer sample.
    mode
        ``"single"`` (one proposer a round, DESIGN.md's protocol), ``"aggregate"``
        (``proposers`` learners propose, their proposals are combined into one
        candidate that every learner votes on) or ``"screened"`` (each proposal is
        voted on by the others first, and only approved ones are combined). See
        ``docs/modes.md``.
    combiner
        How an aggregate or screened round combines proposals: ``"mean"`` (weighted
        by data size when the :class:`~colearning.core.combiners.Combiner` knows the
        sizes), ``"median"``, ``"trimmed-mean"`` or ``"trimmed-mean:TRIM"``; a
        ``Combiner`` with ``server_lr``/``server_momentum`` also takes a server step
        (FedAvgM) from the shared model, its momentum the step the last round adopted.
    proposers
        How many learners propose in an aggregate or screened round: every learner
        (``None``) or a sample of that many, seeded by ``(seed, round_index)``.
    timeout
        Seconds each learner call may take; a call past it counts as not approving.
    store
        Where rounds are committed; an :class:`ExperimentStore` that already holds
        rounds is resumed from its last committed round. :meth:`close` closes it (and
        the pool and the decider); if the experiment cannot start (the constructor
        raises), what was passed in is left open for the caller to close.
    observers
        :class:`~colearning.core.observers.RoundObserver` instances (or callables
        taking each committed :class:`RoundRecord`): progress bars, ledgers, trackers.
    decider
        Who decides each round; default the Python tally with ``vote_threshold``.
    committee
        Voters per round: each round ``committee`` learners drawn from the non-proposers
        with randomness from ``(seed, round_index)`` (or, with a decider that has its
        own, such as the ledger's, from the chain) vote instead of everyone
        (:class:`~colearning.core.plans.CommitteePlanner`; size it with
        :func:`colearning.scale.committee_size`). Default: everyone votes.

    Examples
    --------
    >>> from colearning.testing import QuadraticLearner
    >>> learners = [QuadraticLearner(target=[1.0, 2.0], seed=i) for i in range(3)]
    >>> result = Experiment(learners).run(rounds=4)
    >>> [r.round_index for r in result.rounds]
    [0, 1, 2, 3]
    """

    def __init__(
        self,
        learners: Sequence[MachineLearningInterface] | LearnerPool,
        *,
        vote_threshold: float = 0.5,
        proposer: str | Planner = "round-robin",
        seed: int = 0,
        timeout: float | None = None,
        store: ExperimentStore | None = None,
        learner_ids: Sequence[str] | None = None,
        observers: Sequence[ObserverLike] = (),
        decider: Decider | None = None,
        mode: str = "single",
        combiner: str | Combiner = "mean",
        proposers: int | None = None,
        committee: int | None = None,
    ) -> None:
        self.decider = decider or TallyDecider(vote_threshold)
        self.planner = planner_for_mode(
            mode,
            proposer,
            seed,
            combiner,
            proposers,
            committee,
            randomness=self.decider.committee_randomness(),
        )
        check_timeout(timeout)
        if isinstance(learners, Sequence):
            if len(learners) < 1:
                raise ConfigError("an experiment needs at least 1 learner; got 0")
            self.pool: LearnerPool = LocalPool(learners, learner_ids)
        else:
            self.pool = learners
        if isinstance(self.planner, CommitteePlanner):
            check_committee_size(self.planner.size, len(self.pool.learner_ids))
        self.vote_threshold = vote_threshold
        self.proposer = proposer
        self.seed = seed
        self.timeout = timeout
        self.store = store
        self.observer = Observers(observers)
        self.rounds: list[RoundRecord] = []
        self._encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="colearning-encode")
        self._warned: set[str] = set()
        # learners whose privacy budget ran out, kept as rounds are committed (scanning
        # every past proposal each round grew with rounds x proposers)
        self._exhausted: set[str] = set()
        # the shared model before its last adopted step (a server step's momentum), or,
        # resumed, the id to read it by when first needed
        self.previous: WeightsRef | None = None
        self._previous_id: str | None = None
        try:
            self._start()
        except BaseException:
            # what this experiment made ends here; what it was given (a pool, a store,
            # a decider) stays the caller's to close, as it would be without an
            # experiment
            self._encoder.shutdown(wait=True)
            if isinstance(learners, Sequence):
                self.pool.close()
            raise

    @property
    def learner_ids(self) -> list[str]:
        return list(self.pool.learner_ids)

    @property
    def next_round(self) -> int:
        return self.rounds[-1].round_index + 1 if self.rounds else 0

    @property
    def current_weights(self) -> Weights:
        """The shared model's weights now."""
        return self.current.weights

    @property
    def current_weights_id(self) -> str:
        return self.current.weights_id

    # -- the loop -------------------------------------------------------------------------

    def run(self, rounds: int) -> ExperimentResult:
        """Play rounds until ``rounds`` rounds exist in total (resumed ones included)."""
        if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 0:
            raise ConfigError(f"rounds must be an integer >= 0; got {rounds!r}")
        stopped: str | None = None
        ids = self.pool.learner_ids
        for round_index in range(self.next_round, rounds):
            if len(self._exhausted) == len(ids):
                stopped = f"every learner's {BUDGET_EXHAUSTED}"
                break
            plan = self.planner.plan(round_index, ids)
            stepped = plan.mode != "single" and plan.combiner.has_server_step
            result = play_round(
                self.pool,
                plan,
                current_weights_id=self.current_weights_id,
                decider=self.decider,
                expected=self.spec,
                timeout=self.timeout,
                encoder=self._encoder,
                observer=self.observer,
                current=self.current_weights if stepped else None,
                previous=self._previous_weights() if stepped else None,
            )
            self._commit(result)
        # a pool that defers adoption: every learner holds the shared weights on return
        catch_up(self.pool, self.timeout)
        return ExperimentResult(
            rounds=list(self.rounds),
            final_weights_id=self.current_weights_id,
            final_weights=self.current_weights,
            stopped_early=stopped,
            learner_ids=self.learner_ids,
        )

    def close(self) -> None:
        self._encoder.shutdown(wait=True)
        self.pool.close()
        self.decider.close()
        if self.store is not None:
            self.store.close()

    def __enter__(self) -> Experiment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- steps ----------------------------------------------------------------------------

    def _start(self) -> None:
        """Bring every learner to the shared starting point: the first learner's weights
        for a new experiment, the last committed weights for a resumed one."""
        ids = self.learner_ids
        if self.store is not None and self.store.learner_ids != ids:
            raise StoreError(
                f"the experiment in {self.store.directory} has learners "
                f"{self.store.learner_ids}; got {ids}. Use the same learners (ids and order)"
            )
        resumed = self.store is not None and self.store.initial_weights_id is not None
        if resumed:
            assert self.store is not None
            self.rounds = self.store.rounds()
            for record in self.rounds:
                self._note_exhausted(record)
            self._restore_progress()
            initial = decode(self.store.get_blob(str(self.store.initial_weights_id)))
            self.spec = WeightsSpec.of(initial)
            wid = str(self.store.current_weights_id())
            blob = self.store.get_blob(wid)  # checked against its id
            current = WeightsRef(decode(blob, self.spec), weights_id=wid, blob=blob)
            adopted = [r for r in self.rounds if r.accepted]
            self._previous_id = adopted[-1].previous_weights_id if adopted else None
            targets = ids
        else:
            got = self.pool.current_weights(ids[0], self.timeout)
            if not got.ok or not isinstance(got.value, Weights):
                raise LearnerError(
                    f"cannot start: {ids[0]} did not return its current weights "
                    f"({got.error or type(got.value).__name__})"
                )
            # sealed, like every accepted proposal: learner 0 may keep training the
            # arrays it returned in place
            current = WeightsRef.of(got.value).sealed()
            self.spec = WeightsSpec.of(got.value)
            if self.store is not None:
                self.store.set_initial_weights(current.blob())
            targets = ids[1:]
        failed = [
            f"{lid}: {o.error}"
            for lid, o in self.pool.accept(targets, current, self.timeout).items()
            if not o.ok
        ]
        if failed:
            raise LearnerError(
                "cannot start: these learners refused the shared starting weights: "
                + "; ".join(failed)
            )
        self.current = current

    def _previous_weights(self) -> Weights | None:
        """The shared model before the step the last round adopted: the momentum of a
        server step. ``None`` (no momentum) unless the last round was accepted: a
        rejected candidate restarts the momentum, so a step the voters turned down is
        not pushed again. Held since that step, or, in a resumed run, read from the store
        by the last round's ``previous_weights_id``."""
        if not self.rounds or not self.rounds[-1].accepted:
            return None
        if self.previous is None and self._previous_id is not None:
            assert self.store is not None
            blob = self.store.get_blob(self._previous_id)  # checked against its id
            self.previous = WeightsRef(
                decode(blob, self.spec), weights_id=self._previous_id, blob=blob
            )
        return None if self.previous is None else self.previous.weights

    def _restore_progress(self) -> None:
        for learner_id in self.learner_ids:
            made = proposals_made(self.rounds, learner_id)
            outcome = self.pool.restore_progress(learner_id, made, self.timeout)
            if not outcome.ok:
                raise LearnerError(
                    f"cannot resume: {learner_id} failed to restore: {outcome.error}"
                )

    def _commit(self, result: RoundResult) -> None:
        record = result.record
        accepted = record.accepted and result.candidate is not None
        if self.store is not None:
            blob = result.candidate.blob() if accepted and result.candidate else None
            self.store.commit_round(record, blob)
        if accepted:
            assert result.candidate is not None
            self.previous, self._previous_id = self.current, None
            self.current = result.candidate
        self.rounds.append(record)
        self._note_exhausted(record)
        self._warn_failed_proposers(record)
        self.observer.committed(record)

    def _note_exhausted(self, record: RoundRecord) -> None:
        """Remember learners whose privacy budget ran out (their turns are skipped)."""
        for p in record.proposals:
            if p.reason is Reason.BUDGET_EXHAUSTED:
                self._exhausted.add(p.proposer_id)

    def _warn_failed_proposers(self, record: RoundRecord) -> None:
        """A proposer whose calls fail must not fail silently: warn once per learner."""
        for p in record.proposals:
            if p.reason is not None and p.reason.is_failure and p.proposer_id not in self._warned:
                self._warned.add(p.proposer_id)
                warnings.warn(
                    f"round {record.round_index}: {p.proposer_id}'s turn was skipped: "
                    f"{p.detail or p.reason.value}",
                    ProposerSkippedWarning,
                    stacklevel=3,
                )
