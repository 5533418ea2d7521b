"""Learners written the way Colearn's master branch wrote them, on colearning.compat.

Colearn's master branch (after 0.2.8, never released) grew its interface: learners
export ONNX through ``convert_model_to_onnx`` and return ``ColearnModel``, carry a
``TrainingSummary`` with a differential-privacy budget (and ``ErrorCodes`` when it is
spent), serve ``mli_make_prediction``, and its last ``PytorchLearner`` scores with
``{criterion: score}`` dictionaries and ``ProposedWeights(criterion=...)``. Master
cannot be downloaded in CI, so these are small learners of this project's own that use
every one of those names the way master's learners do; each imports only from
``colearning.compat``.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import onnxruntime as ort
import pytest
import torch
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import SGDClassifier
from sklearn.preprocessing import StandardScaler

import colearning
from colearning.compat import (
    ColearnModel,
    DiffPrivBudget,
    DiffPrivConfig,
    ErrorCodes,
    MachineLearningInterface,
    ModelFormat,
    Prediction,
    PredictionRequest,
    ProposedWeights,
    TrainingSummary,
    Weights,
    collective_learning_round,
    convert_model_to_onnx,
    deser_model,
    initial_result,
    set_equal_weights,
)
from colearning.compat._results import score_of
from colearning.testing import check_learner


def shares(X, y, n, seed=0):
    order = np.random.default_rng(seed).permutation(len(y))
    out = []
    for part in np.array_split(order, n):
        cut = [int(0.6 * len(part)), int(0.8 * len(part))]
        out.append([(X[idx], y[idx]) for idx in np.split(part, cut)])
    return out


# -- an SGD learner as master's fraud example: ONNX export, predictions, float scores ------


class SGDLearner(MachineLearningInterface):
    """Logistic regression by SGD; copies its arrays, so proposing changes nothing."""

    def __init__(self, train, vote, test, seed: int = 0) -> None:
        self.train, self.vote_set, self.test_set = train, vote, test
        self.rng = np.random.default_rng(seed)
        self.model = SGDClassifier(loss="log_loss", random_state=seed)
        self.model.partial_fit(train[0][:2], train[1][:2], classes=np.array([0, 1]))
        self.vote_score = self.score(self.vote_set)

    def score(self, split) -> float:
        return float(self.model.score(*split))

    def mli_get_current_weights(self) -> Weights:
        return Weights(
            weights={"coef": self.model.coef_.copy(), "intercept": self.model.intercept_.copy()}
        )

    def set_weights(self, weights: Weights) -> None:
        self.model.coef_ = np.array(weights.weights["coef"])
        self.model.intercept_ = np.array(weights.weights["intercept"])

    def mli_propose_weights(self) -> Weights:
        current = self.mli_get_current_weights()
        batch = self.rng.choice(len(self.train[1]), size=64, replace=False)
        self.model.partial_fit(self.train[0][batch], self.train[1][batch])
        proposal = self.mli_get_current_weights()
        self.set_weights(current)
        return proposal

    def mli_test_weights(self, weights: Weights) -> ProposedWeights:
        current = self.mli_get_current_weights()
        colearning.check_weights(weights, current)  # what check_learner asks of any learner
        self.set_weights(weights)
        vote_score, test_score = self.score(self.vote_set), self.score(self.test_set)
        self.set_weights(current)
        return ProposedWeights(
            weights=weights,
            vote_score=vote_score,
            test_score=test_score,
            vote=vote_score > self.vote_score,
        )

    def mli_accept_weights(self, weights: Weights) -> None:
        colearning.check_weights(weights, self.mli_get_current_weights())
        self.set_weights(weights)
        self.vote_score = self.score(self.vote_set)

    def mli_get_current_model(self) -> ColearnModel:
        return ColearnModel(
            model_format=ModelFormat(ModelFormat.ONNX),
            model_file="",
            model=convert_model_to_onnx(self.model),
        )

    def mli_make_prediction(self, request: PredictionRequest) -> Prediction:
        labels = self.model.predict(np.asarray(request.input_data))
        return Prediction(name=request.name, prediction_data=labels.tolist())


def sgd_learners(n=3):
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    return [SGDLearner(*share, seed=i) for i, share in enumerate(shares(X, y, n))], X


def test_master_style_sgd_learner_trains_exports_and_predicts():
    learners, X = sgd_learners()
    check_learner(learners[0])
    set_equal_weights(learners)
    results = [initial_result(learners)]
    for round_index in range(6):
        results.append(collective_learning_round(learners, 0.5, round_index))
    assert all(r.errors == [None] * 3 for r in results[1:])
    assert any(r.vote for r in results[1:])

    model = learners[0].mli_get_current_model()
    assert model.model_format is ModelFormat.ONNX and model.model_file == ""
    assert isinstance(model.model, bytes)
    assert deser_model(model.model).graph.input[0].name == "input"
    session = ort.InferenceSession(model.model)
    onnx_labels = session.run(None, {"input": X[:50]})[0]
    prediction = learners[0].mli_make_prediction(PredictionRequest(name="p", input_data=X[:50]))
    assert prediction.name == "p"
    assert onnx_labels.tolist() == prediction.prediction_data


# -- a torch learner as master's last PytorchLearner: dict scores, criterion, DP budget -----


def categorical_accuracy(outputs: torch.Tensor, labels: torch.Tensor) -> float:
    return float((outputs.argmax(1) == labels).float().mean())


class BudgetedTorchLearner(MachineLearningInterface):
    """A small MLP on 8x8 digits that scores ``{criterion: score}`` (or, with
    ``dict_scores=False``, plain floats) and reports a differential-privacy budget.
    The accountant is a stand-in (each proposal spends ``epsilon_per_proposal``); a
    real one (opacus) would fill the same fields."""

    criterion = "categorical_accuracy"

    def __init__(
        self, train, vote, test, config: DiffPrivConfig, seed: int, dict_scores: bool = True
    ) -> None:
        self.dict_scores = dict_scores
        torch.manual_seed(seed)
        self.model = torch.nn.Sequential(
            torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10)
        )
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
        self.data = {
            name: (torch.from_numpy(X.astype(np.float32)), torch.from_numpy(y.astype(np.int64)))
            for name, (X, y) in (("train", train), ("vote", vote), ("test", test))
        }
        self.dp_config = config
        self.epsilon_per_proposal = 1.0
        self.proposals = 0
        self.verdicts: list[ProposedWeights] = []
        self.vote_score: dict[str, float] = self.test("vote")

    def test(self, split: str) -> dict[str, float]:
        X, y = self.data[split]
        with torch.no_grad():
            return {self.criterion: categorical_accuracy(self.model(X), y)}

    def get_training_summary(self) -> TrainingSummary:
        spent = self.proposals * self.epsilon_per_proposal
        budget = DiffPrivBudget(
            target_epsilon=self.dp_config.target_epsilon,
            target_delta=self.dp_config.target_delta,
            consumed_epsilon=spent,
            consumed_delta=self.dp_config.target_delta,
        )
        exceeded = spent >= self.dp_config.target_epsilon
        return TrainingSummary(
            dp_budget=budget, error_code=ErrorCodes.DP_BUDGET_EXCEEDED if exceeded else None
        )

    def mli_get_current_weights(self) -> Weights:
        state = OrderedDict((k, v.clone()) for k, v in self.model.state_dict().items())
        return Weights(weights=state, training_summary=self.get_training_summary())

    def mli_propose_weights(self) -> Weights:
        current = self.mli_get_current_weights()
        if current.training_summary.error_code == ErrorCodes.DP_BUDGET_EXCEEDED:
            return current
        X, y = self.data["train"]
        for _ in range(5):
            self.optimizer.zero_grad()
            torch.nn.functional.cross_entropy(self.model(X), y).backward()
            self.optimizer.step()
        self.proposals += 1
        new = self.mli_get_current_weights()
        self.model.load_state_dict(current.weights)
        if new.training_summary.error_code == ErrorCodes.DP_BUDGET_EXCEEDED:
            current.training_summary = new.training_summary  # as master: this one overspent
            return current
        return new

    def mli_test_weights(self, weights: Weights) -> ProposedWeights:
        current = self.mli_get_current_weights()
        self.model.load_state_dict(weights.weights)
        vote_score, test_score = self.test("vote"), self.test("test")
        self.model.load_state_dict(current.weights)
        vote = vote_score[self.criterion] > self.vote_score[self.criterion]
        if not self.dict_scores:
            vote_score, test_score = vote_score[self.criterion], test_score[self.criterion]
        verdict = ProposedWeights(
            weights=weights,
            vote_score=vote_score,
            test_score=test_score,
            vote=vote,
            criterion=self.criterion,
        )
        self.verdicts.append(verdict)
        return verdict

    def mli_accept_weights(self, weights: Weights) -> None:
        self.model.load_state_dict(weights.weights)
        self.vote_score = self.test("vote")

    def mli_get_current_model(self) -> ColearnModel:
        return ColearnModel(
            model_format=ModelFormat(ModelFormat.ONNX),
            model_file="",
            model=convert_model_to_onnx(self.model),
        )


def torch_learners(n=3, target_epsilon=100.0, dict_scores=True):
    X, y = load_digits(return_X_y=True)
    config = DiffPrivConfig(
        target_epsilon=target_epsilon, target_delta=1e-5, max_grad_norm=1.0, noise_multiplier=1.0
    )
    return [
        BudgetedTorchLearner(*share, config=config, seed=0, dict_scores=dict_scores)
        for share in shares(X / 16.0, y, n)
    ]


def test_dict_scores_with_a_criterion_are_counted():
    """Master's PytorchLearner scores ``{criterion: score}``; the driver must count its
    votes (not take the dictionaries for garbage) and keep the criterion's score."""
    learners = torch_learners()
    for round_index in range(3):
        verdicts, accepted = colearning.run_one_round(round_index, learners)
        proposer = round_index % 3
        own = [learner.verdicts[-1] for learner in learners]
        for i, (verdict, answer) in enumerate(zip(verdicts, own, strict=True)):
            assert verdict.error is None, verdict.error
            assert verdict.vote == (None if i == proposer else answer.vote)
            expected = answer.vote_score[answer.criterion]
            assert score_of(verdict.vote_score, verdict.criterion) == pytest.approx(expected)
        votes = [v.vote for i, v in enumerate(verdicts) if i != proposer]
        assert accepted == (sum(votes) * 2 >= len(votes))


def test_dict_scores_reach_colearns_results():
    learners = torch_learners()
    first = initial_result(learners)
    assert first.vote_scores == [lr.vote_score[lr.criterion] for lr in learners]
    result = collective_learning_round(learners, 0.5, 0)
    assert result.errors == [None, None, None]
    assert result.vote_scores == pytest.approx(
        [lr.verdicts[-1].vote_score[lr.criterion] for lr in learners]
    )
    assert len(result.training_summaries) == 3


def test_an_exhausted_budget_skips_the_turn():
    # one proposal each fits; float scores, so that this does not rest on dict scores
    learners = torch_learners(n=2, target_epsilon=1.5, dict_scores=False)
    results = [collective_learning_round(learners, 0.5, r) for r in range(4)]
    assert all(e is None for r in results[:2] for e in r.errors)
    summaries = results[-1].training_summaries
    assert [s.error_code for s in summaries] == [ErrorCodes.DP_BUDGET_EXCEEDED] * 2
    assert summaries[0].dp_budget.consumed_epsilon == 2.0  # the second overspent
    for result in results[2:]:  # both budgets spent: nobody is asked to vote
        assert result.vote is False and result.votes == [None, None]
        assert all(e == "privacy budget exhausted" for e in result.errors)


@pytest.mark.slow
def test_torch_model_exports_as_master_asked():
    learner = torch_learners(n=1, dict_scores=False)[0]
    model = learner.mli_get_current_model()
    X = learner.data["test"][0][:20]
    session = ort.InferenceSession(model.model)
    got = session.run(None, {session.get_inputs()[0].name: X.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, learner.model(X).numpy(), rtol=1e-4, atol=1e-5)


# -- a number learner as master's plus-one: ColearnModel() and no predictions ------------


class CountingLearner(MachineLearningInterface):
    """Weights are a plain number; approves larger numbers."""

    def __init__(self, start: int) -> None:
        self.value = start

    def mli_propose_weights(self) -> Weights:
        return Weights(weights=self.value + 1)

    def mli_test_weights(self, weights: Weights) -> ProposedWeights:
        better = weights.weights > self.value
        score = 1.0 if better else 0.0
        return ProposedWeights(weights=weights, vote_score=score, test_score=score, vote=better)

    def mli_accept_weights(self, weights: Weights) -> None:
        self.value = weights.weights

    def mli_get_current_weights(self) -> Weights:
        return Weights(weights=self.value)

    def mli_get_current_model(self) -> ColearnModel:
        return ColearnModel()  # "not relevant here", as master's plus-one said

    def mli_make_prediction(self, request: PredictionRequest) -> Prediction:
        raise NotImplementedError()


def test_master_style_number_learner_runs():
    learners = [CountingLearner(start) for start in (0, 0, 5)]
    set_equal_weights(learners)
    results = [collective_learning_round(learners, 0.5, r) for r in range(4)]
    assert [r.vote for r in results] == [True] * 4
    assert [lr.value for lr in learners] == [4, 4, 4]
    assert learners[0].mli_get_current_model() == ColearnModel()


def test_a_learner_without_export_says_so():
    class Bare(CountingLearner):
        mli_get_current_model = MachineLearningInterface.mli_get_current_model

    with pytest.raises(colearning.LearnerError, match="does not implement mli_get_current_model"):
        Bare(0).mli_get_current_model()
