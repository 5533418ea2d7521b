"""XGBoostLearner: the contract, determinism, votes, the score cache, hostile boosters,
ONNX export, and a small experiment."""

import json

import numpy as np
import pytest
import xgboost as xgb

from colearning import Experiment
from colearning.core.codec import id_of
from colearning.core.exceptions import ConfigError, WeightsError
from colearning.core.interface import ModelFormat, Weights
from colearning.data import load_dataset, partition_dataset
from colearning.learners._formats import check_booster_document, parse_ubjson
from colearning.learners.xgboost import XGBoostLearner, booster_from_bytes
from colearning.testing import check_learner

PARAMS = {"max_depth": 2, "eta": 0.3, "subsample": 0.8}


@pytest.fixture(scope="module")
def cancer():
    return load_dataset("breast-cancer")


@pytest.fixture(scope="module")
def cancer_parts(cancer):
    return partition_dataset(cancer, 3, "iid", seed=0)


@pytest.fixture(scope="module")
def diabetes_parts():
    return partition_dataset(load_dataset("diabetes"), 3, "iid", seed=0)


@pytest.fixture(scope="module")
def iris():
    return load_dataset("iris")


def cancer_learner(cancer, data, **kw):
    kw.setdefault("rounds_per_proposal", 3)
    return XGBoostLearner(PARAMS, data, classes=cancer.classes, **kw)


def blob(weights: Weights) -> bytes:
    return weights.arrays["booster"].tobytes()


def as_weights(raw: bytes) -> Weights:
    return Weights({"booster": np.frombuffer(raw, dtype=np.uint8)})


# -- the contract -----------------------------------------------------------------------


def test_check_learner_binary(cancer, cancer_parts):
    check_learner(cancer_learner(cancer, cancer_parts[0]))


def test_check_learner_regression_and_multiclass(diabetes_parts, iris):
    regressor = XGBoostLearner(PARAMS, diabetes_parts[0], rounds_per_proposal=2)
    assert regressor.objective == "reg:squarederror" and regressor.vote_metric == "rmse"
    assert regressor.higher_is_better is False
    check_learner(regressor)
    part = partition_dataset(iris, 2, "iid", seed=0)[0]
    multi = XGBoostLearner(PARAMS, part, classes=iris.classes, rounds_per_proposal=2)
    assert multi.objective == "multi:softprob" and multi.num_class == 3
    check_learner(multi)


def test_weights_are_ubjson_bytes(cancer, cancer_parts):
    learner = cancer_learner(cancer, cancer_parts[0])
    weights = learner.mli_get_current_weights()
    assert list(weights) == ["booster"]
    array = weights.arrays["booster"]
    assert array.dtype == np.uint8 and array.ndim == 1
    assert blob(weights) == bytes(learner.booster.save_raw("ubj"))


# -- determinism and no mutation ------------------------------------------------------


def test_same_seed_and_round_give_identical_bytes(cancer, cancer_parts):
    a = cancer_learner(cancer, cancer_parts[0], seed=7)
    b = cancer_learner(cancer, cancer_parts[0], seed=7)
    assert blob(a.mli_get_current_weights()) == blob(b.mli_get_current_weights())
    a.mli_set_round(3)
    b.mli_set_round(3)
    assert blob(a.mli_propose_weights()) == blob(b.mli_propose_weights())
    # subsample < 1: another round draws other rows
    first = blob(a.mli_propose_weights())
    a.mli_set_round(4)
    assert blob(a.mli_propose_weights()) != first


def test_propose_and_test_leave_current_weights(cancer, cancer_parts):
    learner = cancer_learner(cancer, cancer_parts[0])
    before = id_of(learner.mli_get_current_weights())
    proposal = learner.mli_propose_weights()
    learner.mli_test_weights(proposal)
    assert id_of(learner.mli_get_current_weights()) == before
    assert learner.booster.num_boosted_rounds() == 1
    assert xgb.Booster(model_file=bytearray(blob(proposal))).num_boosted_rounds() == 4


# -- votes and the score cache ----------------------------------------------------------


def test_votes_for_better_and_against_same(cancer, cancer_parts):
    learner = cancer_learner(
        cancer, cancer_parts[0], vote_metric="log_loss", test_metric="accuracy"
    )
    same = learner.mli_test_weights(learner.mli_get_current_weights())
    assert same.vote is False
    better = learner.mli_test_weights(learner.mli_propose_weights())
    assert better.vote is True and better.vote_score < same.vote_score
    assert 0.5 <= better.test_score <= 1.0  # accuracy, not log-loss


def test_lower_is_better_for_rmse(diabetes_parts):
    learner = XGBoostLearner(PARAMS, diabetes_parts[0], rounds_per_proposal=5)
    current = learner.mli_test_weights(learner.mli_get_current_weights()).vote_score
    verdict = learner.mli_test_weights(learner.mli_propose_weights())
    assert verdict.vote_score < current and verdict.vote is True


def test_accept_reuses_score_from_test(cancer, cancer_parts):
    learner = cancer_learner(cancer, cancer_parts[0])
    proposal = learner.mli_propose_weights()
    verdict = learner.mli_test_weights(proposal)
    count = learner.evaluations
    learner.mli_accept_weights(proposal)
    assert learner.evaluations == count
    assert learner.mli_get_current_weights() is proposal
    # the new current model is the bar: testing it again does not approve it
    assert learner.mli_test_weights(proposal).vote is False
    assert learner.mli_test_weights(proposal).vote_score == verdict.vote_score
    # weights never tested are scored on accept
    other = cancer_learner(cancer, cancer_parts[1]).mli_get_current_weights()
    count = learner.evaluations
    learner.mli_accept_weights(other)
    assert learner.evaluations == count  # scored when first needed
    learner.current_vote_score()
    assert learner.evaluations == count + 1


# -- hostile or broken boosters ----------------------------------------------------------


def test_random_truncated_and_flipped_bytes_are_refused(cancer, cancer_parts):
    learner = cancer_learner(cancer, cancer_parts[0])
    before = id_of(learner.mli_get_current_weights())
    raw = blob(learner.mli_propose_weights())
    rng = np.random.default_rng(0)
    candidates = [
        rng.integers(0, 256, 500, dtype=np.uint8).tobytes(),
        b"{" + rng.integers(0, 256, 200, dtype=np.uint8).tobytes(),
        b"{",
        raw[: len(raw) // 2],
        raw + b"\x00",
    ]
    for _ in range(40):  # bit flips and truncations once crashed XGBoost's own loader
        cut = bytearray(raw[: int(rng.integers(1, len(raw)))])
        candidates.append(bytes(cut))
        flipped = bytearray(raw)
        for _ in range(3):
            flipped[int(rng.integers(len(flipped)))] = int(rng.integers(256))
        candidates.append(bytes(flipped))
    refused = 0
    for candidate in candidates:
        try:
            verdict = learner.mli_test_weights(as_weights(candidate))
        except WeightsError as exc:
            assert "booster" in str(exc)
            refused += 1
        else:  # a flip inside a number can leave a valid model; it is only scored
            assert isinstance(verdict.vote, bool)
        assert id_of(learner.mli_get_current_weights()) == before
    assert refused >= len(candidates) - 10
    with pytest.raises(WeightsError, match="not a valid XGBoost UBJSON"):
        learner.mli_accept_weights(as_weights(raw[:-3]))
    assert id_of(learner.mli_get_current_weights()) == before


def test_booster_for_other_data_is_refused(cancer, cancer_parts, diabetes_parts):
    learner = cancer_learner(cancer, cancer_parts[0])
    regressor = XGBoostLearner(PARAMS, diabetes_parts[0], rounds_per_proposal=1)
    with pytest.raises(WeightsError, match="objective"):
        learner.mli_test_weights(regressor.mli_get_current_weights())


def _document(learner):
    return parse_ubjson(blob(learner.mli_propose_weights()))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: t["left_children"].__setitem__(1, 1), "two parents|outside"),
        (lambda t: t["right_children"].__setitem__(0, 99), "outside"),
        (lambda t: t["split_indices"].__setitem__(0, 30), "feature index"),
        (lambda t: t["split_conditions"].__setitem__(0, np.nan), "NaN"),
        (lambda t: t["split_type"].__setitem__(0, 1), "numerical"),
        (lambda t: t.__setitem__("base_weights", t["base_weights"][:-1]), "num_nodes"),
    ],
)
def test_tree_checks_refuse_unsafe_trees(cancer, cancer_parts, mutate, message):
    learner = cancer_learner(cancer, cancer_parts[0])
    doc = _document(learner)
    tree = doc["learner"]["gradient_booster"]["model"]["trees"][1]
    for key in (
        "left_children",
        "right_children",
        "split_indices",
        "split_conditions",
        "split_type",
        "base_weights",
    ):
        tree[key] = np.array(tree[key])  # writable copies
    check_booster_document(doc, objective="binary:logistic", n_features=30, num_class=0)
    mutate(tree)
    with pytest.raises(WeightsError, match=message):
        check_booster_document(doc, objective="binary:logistic", n_features=30, num_class=0)


def test_checked_booster_predicts_like_the_original(cancer, cancer_parts):
    learner = cancer_learner(cancer, cancer_parts[0])
    raw = blob(learner.mli_propose_weights())
    original = xgb.Booster(model_file=bytearray(raw))
    checked = booster_from_bytes(raw, objective="binary:logistic", n_features=30)
    X = cancer.X.astype(np.float32)
    np.testing.assert_array_equal(original.inplace_predict(X), checked.inplace_predict(X))
    assert json.loads(bytes(checked.save_raw("json"))) == json.loads(
        bytes(original.save_raw("json"))
    )


# -- configuration ------------------------------------------------------------------------


def test_configuration_errors(cancer, cancer_parts):
    data = cancer_parts[0]
    with pytest.raises(ConfigError, match="rounds_per_proposal"):
        XGBoostLearner(PARAMS, data, rounds_per_proposal=0)
    with pytest.raises(ConfigError, match="vote_metric 'rmse' is a regression metric"):
        XGBoostLearner(PARAMS, data, vote_metric="rmse")
    with pytest.raises(ConfigError, match="vote_metric must be one of 'accuracy', .*'logloss'"):
        XGBoostLearner(PARAMS, data, vote_metric="logloss")
    with pytest.raises(ConfigError, match="higher_is_better"):
        XGBoostLearner(PARAMS, data, vote_metric=lambda y, p: 0.0)
    with pytest.raises(ConfigError, match="multi:softprob"):
        XGBoostLearner({**PARAMS, "objective": "multi:softmax"}, data)


def test_callable_metric(cancer, cancer_parts):
    def brier(y, p):
        return float(np.mean((p - y) ** 2))

    learner = cancer_learner(cancer, cancer_parts[0], vote_metric=brier, higher_is_better=False)
    verdict = learner.mli_test_weights(learner.mli_propose_weights())
    assert verdict.vote is True and 0 < verdict.vote_score < 0.25


# -- export ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["binary", "regression", "multiclass"])
def test_onnx_export_matches_predictions(kind, cancer, cancer_parts, diabetes_parts, iris):
    import onnxruntime as ort

    if kind == "binary":
        learner = cancer_learner(cancer, cancer_parts[0])
    elif kind == "regression":
        learner = XGBoostLearner(PARAMS, diabetes_parts[0], rounds_per_proposal=3)
    else:
        part = partition_dataset(iris, 2, "iid", seed=0)[0]
        learner = XGBoostLearner(PARAMS, part, classes=iris.classes, rounds_per_proposal=3)
    learner.mli_accept_weights(learner.mli_propose_weights())  # a checked, loaded booster
    model = learner.mli_get_current_model()
    assert model.model_format is ModelFormat.ONNX
    session = ort.InferenceSession(model.model)
    X = np.asarray(learner.data.test[0], dtype=np.float32)
    outputs = session.run(None, {"input": X})
    expected = learner.predict_raw(X)
    if kind == "regression":
        np.testing.assert_allclose(outputs[0].ravel(), expected, rtol=1e-5)
    else:
        proba = outputs[1][:, 1] if kind == "binary" else outputs[1]
        np.testing.assert_allclose(proba, expected, atol=1e-5)
        np.testing.assert_array_equal(learner.classes[outputs[0]], learner.predict(X))


# -- the protocol -----------------------------------------------------------------------------


def test_experiment_improves_the_test_score(cancer, cancer_parts):
    learners = [
        cancer_learner(cancer, part, seed=i, vote_metric="log_loss", rounds_per_proposal=3)
        for i, part in enumerate(cancer_parts)
    ]
    with Experiment(learners) as experiment:
        initial = experiment.current_weights
        result = experiment.run(rounds=3)
    assert sum(r.accepted for r in result.rounds) >= 2
    assert all(blob(x.mli_get_current_weights()) == blob(result.final_weights) for x in learners)
    # a judge on everyone's test rows: lower log-loss and no worse accuracy
    for metric, better in (("log_loss", np.less), ("accuracy", np.greater_equal)):
        judge = cancer_learner(cancer, cancer_parts[0], vote_metric=metric)
        before = judge.mli_test_weights(initial).test_score
        after = judge.mli_test_weights(result.final_weights).test_score
        assert better(after, before), (metric, before, after)
