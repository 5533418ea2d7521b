"""KerasLearner: stable names, the contract, determinism, votes, the score cache,
malformed weights, ONNX export, and a small experiment."""

import numpy as np
import pytest
import torch

from colearning import Experiment
from colearning.core.codec import id_of
from colearning.core.exceptions import ConfigError, WeightsError
from colearning.core.interface import ModelFormat, Weights
from colearning.data import load_dataset, partition_dataset
from colearning.learners.keras import KerasLearner, keras, stable_weight_names
from colearning.testing import check_learner


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    # Validations run on threads; torch's OpenMP pool on top of them oversubscribes a
    # small machine (100x slower under load), so these tests use one intra-op thread.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def parts(digits):
    return partition_dataset(digits, 3, "iid", seed=0)


def build(dropout: float = 0.0, seed: int = 0) -> keras.Model:
    init = keras.initializers.GlorotUniform(seed=seed)
    layers = [
        keras.Input((64,)),
        keras.layers.Dense(16, activation="relu", kernel_initializer=init),
    ]
    if dropout:
        layers.append(keras.layers.Dropout(dropout))
    layers.append(
        keras.layers.Dense(
            10, activation="softmax", kernel_initializer=keras.initializers.GlorotUniform(seed + 1)
        )
    )
    return keras.Sequential(layers)


def make(data, dropout=0.0, seed=0, **kw):
    model = build(dropout, seed)
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return KerasLearner(model, data, seed=seed, **kw)


def test_names_do_not_depend_on_what_was_built_before():
    first, second = build(), build()
    assert [v.path for v in first.weights] != [v.path for v in second.weights]
    assert (
        stable_weight_names(first)
        == stable_weight_names(second)
        == ["dense/kernel", "dense/bias", "dense_1/kernel", "dense_1/bias"]
    )
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(2, name="hidden")(inputs)
    functional = keras.Model(inputs, keras.layers.Dense(1, name="out")(hidden))
    assert stable_weight_names(functional) == [
        "hidden/kernel",
        "hidden/bias",
        "out/kernel",
        "out/bias",
    ]


def test_check_learner(parts):
    check_learner(make(parts[0], dropout=0.2))


def test_uncompiled_model_is_compiled_or_refused(parts):
    with pytest.raises(ConfigError, match="loss"):
        KerasLearner(build(), parts[0])
    learner = KerasLearner(
        build(),
        parts[0],
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        vote_metric="accuracy",
    )
    assert learner.higher_is_better is True
    with pytest.raises(ConfigError, match=r"vote_metric must be one of \['accuracy', 'loss'\]"):
        make(parts[0], vote_metric="auc")
    with pytest.raises(ConfigError, match="higher_is_better must be False for vote_metric 'loss'"):
        make(parts[0], vote_metric="loss", higher_is_better=True)


def test_same_seed_and_round_give_identical_weights(parts):
    a = make(parts[0], dropout=0.3, seed=3)
    b = make(parts[0], dropout=0.3, seed=3)
    assert id_of(a.mli_get_current_weights()) == id_of(b.mli_get_current_weights())
    a.mli_set_round(1)
    b.mli_set_round(1)
    proposal = a.mli_propose_weights()
    assert id_of(proposal) == id_of(b.mli_propose_weights())
    assert id_of(proposal) == id_of(a.mli_propose_weights())
    a.mli_set_round(2)
    assert id_of(a.mli_propose_weights()) != id_of(proposal)


def test_global_torch_random_state_is_left_alone(parts):
    learner = make(parts[0], dropout=0.3)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    learner.mli_propose_weights()
    assert torch.equal(torch.rand(3), expected)


def test_propose_and_test_leave_current_weights(parts):
    learner = make(parts[0])
    before = id_of(learner.mli_get_current_weights())
    proposal = learner.mli_propose_weights()
    learner.mli_test_weights(proposal)
    assert id_of(learner.mli_get_current_weights()) == before
    current = Weights(dict(zip(learner.names, learner.model.get_weights(), strict=True)))
    assert id_of(current) == before


def test_votes_and_cached_accept(parts):
    learner = make(parts[0], test_metric="accuracy")
    assert learner.higher_is_better is False  # loss
    same = learner.mli_test_weights(learner.mli_get_current_weights())
    assert same.vote is False
    proposal = learner.mli_propose_weights()
    verdict = learner.mli_test_weights(proposal)
    assert verdict.vote is True and verdict.vote_score < same.vote_score
    assert 0.0 <= verdict.test_score <= 1.0
    count = learner.evaluations
    learner.mli_accept_weights(proposal)
    assert learner.evaluations == count
    assert learner.mli_test_weights(proposal).vote is False
    other = make(parts[1], seed=9).mli_get_current_weights()
    count = learner.evaluations
    learner.mli_accept_weights(other)
    assert learner.evaluations == count  # untested weights are scored when needed
    assert id_of(learner.mli_get_current_weights()) == id_of(other)
    learner.current_vote_score()
    assert learner.evaluations == count + 1


def test_malformed_weights_are_refused(parts):
    learner = make(parts[0])
    before = id_of(learner.mli_get_current_weights())
    arrays = dict(learner.mli_get_current_weights().arrays)
    wrong_shape = {**arrays, "dense/kernel": np.zeros((64, 17), np.float32)}
    wrong_dtype = {**arrays, "dense/bias": np.zeros(16, np.float64)}
    with_nan = {**arrays, "dense_1/bias": np.full(10, np.nan, np.float32)}
    renamed = {("x" + k if k == "dense/bias" else k): v for k, v in arrays.items()}
    for bad, message in (
        (wrong_shape, "shape"),
        (wrong_dtype, "dtype"),
        (with_nan, "NaN"),
        (renamed, "names"),
    ):
        with pytest.raises(WeightsError, match=message):
            learner.mli_test_weights(Weights(bad))
        with pytest.raises(WeightsError, match=message):
            learner.mli_accept_weights(Weights(bad))
        assert id_of(learner.mli_get_current_weights()) == before


def test_onnx_export_matches_predictions(parts):
    import onnxruntime as ort

    learner = make(parts[0])
    learner.mli_accept_weights(learner.mli_propose_weights())
    before = id_of(learner.mli_get_current_weights())
    model = learner.mli_get_current_model()
    assert model.model_format is ModelFormat.ONNX
    assert id_of(learner.mli_get_current_weights()) == before
    session = ort.InferenceSession(model.model)
    X = np.asarray(parts[0].test[0], dtype=np.float32)
    (out,) = session.run(None, {session.get_inputs()[0].name: X})
    np.testing.assert_allclose(out, learner.predict(X), atol=1e-5)


def test_experiment_improves_the_test_score(parts):
    learners = [make(p, seed=i, test_metric="accuracy") for i, p in enumerate(parts)]
    with Experiment(learners) as experiment:
        initial = experiment.current_weights
        result = experiment.run(rounds=3)
    assert sum(r.accepted for r in result.rounds) >= 2
    judge = learners[0]
    assert (
        judge.mli_test_weights(result.final_weights).test_score
        > judge.mli_test_weights(initial).test_score
    )
