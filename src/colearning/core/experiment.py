"""The experiment loop: many rounds over a pool, each committed before the next.

Read :meth:`Experiment.run` top to bottom: it is the whole protocol over time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from colearning.core.codec import WeightsSpec, decode, encode, weights_id
from colearning.core.driver import BUDGET_EXHAUSTED, RoundResult, play_round
from colearning.core.exceptions import ConfigError, LearnerError, StoreError
from colearning.core.interface import MachineLearningInterface, Weights
from colearning.core.pool import LearnerPool, LocalPool
from colearning.core.records import RoundRecord
from colearning.core.store import ExperimentStore
from colearning.core.tally import threshold_fraction

ProposerPolicy = Literal["round-robin", "random"]
RoundObserver = Callable[[RoundRecord], None]


def choose_proposer(policy: ProposerPolicy, round_index: int, n_learners: int, seed: int) -> int:
    """The proposer of ``round_index``: ``round_index % n`` or a seeded random pick.

    The random pick depends only on ``(seed, round_index)``, so a resumed run picks
    the same proposers as an uninterrupted one.
    """
    if policy == "round-robin":
        return round_index % n_learners
    if policy == "random":
        return int(np.random.default_rng([seed, round_index]).integers(n_learners))
    raise ConfigError(f"proposer policy must be 'round-robin' or 'random'; got {policy!r}")


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
        ``"round-robin"`` (``round_index % n``) or ``"random"`` (seeded).
    seed
        Seed of the random proposer policy.
    timeout
        Seconds each learner call may take; a call past it counts as not approving.
    store
        Where rounds are committed; an :class:`ExperimentStore` that already holds
        rounds is resumed from its last committed round.
    observers
        Called with each committed :class:`RoundRecord` (progress bars, ledgers).

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
        proposer: ProposerPolicy = "round-robin",
        seed: int = 0,
        timeout: float | None = None,
        store: ExperimentStore | None = None,
        learner_ids: Sequence[str] | None = None,
        observers: Sequence[RoundObserver] = (),
    ) -> None:
        threshold_fraction(vote_threshold)
        choose_proposer(proposer, 0, 1, seed)
        if timeout is not None and not timeout > 0:
            raise ConfigError(f"timeout must be > 0 seconds; got {timeout}")
        if isinstance(learners, Sequence):
            if len(learners) < 1:
                raise ConfigError("an experiment needs at least 1 learner; got 0")
            self.pool: LearnerPool = LocalPool(learners, learner_ids)
        else:
            self.pool = learners
        self.vote_threshold = vote_threshold
        self.proposer = proposer
        self.seed = seed
        self.timeout = timeout
        self.store = store
        self.observers = list(observers)
        self.rounds: list[RoundRecord] = []
        self._encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="colearning-encode")
        self._blobs: dict[str, bytes] = {}
        self._start()

    @property
    def learner_ids(self) -> list[str]:
        return list(self.pool.learner_ids)

    @property
    def next_round(self) -> int:
        return self.rounds[-1].round_index + 1 if self.rounds else 0

    # -- the loop -------------------------------------------------------------------------

    def run(self, rounds: int) -> ExperimentResult:
        """Play rounds until ``rounds`` rounds exist in total (resumed ones included)."""
        if rounds < 0:
            raise ConfigError(f"rounds must be >= 0; got {rounds}")
        n = len(self.learner_ids)
        stopped: str | None = None
        for round_index in range(self.next_round, rounds):
            if len(self._exhausted()) == n:
                stopped = f"every learner's {BUDGET_EXHAUSTED}"
                break
            result = play_round(
                self.pool,
                round_index,
                choose_proposer(self.proposer, round_index, n, self.seed),
                self.vote_threshold,
                current_weights_id=self.current_weights_id,
                expected=self.spec,
                timeout=self.timeout,
                encode_in_background=self._encode_later,
            )
            self._commit(result)
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
        if self.store is not None:
            self.store.close()

    def __enter__(self) -> Experiment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- steps ----------------------------------------------------------------------------

    def _start(self) -> None:
        """Bring every learner to the shared starting point: learner 0's weights for a
        new experiment, the last committed weights for a resumed one."""
        resumed = self.store is not None and self.store.initial_weights_id is not None
        if resumed:
            assert self.store is not None
            if self.store.learner_ids != self.learner_ids:
                raise StoreError(
                    f"the experiment in {self.store.directory} has learners "
                    f"{self.store.learner_ids}; got {self.learner_ids}. Resume with the "
                    "same learners"
                )
            self.rounds = self.store.rounds()
            self._restore_progress()
            initial = decode(self.store.get_blob(str(self.store.initial_weights_id)))
            self.spec = WeightsSpec.of(initial)
            wid = str(self.store.current_weights_id())
            weights = decode(self.store.get_blob(wid), self.spec)
            targets = range(len(self.learner_ids))
        else:
            got = self.pool.current_weights(0, self.timeout)
            if not got.ok or not isinstance(got.value, Weights):
                raise LearnerError(
                    f"cannot start: {self.learner_ids[0]} did not return its current weights "
                    f"({got.error or type(got.value).__name__})"
                )
            weights = got.value
            if self.store is not None and self.store.learner_ids != self.learner_ids:
                raise StoreError(
                    f"{self.store.directory} was created for learners "
                    f"{self.store.learner_ids}; got {self.learner_ids}"
                )
            self.spec = WeightsSpec.of(weights)
            blob = encode(weights)
            wid = weights_id(blob)
            if self.store is not None:
                self.store.set_initial_weights(blob)
            targets = range(1, len(self.learner_ids))
        failed = [
            f"{self.learner_ids[i]}: {o.error}"
            for i, o in zip(targets, self.pool.accept(targets, weights, self.timeout), strict=True)
            if not o.ok
        ]
        if failed:
            raise LearnerError(
                "cannot start: these learners refused the shared starting weights: "
                + "; ".join(failed)
            )
        self.current_weights_id = wid
        self.current_weights = weights

    def _restore_progress(self) -> None:
        for index, learner_id in enumerate(self.learner_ids):
            made = sum(
                1 for r in self.rounds if r.proposer_id == learner_id and r.status != "skipped"
            )
            outcome = self.pool.restore_progress(index, made, self.timeout)
            if not outcome.ok:
                raise LearnerError(
                    f"cannot resume: {learner_id} failed to restore: {outcome.error}"
                )

    def _encode_later(self, weights: Weights) -> Future[str]:
        def encode_and_hash() -> str:
            blob = encode(weights)
            wid = weights_id(blob)
            self._blobs[wid] = blob
            return wid

        return self._encoder.submit(encode_and_hash)

    def _commit(self, result: RoundResult) -> None:
        record = result.record
        blob = self._blobs.pop(record.weights_id, None) if record.weights_id else None
        self._blobs.clear()
        if self.store is not None:
            self.store.commit_round(record, blob if record.accepted else None)
        if record.accepted and result.proposal is not None:
            self.current_weights = result.proposal
        self.current_weights_id = record.current_weights_id
        self.rounds.append(record)
        for observe in self.observers:
            observe(record)

    def _exhausted(self) -> set[str]:
        """Learners whose privacy budget ran out (their turns are skipped)."""
        return {r.proposer_id for r in self.rounds if r.reason == BUDGET_EXHAUSTED}
