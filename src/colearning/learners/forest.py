"""A random-forest learner on scikit-learn (extra ``sklearn``).

The shared model is a random forest. A proposal grows ``trees_per_proposal`` more
trees on the proposer's data next to the current ones (``warm_start``); voters score
the bigger forest on their own vote set.

Weights are one array, ``{"forest": uint8[...]}``: the forest written with
``skops.io.dumps``, never pickle. Decoding a forest from another party:

1. the zip and its ``schema.json`` are read and **every** type named anywhere in the
   schema must be on a short allowlist (the forest, its trees, NumPy arrays and
   scalars, plain containers); anything else is refused with a :class:`WeightsError`
   before skops builds a single object;
2. ``skops.io.loads`` then builds it, trusting exactly that allowlist;
3. the forest is checked against what this learner expects (type, number of features,
   classes), and every tree's node arrays are checked (child and feature indices in
   range, no node with two parents, finite thresholds and values), because
   scikit-learn's prediction code trusts them and a bad index would read out of bounds
   or loop forever.

``skops.io.dumps`` is not byte-deterministic (file names and ids come from ``id()``,
the zip from the clock); the blob is rewritten canonically (ids and files numbered in
order, fixed timestamps), so equal forests give equal bytes and equal weights ids.
"""

from __future__ import annotations

import copy
import io
import zipfile
from collections.abc import Sequence
from typing import Any, Literal, TypeAlias

import numpy as np

from colearning.core.exceptions import ConfigError, WeightsError, require_extra
from colearning.core.interface import Array, Weights
from colearning.data.types import LearnerData
from colearning.learners._base import EncodedModelLearner
from colearning.learners._formats import (
    TRUSTED_TYPES,
    canonical_skops,
    check_tree_nodes,
    read_skops_schema,
)
from colearning.learners.metrics import CLASSIFICATION, REGRESSION, MetricFn, resolve_metric

require_extra("sklearn", "sklearn", "the random-forest learner")
require_extra("skops", "sklearn", "the random-forest learner")

import skops.io as sio  # noqa: E402 - after the extra check, for its message
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor  # noqa: E402
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor  # noqa: E402

__all__ = [
    "TRUSTED_TYPES",
    "RandomForestLearner",
    "forest_from_bytes",
    "forest_to_bytes",
    "to_onnx",
]

# RandomForestClassifier | RandomForestRegressor; scikit-learn ships no type hints.
Forest: TypeAlias = Any


# -- encoding -----------------------------------------------------------------------------


def _zero_padding(npy: bytes) -> bytes:
    """The ``.npy`` file with the padding bytes of a structured array zeroed.

    scikit-learn's tree nodes are a struct of 57 bytes padded to 64, and the padding
    is whatever the allocator left there: written as is, it made the bytes (and so the
    weights id) of equal forests differ from process to process, and sent seven bytes
    of this process's heap per node to every other party.
    """
    try:
        array = np.load(io.BytesIO(npy), allow_pickle=False)
    except ValueError:  # an object array: no padding to clean, left as skops wrote it
        return npy
    if array.dtype.names is None:
        return npy
    clean = np.zeros(array.shape, dtype=array.dtype)  # zeroed memory, padding included
    for name in array.dtype.names:
        clean[name] = array[name]
    out = io.BytesIO()
    np.save(out, clean, allow_pickle=False)
    return out.getvalue()


def forest_to_bytes(forest: Forest) -> bytes:
    """Write ``forest`` with ``skops.io.dumps``, made byte-deterministic.

    The blob is rewritten canonically
    (:func:`colearning.learners._formats.canonical_skops`) after zeroing the padding
    bytes of the trees' node arrays, so equal forests give equal bytes and ids.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> a = RandomForestClassifier(n_estimators=2, random_state=0).fit(X, y)
    >>> b = RandomForestClassifier(n_estimators=2, random_state=0).fit(X, y)
    >>> forest_to_bytes(a) == forest_to_bytes(b)
    True
    """
    raw = sio.dumps(forest)
    with zipfile.ZipFile(io.BytesIO(raw)) as source:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as target:
            for info in source.infolist():
                data = source.read(info.filename)
                if info.filename.endswith(".npy"):
                    data = _zero_padding(data)
                target.writestr(info.filename, data)
    return canonical_skops(out.getvalue())


# -- decoding -----------------------------------------------------------------------------


def _check_tree_arrays(tree: Any, index: int, n_features: int, n_values: int) -> None:
    t = tree.tree_
    where = f"tree {index}"
    if t.n_features != n_features or t.n_outputs != 1:
        raise WeightsError(
            f"{where} takes {t.n_features} features and {t.n_outputs} outputs; expected "
            f"{n_features} and 1 (it was trained on other data)"
        )
    check_tree_nodes(
        t.children_left,
        t.children_right,
        t.feature,
        t.threshold,
        t.value,
        node_count=int(t.node_count),
        n_features=n_features,
        n_values=n_values,
        where=where,
    )


def forest_from_bytes(
    blob: bytes | Array,
    *,
    task: Literal["classification", "regression"],
    n_features: int,
    classes: Array | None = None,
) -> Forest:
    """Decode a forest received from another party, after checking it is safe.

    Parameters
    ----------
    blob
        ``skops.io.dumps`` bytes (or the ``uint8`` array holding them).
    task, n_features, classes
        What the forest must be: a classifier over exactly ``classes`` or a
        regressor, taking ``n_features`` features.

    Raises
    ------
    WeightsError
        If the bytes are not a skops file, name a type outside :data:`TRUSTED_TYPES`,
        or hold a forest of another kind or with malformed trees.
    """
    raw = bytes(blob.tobytes() if isinstance(blob, np.ndarray) else blob)
    read_skops_schema(raw)  # checked before skops builds a single object
    try:
        forest = sio.loads(raw, trusted=sorted(TRUSTED_TYPES))
    except Exception as exc:  # skops raises many kinds; all mean a blob we cannot use
        raise WeightsError(
            f"skops could not load the forest ({type(exc).__name__}: {exc})"
        ) from exc
    kind, tree_kind = (
        (RandomForestClassifier, DecisionTreeClassifier)
        if task == "classification"
        else (RandomForestRegressor, DecisionTreeRegressor)
    )
    if type(forest) is not kind:
        raise WeightsError(f"forest blob holds a {type(forest).__name__}; expected {kind.__name__}")
    try:
        estimators = forest.estimators_
        if not isinstance(estimators, list) or not estimators:
            raise WeightsError("forest has no trees (estimators_ must be a non-empty list)")
        if int(forest.n_features_in_) != n_features or int(forest.n_outputs_) != 1:
            raise WeightsError(
                f"forest takes {forest.n_features_in_} features and {forest.n_outputs_} "
                f"outputs; expected {n_features} and 1"
            )
        n_values = 1
        if task == "classification":
            assert classes is not None
            got = np.asarray(forest.classes_)
            if got.shape != classes.shape or not np.array_equal(got, classes):
                raise WeightsError(
                    f"forest classes are {got.tolist()}; expected {classes.tolist()}"
                )
            n_values = len(classes)
        for index, tree in enumerate(estimators):
            if type(tree) is not tree_kind:
                raise WeightsError(
                    f"tree {index} is a {type(tree).__name__}; expected {tree_kind.__name__}"
                )
            if int(tree.n_features_in_) != n_features:
                raise WeightsError(f"tree {index} takes {tree.n_features_in_} features")
            _check_tree_arrays(tree, index, n_features, n_values)
    except WeightsError:
        raise
    except (AttributeError, TypeError, ValueError) as exc:
        raise WeightsError(f"forest is incomplete or malformed ({exc})") from exc
    return forest


# -- the learner --------------------------------------------------------------------------


class RandomForestLearner(EncodedModelLearner[Forest]):
    """A learner whose shared model is a scikit-learn random forest.

    Parameters
    ----------
    data
        This learner's private train, vote and test sets.
    trees_per_proposal
        Trees a proposal grows on local data next to the current ones. The initial
        forest has one tree.
    max_depth
        Depth limit of each tree (``None``: grow until leaves are pure).
    task
        ``"classification"`` or ``"regression"``.
    classes
        Every class label of the task; learners whose share lacks some labels still
        build forests over the full list. Default: the labels in this learner's data.
    vote_metric
        A name of :mod:`colearning.learners.metrics`: ``"accuracy"`` (the default),
        ``"balanced_accuracy"``, ``"f1_macro"``, ``"roc_auc"``, ``"log_loss"``,
        ``"neg_log_loss"`` (classification); ``"rmse"`` (the default), ``"mae"``,
        ``"r2"`` (regression); or a callable ``(y_true, prediction) -> float`` with
        ``prediction`` the class probabilities (one column per class; ``y_true``
        holds class indices) or the predicted values.
    higher_is_better
        Direction of ``vote_metric``; required for a callable, implied by a name.
    test_metric
        What ``test_score`` reports; default: ``vote_metric``.
    test_higher_is_better
        Direction of a callable ``test_metric``.
    seed
        Seeds the trees grown together with the round index.
    n_jobs
        Threads scikit-learn uses to grow and score trees.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from colearning.data.types import LearnerData
    >>> X, y = load_iris(return_X_y=True)
    >>> data = LearnerData(train=(X[::3], y[::3]), vote=(X[1::3], y[1::3]),
    ...                    test=(X[2::3], y[2::3]))
    >>> learner = RandomForestLearner(data, trees_per_proposal=3, max_depth=3)
    >>> len(learner.forest.estimators_)
    1
    >>> len(learner.mli_propose_weights().arrays["forest"]) > 0
    True
    """

    def __init__(
        self,
        data: LearnerData,
        *,
        trees_per_proposal: int = 5,
        max_depth: int | None = None,
        task: Literal["classification", "regression"] = "classification",
        classes: Sequence[Any] | Array | None = None,
        vote_metric: str | MetricFn | None = None,
        higher_is_better: bool | None = None,
        test_metric: str | MetricFn | None = None,
        test_higher_is_better: bool | None = None,
        seed: int = 0,
        n_jobs: int = 1,
    ) -> None:
        if not isinstance(trees_per_proposal, int) or trees_per_proposal < 1:
            raise ConfigError(
                f"trees_per_proposal must be an integer >= 1; got {trees_per_proposal!r}"
            )
        if task not in ("classification", "regression"):
            raise ConfigError(f"task must be 'classification' or 'regression'; got {task!r}")
        if max_depth is not None and (not isinstance(max_depth, int) or max_depth < 1):
            raise ConfigError(f"max_depth must be None or an integer >= 1; got {max_depth!r}")
        super().__init__(seed=seed)
        self.data = data
        self.task: Literal["classification", "regression"] = task
        self.trees_per_proposal = trees_per_proposal

        y_all = np.concatenate([np.asarray(s[1]) for s in (data.train, data.vote, data.test)])
        if task == "classification":
            self.classes = np.unique(y_all if classes is None else np.asarray(classes))
            allowed = CLASSIFICATION
        else:
            if classes is not None:
                raise ConfigError("classes must be None for task='regression'")
            self.classes = None
            allowed = REGRESSION
        self._vote_metric = resolve_metric(
            vote_metric, higher_is_better, allowed=allowed, what="vote_metric", task=task
        )
        self._test_metric = (
            self._vote_metric
            if test_metric is None
            else resolve_metric(
                test_metric,
                test_higher_is_better,
                allowed=allowed,
                what="test_metric",
                task=task,
                direction_name="test_higher_is_better",
            )
        )
        self._set_splits(data)
        kind = RandomForestClassifier if task == "classification" else RandomForestRegressor
        self._template: Forest = kind(max_depth=max_depth, n_jobs=n_jobs)
        self._fit_X, self._fit_y, self._fit_w = self._training_set()

        # The initial model: one tree, deterministic in (data, seed).
        forest = self._grow(None, 1, np.random.default_rng([self.seed, 2**31 - 1]))
        self._model = forest
        self._start(self._encode(forest))

    # -- helpers ------------------------------------------------------------------------

    def _training_set(self) -> tuple[Array, Array, Array]:
        """The local training set, plus one zero-weight row per class it lacks.

        scikit-learn takes a forest's classes from the labels of each ``fit``; the
        zero-weight rows make those the task's full class list on every learner, so all
        trees have one probability column per class, in the same order.
        """
        X, y = self._X_train, self._y_train
        weight = np.ones(len(y))
        if self.classes is not None:
            missing = np.setdiff1d(np.arange(len(self.classes)), y)
            if len(missing):
                filler = np.repeat(X.mean(axis=0, keepdims=True), len(missing), axis=0)
                X = np.concatenate([X, filler.astype(X.dtype)])
                y = np.concatenate([y, missing])
                weight = np.concatenate([weight, np.zeros(len(missing))])
            return X, self.classes[y], weight
        return X, y, weight

    def _grow(self, start: Forest | None, trees: int, rng: np.random.Generator) -> Forest:
        forest = copy.deepcopy(start) if start is not None else copy.deepcopy(self._template)
        # Our own settings, whatever came with the forest from another party.
        forest.set_params(
            **{
                **self._template.get_params(),
                "n_estimators": (len(start.estimators_) if start is not None else 0) + trees,
                "warm_start": True,
                "random_state": int(rng.integers(2**31 - 1)),
            }
        )
        forest.fit(self._fit_X, self._fit_y, sample_weight=self._fit_w)
        return forest

    def _encode(self, forest: Forest) -> Weights:
        return Weights({"forest": np.frombuffer(forest_to_bytes(forest), dtype=np.uint8)})

    def _decode(self, weights: Weights) -> Forest:
        forest = forest_from_bytes(
            weights.arrays["forest"],
            task=self.task,
            n_features=self.n_features,
            classes=self.classes,
        )
        forest.set_params(n_jobs=self._template.n_jobs, verbose=0)
        return forest

    def _predict_raw(self, forest: Forest, X: Array) -> Array:
        X = np.asarray(X, dtype=np.float32)
        if self.task == "classification":
            return np.asarray(forest.predict_proba(X))
        return np.asarray(forest.predict(X))

    def _propose_model(self, current: Forest, rng: np.random.Generator) -> Forest:
        """Grow ``trees_per_proposal`` trees on local data next to a copy of ``current``."""
        return self._grow(current, self.trees_per_proposal, rng)

    def _to_onnx(self, model: Forest) -> bytes:
        """Input ``"input"`` float32 ``[None, n_features]``; outputs ``label`` (class
        index) and ``probabilities``, or ``variable`` for regression."""
        return to_onnx(model, self.n_features)

    # -- extras ---------------------------------------------------------------------------

    @property
    def forest(self) -> Forest:
        """The current forest (do not fit it in place); its ``classes_`` are the task's
        full class list."""
        return self._model

    def predict_raw(self, X: Array) -> Array:
        """Class probabilities (columns in :attr:`classes` order) or regression values."""
        return self._predict_raw(self._model, X)

    def predict(self, X: Array) -> Array:
        """Class labels (classification) or values (regression) of the current model."""
        out = self.predict_raw(X)
        return out if self.classes is None else self.classes[np.argmax(out, axis=1)]


def to_onnx(forest: Forest, n_features: int, target_opset: int = 17) -> bytes:
    """Convert ``forest`` to ONNX bytes with skl2onnx (no ZipMap: plain probabilities).

    Raises
    ------
    MissingExtraError
        If skl2onnx is not installed.
    """
    require_extra("skl2onnx", "sklearn", "exporting a random forest to ONNX")
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    is_classifier = isinstance(forest, RandomForestClassifier)
    options = {id(forest): {"zipmap": False}} if is_classifier else None
    onx = convert_sklearn(
        forest,
        initial_types=[("input", FloatTensorType([None, n_features]))],
        target_opset=target_opset,
        options=options,
    )
    return bytes(onx.SerializeToString())
