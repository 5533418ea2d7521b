"""RandomForestLearner: the contract, deterministic skops bytes, votes, the score cache,
the type allowlist, hostile forests, ONNX export, and a small experiment."""

import collections

import numpy as np
import pytest
import skops.io as sio
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from colearning import Experiment
from colearning.core.codec import id_of
from colearning.core.exceptions import ConfigError, WeightsError
from colearning.core.interface import ModelFormat, Weights
from colearning.data import LearnerData, load_dataset, partition_dataset
from colearning.learners.forest import (
    RandomForestLearner,
    forest_from_bytes,
    forest_to_bytes,
)
from colearning.testing import check_learner


@pytest.fixture(scope="module")
def iris():
    return load_dataset("iris")


@pytest.fixture(scope="module")
def iris_parts(iris):
    return partition_dataset(iris, 3, "iid", seed=0)


@pytest.fixture(scope="module")
def wine():
    return load_dataset("wine")


def forest_learner(ds, data, **kw):
    kw.setdefault("trees_per_proposal", 3)
    kw.setdefault("max_depth", 3)
    return RandomForestLearner(data, classes=ds.classes, **kw)


def blob(weights: Weights) -> bytes:
    return weights.arrays["forest"].tobytes()


def as_weights(raw: bytes) -> Weights:
    return Weights({"forest": np.frombuffer(raw, dtype=np.uint8)})


def test_check_learner_classification_and_regression(iris, iris_parts):
    check_learner(forest_learner(iris, iris_parts[0]))
    part = partition_dataset(load_dataset("diabetes"), 3, "iid", seed=0)[0]
    regressor = RandomForestLearner(part, task="regression", trees_per_proposal=2, max_depth=3)
    assert regressor.vote_metric == "rmse" and regressor.higher_is_better is False
    check_learner(regressor)


def test_equal_forests_give_equal_bytes(iris):
    a = RandomForestClassifier(n_estimators=3, max_depth=3, random_state=1).fit(iris.X, iris.y)
    b = RandomForestClassifier(n_estimators=3, max_depth=3, random_state=1).fit(iris.X, iris.y)
    assert sio.dumps(a) != sio.dumps(b)  # why canonical bytes are needed at all
    assert forest_to_bytes(a) == forest_to_bytes(b)
    c = RandomForestClassifier(n_estimators=3, max_depth=3, random_state=2).fit(iris.X, iris.y)
    assert forest_to_bytes(a) != forest_to_bytes(c)


def test_tree_node_padding_is_zeroed(iris):
    """sklearn's node struct has 7 padding bytes that hold whatever the heap held:
    written as is, equal forests got other ids in other processes (and leaked memory)."""
    import io
    import zipfile

    forest = RandomForestClassifier(n_estimators=2, max_depth=3, random_state=0)
    forest.fit(iris.X, iris.y)
    nodes = forest.estimators_[0].tree_.__getstate__()["nodes"]
    assert nodes.dtype.itemsize > sum(nodes.dtype[n].itemsize for n in nodes.dtype.names)
    checked = 0
    with zipfile.ZipFile(io.BytesIO(forest_to_bytes(forest))) as archive:
        for name in archive.namelist():
            if not name.endswith(".npy"):
                continue
            array = np.load(io.BytesIO(archive.read(name)), allow_pickle=False)
            if array.dtype.names is None:
                continue
            clean = np.zeros(array.shape, array.dtype)
            for field in array.dtype.names:
                clean[field] = array[field]
            assert array.tobytes() == clean.tobytes()
            checked += 1
    assert checked == 2  # one node array per tree


def test_same_seed_and_round_give_identical_bytes(iris, iris_parts):
    a = forest_learner(iris, iris_parts[0], seed=5)
    b = forest_learner(iris, iris_parts[0], seed=5)
    assert blob(a.mli_get_current_weights()) == blob(b.mli_get_current_weights())
    a.mli_set_round(2)
    b.mli_set_round(2)
    proposal = a.mli_propose_weights()
    assert blob(proposal) == blob(b.mli_propose_weights())
    a.mli_set_round(3)
    assert blob(a.mli_propose_weights()) != blob(proposal)


def test_propose_grows_trees_on_a_copy(iris, iris_parts):
    learner = forest_learner(iris, iris_parts[0], trees_per_proposal=4)
    before = id_of(learner.mli_get_current_weights())
    proposal = learner.mli_propose_weights()
    learner.mli_test_weights(proposal)
    assert id_of(learner.mli_get_current_weights()) == before
    assert len(learner.forest.estimators_) == 1
    learner.mli_accept_weights(proposal)
    assert len(learner.forest.estimators_) == 5
    # the first tree is kept as it was
    grown = learner.mli_propose_weights()
    decoded = forest_from_bytes(
        blob(grown), task="classification", n_features=4, classes=iris.classes
    )
    assert len(decoded.estimators_) == 9
    np.testing.assert_array_equal(
        decoded.estimators_[0].tree_.threshold, learner.forest.estimators_[0].tree_.threshold
    )


def test_missing_classes_still_give_the_full_class_list(iris, iris_parts):
    data = iris_parts[0]
    keep = data.train[1] != 2
    lacking = LearnerData(
        train=(data.train[0][keep], data.train[1][keep]), vote=data.vote, test=data.test
    )
    learner = forest_learner(iris, lacking)
    np.testing.assert_array_equal(learner.forest.classes_, iris.classes)
    assert learner.predict_raw(iris.X[:5]).shape == (5, 3)
    # its proposals are accepted by a learner that has every class, and back
    full = forest_learner(iris, iris_parts[1])
    proposal = learner.mli_propose_weights()
    full.mli_accept_weights(proposal)
    learner.mli_accept_weights(full.mli_propose_weights())
    assert all(t.tree_.value.shape[2] == 3 for t in learner.forest.estimators_)


def test_votes_and_cached_accept(iris, wine):
    parts = partition_dataset(wine, 2, "iid", seed=0)
    learner = forest_learner(wine, parts[0], vote_metric="log_loss", test_metric="accuracy")
    assert learner.mli_test_weights(learner.mli_get_current_weights()).vote is False
    proposal = learner.mli_propose_weights()
    verdict = learner.mli_test_weights(proposal)
    assert verdict.vote is True and 0.5 < verdict.test_score <= 1.0
    count = learner.evaluations
    learner.mli_accept_weights(proposal)
    assert learner.evaluations == count
    assert learner.mli_test_weights(proposal).vote is False
    other = forest_learner(wine, parts[1]).mli_get_current_weights()
    count = learner.evaluations
    learner.mli_accept_weights(other)
    assert learner.evaluations == count  # scored when first needed
    learner.current_vote_score()
    assert learner.evaluations == count + 1


def test_untrusted_types_are_refused(iris, iris_parts):
    learner = forest_learner(iris, iris_parts[0])
    before = id_of(learner.mli_get_current_weights())
    for hostile in (
        LogisticRegression().fit(iris.X, iris.y),
        collections.OrderedDict(a=1),
        {"forest": np.zeros(3), "f": np.sum},
    ):
        with pytest.raises(WeightsError, match="allowlist"):
            learner.mli_test_weights(as_weights(sio.dumps(hostile)))
        with pytest.raises(WeightsError, match="allowlist"):
            learner.mli_accept_weights(as_weights(sio.dumps(hostile)))
    assert id_of(learner.mli_get_current_weights()) == before


def test_random_and_broken_bytes_are_refused(iris, iris_parts):
    learner = forest_learner(iris, iris_parts[0])
    before = id_of(learner.mli_get_current_weights())
    raw = blob(learner.mli_propose_weights())
    rng = np.random.default_rng(0)
    candidates = [
        rng.integers(0, 256, 300, dtype=np.uint8).tobytes(),
        raw[: len(raw) // 2],
        raw[:100],
    ]
    for _ in range(20):
        flipped = bytearray(raw)
        for _ in range(3):
            flipped[int(rng.integers(len(flipped)))] = int(rng.integers(256))
        candidates.append(bytes(flipped))
    refused = 0
    for candidate in candidates:
        try:
            learner.mli_test_weights(as_weights(candidate))
        except WeightsError:
            refused += 1
        assert id_of(learner.mli_get_current_weights()) == before
    assert refused >= len(candidates) - 5


def test_forest_for_other_data_is_refused(iris, iris_parts, wine):
    learner = forest_learner(iris, iris_parts[0])
    other = forest_learner(wine, partition_dataset(wine, 2, "iid", seed=0)[0])
    with pytest.raises(WeightsError, match="features"):
        learner.mli_test_weights(other.mli_get_current_weights())
    regressor = RandomForestLearner(iris_parts[0], task="regression", trees_per_proposal=1)
    with pytest.raises(WeightsError, match="RandomForestRegressor"):
        learner.mli_test_weights(
            Weights({"forest": regressor.mli_get_current_weights().arrays["forest"]})
        )


@pytest.mark.parametrize(
    ("array", "index", "value", "message"),
    [
        ("children_left", 0, 0, "outside"),  # the root as its own child: a loop
        ("children_right", 0, 10_000, "outside"),
        ("feature", 0, 7, "feature index"),
        ("threshold", 0, np.inf, "NaN/Inf"),
    ],
)
def test_malformed_trees_are_refused(iris, array, index, value, message):
    forest = RandomForestClassifier(n_estimators=2, max_depth=3, random_state=0)
    forest.fit(iris.X, iris.y)
    forest_from_bytes(
        forest_to_bytes(forest), task="classification", n_features=4, classes=iris.classes
    )
    getattr(forest.estimators_[1].tree_, array)[index] = value
    with pytest.raises(WeightsError, match=message):
        forest_from_bytes(
            forest_to_bytes(forest), task="classification", n_features=4, classes=iris.classes
        )


def test_configuration_errors(iris, iris_parts):
    with pytest.raises(ConfigError, match="trees_per_proposal"):
        RandomForestLearner(iris_parts[0], trees_per_proposal=0)
    with pytest.raises(ConfigError, match="task"):
        RandomForestLearner(iris_parts[0], task="ranking")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="vote_metric 'rmse' is a regression metric"):
        RandomForestLearner(iris_parts[0], vote_metric="rmse")
    with pytest.raises(ConfigError, match="higher_is_better"):
        RandomForestLearner(iris_parts[0], vote_metric=lambda y, p: 0.0)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_onnx_export_matches_predictions(task, wine):
    import onnxruntime as ort

    if task == "classification":
        data = partition_dataset(wine, 2, "iid", seed=0)[0]
        learner = forest_learner(wine, data)
    else:
        data = partition_dataset(load_dataset("diabetes"), 2, "iid", seed=0)[0]
        learner = RandomForestLearner(data, task="regression", trees_per_proposal=3, max_depth=4)
    learner.mli_accept_weights(learner.mli_propose_weights())
    model = learner.mli_get_current_model()
    assert model.model_format is ModelFormat.ONNX
    session = ort.InferenceSession(model.model)
    X = np.asarray(learner.data.test[0], dtype=np.float32)
    outputs = session.run(None, {"input": X})
    if task == "classification":
        np.testing.assert_array_equal(outputs[0], learner.predict(X))
        np.testing.assert_allclose(outputs[1], learner.predict_raw(X), atol=1e-5)
    else:
        np.testing.assert_allclose(outputs[0].ravel(), learner.predict(X), rtol=1e-4)


def test_experiment_improves_the_test_score(wine):
    parts = partition_dataset(wine, 3, "iid", seed=1)
    learners = [
        forest_learner(wine, p, seed=i, vote_metric="log_loss") for i, p in enumerate(parts)
    ]
    with Experiment(learners) as experiment:
        initial = experiment.current_weights
        result = experiment.run(rounds=3)
    assert sum(r.accepted for r in result.rounds) >= 2
    judge = forest_learner(
        wine,
        LearnerData(train=parts[0].train, vote=parts[0].vote, test=(wine.X, wine.y)),
        vote_metric="log_loss",
    )
    before = judge.mli_test_weights(initial).test_score
    after = judge.mli_test_weights(result.final_weights).test_score
    assert after < before
