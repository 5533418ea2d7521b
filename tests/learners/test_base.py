"""LearnerBase, the protocol half every bundled learner shares: better() with its
tolerance, one scoring path and its cache, checks, rounds and seeds, tags."""

import math

import numpy as np
import pytest

from colearning.core.exceptions import ConfigError, LearnerError, WeightsError
from colearning.core.interface import LearnerTags, Weights
from colearning.data import LearnerData, load_dataset, partition_dataset
from colearning.learners._base import TIE_RTOL, LearnerBase, better, round_seed
from colearning.learners.metrics import METRICS
from colearning.testing import check_learner

# -- better() ---------------------------------------------------------------------------

NAN, INF = math.nan, math.inf


@pytest.mark.parametrize(
    ("score", "than", "higher", "expected"),
    [
        (0.91, 0.90, True, True),
        (0.90, 0.91, True, False),
        (0.90, 0.90, True, False),  # equal is not better
        (0.90, 0.91, False, True),
        (0.9 + 1e-10, 0.9, True, False),  # within the absolute 1e-9 below 1: a tie
        (0.9 + 1e-8, 0.9, True, True),
        (1e-3 - 5e-10, 1e-3, False, False),
        (1000 + 1e-7, 1000, True, False),  # relative above 1: 1e-6 here
        (1000 + 1e-5, 1000, True, True),
        (163.5699893393461, 163.5699893441253, False, False),  # the fresh-machine pair
        (163.5699893441253, 163.5699893393461, False, False),
        (163.56, 163.57, False, True),
        (-0.0, 0.0, True, False),
        (NAN, 0.5, True, False),  # NaN is worse than anything
        (NAN, 0.5, False, False),
        (0.5, NAN, True, True),
        (0.5, NAN, False, True),
        (NAN, NAN, True, False),
        (1.0, INF, False, True),  # a finite loss beats a diverged one
        (INF, 1.0, False, False),
        (INF, INF, False, False),
        (-INF, -INF, True, False),
    ],
)
def test_better(score, than, higher, expected):
    assert better(score, than, higher_is_better=higher) is expected


def test_the_tolerance_is_what_the_docs_say():
    assert TIE_RTOL == 1e-9
    assert better(1.0 + 2e-9, 1.0) and not better(1.0 + 0.5e-9, 1.0)
    assert better(1.0 + 2e-9, 1.0, rtol=1e-8) is False


# -- a toy learner on the base ----------------------------------------------------------


class Toy(LearnerBase):
    """Scores are looked up by the first value of the weights; ``scored`` counts calls."""

    def __init__(self, scores, metric="accuracy", seed=0):
        super().__init__(seed=seed)
        self.table = scores
        self.scored = []
        self.installed = []
        self._vote_metric = self._test_metric = METRICS[metric]
        self._start(w(0.0))

    def _scores(self, weights):
        key = float(weights.arrays["x"][0])
        self.scored.append(key)
        return self.table[key]

    def _install(self, weights):
        self.installed.append(float(weights.arrays["x"][0]))

    def mli_propose_weights(self):
        return Weights({"x": self._round_rng().normal(size=2)})

    def mli_get_current_model(self):  # pragma: no cover - not exercised here
        raise NotImplementedError


def w(value):
    return Weights({"x": np.array([value, 0.0])})


def test_the_current_weights_are_scored_once_and_only_when_needed():
    toy = Toy({0.0: (0.5, 0.4), 1.0: (0.6, 0.7)})
    assert toy.evaluations == 0 and toy.scored == []
    verdict = toy.mli_test_weights(w(1.0))
    assert verdict.vote is True and (verdict.vote_score, verdict.test_score) == (0.6, 0.7)
    assert toy.scored == [1.0, 0.0]  # the candidate, then the baseline, on one path
    assert toy.current_vote_score() == 0.5
    assert toy.evaluations == 2


def test_the_current_weights_and_copies_of_them_are_never_approved():
    # a copy is known by its values: no second score that float noise could tip
    toy = Toy({0.0: (0.5, None)})
    current = toy.mli_get_current_weights()
    for weights in (current, Weights(dict(current.arrays)), w(0.0)):
        verdict = toy.mli_test_weights(weights)
        assert verdict.vote is False and verdict.vote_score == 0.5
    assert toy.evaluations == 1


def test_a_score_within_float_noise_of_the_baseline_is_a_tie():
    toy = Toy({0.0: (0.5, None), 1.0: (0.5 + 1e-12, None), 2.0: (0.5 + 1e-6, None)})
    assert toy.mli_test_weights(w(1.0)).vote is False
    assert toy.mli_test_weights(w(2.0)).vote is True


def test_accept_reuses_the_scores_of_the_weights_just_tested():
    toy = Toy({0.0: (0.5, None), 1.0: (0.6, 0.1), 2.0: (0.7, None)})
    candidate = w(1.0)
    toy.mli_test_weights(candidate)
    count = toy.evaluations
    toy.mli_accept_weights(Weights({"x": candidate.arrays["x"].copy()}))  # equal values
    assert toy.evaluations == count and toy.current_vote_score() == 0.6
    assert toy.installed == [1.0]
    # now the current weights: never approved again, and not scored again
    assert toy.mli_test_weights(candidate).vote is False
    # weights never tested are scored when first needed
    toy.mli_accept_weights(w(2.0))
    assert toy.evaluations == count
    assert toy.current_vote_score() == 0.7 and toy.evaluations == count + 1


def test_testing_the_same_weights_twice_scores_them_once():
    toy = Toy({0.0: (0.5, None), 1.0: (0.6, None)})
    candidate = w(1.0)
    first = toy.mli_test_weights(candidate)
    second = toy.mli_test_weights(candidate)
    assert first == second and toy.scored == [1.0, 0.0]


def test_nan_baselines_lose_and_non_finite_candidates_fail():
    toy = Toy({0.0: (NAN, None), 1.0: (0.1, NAN), 2.0: (INF, None)})
    verdict = toy.mli_test_weights(w(1.0))
    assert verdict.vote is True
    assert verdict.test_score is None  # a non-finite test score is reported as None
    with pytest.raises(LearnerError, match="accuracy of these weights on the vote set is inf"):
        toy.mli_test_weights(w(2.0))


def test_lower_is_better_metrics_vote_the_other_way():
    toy = Toy({0.0: (0.5, None), 1.0: (0.4, None), 2.0: (0.6, None)}, metric="log_loss")
    assert toy.higher_is_better is False and toy.vote_metric == "log_loss"
    assert toy.mli_test_weights(w(1.0)).vote is True
    assert toy.mli_test_weights(w(2.0)).vote is False


@pytest.mark.parametrize(
    "bad",
    [
        Weights({"x": np.zeros(3)}),
        Weights({"x": np.zeros(2, np.float32)}),
        Weights({"y": np.zeros(2)}),
        Weights({"x": np.array([np.nan, 0.0])}),
    ],
)
def test_malformed_weights_are_refused_before_anything_is_scored(bad):
    toy = Toy({0.0: (0.5, None)})
    current = toy.mli_get_current_weights()
    with pytest.raises(WeightsError):
        toy.mli_test_weights(bad)
    with pytest.raises(WeightsError):
        toy.mli_accept_weights(bad)
    assert toy.mli_get_current_weights() is current
    assert toy.evaluations == 0 and toy.installed == []


# -- rounds and seeds -------------------------------------------------------------------


@pytest.mark.parametrize("bad", [-1, True, 1.5, "3", None])
def test_round_indices_must_be_integers_from_zero(bad):
    with pytest.raises(ConfigError, match=f"round_index must be an integer >= 0; got {bad!r}"):
        Toy({}).mli_set_round(bad)


@pytest.mark.parametrize("bad", [-1, True, 2.0, "0"])
def test_seeds_must_be_integers_from_zero(bad):
    with pytest.raises(ConfigError, match=f"seed must be an integer >= 0; got {bad!r}"):
        Toy({}, seed=bad)


def test_the_proposal_stream_comes_from_seed_and_round():
    toy = Toy({}, seed=7)
    toy.mli_set_round(np.int64(3))
    assert toy.round_index == 3
    expected = np.random.default_rng([7, 3]).normal(size=2)
    np.testing.assert_array_equal(toy.mli_propose_weights().arrays["x"], expected)
    tagged = toy._round_rng(1).normal(size=2)
    np.testing.assert_array_equal(tagged, np.random.default_rng([7, 1, 3]).normal(size=2))
    state = toy._round_seed_sequence().generate_state(1, np.uint64)
    assert round_seed(7, 3) == int(state[0] >> np.uint64(1))


def test_the_toy_passes_check_learner():
    class Quadratic(Toy):
        def _scores(self, weights):
            return float(np.sum((weights.arrays["x"] - 1.0) ** 2)), None

        def mli_get_current_model(self):
            from colearning.core.interface import ColearnModel, ModelFormat

            return ColearnModel(ModelFormat.SAFETENSORS, model=b"")

    toy = Quadratic({}, metric="rmse")
    assert toy.mli_tags() == LearnerTags(deterministic=True, exports_model=True)
    check_learner(toy)


# -- every bundled learner's tags ---------------------------------------------------------


@pytest.fixture(scope="module")
def iris_part() -> LearnerData:
    return partition_dataset(load_dataset("iris"), 2, "iid", seed=0)[0]


def _sklearn(data, **kw):
    from sklearn.linear_model import SGDClassifier

    from colearning.learners.sklearn import SKLearnLearner

    return SKLearnLearner(SGDClassifier(loss="log_loss"), data)


def _torch(data, reset_optimizer=True):
    import torch

    from colearning.learners.torch import TorchLearner

    return TorchLearner(torch.nn.Linear(4, 3), data, reset_optimizer=reset_optimizer)


def _dp(data, noise_seed):
    import torch

    from colearning.privacy import DPConfig, DPTorchLearner

    config = DPConfig(target_epsilon=8.0, noise_multiplier=1.0, noise_seed=noise_seed)
    return DPTorchLearner(torch.nn.Linear(4, 3), data, privacy=config, batch_size=8)


def _keras(data):
    from colearning.learners.keras import KerasLearner, keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    return KerasLearner(model, data, loss="sparse_categorical_crossentropy")


def _xgboost(data):
    from colearning.learners.xgboost import XGBoostLearner

    return XGBoostLearner({"max_depth": 2}, data, rounds_per_proposal=1)


def _forest(data):
    from colearning.learners.forest import RandomForestLearner

    return RandomForestLearner(data, trees_per_proposal=1, max_depth=2)


@pytest.mark.parametrize(
    ("build", "tags"),
    [
        (_sklearn, LearnerTags(deterministic=True, exports_model=True)),
        (_torch, LearnerTags(deterministic=True, exports_model=True)),
        (
            lambda d: _torch(d, reset_optimizer=False),
            LearnerTags(deterministic=False, exports_model=True),
        ),
        (_keras, LearnerTags(deterministic=True, exports_model=True)),
        (_xgboost, LearnerTags(deterministic=True, exports_model=True, encoded_model=True)),
        (_forest, LearnerTags(deterministic=True, exports_model=True, encoded_model=True)),
        (
            lambda d: _dp(d, noise_seed=0),
            LearnerTags(True, exports_model=True, restores_progress=True, private=True),
        ),
        (
            lambda d: _dp(d, noise_seed=None),
            LearnerTags(False, exports_model=True, restores_progress=True, private=True),
        ),
    ],
    ids=[
        "sklearn",
        "torch",
        "torch-kept-optimizer",
        "keras",
        "xgboost",
        "forest",
        "dp",
        "dp-secret",
    ],
)
def test_bundled_learners_declare_their_tags(iris_part, build, tags):
    learner = build(iris_part)
    assert isinstance(learner, LearnerBase)
    assert learner.mli_tags() == tags
