"""Pipelined rounds: the next round's proposer trains while this round is voted on.

A proposal is a pure function of the shared weights, the proposer's data, its seed and
the round index (learners that declare ``LearnerTags.deterministic``). So while round
``r`` is under way, the proposer of round ``r + 1`` can already train from the shared
model as it is. If round ``r`` is rejected the shared model did not change and the early
proposal is exactly the one it would have trained: it is used at once. If round ``r``
is accepted, the learner adopts new weights and the early proposal is discarded and
trained again. Either way every round ends as it would have without pipelining, so
the final weights id is the same (``tests/core/test_pipeline.py``).

When the early proposal starts: a learner runs one call at a time, so it never delays
that learner's own vote. In a round whose proposal has to be trained, the next
proposer is idle while the proposer trains, so it starts at once, alongside; in a
round whose proposal was ready (trained early), it starts right after the next
proposer has cast its vote. With learners on separate machines the training then
overlaps the others' work; on one machine's cores it only fills idle time.

:class:`PipelinedPool` wraps any :class:`~colearning.core.pool.LearnerPool`, so the
driver and the experiment loop are unchanged. Learners that do not declare themselves
deterministic, or that spend a privacy budget or keep state per proposal
(``private``, ``restores_progress``), are never asked early.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from colearning.core.interface import LearnerTags, ProposedWeights, Weights
from colearning.core.plans import Planner
from colearning.core.pool import LearnerPool, Outcome, catch_up, defers_adoption
from colearning.core.protocol import Reason
from colearning.core.weights_ref import WeightsRef

T = TypeVar("T")


@dataclass
class _Early:
    round_index: int
    epoch: int
    thread: threading.Thread
    outcome: Outcome[Weights] | None = None


@dataclass
class PipelineStats:
    """How the early proposals fared."""

    started: int = 0
    used: int = 0
    discarded: int = 0
    rounds: list[int] = field(default_factory=list)  # rounds whose early proposal was used

    @property
    def used_share(self) -> float:
        return self.used / self.started if self.started else 0.0

    def as_dict(self) -> dict[str, Any]:
        """What a run's summary records (``summary["pipeline"]``)."""
        return {
            "started": self.started,
            "used": self.used,
            "discarded": self.discarded,
            "rounds": list(self.rounds),
        }


class PipelinedPool:
    """A pool that trains each round's proposal early (see the module docstring).

    Parameters
    ----------
    pool
        The pool to drive.
    planner
        The experiment's planner (the same policy and seed), to know who proposes next.
    rounds
        The experiment's number of rounds: nothing is trained early for a round past it.
    """

    def __init__(self, pool: LearnerPool, planner: Planner, rounds: int | None = None) -> None:
        self.pool = pool
        self.planner = planner
        self.rounds = rounds
        self.stats = PipelineStats()
        self._early: dict[str, _Early] = {}
        self._epoch = {lid: 0 for lid in pool.learner_ids}
        self._eligible = {lid: _may_train_early(pool.tags(lid)) for lid in pool.learner_ids}
        self._round = -1
        self._lock = threading.Lock()

    # -- the pool's surface ----------------------------------------------------------------

    @property
    def learner_ids(self) -> Sequence[str]:
        return self.pool.learner_ids

    def tags(self, learner_id: str) -> LearnerTags:
        return self.pool.tags(learner_id)

    def propose(
        self, learner_ids: Sequence[str], round_index: int, timeout: float | None
    ) -> dict[str, Outcome[Weights]]:
        self._round = round_index
        out: dict[str, Outcome[Weights]] = {}
        need = []
        for lid in learner_ids:
            early = self._take(lid)
            if (
                early is not None
                and early.round_index == round_index
                and early.epoch == self._epoch[lid]
                and early.outcome is not None
                and early.outcome.ok
            ):
                out[lid] = early.outcome
                self.stats.used += 1
                self.stats.rounds.append(round_index)
                continue
            if early is not None:
                self.stats.discarded += 1
            need.append(lid)
        if need:
            # the next proposer is idle while this one trains: start it alongside
            nxt = self._next_proposer(round_index)
            if nxt is not None and nxt not in need:
                self._start(nxt, round_index + 1, timeout)
            out.update(self.pool.propose(need, round_index, timeout))
        return {lid: out[lid] for lid in learner_ids}

    def test(
        self, learner_ids: Sequence[str], weights: WeightsRef, timeout: float | None
    ) -> dict[str, Outcome[ProposedWeights]]:
        nxt = self._next_proposer(self._round)

        def then(lid: str) -> None:
            if lid == nxt and lid not in self._early:
                # its vote is cast: now it trains the next round's proposal
                self._start(lid, self._round + 1, timeout)

        return self._call(
            learner_ids, lambda ids: self.pool.test(ids, weights, timeout), then, alone=nxt
        )

    def accept(
        self, learner_ids: Sequence[str], weights: WeightsRef, timeout: float | None
    ) -> dict[str, Outcome[None]]:
        for lid in learner_ids:
            self._epoch[lid] += 1  # any early proposal of theirs is now stale
        return self._call(learner_ids, lambda ids: self.pool.accept(ids, weights, timeout))

    def adopt(self, weights: WeightsRef, timeout: float | None) -> dict[str, Outcome[None]]:
        if not defers_adoption(self.pool):
            return self.accept(self.pool.learner_ids, weights, timeout)
        for lid in self._epoch:
            self._epoch[lid] += 1  # every early proposal is now stale
        return self.pool.adopt(weights, timeout)

    def catch_up(self, timeout: float | None) -> dict[str, Outcome[None]]:
        return catch_up(self.pool, timeout)

    def current_weights(self, learner_id: str, timeout: float | None) -> Outcome[Weights]:
        self._wait(learner_id)
        return self.pool.current_weights(learner_id, timeout)

    def restore_progress(
        self, learner_id: str, proposals_made: int, timeout: float | None
    ) -> Outcome[None]:
        self._wait(learner_id)
        return self.pool.restore_progress(learner_id, proposals_made, timeout)

    def close(self) -> None:
        self.pool.close()  # ends calls in flight where the transport can
        for early in list(self._early.values()):
            early.thread.join(timeout=5.0)
        self._early.clear()

    def __getattr__(self, name: str) -> Any:
        # what the inner pool offers beyond the protocol (descriptions, addresses, ...),
        # but not a way round this pool's own proposals (``propose_and_test`` would
        # train each proposal again, beside the early one)
        if name in ("pool", "propose_and_test"):
            raise AttributeError(name)
        return getattr(self.pool, name)

    # -- machinery ----------------------------------------------------------------------------

    def _next_proposer(self, round_index: int) -> str | None:
        nxt = round_index + 1
        if round_index < 0 or (self.rounds is not None and nxt >= self.rounds):
            return None
        plan = self.planner.plan(nxt, list(self.pool.learner_ids))
        if plan.mode != "single" or len(plan.proposers) != 1:
            return None
        lid = plan.proposers[0]
        return lid if self._eligible.get(lid, False) else None

    def _start(self, lid: str, round_index: int, timeout: float | None) -> None:
        early = _Early(round_index, self._epoch[lid], threading.Thread(daemon=True))

        def run() -> None:
            try:
                early.outcome = self.pool.propose([lid], round_index, timeout)[lid]
            except Exception as exc:  # the pool closed under it (Ctrl-C)
                # an early proposal is only ever a head start: a failed one is trained
                # again in its round, so it fails quietly instead of in a traceback
                early.outcome = Outcome.failed(Reason.RAISED, f"early proposal: {exc}")

        early.thread = threading.Thread(target=run, name=f"colearning-early-{lid}", daemon=True)
        # started before it is registered: an interrupt inside ``start()`` (Ctrl-C) must
        # not leave ``close()`` a thread to join that never started
        early.thread.start()
        with self._lock:
            self._early[lid] = early
        self.stats.started += 1

    def _take(self, lid: str) -> _Early | None:
        with self._lock:
            early = self._early.pop(lid, None)
        if early is not None:
            early.thread.join()
        return early

    def _wait(self, lid: str) -> None:
        with self._lock:
            early = self._early.get(lid)
        if early is not None:
            early.thread.join()

    def _call(
        self,
        learner_ids: Sequence[str],
        call: Callable[[Sequence[str]], dict[str, Outcome[T]]],
        then: Callable[[str], None] | None = None,
        alone: str | None = None,
    ) -> dict[str, Outcome[T]]:
        """``call`` on ``learner_ids``. A learner still training early is called on its
        own once it has finished, while the others go ahead; so is ``alone`` (the next
        proposer, whose early training starts, by ``then``, right after its own call)."""
        with self._lock:
            apart = {
                lid
                for lid in learner_ids
                if lid in self._early and self._early[lid].thread.is_alive()
            }
        if alone is not None and alone in learner_ids:
            apart.add(alone)
        together = [lid for lid in learner_ids if lid not in apart]
        out: dict[str, Outcome[T]] = {}

        def own(lid: str) -> None:
            self._wait(lid)
            got = call([lid])
            with self._lock:
                out.update(got)
            if then is not None:
                then(lid)

        threads = [threading.Thread(target=own, args=(lid,), daemon=True) for lid in apart]
        for t in threads:
            t.start()
        if together:
            got = call(together)
            with self._lock:
                out.update(got)
        for t in threads:
            t.join()
        return {lid: out[lid] for lid in learner_ids}


def _may_train_early(tags: LearnerTags) -> bool:
    return tags.deterministic and not tags.private and not tags.restores_progress
