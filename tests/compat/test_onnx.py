"""convert_model_to_onnx: Colearn's converter, on this library's exporters."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import SGDClassifier
from sklearn.neural_network import MLPRegressor

from colearning.compat import convert_model_to_onnx, deser_model
from colearning.core.exceptions import ConfigError


def run(blob: bytes, X: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(blob)
    return session.run(None, {session.get_inputs()[0].name: X.astype(np.float32)})


def test_sklearn_classifier_labels_agree():
    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    model = SGDClassifier(loss="modified_huber", random_state=0).fit(X, y)
    blob = convert_model_to_onnx(model)
    assert isinstance(blob, bytes)
    labels = run(blob, X)[0]
    assert (labels == model.predict(X.astype(np.float32))).mean() > 0.99
    assert deser_model(blob).graph.node  # Colearn's ModelProto, when wanted


def test_sklearn_regressor_values_agree():
    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    model = MLPRegressor(hidden_layer_sizes=(8,), max_iter=50, random_state=0).fit(X, y)
    values = run(convert_model_to_onnx(model), X)[0].ravel()
    np.testing.assert_allclose(values, model.predict(X), rtol=1e-3, atol=1e-4)


def test_random_forest_goes_through_the_forest_exporter():
    X, y = load_iris(return_X_y=True)
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    labels, probabilities = run(convert_model_to_onnx(model), X)
    assert (labels == model.predict(X)).all()
    np.testing.assert_allclose(probabilities, model.predict_proba(X), atol=1e-5)


def test_xgboost_model_and_booster():
    import xgboost as xgb

    X, y = load_breast_cancer(return_X_y=True)
    model = xgb.XGBClassifier(n_estimators=5, max_depth=3).fit(X, y)
    expected = model.predict_proba(X)[:, 1]
    for source in (model, model.get_booster()):
        outputs = run(convert_model_to_onnx(source), X)
        np.testing.assert_allclose(outputs[1][:, 1], expected, atol=1e-5)


@pytest.mark.slow
def test_torch_module_with_and_without_a_sample_input():
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    X = np.random.default_rng(0).normal(size=(7, 4)).astype(np.float32)
    with torch.no_grad():
        expected = mlp(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(run(convert_model_to_onnx(mlp), X)[0], expected, atol=1e-5)

    conv = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten())
    with pytest.raises(ConfigError, match="sample_input="):
        convert_model_to_onnx(conv)
    images = np.zeros((2, 1, 5, 5), np.float32)
    blob = convert_model_to_onnx(conv, sample_input=torch.zeros(1, 1, 5, 5))
    assert run(blob, images)[0].shape == (2, 18)


@pytest.mark.slow
def test_keras_model():
    from colearning.learners.keras import keras  # Keras 3 on the PyTorch backend

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ConfigError, match="call the model once"):
        convert_model_to_onnx(model)
    X = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    expected = model.predict(X, verbose=0)
    np.testing.assert_allclose(run(convert_model_to_onnx(model), X)[0], expected, atol=1e-5)


def test_what_cannot_convert_says_why():
    with pytest.raises(ConfigError, match="cannot convert a dict to ONNX; convert_model_to"):
        convert_model_to_onnx({"weights": 1})
    with pytest.raises(ConfigError, match="not fitted"):
        convert_model_to_onnx(SGDClassifier())
