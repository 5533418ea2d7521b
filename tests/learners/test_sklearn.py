"""SKLearnLearner: the contract, determinism, votes, the score cache, checks, export."""

import importlib.util
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import SGDClassifier, SGDRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor

from colearning.core.codec import id_of
from colearning.core.exceptions import ConfigError, DataError, MissingExtraError, WeightsError
from colearning.core.interface import ModelFormat, Weights
from colearning.data import LearnerData, load_dataset, partition_dataset
from colearning.learners.metrics import METRICS
from colearning.learners.sklearn import SKLearnLearner
from colearning.testing import check_learner


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def digits_parts(digits):
    return partition_dataset(digits, 3, "iid", seed=0)


@pytest.fixture(scope="module")
def diabetes_parts():
    return partition_dataset(load_dataset("diabetes"), 2, "iid", seed=0)


def mlp(**kw):
    return MLPClassifier(hidden_layer_sizes=(16,), batch_size=32, learning_rate_init=0.01, **kw)


def digits_learner(digits, data, model=None, **kw):
    kw.setdefault("seed", 0)
    return SKLearnLearner(model if model is not None else mlp(), data, classes=digits.classes, **kw)


def trained(learner, rounds=3):
    """Weights from a few proposals in a row (accepting each), then back to the start."""
    start = learner.mli_get_current_weights()
    for r in range(rounds):
        learner.mli_set_round(r)
        learner.mli_accept_weights(learner.mli_propose_weights())
    better = learner.mli_get_current_weights()
    learner.mli_accept_weights(start)
    return better


def same(a: Weights, b: Weights) -> bool:
    return id_of(a) == id_of(b)


# -- the contract -----------------------------------------------------------------------


def test_mlp_classifier_passes_check_learner(digits, digits_parts):
    check_learner(digits_learner(digits, digits_parts[0]))


def test_sgd_classifier_passes_check_learner(digits, digits_parts):
    check_learner(digits_learner(digits, digits_parts[0], SGDClassifier(loss="log_loss")))


def test_mlp_regressor_passes_check_learner(diabetes_parts):
    learner = SKLearnLearner(MLPRegressor(hidden_layer_sizes=(8,)), diabetes_parts[0])
    assert learner.vote_metric == "rmse" and learner.higher_is_better is False
    check_learner(learner)


def test_sgd_regressor_passes_check_learner(diabetes_parts):
    check_learner(
        SKLearnLearner(SGDRegressor(), diabetes_parts[0], vote_metric="r2"), round_index=5
    )


def test_weights_are_named_arrays_in_the_estimators_dtype(digits, digits_parts):
    learner = SKLearnLearner(
        MLPClassifier(hidden_layer_sizes=(16, 8)), digits_parts[0], classes=digits.classes
    )
    arrays = learner.mli_get_current_weights().arrays
    assert list(arrays) == [
        "coefs_.0",
        "coefs_.1",
        "coefs_.2",
        "intercepts_.0",
        "intercepts_.1",
        "intercepts_.2",
    ]
    assert [a.shape for a in arrays.values()] == [(64, 16), (16, 8), (8, 10), (16,), (8,), (10,)]
    assert all(a.dtype == np.float32 for a in arrays.values())
    sgd = digits_learner(digits, digits_parts[0], SGDClassifier())
    assert {k: a.shape for k, a in sgd.mli_get_current_weights().arrays.items()} == {
        "coef_": (10, 64),
        "intercept_": (10,),
    }
    # a linear model starts at zero, as SGD does
    assert not np.any(sgd.mli_get_current_weights().arrays["coef_"])


def test_every_learner_builds_the_same_shapes_from_the_full_class_list(digits):
    # a learner whose share holds only two classes still has ten outputs
    skewed = partition_dataset(digits, 10, "shards:1", seed=0)[0]
    assert len(np.unique(skewed.train[1])) <= 3
    learner = digits_learner(digits, skewed)
    assert learner.mli_get_current_weights().arrays["coefs_.1"].shape == (16, 10)


# -- propose ----------------------------------------------------------------------------


def test_propose_and_test_leave_the_current_weights_alone(digits, digits_parts):
    learner = digits_learner(digits, digits_parts[0])
    before = learner.mli_get_current_weights()
    snapshot = {k: a.copy() for k, a in before.arrays.items()}
    score = learner.current_vote_score()
    learner.mli_set_round(0)
    proposal = learner.mli_propose_weights()
    learner.mli_test_weights(proposal)
    assert learner.mli_get_current_weights() is before
    assert all(np.array_equal(snapshot[k], a) for k, a in before.arrays.items())
    assert learner.current_vote_score() == score
    assert not same(proposal, before)


def test_a_proposal_is_determined_by_seed_and_round(digits, digits_parts):
    a = digits_learner(digits, digits_parts[0], seed=3)
    b = digits_learner(digits, digits_parts[0], seed=3)
    assert same(a.mli_get_current_weights(), b.mli_get_current_weights())
    a.mli_set_round(4)
    b.mli_set_round(4)
    first = a.mli_propose_weights()
    assert same(first, a.mli_propose_weights())  # again: no state carried over
    assert same(first, b.mli_propose_weights())
    a.mli_set_round(5)
    assert not same(first, a.mli_propose_weights())


def test_different_seeds_start_from_different_weights(digits, digits_parts):
    a = digits_learner(digits, digits_parts[0], seed=1)
    b = digits_learner(digits, digits_parts[0], seed=2)
    assert not same(a.mli_get_current_weights(), b.mli_get_current_weights())


def test_a_proposal_depends_only_on_the_current_weights_not_on_history(digits, digits_parts):
    """What makes a resumed experiment end where an uninterrupted one does."""
    veteran = digits_learner(digits, digits_parts[0], seed=5)
    for r in range(3):  # proposes, accepts, trains its optimizer...
        veteran.mli_set_round(r)
        veteran.mli_accept_weights(veteran.mli_propose_weights())
    shared = veteran.mli_get_current_weights()
    fresh = digits_learner(digits, digits_parts[0], seed=5)  # ...a restarted process
    fresh.mli_accept_weights(shared)
    for learner in (veteran, fresh):
        learner.mli_set_round(3)
    assert same(veteran.mli_propose_weights(), fresh.mli_propose_weights())


@pytest.mark.parametrize(
    "model", [SGDClassifier(loss="log_loss", learning_rate="optimal"), mlp(solver="sgd")]
)
def test_optimizer_state_does_not_carry_over(digits, digits_parts, model):
    learner = digits_learner(digits, digits_parts[0], model)
    learner.mli_set_round(1)
    first = learner.mli_propose_weights()
    for r in (2, 3):
        learner.mli_set_round(r)
        learner.mli_propose_weights()
    learner.mli_set_round(1)
    assert same(first, learner.mli_propose_weights())


def test_more_epochs_train_further(digits, digits_parts):
    one = digits_learner(digits, digits_parts[0], epochs=1)
    three = digits_learner(digits, digits_parts[0], epochs=3)
    assert same(one.mli_get_current_weights(), three.mli_get_current_weights())
    one.mli_set_round(0)
    three.mli_set_round(0)
    w1, w3 = one.mli_propose_weights(), three.mli_propose_weights()
    assert not same(w1, w3)
    assert three.mli_test_weights(w3).vote_score > one.mli_test_weights(w1).vote_score


def test_learners_in_parallel_threads_propose_what_they_propose_alone(digits, digits_parts):
    def proposal(i):
        learner = digits_learner(digits, digits_parts[i % 3], seed=i)
        learner.mli_set_round(i)
        return id_of(learner.mli_propose_weights())

    alone = [proposal(i) for i in range(6)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        together = list(pool.map(proposal, range(6)))
    assert together == alone


# -- votes ------------------------------------------------------------------------------


def test_votes_for_strictly_better_weights_only(digits, digits_parts):
    learner = digits_learner(digits, digits_parts[0])
    start = learner.mli_get_current_weights()
    better = trained(learner)
    verdict = learner.mli_test_weights(better)
    assert verdict.vote is True
    assert verdict.vote_score > learner.current_vote_score()
    assert 0.0 <= verdict.test_score <= 1.0
    assert learner.mli_test_weights(start).vote is False  # equal is not better
    learner.mli_accept_weights(better)
    assert learner.mli_test_weights(start).vote is False  # worse is not better


def test_vote_and_test_scores_are_the_metric_on_each_split(digits, digits_parts):
    data = digits_parts[0]
    learner = digits_learner(digits, data)
    better = trained(learner)
    verdict = learner.mli_test_weights(better)
    learner.mli_accept_weights(better)
    assert verdict.vote_score == pytest.approx(
        skm.accuracy_score(data.vote[1], learner.predict(data.vote[0]))
    )
    assert verdict.test_score == pytest.approx(
        skm.accuracy_score(data.test[1], learner.predict(data.test[0]))
    )


@pytest.mark.parametrize("metric", ["log_loss", "rmse"])
def test_lower_is_better_metrics_vote_for_lower_scores(
    digits, digits_parts, diabetes_parts, metric
):
    if metric == "log_loss":
        model = SGDClassifier(loss="log_loss")
        learner = digits_learner(digits, digits_parts[0], model, vote_metric="log_loss")
    else:
        model = SGDRegressor(learning_rate="constant", eta0=0.01)
        learner = SKLearnLearner(model, diabetes_parts[0], vote_metric="rmse")
    assert learner.higher_is_better is False
    start = learner.mli_get_current_weights()
    better = trained(learner)
    verdict = learner.mli_test_weights(better)
    assert verdict.vote_score < learner.current_vote_score()
    assert verdict.vote is True
    learner.mli_accept_weights(better)
    assert learner.current_vote_score() == verdict.vote_score
    worse = learner.mli_test_weights(start)
    assert worse.vote_score > learner.current_vote_score()
    assert worse.vote is False


def test_neg_log_loss_is_the_negated_loss(digits, digits_parts):
    data = digits_parts[0]
    loss = digits_learner(digits, data, mlp(), vote_metric="log_loss")
    neg = digits_learner(digits, data, mlp(), vote_metric="neg_log_loss")
    assert neg.higher_is_better and not loss.higher_is_better
    assert neg.current_vote_score() == pytest.approx(-loss.current_vote_score())
    better = trained(loss)
    assert loss.mli_test_weights(better).vote is neg.mli_test_weights(better).vote is True


def test_calibrated_log_loss_scores_a_sharper_copy_the_same(digits, digits_parts):
    """Scaling an MLP's output layer scales its logits: the plain log loss of such a
    copy differs, the calibrated one is the same up to the float32 rounding of the
    MLP's probabilities (the float64 case, a tie, is in test_metrics.py)."""
    data = digits_parts[0]
    plain = digits_learner(digits, data, mlp(), vote_metric="log_loss")
    calibrated = digits_learner(digits, data, mlp(), vote_metric="calibrated_log_loss")
    start = trained(plain, rounds=8)
    last = max(int(k.split(".")[1]) for k in start.arrays if k.startswith("coefs_"))

    def scaled(factor):
        return Weights(
            {
                k: a * factor if k in (f"coefs_.{last}", f"intercepts_.{last}") else a
                for k, a in start.arrays.items()
            }
        )

    # over-confident (twice the trained logits), then half as much again
    current, sharper = scaled(2.0), scaled(3.0)
    plain.mli_accept_weights(current)
    calibrated.mli_accept_weights(current)
    assert plain.mli_test_weights(sharper).vote_score != pytest.approx(
        plain.current_vote_score(), rel=1e-3
    )
    verdict = calibrated.mli_test_weights(sharper)
    assert verdict.vote_score == pytest.approx(calibrated.current_vote_score(), rel=1e-6)
    with pytest.raises(ConfigError, match="got 'calibrated'"):
        digits_learner(digits, data, mlp(), vote_metric="calibrated")


def test_a_callable_metric_needs_its_direction(digits, digits_parts):
    def error_rate(y, pred):
        return float(np.mean(y != pred))

    with pytest.raises(ConfigError, match="higher_is_better must be given for a callable"):
        digits_learner(digits, digits_parts[0], vote_metric=error_rate)
    learner = digits_learner(
        digits, digits_parts[0], vote_metric=error_rate, higher_is_better=False
    )
    assert learner.vote_metric == "error_rate"
    better = trained(learner)
    verdict = learner.mli_test_weights(better)
    assert verdict.vote is True and verdict.vote_score < learner.current_vote_score()
    # with the direction flipped, the same improvement is refused
    flipped = digits_learner(digits, digits_parts[0], vote_metric=error_rate, higher_is_better=True)
    assert flipped.mli_test_weights(better).vote is False


def test_the_metrics_agree_with_scikit_learn():
    rng = np.random.default_rng(0)
    classes = np.arange(4)
    y = rng.integers(0, 4, 200)
    pred = np.where(rng.random(200) < 0.6, y, rng.integers(0, 4, 200))
    exact = rng.dirichlet(np.ones(4), 200)
    proba = exact.astype(np.float32)  # what an MLP trained on float32 data gives
    binary = y % 2
    target = rng.normal(size=50)
    guess = target + rng.normal(scale=0.5, size=50)

    def ours(name, *args):
        return METRICS[name].fn(*args)

    assert ours("accuracy", y, pred, classes) == pytest.approx(skm.accuracy_score(y, pred))
    assert ours("balanced_accuracy", y, pred, classes) == pytest.approx(
        skm.balanced_accuracy_score(y, pred)
    )
    assert ours("f1_macro", y, pred, classes) == pytest.approx(
        skm.f1_score(y, pred, average="macro", zero_division=0)
    )
    assert ours("log_loss", y, proba, classes) == pytest.approx(
        skm.log_loss(y, exact, labels=classes), rel=1e-5
    )
    assert ours("roc_auc", y, proba, classes) == pytest.approx(
        skm.roc_auc_score(y, exact, multi_class="ovr", average="macro")
    )
    assert ours("roc_auc", binary, proba[:, :2], np.arange(2)) == pytest.approx(
        skm.roc_auc_score(binary, exact[:, 1])
    )
    assert ours("rmse", target, guess, None) == pytest.approx(
        np.sqrt(skm.mean_squared_error(target, guess))
    )
    assert ours("mae", target, guess, None) == pytest.approx(skm.mean_absolute_error(target, guess))
    assert ours("r2", target, guess, None) == pytest.approx(skm.r2_score(target, guess))


def test_roc_auc_scores_the_classes_a_vote_set_holds(digits, digits_parts):
    learner = digits_learner(digits, digits_parts[0], vote_metric="roc_auc")
    verdict = learner.mli_test_weights(trained(learner))
    assert verdict.vote is True and 0.5 < verdict.vote_score <= 1.0


# -- the score cache --------------------------------------------------------------------


def test_accept_reuses_the_vote_score_of_the_weights_just_tested(digits, digits_parts):
    learner = digits_learner(digits, digits_parts[0])
    learner.mli_set_round(0)
    proposal = learner.mli_propose_weights()
    assert learner.evaluations == 0  # the current weights are scored when first needed
    verdict = learner.mli_test_weights(proposal)
    assert learner.evaluations == 2  # the proposal, then the current weights
    learner.mli_accept_weights(proposal)
    assert learner.evaluations == 2  # cached
    assert learner.current_vote_score() == verdict.vote_score
    # the new current weights, as the same arrays or as equal copies: nothing to score
    assert learner.mli_test_weights(proposal).vote is False
    learner.mli_accept_weights(Weights(dict(proposal.arrays)))
    learner.mli_accept_weights(Weights({k: a.copy() for k, a in proposal.arrays.items()}))
    assert learner.evaluations == 2


def test_accept_scores_weights_it_has_not_tested_when_needed(digits, digits_parts):
    learner = digits_learner(digits, digits_parts[0])
    start = learner.mli_get_current_weights()
    start_score = learner.current_vote_score()
    better = trained(learner)
    tested = learner.mli_test_weights(better)
    count = learner.evaluations
    # equal values in fresh arrays are the weights just tested: their score is reused
    learner.mli_accept_weights(Weights({k: a.copy() for k, a in better.arrays.items()}))
    assert learner.evaluations == count
    assert learner.current_vote_score() == tested.vote_score
    # weights never tested are scored when their score is first needed, not before
    learner.mli_accept_weights(Weights({k: a.copy() for k, a in start.arrays.items()}))
    assert learner.evaluations == count
    assert learner.current_vote_score() == start_score
    assert learner.evaluations == count + 1


def test_current_weights_and_a_copy_score_alike_on_one_path(diabetes_parts):
    """The fresh-machine bug: the baseline was scored on the vote split alone and
    candidates on vote + test stacked, so BLAS picked other kernels for the same
    weights, the scores differed in the 10th digit and the learner approved its own
    unchanged model. Now the baseline and a candidate go through the same call on the
    same matrix."""

    def make(seed):
        learner = SKLearnLearner(
            MLPRegressor(hidden_layer_sizes=(8,)), diabetes_parts[0], seed=seed
        )
        inputs = []
        predict = learner._eval.predict

        def recording(X):
            inputs.append(X.shape)
            return predict(X)

        learner._eval.predict = recording
        return learner, inputs

    owner, owner_inputs = make(0)  # scores these weights as its baseline
    other, other_inputs = make(1)  # scores the same weights as a candidate
    weights = owner.mli_get_current_weights()
    copy = Weights({k: a.copy() for k, a in weights.arrays.items()})
    assert id_of(copy) != id_of(other.mli_get_current_weights())
    baseline = owner.current_vote_score()
    as_candidate = other.mli_test_weights(copy)
    assert owner_inputs == other_inputs[:1]  # the same matrix, through the same call
    assert as_candidate.vote_score == baseline  # same inputs, same call: the same number
    # and the owner never approves its current weights, nor a copy of them
    for same in (weights, copy):
        verdict = owner.mli_test_weights(same)
        assert verdict.vote is False and verdict.vote_score == baseline


def test_a_score_within_float_noise_of_the_current_one_is_a_tie(diabetes_parts):
    learner = SKLearnLearner(MLPRegressor(hidden_layer_sizes=(8,)), diabetes_parts[0])
    baseline = learner.current_vote_score()
    assert baseline > 1  # rmse of a fresh model on diabetes: the tolerance is relative
    learner.mli_set_round(0)
    proposal = learner.mli_propose_weights()
    real = learner._scores
    for delta, vote in ((-1e-10 * baseline, False), (-1e-6 * baseline, True)):
        learner._tested = None
        learner._scores = lambda weights, d=delta: (baseline + d, None)
        assert learner.mli_test_weights(proposal).vote is vote
    learner._scores = real


# -- malformed weights ------------------------------------------------------------------


def malformed(weights: Weights):
    arrays = dict(weights.arrays)
    first = next(iter(arrays))
    nan = {k: a.copy() for k, a in arrays.items()}
    nan[first][0, 0] = np.nan
    inf = {k: a.copy() for k, a in arrays.items()}
    inf["intercepts_.0"][0] = np.inf
    return {
        "wrong shape": {**arrays, first: np.zeros((3, 3), np.float32)},
        "wrong dtype": {**arrays, first: arrays[first].astype(np.float64)},
        "missing array": {k: a for k, a in arrays.items() if k != first},
        "renamed": {("x" + k if k == first else k): a for k, a in arrays.items()},
        "NaN": nan,
        "Inf": inf,
    }


@pytest.mark.parametrize(
    "case", ["wrong shape", "wrong dtype", "missing array", "renamed", "NaN", "Inf"]
)
def test_malformed_weights_are_refused_and_change_nothing(digits, digits_parts, case):
    learner = digits_learner(digits, digits_parts[0])
    current = learner.mli_get_current_weights()
    score = learner.current_vote_score()
    count = learner.evaluations
    bad = Weights(malformed(current)[case])
    with pytest.raises(WeightsError):
        learner.mli_test_weights(bad)
    with pytest.raises(WeightsError):
        learner.mli_accept_weights(bad)
    assert learner.mli_get_current_weights() is current
    assert learner.current_vote_score() == score
    assert learner.evaluations == count  # refused before anything was scored
    learner.mli_set_round(0)
    assert learner.mli_test_weights(learner.mli_propose_weights()).vote_score is not None


# -- export -----------------------------------------------------------------------------


def onnx_session(learner):
    import onnxruntime

    model = learner.mli_get_current_model()
    assert model.model_format is ModelFormat.ONNX
    assert isinstance(model.model, bytes)
    return onnxruntime.InferenceSession(model.model, providers=["CPUExecutionProvider"])


def onnx_outputs(learner, X):
    return onnx_session(learner).run(None, {"X": X.astype(np.float32)})


@pytest.mark.parametrize(
    ("model", "second"),
    [(mlp(), "probabilities"), (SGDClassifier(loss="log_loss"), "scores")],
)
def test_onnx_export_predicts_what_the_learner_predicts(digits, digits_parts, model, second):
    data = digits_parts[0]
    learner = digits_learner(digits, data, model)
    learner.mli_accept_weights(trained(learner))  # export the current, trained, weights
    session = onnx_session(learner)
    assert [o.name for o in session.get_outputs()] == ["label", second]
    labels, values = session.run(None, {"X": data.test[0]})
    expected = learner.predict(data.test[0])
    assert len(np.unique(expected)) > 3  # a real model, not a constant
    # exact: the linear model here is confident enough that float32 sigmoids saturate,
    # which breaks ties the wrong way unless labels come from the raw scores
    np.testing.assert_array_equal(labels, expected)
    assert values.shape == (len(expected), 10)
    if second == "probabilities":
        np.testing.assert_allclose(values.sum(axis=1), 1.0, rtol=1e-5)
    else:
        np.testing.assert_array_equal(digits.classes[values.argmax(axis=1)], expected)


def test_onnx_export_of_a_regressor(diabetes_parts):
    data = diabetes_parts[0]
    learner = SKLearnLearner(MLPRegressor(hidden_layer_sizes=(8,)), data)
    learner.mli_accept_weights(trained(learner))
    (values,) = onnx_outputs(learner, data.test[0])
    np.testing.assert_allclose(values.ravel(), learner.predict(data.test[0]), rtol=1e-4, atol=1e-3)


def test_export_without_skl2onnx_names_the_extra(digits, digits_parts, monkeypatch):
    learner = digits_learner(digits, digits_parts[0])
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a, **k: None if name == "skl2onnx" else real(name, *a, **k),
    )
    with pytest.raises(MissingExtraError, match=r"pip install 'colearning\[sklearn\]'"):
        learner.mli_get_current_model()


# -- configuration errors ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "match"),
    [
        (RandomForestClassifier(), "model must be an estimator with partial_fit"),
        (MLPClassifier(solver="lbfgs"), "solver='adam' or 'sgd'"),
        (MLPClassifier(early_stopping=True), "early_stopping must be False"),
        (SGDClassifier(average=True), "average must be False"),
    ],
)
def test_unsuitable_models_are_config_errors(digits, digits_parts, model, match):
    with pytest.raises(ConfigError, match=match):
        digits_learner(digits, digits_parts[0], model)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"vote_metric": "auc"},
            r"vote_metric must be one of 'accuracy', .* got 'auc' \(this library spells it "
            r"'roc_auc'\)",
        ),
        ({"vote_metric": "rmse"}, "vote_metric 'rmse' is a regression metric"),
        ({"test_metric": "mae"}, "test_metric 'mae' is a regression metric"),
        ({"vote_metric": "accuracy", "higher_is_better": False}, "higher_is_better must be True"),
        ({"vote_metric": "loss"}, "vote_metric must be one of 'accuracy', .*; got 'loss'"),
        ({"epochs": 0}, "epochs must be an integer >= 1; got 0"),
        ({"seed": -1}, "seed must be an integer >= 0; got -1"),
    ],
)
def test_bad_settings_are_config_errors(digits, digits_parts, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        digits_learner(digits, digits_parts[0], **kwargs)


def test_probability_metrics_need_probabilities(digits, digits_parts):
    with pytest.raises(ConfigError, match="needs predicted probabilities.*loss='log_loss'"):
        digits_learner(digits, digits_parts[0], SGDClassifier(loss="hinge"), vote_metric="log_loss")


def test_regressors_take_no_classes(diabetes_parts):
    with pytest.raises(ConfigError, match="classes must be None for a regressor"):
        SKLearnLearner(SGDRegressor(), diabetes_parts[0], classes=[0, 1])
    with pytest.raises(ConfigError, match="'accuracy' is a classification metric"):
        SKLearnLearner(SGDRegressor(), diabetes_parts[0], vote_metric="accuracy")


def test_empty_vote_split_is_a_data_error(digits, digits_parts):
    data = digits_parts[0]
    empty = (data.vote[0][:0], data.vote[1][:0])
    with pytest.raises(DataError, match="the vote split must hold at least one row; got 0"):
        digits_learner(digits, LearnerData(train=data.train, vote=empty, test=data.test))


def test_labels_outside_classes_are_a_data_error(digits_parts):
    with pytest.raises(DataError, match=r"labels \[5, 6, 7, 8, 9\] that are not in classes"):
        SKLearnLearner(mlp(), digits_parts[0], classes=[0, 1, 2, 3, 4])


def test_roc_auc_needs_two_classes_to_vote_with(digits):
    one_class = digits.y == 3
    X, y = digits.X[one_class], digits.y[one_class]
    data = LearnerData(train=(digits.X[:100], digits.y[:100]), vote=(X, y), test=(X, y))
    with pytest.raises(DataError, match="'roc_auc' needs at least two classes in the vote"):
        digits_learner(digits, data, vote_metric="roc_auc")
