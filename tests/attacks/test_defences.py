"""The stricter honest voters: MarginVoter and PerClassVoter (docs/robustness.md)."""

import numpy as np
import pytest

from colearning.attacks.defences import MarginVoter, PerClassVoter
from colearning.core.exceptions import ConfigError, LearnerError
from colearning.core.interface import MachineLearningInterface, Weights
from colearning.learners._base import LearnerBase
from colearning.learners.metrics import METRICS

# a vote set of 10 rows of class 0 and 10 of class 1
Y = np.array([0] * 10 + [1] * 10)


class Table(LearnerBase):
    """Weights are the predicted label of every vote row; the vote score is accuracy."""

    def __init__(self, predicted, y=Y, per_class=True):
        super().__init__(seed=0)
        self.y = np.asarray(y)
        self.per_class = per_class
        self._vote_metric = self._test_metric = METRICS["accuracy"]
        self._start(Weights({"p": np.asarray(predicted, dtype=np.float64)}))

    def _scores(self, weights):
        return float(np.mean(weights.arrays["p"] == self.y)), None

    def _install(self, weights):
        pass

    def _vote_predictions(self, weights):
        if not self.per_class:
            return None
        return self.y, weights.arrays["p"].astype(np.int64)

    def mli_propose_weights(self):
        return self.mli_get_current_weights()

    def mli_get_current_model(self):
        raise NotImplementedError


def predictions(right0, right1):
    """The first ``right0`` rows of class 0 and ``right1`` of class 1 right."""
    p = np.concatenate([np.zeros(10), np.ones(10)])
    p[right0:10] = 1
    p[10 + right1 :] = 0
    return Weights({"p": p})


def test_a_proposal_that_drops_one_class_is_refused_though_it_improves_the_score():
    learner = Table(predictions(10, 4).arrays["p"])  # 14/20 right
    proposal = predictions(7, 10)  # 17/20 right, but class 0 loses 3 of 10 rows
    assert learner.mli_test_weights(proposal).vote is True
    assert MarginVoter(learner, 0.0).mli_test_weights(proposal).vote is True
    voter = PerClassVoter(learner, tolerance=0.25)
    verdict = voter.mli_test_weights(proposal)
    assert verdict.vote is False
    assert verdict.vote_score == learner.mli_test_weights(proposal).vote_score
    assert voter.class_losses(proposal) == {0: (3, 10), 1: (-6, 10)}


def test_an_honest_improvement_is_approved():
    learner = Table(predictions(10, 4).arrays["p"])
    voter = PerClassVoter(learner, tolerance=0.25)
    assert voter.mli_test_weights(predictions(8, 10)).vote is True  # class 0 loses 2/10
    assert voter.mli_test_weights(predictions(10, 9)).vote is True  # nothing lost
    # what the learner refuses, the voter refuses
    assert voter.mli_test_weights(predictions(10, 4)).vote is False
    assert voter.mli_test_weights(predictions(5, 5)).vote is False


def test_the_bound_is_decided_in_counts():
    # 30 rows of one class: a tolerance of 0.1 allows exactly 3 rows lost (0.1 * 30
    # is 3.0000000000000004 in floats; the check does not depend on that)
    y = np.array([0] * 30 + [1] * 30)
    start = np.concatenate([np.zeros(30), np.zeros(30)])  # class 0 all right
    learner = Table(start, y=y)
    voter = PerClassVoter(learner, tolerance=0.1)
    three = start.copy()
    three[:3] = 1
    three[30:] = 1  # class 1 all right now
    four = three.copy()
    four[3] = 1
    assert voter.mli_test_weights(Weights({"p": three})).vote is True
    assert voter.mli_test_weights(Weights({"p": four})).vote is False


def test_classes_with_too_few_vote_rows_are_skipped():
    y = np.array([0] * 3 + [1] * 10)
    start = np.concatenate([np.zeros(3), np.zeros(10)])  # 3/13 right
    proposal = np.concatenate([np.ones(3), np.ones(10)])  # 10/13: class 0 loses all 3
    learner = Table(start, y=y)
    assert PerClassVoter(learner, min_rows=4).mli_test_weights(Weights({"p": proposal})).vote
    refused = PerClassVoter(learner, min_rows=3).mli_test_weights(Weights({"p": proposal}))
    assert refused.vote is False


def test_classes_the_current_model_does_not_know_yet_can_be_skipped():
    learner = Table(predictions(2, 4).arrays["p"])  # class 0: 2 of 10 right
    proposal = predictions(0, 10)  # better overall; class 0 loses its 2
    assert PerClassVoter(learner, tolerance=0.1).mli_test_weights(proposal).vote is False
    voter = PerClassVoter(learner, tolerance=0.1, min_right=3)
    assert voter.class_losses(proposal) == {1: (-6, 10)}
    assert voter.mli_test_weights(proposal).vote is True


def test_the_vote_is_deterministic_and_follows_the_current_weights():
    learner = Table(predictions(10, 4).arrays["p"])
    voter = PerClassVoter(learner, tolerance=0.25)
    proposal = predictions(7, 10)
    assert [voter.mli_test_weights(proposal).vote for _ in range(3)] == [False] * 3
    voter.mli_accept_weights(predictions(7, 6))  # class 0 is at 7/10 now
    assert voter.mli_test_weights(proposal).vote is True


def test_a_learner_without_per_class_predictions_is_refused_at_once():
    with pytest.raises(LearnerError, match="no per-class predictions"):
        PerClassVoter(Table(predictions(10, 4).arrays["p"], per_class=False))

    class Bare(MachineLearningInterface):  # not a LearnerBase: no vote_predictions
        def mli_propose_weights(self):
            return self.mli_get_current_weights()

        def mli_test_weights(self, weights):
            raise NotImplementedError

        def mli_accept_weights(self, weights):
            pass

        def mli_get_current_weights(self):
            return Weights({"p": np.zeros(1)})

    with pytest.raises(LearnerError, match="vote_predictions"):
        PerClassVoter(Bare())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tolerance": 1.0}, "tolerance"),
        ({"tolerance": -0.1}, "tolerance"),
        ({"tolerance": float("nan")}, "tolerance"),
        ({"min_rows": 0}, "min_rows"),
        ({"min_rows": 2.5}, "min_rows"),
        ({"min_right": -1}, "min_right"),
        ({"margin": -1}, "margin"),
    ],
)
def test_bad_options_are_refused(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        PerClassVoter(Table(predictions(10, 4).arrays["p"]), **kwargs)


def _task_learner(name, options=None):
    from colearning.data import partition_dataset
    from colearning.tasks.registry import BuildContext, get_task

    task = get_task(name)
    dataset = task.load_dataset(None, dict(options or {}))
    data = partition_dataset(dataset, 3, "iid", seed=0)[0]
    context = BuildContext(seed=0, learner_index=0, dataset=dataset, params=dict(options or {}))
    return task.make_learner(data, context), data, dataset


@pytest.mark.parametrize(
    ("task", "options", "extra"),
    [
        ("digits-mlp", None, "sklearn"),
        ("iris-forest", None, "sklearn"),
        ("breast-cancer-xgb", None, "xgboost"),
        ("synthetic-softmax", {"rows": 600}, "numpy"),
    ],
)
def test_the_bundled_classifiers_give_per_class_predictions(task, options, extra):
    pytest.importorskip(extra)
    learner, data, dataset = _task_learner(task, options)
    true, predicted = learner.vote_predictions(learner.mli_get_current_weights())
    assert true.shape == predicted.shape == (len(data.vote[1]),)
    assert np.array_equal(np.sort(np.unique(true)), np.unique(np.asarray(data.vote[1])))
    assert set(np.unique(predicted).tolist()) <= set(np.asarray(dataset.classes).tolist())
    voter = PerClassVoter(learner)
    learner.mli_set_round(0)
    proposal = learner.mli_propose_weights()
    assert voter.mli_test_weights(proposal).vote == voter.mli_test_weights(proposal).vote


def test_a_regressor_is_refused():
    pytest.importorskip("xgboost")
    learner, _, _ = _task_learner("diabetes-xgb")
    with pytest.raises(LearnerError, match="no per-class predictions"):
        PerClassVoter(learner)
