"""A learner wrapper that misbehaves on purpose, to test how a driver copes."""

from __future__ import annotations

import threading
from collections.abc import Collection
from typing import Literal

import numpy as np

from colearning.core.interface import MachineLearningInterface, ProposedWeights, Weights
from colearning.core.wrapper import LearnerWrapper

FaultMode = Literal["raise", "hang", "garbage", "nan", "approve"]


class FaultyLearner(LearnerWrapper):
    """Wraps a learner and breaks the calls named in ``on``.

    Modes: ``"raise"`` raises ``RuntimeError``; ``"hang"`` blocks until
    :meth:`release` (or ``hang_seconds``); ``"garbage"`` returns nonsense (a string
    vote, a non-``Weights`` proposal); ``"nan"`` proposes weights full of NaN;
    ``"approve"`` always votes yes (a colluding voter).
    """

    def __init__(
        self,
        inner: MachineLearningInterface,
        mode: FaultMode,
        on: Collection[str] = ("test",),
        hang_seconds: float = 30.0,
    ) -> None:
        super().__init__(inner)
        self.mode = mode
        self.on = set(on)
        self.hang_seconds = hang_seconds
        self._release = threading.Event()
        self.calls: dict[str, int] = {}

    def release(self) -> None:
        """Let hanging calls return."""
        self._release.set()

    def __getstate__(self) -> dict[str, object]:
        # picklable (to reach a learner process or a Ray actor): the event is this
        # process's own, and a copy starts with a new one
        state = dict(self.__dict__)
        state.pop("_release", None)
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._release = threading.Event()

    def _fault(self, call: str) -> bool:
        self.calls[call] = self.calls.get(call, 0) + 1
        if call not in self.on:
            return False
        if self.mode == "raise":
            raise RuntimeError(f"injected failure in {call}")
        if self.mode == "hang":
            self._release.wait(self.hang_seconds)
        return True

    def mli_propose_weights(self) -> Weights:
        faulty = self._fault("propose")
        proposal = self.inner.mli_propose_weights()
        if faulty and self.mode == "garbage":
            return "not weights"  # type: ignore[return-value]
        if faulty and self.mode == "nan":
            return Weights({k: np.full_like(a, np.nan) for k, a in proposal.arrays.items()})
        return proposal

    def mli_test_weights(self, weights: Weights) -> ProposedWeights:
        faulty = self._fault("test")
        verdict = self.inner.mli_test_weights(weights)
        if faulty and self.mode == "garbage":
            return ProposedWeights(weights, verdict.vote_score, verdict.test_score, "yes")  # type: ignore[arg-type]
        if faulty and self.mode == "approve":
            return ProposedWeights(weights, verdict.vote_score, verdict.test_score, True)
        return verdict

    def mli_accept_weights(self, weights: Weights) -> None:
        self._fault("accept")
        self.inner.mli_accept_weights(weights)
