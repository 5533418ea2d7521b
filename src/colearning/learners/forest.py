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
import json
import re
import zipfile
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeAlias

import numpy as np

from colearning.core.codec import check_weights
from colearning.core.exceptions import ConfigError, DataError, WeightsError, require_extra
from colearning.core.interface import (
    Array,
    Weights,
)
from colearning.data.types import LearnerData
from colearning.learners.encoded import EncodedModelLearner, check_tree_links

require_extra("sklearn", "sklearn", "the random-forest learner")
require_extra("skops", "sklearn", "the random-forest learner")

import skops.io as sio  # noqa: E402 - after the extra check, for its message
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor  # noqa: E402
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor  # noqa: E402

__all__ = ["TRUSTED_TYPES", "RandomForestLearner", "forest_from_bytes", "forest_to_bytes"]

MetricFn = Callable[[Array, Array], float]
# RandomForestClassifier | RandomForestRegressor; scikit-learn ships no type hints.
Forest: TypeAlias = Any

#: Every type a forest blob may name; anything else is refused.
TRUSTED_TYPES: frozenset[str] = frozenset(
    {
        "builtins.dict",
        "builtins.list",
        "builtins.tuple",
        "builtins.str",
        "builtins.int",
        "builtins.float",
        "builtins.bool",
        "builtins.NoneType",
        "numpy.ndarray",
        "numpy.dtype",
        "numpy.int64",
        "numpy.int32",
        "numpy.float64",
        "numpy.float32",
        "numpy.bool_",
        "numpy.str_",
        "sklearn.ensemble._forest.RandomForestClassifier",
        "sklearn.ensemble._forest.RandomForestRegressor",
        "sklearn.tree._classes.DecisionTreeClassifier",
        "sklearn.tree._classes.DecisionTreeRegressor",
        "sklearn.tree._tree.Tree",
    }
)
_TRUSTED_LOADERS = frozenset(
    {
        "ObjectNode",
        "JsonNode",
        "TreeNode",
        "TupleNode",
        "NdArrayNode",
        "ListNode",
        "DictNode",
        "TypeNode",
        "NoneNode",
    }
)
# Largest blob accepted, and largest total size of its unpacked files.
MAX_FOREST_BYTES = 512 * 1024 * 1024
_NPY_NAME = re.compile(r"^[0-9A-Za-z_.-]{1,64}\.npy$")
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


# -- encoding -----------------------------------------------------------------------------


def _canonical_schema(schema: Any) -> tuple[Any, dict[str, str]]:
    """Renumber ``__id__`` values and ``.npy`` file names in order of appearance."""
    ids: dict[Any, int] = {}
    files: dict[str, str] = {}

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for key, value in node.items():
                if key == "__id__":
                    out[key] = ids.setdefault(value, len(ids))
                elif key == "file" and isinstance(value, str):
                    out[key] = files.setdefault(value, f"{len(files):06d}.npy")
                else:
                    out[key] = walk(value)
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema), files


def forest_to_bytes(forest: Forest) -> bytes:
    """Write ``forest`` with ``skops.io.dumps``, made byte-deterministic.

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
        schema, files = _canonical_schema(json.loads(source.read("schema.json")))
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as target:
            entries = [("schema.json", json.dumps(schema, separators=(",", ":")).encode())]
            entries += sorted((new, source.read(old)) for old, new in files.items())
            for name, data in entries:
                info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                target.writestr(info, data, compresslevel=6)
    return out.getvalue()


# -- decoding -----------------------------------------------------------------------------


def _types_in(schema: Any) -> tuple[set[str], set[str]]:
    types: set[str] = set()
    loaders: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "__class__" in node or "__module__" in node:
                types.add(f"{node.get('__module__')}.{node.get('__class__')}")
            if "__loader__" in node:
                loaders.add(str(node["__loader__"]))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return types, loaders


def _check_zip(raw: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            infos = archive.infolist()
            names = [i.filename for i in infos]
            if "schema.json" not in names:
                raise WeightsError("forest blob lacks schema.json; send skops.io.dumps bytes")
            if len(set(names)) != len(names):
                raise WeightsError("forest blob holds a file name twice")
            bad = [n for n in names if n != "schema.json" and not _NPY_NAME.match(n)]
            if bad:
                raise WeightsError(f"forest blob holds unexpected files {bad[:5]}")
            total = sum(i.file_size for i in infos)
            if total > MAX_FOREST_BYTES:
                raise WeightsError(
                    f"forest blob unpacks to {total} bytes; at most {MAX_FOREST_BYTES} allowed"
                )
            schema = json.loads(archive.read("schema.json"))
    except WeightsError:
        raise
    except Exception as exc:  # zip, JSON and decoding errors all mean foreign bytes
        raise WeightsError(
            f"forest bytes are not a skops file ({type(exc).__name__}: {exc}); send "
            "skops.io.dumps bytes"
        ) from exc
    types, loaders = _types_in(schema)
    untrusted = sorted(types - TRUSTED_TYPES)
    if untrusted:
        raise WeightsError(
            f"forest blob names types outside the allowlist: {untrusted}; only a random "
            "forest of decision trees is accepted (never arbitrary objects)"
        )
    odd_loaders = sorted(loaders - _TRUSTED_LOADERS)
    if odd_loaders:
        raise WeightsError(f"forest blob uses skops loaders outside the allowlist: {odd_loaders}")


def _check_tree_arrays(tree: Any, index: int, n_features: int, n_values: int) -> None:
    t = tree.tree_
    n = int(t.node_count)
    left = np.asarray(t.children_left, dtype=np.int64)
    right = np.asarray(t.children_right, dtype=np.int64)
    feature = np.asarray(t.feature, dtype=np.int64)
    threshold = np.asarray(t.threshold)
    value = np.asarray(t.value)
    where = f"tree {index}"
    if t.n_features != n_features or t.n_outputs != 1:
        raise WeightsError(
            f"{where} takes {t.n_features} features and {t.n_outputs} outputs; expected "
            f"{n_features} and 1 (it was trained on other data)"
        )
    if n < 1 or not (len(left) == len(right) == len(feature) == len(threshold) == n):
        raise WeightsError(f"{where}: node arrays must all have node_count={n} entries")
    if value.shape != (n, 1, n_values):
        raise WeightsError(f"{where}: value has shape {value.shape}; expected {(n, 1, n_values)}")
    leaf = check_tree_links(left, right, n, where)
    inner = feature[~leaf]
    if np.any((inner < 0) | (inner >= n_features)):
        raise WeightsError(f"{where}: a split feature index is outside [0, {n_features})")
    if not np.isfinite(threshold[~leaf]).all() or not np.isfinite(value).all():
        raise WeightsError(f"{where}: thresholds or leaf values hold NaN/Inf")


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
    if not raw:
        raise WeightsError("forest bytes are empty; send skops.io.dumps bytes")
    if len(raw) > MAX_FOREST_BYTES:
        raise WeightsError(f"forest is {len(raw)} bytes; at most {MAX_FOREST_BYTES} accepted")
    _check_zip(raw)
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


# -- metrics ------------------------------------------------------------------------------


def _metric_value(name: str, y: Array, out: Array) -> float:
    if name == "rmse":
        return float(np.sqrt(np.mean((out - y) ** 2)))
    if name == "accuracy":
        return float(np.mean(np.argmax(out, axis=1) == y))
    if name == "logloss":
        p = np.clip(out[np.arange(len(y)), y], 1e-15, 1.0)
        return float(-np.mean(np.log(p)))
    raise ConfigError(f"unknown metric {name!r}")


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
    metric
        ``"accuracy"`` or ``"logloss"`` (classification), ``"rmse"`` (regression), or
        a callable ``(y_true, prediction) -> float`` with ``prediction`` the class
        probabilities (one column per class; ``y_true`` holds class indices) or the
        predicted values. Default: accuracy or rmse.
    higher_is_better
        Direction of ``metric``; required for a callable.
    test_metric
        What ``test_score`` reports; default: ``metric``.
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
        metric: str | MetricFn | None = None,
        higher_is_better: bool | None = None,
        test_metric: str | MetricFn | None = None,
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
        self.data = data
        self.task: Literal["classification", "regression"] = task
        self.trees_per_proposal = trees_per_proposal
        self.seed = int(seed)
        self._round = 0
        #: How many times a model was scored on the vote set (tests count on it).
        self.evaluations = 0

        y_all = np.concatenate([np.asarray(s[1]) for s in (data.train, data.vote, data.test)])
        if task == "classification":
            self.classes: Array | None = np.unique(
                y_all if classes is None else np.asarray(classes)
            )
            allowed: tuple[str, ...] = ("accuracy", "logloss")
        else:
            if classes is not None:
                raise ConfigError("classes must be None for task='regression'")
            self.classes = None
            allowed = ("rmse",)
        if metric is None:
            metric = allowed[0]
        if callable(metric):
            if higher_is_better is None:
                raise ConfigError(
                    "higher_is_better must be True or False for a callable metric; got None"
                )
        elif metric not in allowed:
            raise ConfigError(
                f"metric for task={task!r} must be one of {list(allowed)} or a callable "
                f"(y_true, prediction) -> float; got {metric!r}"
            )
        elif higher_is_better is None:
            higher_is_better = metric == "accuracy"
        self.metric: str | MetricFn = metric
        self.higher_is_better = bool(higher_is_better)
        self._set_test_metric(metric, test_metric, allowed)
        self._set_splits(data)
        kind = RandomForestClassifier if task == "classification" else RandomForestRegressor
        self._template: Forest = kind(max_depth=max_depth, n_jobs=n_jobs)
        self._fit_X, self._fit_y, self._fit_w = self._training_set()

        # The initial model: one tree, deterministic in (data, seed).
        forest = self._grow(None, 1, np.random.default_rng([self.seed, 2**31 - 1]))
        weights = self._encode(forest)
        self._set_current(weights, forest, None)

    # -- helpers ------------------------------------------------------------------------

    def _xy(self, xy: tuple[Array, Array], name: str) -> tuple[Array, Array]:
        X = np.asarray(xy[0], dtype=np.float32)
        if X.ndim != 2:
            raise DataError(f"{name} X must be 2-D (rows x features); got shape {X.shape}")
        y = np.asarray(xy[1])
        if self.classes is None:
            return X, y.astype(np.float64)
        index = np.clip(np.searchsorted(self.classes, y), 0, len(self.classes) - 1)
        if len(y) and not np.array_equal(self.classes[index], y):
            unknown = sorted(set(np.unique(y).tolist()) - set(self.classes.tolist()))
            raise DataError(
                f"{name} labels {unknown} are not among classes {self.classes.tolist()}; "
                "pass every class of the task as classes=..."
            )
        return X, index.astype(np.int64)

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
        check_weights(weights, self._weights)
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

    def _score(
        self, forest: Forest, X: Array, y: Array, metric: str | MetricFn | None = None
    ) -> float:
        out = self._predict_raw(forest, X)
        metric = self.metric if metric is None else metric
        if callable(metric):
            return float(metric(y, out))
        return _metric_value(metric, y, out)

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
