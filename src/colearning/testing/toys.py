"""Tiny learners with no ML framework, for tests, examples and driver benchmarks."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from colearning.core.codec import encode
from colearning.core.interface import (
    ColearnModel,
    LearnerTags,
    MachineLearningInterface,
    ModelFormat,
    ProposedWeights,
    Weights,
)


class QuadraticLearner(MachineLearningInterface):
    """A learner whose "private data" is a target point.

    Its model is a vector ``w``; a proposal steps ``w`` towards the target with seeded
    noise; the vote score is ``-mean((w - target)**2)`` (higher is better), so it
    approves a proposal that brings ``w`` closer to its own target.

    Parameters
    ----------
    target
        This learner's private optimum.
    step
        Fraction of the way to the target a proposal moves.
    noise
        Standard deviation of the noise added to each proposal.
    seed
        Seeds the noise together with the round index.
    work_seconds
        Seconds each call spends sleeping, to stand in for compute that releases the GIL.
    """

    def __init__(
        self,
        target: Sequence[float],
        step: float = 0.5,
        noise: float = 0.05,
        seed: int = 0,
        work_seconds: float = 0.0,
        start: Sequence[float] | None = None,
    ) -> None:
        self.target = np.asarray(target, dtype=np.float64)
        self.step = step
        self.noise = noise
        self.seed = seed
        self.work_seconds = work_seconds
        self._round = 0
        self._weights = Weights(
            {"w": np.zeros_like(self.target) if start is None else np.asarray(start, float)}
        )
        self._score = self._evaluate(self._weights)

    def _evaluate(self, weights: Weights) -> float:
        if self.work_seconds:
            time.sleep(self.work_seconds)
        return -float(np.mean((weights.arrays["w"] - self.target) ** 2))

    def mli_set_round(self, round_index: int) -> None:
        self._round = round_index

    def mli_propose_weights(self) -> Weights:
        if self.work_seconds:
            time.sleep(self.work_seconds)
        rng = np.random.default_rng([self.seed, self._round])
        w = self._weights.arrays["w"]
        new = w + self.step * (self.target - w) + self.noise * rng.standard_normal(w.shape)
        return Weights({"w": new})

    def mli_test_weights(self, weights: Weights) -> ProposedWeights:
        score = self._evaluate(weights)
        return ProposedWeights(weights, score, score, score > self._score)

    def mli_accept_weights(self, weights: Weights) -> None:
        self._weights = weights
        self._score = self._evaluate(weights)

    def mli_get_current_weights(self) -> Weights:
        return self._weights

    def mli_get_current_model(self) -> ColearnModel:
        return ColearnModel(ModelFormat.SAFETENSORS, model=encode(self._weights))

    def mli_tags(self) -> LearnerTags:
        # a proposal is a function of the weights, the target, the seed and the round
        return LearnerTags(deterministic=True, exports_model=True)


class InstantLearner(MachineLearningInterface):
    """Does no work at all: every call returns at once. Measures pure driver overhead."""

    def __init__(self, size: int = 4) -> None:
        self._weights = Weights({"w": np.zeros(size)})
        self._proposal = Weights({"w": np.ones(size)})

    def mli_propose_weights(self) -> Weights:
        return self._proposal

    def mli_test_weights(self, weights: Weights) -> ProposedWeights:
        return ProposedWeights(weights, 1.0, 1.0, True)

    def mli_accept_weights(self, weights: Weights) -> None:
        self._weights = weights

    def mli_get_current_weights(self) -> Weights:
        return self._weights

    def mli_get_current_model(self) -> ColearnModel:
        return ColearnModel(ModelFormat.SAFETENSORS, model=encode(self._weights))
