"""What a learner becomes: a wrapper that forwards every call to the learner inside.

Fault injection (``colearning.testing.FaultyLearner``) and attacks
(``colearning.attacks``) subclass :class:`LearnerWrapper` and override only the calls
they change; everything else, the optional hooks included, reaches the inner learner
unchanged, so a wrapped learner resumes, exports and declares its tags as the inner one
does.
"""

from __future__ import annotations

from typing import Any

from colearning.core.interface import (
    ColearnModel,
    LearnerTags,
    MachineLearningInterface,
    Prediction,
    PredictionRequest,
    ProposedWeights,
    Weights,
)


class LearnerWrapper(MachineLearningInterface):
    """Forwards every :class:`MachineLearningInterface` method to ``inner``.

    Attributes the wrapper does not have (a learner's ``seed``, ``predict``) are looked
    up on the inner learner too.

    Examples
    --------
    >>> from colearning.testing import QuadraticLearner
    >>> class Loud(LearnerWrapper):
    ...     def mli_propose_weights(self):
    ...         print("proposing")
    ...         return super().mli_propose_weights()
    >>> learner = Loud(QuadraticLearner(target=[1.0]))
    >>> _ = learner.mli_propose_weights()
    proposing
    >>> learner.seed  # found on the inner learner
    0
    """

    def __init__(self, inner: MachineLearningInterface) -> None:
        if not isinstance(inner, MachineLearningInterface):
            from colearning.core.exceptions import ConfigTypeError

            raise ConfigTypeError(
                f"a LearnerWrapper wraps a MachineLearningInterface; got {type(inner).__name__}"
            )
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes not found on the wrapper itself.
        if name == "inner":  # during unpickling/copying, before __init__ ran
            raise AttributeError(name)
        return getattr(self.inner, name)

    def mli_propose_weights(self) -> Weights:
        return self.inner.mli_propose_weights()

    def mli_test_weights(self, weights: Weights) -> ProposedWeights:
        return self.inner.mli_test_weights(weights)

    def mli_accept_weights(self, weights: Weights) -> None:
        self.inner.mli_accept_weights(weights)

    def mli_get_current_weights(self) -> Weights:
        return self.inner.mli_get_current_weights()

    def mli_get_current_model(self) -> ColearnModel:
        return self.inner.mli_get_current_model()

    def mli_make_prediction(self, request: PredictionRequest) -> Prediction:
        return self.inner.mli_make_prediction(request)

    def mli_set_round(self, round_index: int) -> None:
        self.inner.mli_set_round(round_index)

    def mli_restore_progress(self, proposals_made: int) -> None:
        self.inner.mli_restore_progress(proposals_made)

    def mli_tags(self) -> LearnerTags:
        return self.inner.mli_tags()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.inner!r})"
