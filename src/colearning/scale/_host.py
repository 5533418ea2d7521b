"""What runs inside one Ray actor: a host of many learners (see :mod:`.ray_pool`).

An actor holds its learners in a :class:`~colearning.core.pool.LocalPool`, so within an
actor calls run on worker threads with the same timeouts, per-learner locks and
deferred adoption as in process. Each call from the coordinator carries what the actor
may have missed: progress to restore (after a resume or a restart) and the shared
weights when the actor is behind them. This module imports Ray nowhere; the pool wraps
:class:`LearnerHost` with ``ray.remote`` when it starts the actors.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from colearning.core.interface import (
    LearnerTags,
    MachineLearningInterface,
    ProposedWeights,
    TrainingSummary,
    Weights,
)
from colearning.core.pool import LocalPool, Outcome
from colearning.core.protocol import Failure, Reason
from colearning.core.weights_ref import WeightsRef

#: One learner's outcome on the way back: (value, reason code or None, message, seconds).
#: A test call's value is its scores as a plain tuple, ``(vote_score, test_score, vote,
#: error, criterion)``: the coordinator knows the weights it sent, and a tuple costs
#: less to carry than the dataclass (no learner answer is a tuple: see ``_carriable``).
Packed = tuple[Any, str | None, str | None, float]
#: What a call says besides its payloads: ``(kind, ids, timeout, instance, version,
#: restores)`` (one argument: Ray serializes each argument of a call on its own).
Header = tuple[str, Sequence[str], float | None, str | None, int, Sequence[tuple[str, int]]]


class LearnerBuilder(Protocol):
    """Builds an actor's learners where they will run (it is pickled to the actor, and
    ``shared`` reaches it through the object store, once).

    ``build(indices, shared)`` returns the learners at those positions of the
    experiment, in that order.
    """

    def build(self, indices: Sequence[int], shared: Any) -> Sequence[MachineLearningInterface]:
        """The learners at ``indices``, built from ``shared``."""
        ...


@dataclasses.dataclass(frozen=True)
class GivenLearners:
    """The builder of learners made in the coordinator: ``shared`` is the actor's own
    learners, pickled to it."""

    def build(self, indices: Sequence[int], shared: Any) -> Sequence[MachineLearningInterface]:
        learners = list(shared)
        if len(learners) != len(indices):
            raise ValueError(f"got {len(learners)} learners for {len(indices)} positions")
        return learners


# -- weights across Ray --------------------------------------------------------------------


def weights_to_ray(weights: Weights) -> tuple[dict[str, Any], Any, TrainingSummary | None]:
    """What Ray carries for a :class:`Weights`: its named arrays (zero-copy), its layout
    and its training summary; nothing else of the object is pickled."""
    return dict(weights.arrays), weights.layout, weights.training_summary


def weights_from_ray(value: tuple[dict[str, Any], Any, TrainingSummary | None]) -> Weights:
    arrays, layout, summary = value
    return Weights.from_arrays(arrays, layout, summary)


def register_serializers() -> None:
    """Teach Ray (in this process) to carry :class:`Weights` as named arrays."""
    import ray

    ray.util.register_serializer(Weights, serializer=weights_to_ray, deserializer=weights_from_ray)


# -- the host ---------------------------------------------------------------------------------


class LearnerHost:
    """Many learners in one process (the body of a Ray actor).

    A host starts empty; :meth:`build` makes its learners. A restarted actor is a new,
    empty host (a new :attr:`instance`), which refuses calls until the coordinator has
    built it again and brought it up to date.
    """

    def __init__(self) -> None:
        register_serializers()
        self.instance = uuid.uuid4().hex
        self.pool: LocalPool | None = None
        self.version = 0
        self._lock = threading.Lock()

    def build(
        self,
        builder: LearnerBuilder,
        indices: Sequence[int],
        ids: Sequence[str],
        shared: Any,
        workers: int,
    ) -> str:
        """Make this host's learners: ``builder.build(indices, shared)``, with ``ids``.
        Ray hands ``shared`` over from the object store (zero-copy on this node)."""
        learners = builder.build(list(indices), shared)
        self.pool = LocalPool(dict(zip(ids, learners, strict=True)), max_workers=workers)
        return self.instance

    def hello(self) -> tuple[str, int]:
        """This host's instance (new after every restart) and its shared-weights version."""
        return self.instance, self.version

    def tags(self) -> dict[str, LearnerTags]:
        pool = self._built()
        return {lid: pool.tags(lid) for lid in pool.learner_ids}

    def learner(self, learner_id: str) -> MachineLearningInterface:
        """One learner as it is now (Ray sends a copy: for inspection)."""
        return self._built().learner(learner_id)

    def _built(self) -> LocalPool:
        if self.pool is None:
            raise RuntimeError("this learner host has no learners yet (it was restarted)")
        return self.pool

    def call(
        self, header: Header, arg: Any, shared: Weights | None
    ) -> tuple[str, int, list[Packed | None] | None]:
        """One wave of calls (``header``: what, on which ``ids``, ...; ``arg`` and
        ``shared`` are the payloads, resolved by Ray when they are object-store
        references): ``(instance, version, packed outcomes)`` (a ``None`` entry: a
        learner ``catch_up`` found up to date).

        Refused (``None`` outcomes) when ``instance`` is not this one (the actor was
        restarted since the coordinator last heard from it) or when the host is behind
        ``version`` and ``shared`` was not sent: the coordinator then brings it up to
        date and asks again.
        """
        kind, ids, timeout, instance, version, restores = header
        if self.pool is None or instance != self.instance:
            return self.instance, self.version, None
        with self._lock:
            if version > self.version:
                if shared is None:
                    return self.instance, self.version, None
                self._built().adopt(WeightsRef.of(shared), None)
                self.version = version
            restore_failures = self._restore(restores, timeout)
        outcomes = self._run(kind, ids, arg, timeout)
        packed: list[Packed | None] = []
        for lid in ids:
            failed = restore_failures.get(lid)
            outcome = outcomes.get(lid) if failed is None else failed
            packed.append(None if outcome is None else _pack(kind, outcome))
        return self.instance, self.version, packed

    # -- machinery ------------------------------------------------------------------------

    def _restore(
        self, restores: Sequence[tuple[str, int]], timeout: float | None
    ) -> dict[str, Outcome[Any]]:
        failed: dict[str, Outcome[Any]] = {}
        for lid, made in restores:
            got = self._built().restore_progress(lid, made, timeout)
            if not got.ok:
                failed[lid] = Outcome.failed(
                    Reason.RAISED, f"could not restore its progress ({made}): {got.error}"
                )
        return failed

    def _run(
        self, kind: str, ids: Sequence[str], arg: Any, timeout: float | None
    ) -> dict[str, Outcome[Any]]:
        pool = self._built()
        if kind == "test_proposal":  # arg: the answer of this wave's propose call
            proposal = _proposal_in(arg)
            if proposal is None:
                return dict.fromkeys(ids, NO_PROPOSAL)
            kind, arg = "test", proposal
        calls: dict[str, Callable[[], dict[str, Outcome[Any]]]] = {
            "propose": lambda: pool.propose(ids, int(arg), timeout),
            "test": lambda: pool.test(ids, WeightsRef.of(arg), timeout),
            "accept": lambda: pool.accept(ids, WeightsRef.of(arg), timeout),
            "current": lambda: {lid: pool.current_weights(lid, timeout) for lid in ids},
            "catch_up": lambda: pool.catch_up(timeout),
        }
        if kind not in calls:
            raise ValueError(f"unknown call {kind!r}")
        return calls[kind]()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()


#: What a tester answers when the proposal it was to test never came (the coordinator
#: ignores it: the round has no proposal).
NO_PROPOSAL: Outcome[Any] = Outcome.failed(
    Reason.UNREACHABLE, "the proposal to test never reached it (the proposer's call failed)"
)


def _proposal_in(answer: Any) -> Weights | None:
    """The weights a propose call's answer (``(instance, version, packed)``) holds, or
    ``None`` if it refused, failed or answered anything else."""
    packed = answer[2] if isinstance(answer, tuple) and len(answer) == 3 else None
    if not packed or packed[0] is None:
        return None
    value, reason = packed[0][0], packed[0][1]
    return value if reason is None and isinstance(value, Weights) else None


def _pack(kind: str, outcome: Outcome[Any]) -> Packed:
    if outcome.failure is not None:
        return None, outcome.failure.reason.value, outcome.failure.message, outcome.seconds
    value = outcome.value
    if kind in ("test", "test_proposal") and isinstance(value, ProposedWeights):
        # the coordinator knows the weights it sent: they do not travel back
        scores = (value.vote_score, value.test_score, value.vote, value.error, value.criterion)
        return scores, None, None, outcome.seconds
    elif not _carriable(value):
        what = "mli_propose_weights must return colearning.Weights"
        if kind in ("test", "test_proposal"):
            what = "mli_test_weights must return colearning.ProposedWeights"
        return (
            None,
            Reason.BAD_ANSWER.value,
            f"answered {type(value).__name__}; {what}",
            outcome.seconds,
        )
    return value, None, None, outcome.seconds


def _carriable(value: Any) -> bool:
    return value is None or isinstance(value, Weights | ProposedWeights | str | int | float)


def unpack(packed: Packed) -> Outcome[Any]:
    """The :class:`Outcome` a packed outcome stands for."""
    value, reason, message, seconds = packed
    if reason is not None:
        return Outcome(None, Failure(Reason(reason), message or reason), seconds)
    return Outcome(value, None, seconds)
