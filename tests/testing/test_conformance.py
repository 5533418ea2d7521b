"""check_learner must catch each broken rule, and name the fix."""

import numpy as np
import pytest

from colearning import ColearnModel, ModelFormat, ProposedWeights, Weights
from colearning.testing import LearnerContractError, QuadraticLearner, check_learner


def test_a_correct_learner_passes_and_is_left_as_it_was():
    learner = QuadraticLearner(target=[1.0, 2.0])
    before = learner.mli_get_current_weights()
    check_learner(learner)
    assert learner.mli_get_current_weights() == before


class TrainsInPlace(QuadraticLearner):
    def mli_propose_weights(self):
        self._weights = super().mli_propose_weights()
        return self._weights


class EvaluatesInPlace(QuadraticLearner):
    def mli_test_weights(self, weights):
        self._weights = weights
        return super().mli_test_weights(weights)


class VotesWithStrings(QuadraticLearner):
    def mli_test_weights(self, weights):
        v = super().mli_test_weights(weights)
        return ProposedWeights(weights, v.vote_score, v.test_score, "yes")


class NaNScores(QuadraticLearner):
    def mli_test_weights(self, weights):
        v = super().mli_test_weights(weights)
        return ProposedWeights(weights, float("nan"), v.test_score, v.vote)


class ApprovesItself(QuadraticLearner):
    def mli_test_weights(self, weights):
        v = super().mli_test_weights(weights)
        return ProposedWeights(weights, v.vote_score, v.test_score, True)


class IgnoresAccept(QuadraticLearner):
    def mli_accept_weights(self, weights):
        pass


class GrowsAnArray(QuadraticLearner):
    def mli_propose_weights(self):
        return Weights({"w": np.zeros(len(self.target) + 1)})


class NoModel(QuadraticLearner):
    def mli_get_current_model(self):
        return b"raw bytes"


class ProposeRaises(QuadraticLearner):
    def mli_propose_weights(self):
        raise RuntimeError("out of memory")


@pytest.mark.parametrize(
    "cls, message",
    [
        (TrainsInPlace, "mli_propose_weights() changed the current weights; train a copy"),
        (EvaluatesInPlace, "mli_test_weights(a proposal) changed the current weights"),
        (VotesWithStrings, "vote is 'yes'; vote True or False"),
        (NaNScores, "vote_score is nan; give a finite float"),
        (ApprovesItself, "approve only weights that score strictly better"),
        (IgnoresAccept, "after mli_accept_weights(w), mli_get_current_weights() is not w"),
        (GrowsAnArray, "weight 'w' has shape (3,); expected (2,)"),
        (NoModel, "return a ColearnModel"),
        (ProposeRaises, "mli_propose_weights() raised RuntimeError: out of memory"),
    ],
)
def test_each_broken_rule_is_reported(cls, message):
    with pytest.raises(LearnerContractError) as err:
        check_learner(cls(target=[1.0, 2.0]))
    assert message in str(err.value)


def test_not_a_learner():
    with pytest.raises(LearnerContractError, match="subclass"):
        check_learner(object())  # type: ignore[arg-type]


def test_all_failures_are_listed_at_once():
    class TwoProblems(TrainsInPlace, NoModel):
        pass

    with pytest.raises(LearnerContractError) as err:
        check_learner(TwoProblems(target=[1.0]))
    text = str(err.value)
    assert "train a copy" in text and "ColearnModel" in text


def test_colearn_model_is_accepted():
    assert ColearnModel(ModelFormat.ONNX, model=b"x").model_format is ModelFormat.ONNX
