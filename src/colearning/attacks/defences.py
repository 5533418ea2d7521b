"""An optional stricter vote for honest learners (docs/robustness.md).

:class:`MarginVoter` approves only what the learner inside approves **and** what beats
the current weights' vote score by at least ``margin * max(1, |current score|)``. The
default vote (DESIGN.md) approves any improvement beyond float noise (``1e-9``
relative), so a free rider that re-proposes the current weights plus a tiny random
perturbation is approved whenever the noise happens to help a voter's score. A margin
of ``1e-3`` refuses such noise at the price of refusing honest updates that improve the
vote score by less.
"""

from __future__ import annotations

import math

from colearning.core.exceptions import ConfigError
from colearning.core.interface import MachineLearningInterface, ProposedWeights, Weights
from colearning.core.wrapper import LearnerWrapper


class MarginVoter(LearnerWrapper):
    """Approves only improvements of at least ``margin * max(1, |current|)``.

    The direction of the vote score is the learner's (``higher_is_better``, default
    True where the learner does not say).
    """

    def __init__(self, inner: MachineLearningInterface, margin: float = 1e-3) -> None:
        super().__init__(inner)
        if (
            isinstance(margin, bool)
            or not isinstance(margin, (int, float))
            or not (math.isfinite(margin) and margin >= 0)
        ):
            raise ConfigError(f"margin must be a number >= 0; got {margin!r}")
        self.margin = float(margin)

    def mli_test_weights(self, weights: Weights) -> ProposedWeights:
        verdict = self.inner.mli_test_weights(weights)
        if not verdict.vote:
            return verdict
        current = self._current_score()
        higher = bool(getattr(self.inner, "higher_is_better", True))
        gain = (verdict.vote_score - current) if higher else (current - verdict.vote_score)
        enough = gain >= self.margin * max(1.0, abs(current))
        return ProposedWeights(weights, verdict.vote_score, verdict.test_score, enough)

    def _current_score(self) -> float:
        score = getattr(self.inner, "current_vote_score", None)
        if score is not None:
            return float(score())
        current = self.inner.mli_get_current_weights()
        return float(self.inner.mli_test_weights(current).vote_score)
