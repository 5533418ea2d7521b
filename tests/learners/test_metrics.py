"""The metric registry: one vocabulary, each name with its direction and output, the
functions agreeing with scikit-learn, and refusals that name the allowed names."""

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from colearning.core.exceptions import ConfigError
from colearning.learners.metrics import (
    CLASSIFICATION,
    METRICS,
    REGRESSION,
    calibrated_log_loss,
    direction_of,
    framework_metric,
    resolve_metric,
)

VOCABULARY = [
    # name, higher is better, output, task
    ("accuracy", True, "predictions", "classification"),
    ("balanced_accuracy", True, "predictions", "classification"),
    ("f1_macro", True, "predictions", "classification"),
    ("roc_auc", True, "scores", "classification"),
    ("log_loss", False, "probabilities", "classification"),
    ("neg_log_loss", True, "probabilities", "classification"),
    ("calibrated_log_loss", False, "probabilities", "classification"),
    ("rmse", False, "predictions", "regression"),
    ("mae", False, "predictions", "regression"),
    ("r2", True, "predictions", "regression"),
    ("loss", False, "framework", None),
]


def test_the_vocabulary_is_exactly_these_names():
    assert list(METRICS) == [row[0] for row in VOCABULARY]
    assert tuple(r[0] for r in VOCABULARY if r[3] == "classification") == CLASSIFICATION
    assert tuple(r[0] for r in VOCABULARY if r[3] == "regression") == REGRESSION


@pytest.mark.parametrize(("name", "higher", "output", "task"), VOCABULARY)
def test_each_name_has_its_direction_output_and_task(name, higher, output, task):
    metric = METRICS[name]
    assert (metric.name, metric.higher_is_better, metric.output, metric.task) == (
        name,
        higher,
        output,
        task,
    )
    assert direction_of(name) is higher


@pytest.fixture(scope="module")
def sample():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 200)
    pred = np.where(rng.random(200) < 0.6, y, rng.integers(0, 4, 200))
    exact = rng.dirichlet(np.ones(4), 200)
    target = rng.normal(size=50)
    guess = target + rng.normal(scale=0.5, size=50)
    return y, pred, exact, target, guess


@pytest.mark.parametrize(
    ("name", "theirs"),
    [
        ("accuracy", lambda s: skm.accuracy_score(s[0], s[1])),
        ("balanced_accuracy", lambda s: skm.balanced_accuracy_score(s[0], s[1])),
        ("f1_macro", lambda s: skm.f1_score(s[0], s[1], average="macro", zero_division=0)),
    ],
)
def test_label_metrics_agree_with_scikit_learn(sample, name, theirs):
    y, pred = sample[0], sample[1]
    assert METRICS[name](y, pred, np.arange(4)) == pytest.approx(theirs(sample))


def test_probability_metrics_agree_with_scikit_learn(sample):
    y, exact = sample[0], sample[2]
    classes = np.arange(4)
    proba = exact.astype(np.float32)  # what an MLP trained on float32 data gives
    expected = skm.log_loss(y, exact, labels=classes)
    assert METRICS["log_loss"](y, proba, classes) == pytest.approx(expected, rel=1e-5)
    assert METRICS["neg_log_loss"](y, exact, classes) == pytest.approx(-expected)
    assert METRICS["roc_auc"](y, exact, classes) == pytest.approx(
        skm.roc_auc_score(y, exact, multi_class="ovr", average="macro")
    )


def test_binary_metrics_take_one_probability_column(sample):
    y = sample[0] % 2
    p1 = sample[2][:, 1]
    two = np.column_stack([1 - p1, p1])
    assert METRICS["roc_auc"](y, p1, np.arange(2)) == pytest.approx(skm.roc_auc_score(y, p1))
    assert METRICS["roc_auc"](y, two, np.arange(2)) == pytest.approx(skm.roc_auc_score(y, p1))
    assert METRICS["log_loss"](y, p1, np.arange(2)) == pytest.approx(skm.log_loss(y, two))


def test_roc_auc_counts_ties_as_halves_and_needs_two_classes():
    y = np.array([0, 1, 0, 1])
    scores = np.array([0.1, 0.5, 0.5, 0.9])
    assert METRICS["roc_auc"](y, scores) == pytest.approx(skm.roc_auc_score(y, scores)) == 0.875
    assert math.isnan(METRICS["roc_auc"](np.array([1, 1]), np.array([0.2, 0.7])))


def test_roc_auc_of_labels_not_numbered_from_zero(sample):
    y, exact = sample[0], sample[2]
    labels = np.array([3, 5, 7, 9])
    assert METRICS["roc_auc"](labels[y], exact, labels) == pytest.approx(
        METRICS["roc_auc"](y, exact, np.arange(4))
    )


def test_log_loss_clips_zero_probabilities():
    y = np.array([0, 1])
    proba = np.array([[1.0, 0.0], [1.0, 0.0]])  # the second row is certain and wrong
    assert METRICS["log_loss"](y, proba) == pytest.approx(-np.log(1e-15) / 2)
    float32 = proba.astype(np.float32)
    assert METRICS["log_loss"](y, float32) == pytest.approx(
        -np.log(np.finfo(np.float32).eps) / 2, rel=1e-6
    )


def test_regression_metrics_agree_with_scikit_learn(sample):
    target, guess = sample[3], sample[4]
    assert METRICS["rmse"](target, guess) == pytest.approx(
        np.sqrt(skm.mean_squared_error(target, guess))
    )
    assert METRICS["mae"](target, guess) == pytest.approx(skm.mean_absolute_error(target, guess))
    assert METRICS["r2"](target, guess) == pytest.approx(skm.r2_score(target, guess))
    # a column of predictions (a network's (n, 1) output) is the same as a vector
    assert METRICS["rmse"](target, guess[:, None]) == METRICS["rmse"](target, guess)


def test_r2_of_constant_targets_follows_scikit_learn():
    y = np.ones(3)
    assert METRICS["r2"](y, np.ones(3)) == 1.0 == skm.r2_score(y, np.ones(3))
    assert METRICS["r2"](y, np.zeros(3)) == 0.0 == skm.r2_score(y, np.zeros(3))


def test_the_framework_loss_is_not_computed_here():
    with pytest.raises(ConfigError, match="framework's own loss"):
        METRICS["loss"](np.zeros(2), np.zeros(2))


# -- resolving a learner's argument --------------------------------------------------------


def test_a_name_resolves_to_its_metric_and_none_to_the_default():
    assert resolve_metric("log_loss", None, allowed=CLASSIFICATION) is METRICS["log_loss"]
    assert resolve_metric(None, None, allowed=REGRESSION) is METRICS["rmse"]
    assert resolve_metric(None, None, allowed=CLASSIFICATION, default="f1_macro").name == "f1_macro"


@pytest.mark.parametrize(
    ("metric", "kwargs", "message"),
    [
        ("auc", {}, r"vote_metric must be one of 'accuracy', .*got 'auc' .*'roc_auc'"),
        ("logloss", {}, r"got 'logloss' \(this library spells it 'log_loss'\)"),
        ("rmse", {"task": "classification"}, "'rmse' is a regression metric but the model"),
        ("loss", {}, r"got 'loss' \('loss' does not suit this model\)"),
        (3, {}, "got 3"),
        ("accuracy", {"higher_is_better": False}, "higher_is_better must be True"),
        (
            "accuracy",
            {"higher_is_better": False, "what": "test_metric", "direction_name": "test_hib"},
            "test_hib must be True for test_metric 'accuracy'",
        ),
        (lambda y, p: 0.0, {}, "higher_is_better must be given for a callable vote_metric"),
        (lambda y, p: 0.0, {"callable_output": None}, "got a callable"),
    ],
)
def test_refusals_name_the_value_the_allowed_names_and_the_fix(metric, kwargs, message):
    settings = {"allowed": CLASSIFICATION, **kwargs}
    with pytest.raises(ConfigError, match=message):
        resolve_metric(metric, settings.pop("higher_is_better", None), **settings)


def test_a_callable_carries_its_name_direction_and_output():
    def error_rate(y, pred):
        return float(np.mean(y != pred))

    metric = resolve_metric(
        error_rate, False, allowed=CLASSIFICATION, callable_output="predictions"
    )
    assert (metric.name, metric.higher_is_better, metric.output) == (
        "error_rate",
        False,
        "predictions",
    )
    assert metric(np.array([0, 1]), np.array([0, 0])) == 0.5


def test_framework_metrics_keep_the_vocabulary_direction():
    assert framework_metric("accuracy", False) is METRICS["accuracy"]
    custom = framework_metric("sparse_top_3", True)
    assert (custom.name, custom.higher_is_better, custom.output) == (
        "sparse_top_3",
        True,
        "framework",
    )
    assert direction_of("sparse_top_3") is None


# -- calibrated_log_loss ------------------------------------------------------------------


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _log_losses(z, y, temperatures):
    """The log loss of the logits ``z / t`` for each ``t``, straight from the logits:
    the mean of ``logsumexp(z / t) - z[y] / t`` (no probability is formed or clipped)."""
    zt = z[None, :, :] / temperatures[:, None, None]
    top = zt.max(axis=2, keepdims=True)
    lse = np.log(np.exp(zt - top).sum(axis=2)) + top[:, :, 0]
    return (lse - zt[:, np.arange(len(y)), y]).mean(axis=1)


@pytest.fixture(scope="module")
def overconfident():
    """Logits three times as sharp as the labels they were drawn from (the best
    temperature is near 3), and the labels."""
    rng = np.random.default_rng(1)
    z = rng.normal(size=(300, 5)) * 1.5
    y = np.array([rng.choice(5, p=p) for p in _softmax(z)])
    return 3.0 * z, y


def test_calibrated_log_loss_is_the_minimum_over_a_grid_of_temperatures(overconfident):
    z, y = overconfident
    proba = _softmax(z)
    # a grid of 3,001 temperatures (steps of 0.001 in log T), then one 1,000 times finer
    # around the grid's best
    grid = np.exp(np.linspace(0.0, np.log(20.0), 3001))
    coarse = _log_losses(z, y, grid)
    best = grid[int(np.argmin(coarse))]
    fine = np.exp(np.linspace(np.log(best) - 1e-3, np.log(best) + 1e-3, 2001))
    brute = _log_losses(z, y, fine)
    at = int(np.argmin(brute))  # the formula is scikit-learn's log loss
    assert brute[at] == pytest.approx(
        skm.log_loss(y, _softmax(z / fine[at]), labels=np.arange(5)), abs=1e-13
    )
    loss, t = calibrated_log_loss(y, proba, np.arange(5))
    assert loss == pytest.approx(min(brute), abs=1e-12)
    assert loss <= min(brute) + 1e-14  # the search finds the minimum, the grid near it
    assert t == pytest.approx(fine[at], rel=1e-5)
    assert 2.0 < t < 4.0
    assert METRICS["calibrated_log_loss"](y, proba, np.arange(5)) == loss
    assert loss < METRICS["log_loss"](y, proba, np.arange(5))


@pytest.mark.parametrize("scale", [0.6, 1.7, 2.5])
def test_rescaled_logits_score_the_same(scale):
    rng = np.random.default_rng(3)
    z = rng.normal(size=(300, 5)) * 0.8
    y = np.array([rng.choice(5, p=p) for p in _softmax(z)])
    z = 2.5 * z  # over-confident: the best temperature is near 2.5
    # within the bracket, and no probability clipped (logits at most 34.5 apart)
    assert np.ptp(scale * z, axis=1).max() < 34.0
    base, t = calibrated_log_loss(y, _softmax(z))
    scaled, t_scaled = calibrated_log_loss(y, _softmax(scale * z))
    assert 1.0 < scale * t < 20.0
    assert scaled == pytest.approx(base, abs=1e-12)
    assert t_scaled == pytest.approx(scale * t, rel=1e-6)
    # within the tie rule's tolerance: such a proposal is not an approval
    from colearning.learners._base import better

    assert not better(scaled, base, higher_is_better=False)
    assert not better(base, scaled, higher_is_better=False)


def test_calibration_never_sharpens_so_it_is_at_most_the_log_loss():
    # An under-confident model (best T below 1): T stays 1, the plain log loss, exactly.
    rng = np.random.default_rng(2)
    z = rng.normal(size=(100, 4))
    y = np.argmax(z, axis=1)  # the logits are right on every row, with little confidence
    proba = _softmax(z)
    loss, t = calibrated_log_loss(y, proba, np.arange(4))
    assert t == 1.0
    assert loss == pytest.approx(METRICS["log_loss"](y, proba, np.arange(4)), rel=1e-12)


def test_calibrated_log_loss_is_deterministic_and_takes_float32_and_binary(overconfident):
    z, y = overconfident
    proba = _softmax(z)
    first = calibrated_log_loss(y, proba)
    assert all(calibrated_log_loss(y, proba.copy()) == first for _ in range(5))
    # float32 probabilities score as their float64 values (clipped at 1e-15, not at
    # float32's epsilon: the small probabilities of a confident model carry its logits)
    as32 = proba.astype(np.float32)
    assert calibrated_log_loss(y, as32) == calibrated_log_loss(y, as32.astype(np.float64))
    assert calibrated_log_loss(y, as32)[0] == pytest.approx(first[0], rel=1e-6)
    # two classes: a 1-D array of P(second class) scores as the two columns do
    yb = (y > 1).astype(np.int64)
    p1 = 1.0 / (1.0 + np.exp(-z[:, 0]))
    two = np.column_stack([1.0 - p1, p1])
    assert calibrated_log_loss(yb, p1, np.arange(2)) == calibrated_log_loss(yb, two, np.arange(2))
