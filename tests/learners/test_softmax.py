"""SoftmaxLearner: NumPy alone, learns, and reads its vote and test rows in place."""

import numpy as np
import pytest

from colearning import ConfigError, Experiment
from colearning.data import share_dataset
from colearning.data.datasets import synthetic_classification
from colearning.learners.softmax import SoftmaxLearner, adjacent_rows


def learners(n=4, rows=2000):
    ds = synthetic_classification(rows, features=6, classes=3, seed=1, spread=1.5)
    shares = share_dataset(ds, n, "iid", seed=0)
    return [SoftmaxLearner(shares.part(i), classes=ds.classes, seed=i) for i in range(n)], shares


def test_collective_training_improves_the_vote_score():
    group, _ = learners()
    before = group[0].current_vote_score()
    with Experiment(group) as experiment:
        result = experiment.run(8)
    assert sum(r.accepted for r in result.rounds) >= 2
    assert group[0].current_vote_score() > before


def test_vote_and_test_rows_are_read_in_place():
    group, shares = learners()
    for learner in group:
        assert np.shares_memory(learner._X_scored, shares.X)
        assert np.shares_memory(learner._X_train, shares.X)


def test_adjacent_rows_copies_only_what_is_not_adjacent():
    X = np.arange(20.0).reshape(10, 2)
    joined = adjacent_rows(X[2:4], X[4:7])
    assert np.shares_memory(joined, X) and np.array_equal(joined, X[2:7])
    assert not joined.flags.writeable
    assert np.array_equal(adjacent_rows(X[2:4], X[5:7]), np.concatenate([X[2:4], X[5:7]]))
    assert np.array_equal(adjacent_rows(X[4:7], X[2:4]), np.concatenate([X[4:7], X[2:4]]))
    assert not np.shares_memory(adjacent_rows(X[::2][:2], X[4:5]), X)


def test_proposals_are_deterministic_and_leave_the_learner_unchanged():
    a, _ = learners()
    b, _ = learners()
    for x in (a[1], b[1]):
        x.mli_set_round(3)
    before = a[1].mli_get_current_weights()
    assert a[1].mli_propose_weights() == b[1].mli_propose_weights()
    assert a[1].mli_get_current_weights() is before


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"learning_rate": 0}, "learning_rate must be a number > 0"),
        ({"epochs": 0}, "epochs must be an integer >= 1"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"l2": -1}, "l2 must be a number >= 0"),
    ],
)
def test_bad_settings_name_the_value(kw, message):
    _, shares = learners()
    with pytest.raises(ConfigError, match=message):
        SoftmaxLearner(shares.part(0), **kw)
