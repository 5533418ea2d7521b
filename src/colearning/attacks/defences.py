"""Optional stricter votes for honest learners (docs/robustness.md).

:class:`MarginVoter` approves only what the learner inside approves **and** what beats
the current weights' vote score by at least ``margin * max(1, |current score|)``. The
default vote (DESIGN.md) approves any improvement beyond float noise (``1e-9``
relative), so a free rider that re-proposes the current weights plus a tiny random
perturbation is approved whenever the noise happens to help a voter's score. A margin
of ``1e-3`` refuses such noise at the price of refusing honest updates that improve the
vote score by less.

:class:`PerClassVoter` (a :class:`MarginVoter`, margin 0 by default) adds a per-class
check in the spirit of BaFFLe (Andreina et al. 2021): it approves only if, besides the
overall improvement, no class of its vote set loses more than ``tolerance`` of its
recall against the current weights. It counts rows, so no vote turns on float noise.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np

from colearning.core.exceptions import ConfigError, LearnerError
from colearning.core.interface import MachineLearningInterface, ProposedWeights, Weights
from colearning.core.wrapper import LearnerWrapper


class MarginVoter(LearnerWrapper):
    """Approves only improvements of at least ``margin * max(1, |current|)``.

    The direction of the vote score is the learner's (``higher_is_better``, default
    True where the learner does not say). Subclasses add checks in
    :meth:`_also_approves`, asked only about weights that passed the margin.
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
        enough = enough and self._also_approves(weights)
        return ProposedWeights(weights, verdict.vote_score, verdict.test_score, enough)

    def _also_approves(self, weights: Weights) -> bool:
        """A further check of weights the inner learner and the margin approve."""
        return True

    def _current_score(self) -> float:
        score = getattr(self.inner, "current_vote_score", None)
        if score is not None:
            return float(score())
        current = self.inner.mli_get_current_weights()
        return float(self.inner.mli_test_weights(current).vote_score)


class PerClassVoter(MarginVoter):
    """Approves as :class:`MarginVoter` does **and** only if no class of the vote set
    loses more than ``tolerance`` of its recall against the current weights.

    For every class with at least ``min_rows`` rows in this learner's vote set (fewer
    rows say too little: those classes are skipped, and so are classes of which the
    current weights classify fewer than ``min_right`` rows right, default 0), let
    ``lost`` be the rows of that class the current weights classify right minus those
    the proposal classifies right.
    The proposal is refused when ``lost / rows > tolerance`` for any such class, decided
    in integers (``tolerance`` is taken as the exact decimal it is written as), so the
    same predictions always give the same vote.

    The learner inside must give per-class predictions on its vote set:
    ``vote_predictions(weights) -> (true labels, predicted labels)``, one of each per
    vote row (every bundled classifier of :class:`~colearning.learners._base.LearnerBase`
    that implements ``_vote_predictions``: the scikit-learn, softmax, XGBoost and
    random-forest learners). Construction asks it once and raises
    :class:`~colearning.core.exceptions.LearnerError` if it cannot answer.
    """

    def __init__(
        self,
        inner: MachineLearningInterface,
        tolerance: float = 0.25,
        min_rows: int = 5,
        margin: float = 0.0,
        min_right: int = 0,
    ) -> None:
        super().__init__(inner, margin)
        if (
            isinstance(tolerance, bool)
            or not isinstance(tolerance, (int, float))
            or not (math.isfinite(tolerance) and 0 <= tolerance < 1)
        ):
            raise ConfigError(f"tolerance must be a number in [0, 1); got {tolerance!r}")
        if isinstance(min_rows, bool) or not isinstance(min_rows, int) or min_rows < 1:
            raise ConfigError(f"min_rows must be a whole number >= 1; got {min_rows!r}")
        if isinstance(min_right, bool) or not isinstance(min_right, int) or min_right < 0:
            raise ConfigError(f"min_right must be a whole number >= 0; got {min_right!r}")
        self.tolerance = Fraction(str(float(tolerance)))
        self.min_rows = int(min_rows)
        self.min_right = int(min_right)
        if not callable(getattr(inner, "vote_predictions", None)):
            raise LearnerError(
                f"{type(inner).__name__} gives no per-class predictions on its vote set: "
                "PerClassVoter needs vote_predictions(weights) -> (true labels, predicted "
                "labels) (LearnerBase._vote_predictions, learners/_base.py)"
            )
        self._cache: tuple[Any, dict[Any, int], dict[Any, int]] | None = None
        self._per_class(inner.mli_get_current_weights())  # fails now, not mid-run

    def _per_class(self, weights: Weights) -> tuple[dict[Any, int], dict[Any, int]]:
        """Rows and rows classified right, per class of the vote set."""
        true, predicted = self.inner.vote_predictions(weights)  # type: ignore[attr-defined]
        true, predicted = np.asarray(true), np.asarray(predicted)
        if true.shape != predicted.shape or true.ndim != 1:
            raise LearnerError(
                "vote_predictions must give one true and one predicted label per vote "
                f"row; got shapes {true.shape} and {predicted.shape}"
            )
        classes, rows = np.unique(true, return_counts=True)
        right = true == predicted
        correct = {c.item(): int(np.count_nonzero(right[true == c])) for c in classes}
        return dict(zip((c.item() for c in classes), map(int, rows), strict=True)), correct

    def _current_per_class(self) -> tuple[dict[Any, int], dict[Any, int]]:
        current = self.inner.mli_get_current_weights()
        if self._cache is None or self._cache[0] is not current:
            self._cache = (current, *self._per_class(current))
        return self._cache[1], self._cache[2]

    def class_losses(self, weights: Weights) -> dict[Any, tuple[int, int]]:
        """``{class: (rows lost, rows)}`` of ``weights`` against the current weights,
        for the classes with at least ``min_rows`` vote rows of which the current
        weights classify at least ``min_right`` right."""
        rows, before = self._current_per_class()
        _, after = self._per_class(weights)
        return {
            c: (before[c] - after.get(c, 0), n)
            for c, n in rows.items()
            if n >= self.min_rows and before[c] >= self.min_right
        }

    def _also_approves(self, weights: Weights) -> bool:
        p, q = self.tolerance.numerator, self.tolerance.denominator
        return all(lost * q <= p * n for lost, n in self.class_losses(weights).values())
