"""A gradient-boosted tree learner on XGBoost (extra ``xgboost``).

The shared model is an XGBoost booster. A proposal adds a few boosting rounds on the
proposer's data to the current booster; voters score it on their own vote set.

Weights are one array, ``{"booster": uint8[...]}``: the booster in XGBoost's own
UBJSON format (``Booster.save_raw("ubj")``), never pickle.

Incoming booster bytes are **not** handed to XGBoost as they are: XGBoost's model
loader trusts its input, and truncated or bit-flipped UBJSON can crash the process
(segmentation fault) or hang it (a cycle in a tree). So a received booster is parsed
here in pure Python with a strict UBJSON reader, checked against the expected model
(objective, number of features and classes, gbtree only, numerical splits only, every
tree a proper tree whose child and feature indices are in range, finite numbers), and
only that checked document, re-written as JSON, is loaded into XGBoost.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from colearning.core.codec import check_weights
from colearning.core.exceptions import (
    ConfigError,
    DataError,
    WeightsError,
    require_extra,
)
from colearning.core.interface import (
    Array,
    Weights,
)
from colearning.data.types import LearnerData
from colearning.learners.encoded import EncodedModelLearner, check_tree_links

require_extra("xgboost", "xgboost", "the XGBoost learner")

import xgboost as xgb  # noqa: E402 - after the extra check, for its message

__all__ = ["XGBoostLearner", "booster_from_bytes"]

MetricFn = Callable[[Array, Array], float]

_CLASSIFICATION_OBJECTIVES = ("binary:logistic", "multi:softprob")
_BUILTIN_METRICS = {"accuracy": True, "auc": True, "rmse": False, "logloss": False}
# A booster larger than this is refused before parsing (a model of 2,000 trees of depth
# 8 is about 30 MB).
MAX_BOOSTER_BYTES = 256 * 1024 * 1024
_MAX_DEPTH = 32


# -- a strict UBJSON reader (the subset XGBoost writes) ---------------------------------

_SCALARS: dict[bytes, tuple[str, int]] = {
    b"i": (">i1", 1),
    b"U": (">u1", 1),
    b"I": (">i2", 2),
    b"l": (">i4", 4),
    b"L": (">i8", 8),
    b"d": (">f4", 4),
    b"D": (">f8", 8),
}
_INT_MARKERS = (b"i", b"U", b"I", b"l", b"L")


class _UBJReader:
    """Parse UBJSON into dicts, lists, str, int, float, bool, None and numpy arrays.

    Refuses anything out of bounds, duplicate keys, trailing bytes and deep nesting;
    typed numeric arrays come back as numpy arrays (no per-element Python objects).
    """

    def __init__(self, blob: bytes) -> None:
        self.blob = blob
        self.pos = 0

    def fail(self, what: str) -> WeightsError:
        return WeightsError(
            f"booster bytes are not a valid XGBoost UBJSON model: {what} at byte "
            f"{self.pos} of {len(self.blob)}; send Booster.save_raw('ubj') bytes"
        )

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.blob):
            raise self.fail(f"{n} more byte(s) needed but the data ends")
        out = self.blob[self.pos : self.pos + n]
        self.pos += n
        return out

    def marker(self) -> bytes:
        return self.take(1)

    def scalar(self, marker: bytes) -> int | float:
        dtype, size = _SCALARS[marker]
        value = np.frombuffer(self.take(size), dtype=dtype)[0]
        return float(value) if marker in (b"d", b"D") else int(value)

    def length(self, marker: bytes | None = None) -> int:
        marker = marker if marker is not None else self.marker()
        if marker not in _INT_MARKERS:
            raise self.fail(f"expected an integer length, found marker {marker!r}")
        n = int(self.scalar(marker))
        if n < 0 or n > len(self.blob):
            raise self.fail(f"length {n} is impossible")
        return n

    def string(self) -> str:
        raw = self.take(self.length())
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.fail(f"string is not UTF-8 ({exc})") from None

    def value(self, depth: int = 0, marker: bytes | None = None) -> Any:
        if depth > _MAX_DEPTH:
            raise self.fail(f"nesting deeper than {_MAX_DEPTH}")
        m = marker if marker is not None else self.marker()
        if m in _SCALARS:
            return self.scalar(m)
        if m == b"S":
            return self.string()
        if m == b"T":
            return True
        if m == b"F":
            return False
        if m == b"Z":
            return None
        if m == b"{":
            return self.obj(depth)
        if m == b"[":
            return self.array(depth)
        raise self.fail(f"unknown marker {m!r}")

    def obj(self, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        count: int | None = None
        if self.blob[self.pos : self.pos + 1] == b"#":
            self.pos += 1
            count = self.length()
        while True:
            if count is None:
                if self.blob[self.pos : self.pos + 1] == b"}":
                    self.pos += 1
                    return out
            elif len(out) == count:
                return out
            key = self.string()
            if key in out:
                raise self.fail(f"duplicate key {key!r}")
            out[key] = self.value(depth + 1)

    def array(self, depth: int) -> Any:
        typ: bytes | None = None
        if self.blob[self.pos : self.pos + 1] == b"$":
            self.pos += 1
            typ = self.marker()
            if self.marker() != b"#":
                raise self.fail("a typed array must give its count")
            count = self.length()
            if typ not in _SCALARS:
                return [self.value(depth + 1, typ) for _ in range(count)]
            dtype, size = _SCALARS[typ]
            raw = self.take(count * size)
            return np.frombuffer(raw, dtype=dtype).astype(dtype[1:])
        if self.blob[self.pos : self.pos + 1] == b"#":
            self.pos += 1
            count = self.length()
            return [self.value(depth + 1) for _ in range(count)]
        items: list[Any] = []
        while True:
            if self.pos >= len(self.blob):
                raise self.fail("array not closed")
            if self.blob[self.pos : self.pos + 1] == b"]":
                self.pos += 1
                return items
            items.append(self.value(depth + 1))


def _parse_ubjson(blob: bytes) -> dict[str, Any]:
    reader = _UBJReader(blob)
    if blob[:1] != b"{":
        raise reader.fail("the model must be a UBJSON object (first byte '{')")
    doc = reader.value()
    if reader.pos != len(blob):
        raise reader.fail(f"{len(blob) - reader.pos} trailing byte(s)")
    return doc  # type: ignore[no-any-return]


# -- what a received booster must look like ---------------------------------------------

_TREE_ARRAYS_INT = ("left_children", "right_children", "parents", "split_indices")
_TREE_ARRAYS_FLOAT = ("base_weights", "loss_changes", "split_conditions", "sum_hessian")
_TREE_ARRAYS_FLAG = ("default_left", "split_type")
_TREE_CATEGORY_KEYS = ("categories", "categories_nodes", "categories_segments", "categories_sizes")


def _get(doc: Any, path: str, kind: type | tuple[type, ...]) -> Any:
    node = doc
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            raise WeightsError(f"booster model lacks {path!r}; send a complete XGBoost model")
        node = node[key]
    if not isinstance(node, kind):
        raise WeightsError(
            f"booster model field {path!r} must be {kind}; got {type(node).__name__}"
        )
    return node


def _int_str(doc: Any, path: str) -> int:
    raw = _get(doc, path, (str, int))
    try:
        return int(raw)
    except ValueError:
        raise WeightsError(
            f"booster model field {path!r} must be an integer; got {raw!r}"
        ) from None


def _as_array(value: Any, name: str, n: int, tree: int) -> Array:
    if isinstance(value, list):
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            raise WeightsError(f"tree {tree}: {name} must hold numbers")
        value = np.asarray(
            value, dtype=np.float64 if any(isinstance(v, float) for v in value) else np.int64
        )
    if not isinstance(value, np.ndarray) or value.ndim != 1 or len(value) != n:
        got = len(value) if hasattr(value, "__len__") else type(value).__name__
        raise WeightsError(f"tree {tree}: {name} must hold num_nodes={n} numbers; got {got}")
    return value


def _check_tree(tree: Any, index: int, n_features: int) -> None:
    if not isinstance(tree, dict):
        raise WeightsError(f"tree {index} must be an object; got {type(tree).__name__}")
    n = _int_str(tree, "tree_param.num_nodes")
    if not 1 <= n <= 1 << 24:
        raise WeightsError(f"tree {index}: num_nodes must be in [1, 2**24]; got {n}")
    if _int_str(tree, "tree_param.num_feature") != n_features:
        raise WeightsError(
            f"tree {index}: num_feature must be {n_features}; got "
            f"{tree['tree_param']['num_feature']!r} (the booster was trained on other data)"
        )
    if _int_str(tree, "tree_param.size_leaf_vector") > 1:
        raise WeightsError(f"tree {index}: multi-target leaves are not supported")
    if _get(tree, "id", int) != index:
        raise WeightsError(f"tree {index}: id must be {index}; got {tree['id']!r}")
    for key in _TREE_CATEGORY_KEYS:
        if len(_get(tree, key, (list, np.ndarray))) != 0:
            raise WeightsError(f"tree {index}: categorical splits are not supported")
    arrays = {
        k: _as_array(tree.get(k), k, n, index)
        for k in _TREE_ARRAYS_INT + _TREE_ARRAYS_FLOAT + _TREE_ARRAYS_FLAG
    }
    for k in _TREE_ARRAYS_FLOAT:
        if not np.isfinite(arrays[k].astype(np.float64)).all():
            raise WeightsError(f"tree {index}: {k} holds NaN/Inf")
    if np.any(arrays["split_type"] != 0):
        raise WeightsError(f"tree {index}: only numerical splits (split_type 0) are supported")
    if not np.isin(arrays["default_left"], (0, 1)).all():
        raise WeightsError(f"tree {index}: default_left must hold 0 or 1")
    left = arrays["left_children"].astype(np.int64)
    right = arrays["right_children"].astype(np.int64)
    leaf = check_tree_links(left, right, n, f"tree {index}")
    # Leaves (and nodes deleted by pruning, which are leaves) carry no usable feature.
    features = arrays["split_indices"].astype(np.int64)[~leaf]
    if np.any((features < 0) | (features >= n_features)):
        raise WeightsError(f"tree {index}: a split feature index is outside [0, {n_features})")


def _numbers(value: Any, name: str) -> Array:
    array = np.asarray(value)
    if array.ndim != 1 or (array.size and array.dtype.kind not in "iu"):
        raise WeightsError(f"booster model field {name!r} must be a list of integers")
    return array.astype(np.int64)


def _check_document(
    doc: dict[str, Any], *, objective: str, n_features: int, num_class: int
) -> None:
    """Raise :class:`WeightsError` unless ``doc`` is a safe model of the expected kind."""
    try:
        _check_fields(doc, objective=objective, n_features=n_features, num_class=num_class)
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
        if isinstance(exc, WeightsError):
            raise
        raise WeightsError(f"booster model is malformed: {type(exc).__name__}: {exc}") from exc


def _check_fields(doc: dict[str, Any], *, objective: str, n_features: int, num_class: int) -> None:
    version = _get(doc, "version", (list, np.ndarray))
    if len(version) != 3:
        raise WeightsError(f"booster model version must be [major, minor, patch]; got {version}")
    learner = _get(doc, "learner", dict)
    if _get(learner, "gradient_booster.name", str) != "gbtree":
        raise WeightsError(
            f"booster must be a 'gbtree'; got {learner['gradient_booster']['name']!r}"
        )
    got_objective = _get(learner, "objective.name", str)
    if got_objective != objective:
        raise WeightsError(f"booster objective must be {objective!r}; got {got_objective!r}")
    param = "learner_model_param"
    if _int_str(learner, f"{param}.num_feature") != n_features:
        raise WeightsError(
            f"booster must take {n_features} features; got "
            f"{learner[param]['num_feature']!r} (it was trained on other data)"
        )
    if _int_str(learner, f"{param}.num_class") != num_class:
        raise WeightsError(
            f"booster must have num_class={num_class}; got {learner[param]['num_class']!r}"
        )
    if _int_str(learner, f"{param}.num_target") != 1:
        raise WeightsError("booster must have num_target=1 (multi-target is not supported)")
    base = _get(learner, f"{param}.base_score", str)
    try:
        values = [float(v) for v in base.strip("[]").split(",")]
    except ValueError:
        values = [math.nan]
    if not all(math.isfinite(v) for v in values):
        raise WeightsError(f"booster base_score must be finite numbers; got {base!r}")
    model = _get(learner, "gradient_booster.model", dict)
    trees = _get(model, "trees", list)
    if _int_str(model, "gbtree_model_param.num_trees") != len(trees):
        raise WeightsError(
            f"booster says num_trees={model['gbtree_model_param']['num_trees']!r} "
            f"but holds {len(trees)} trees"
        )
    if _int_str(model, "gbtree_model_param.num_parallel_tree") < 1:
        raise WeightsError("booster num_parallel_tree must be >= 1")
    groups = max(num_class, 1)
    info = _numbers(_get(model, "tree_info", (list, np.ndarray)), "tree_info")
    if len(info) != len(trees) or (len(info) and (info.min() < 0 or info.max() >= groups)):
        raise WeightsError(f"booster tree_info must give each tree a group in [0, {groups})")
    indptr = _numbers(_get(model, "iteration_indptr", (list, np.ndarray)), "iteration_indptr")
    if len(indptr) < 1 or indptr[0] != 0 or indptr[-1] != len(trees) or np.any(np.diff(indptr) < 0):
        raise WeightsError("booster iteration_indptr must rise from 0 to the number of trees")
    cats = model.get("cats", {})
    if not isinstance(cats, dict) or any(
        not isinstance(v, (list, np.ndarray)) or len(v) for v in cats.values()
    ):
        raise WeightsError("booster holds categorical encodings, which are not supported")
    for index, tree in enumerate(trees):
        _check_tree(tree, index, n_features)


def _to_jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        raise WeightsError("booster model holds a NaN/Inf number")
    return value


def booster_from_bytes(
    blob: bytes | Array, *, objective: str, n_features: int, num_class: int = 0
) -> xgb.Booster:
    """Load a booster received from another party, after checking it is safe.

    Parameters
    ----------
    blob
        ``Booster.save_raw("ubj")`` bytes (or the ``uint8`` array holding them).
    objective, n_features, num_class
        What the booster must be: its objective, its number of input features, and
        its number of classes (0 for binary and regression objectives).

    Raises
    ------
    WeightsError
        Naming what is wrong: not UBJSON, truncated, another kind of model, a tree
        whose indices are out of range or that loops, NaN/Inf numbers.
    """
    raw = bytes(blob.tobytes() if isinstance(blob, np.ndarray) else blob)
    if not raw:
        raise WeightsError("booster bytes are empty; send Booster.save_raw('ubj') bytes")
    if len(raw) > MAX_BOOSTER_BYTES:
        raise WeightsError(f"booster is {len(raw)} bytes; at most {MAX_BOOSTER_BYTES} are accepted")
    doc = _parse_ubjson(raw)
    _check_document(doc, objective=objective, n_features=n_features, num_class=num_class)
    text = json.dumps(_to_jsonable(doc), allow_nan=False).encode("utf-8")
    try:
        return xgb.Booster(model_file=bytearray(text))
    except xgb.core.XGBoostError as exc:
        first_line = str(exc).splitlines()[0]
        raise WeightsError(f"XGBoost refused the checked booster: {first_line}") from exc


# -- metrics ------------------------------------------------------------------------------


def _auc(y: Array, score: Array) -> float:
    """Area under the ROC curve by the rank-sum formula (ties get average ranks)."""
    pos = y == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return 0.5
    order = np.argsort(score, kind="mergesort")
    sorted_scores = score[order]
    ranks = np.empty(len(score), dtype=np.float64)
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _metric_value(name: str, y: Array, out: Array, kind: str) -> float:
    eps = 1e-15
    if kind == "regression":
        if name == "rmse":
            return float(np.sqrt(np.mean((out - y) ** 2)))
        raise ConfigError(f"metric for regression must be 'rmse' or a callable; got {name!r}")
    proba = np.column_stack([1.0 - out, out]) if out.ndim == 1 else out
    if name == "accuracy":
        return float(np.mean(np.argmax(proba, axis=1) == y))
    if name == "logloss":
        p = np.clip(proba[np.arange(len(y)), y], eps, 1.0)
        return float(-np.mean(np.log(p)))
    if name == "auc":
        if proba.shape[1] != 2:
            raise ConfigError("metric 'auc' needs a binary task; use 'accuracy' or 'logloss'")
        return _auc(y, proba[:, 1])
    raise ConfigError(
        f"metric for classification must be 'accuracy', 'auc' or 'logloss' or a callable; "
        f"got {name!r}"
    )


# -- the learner --------------------------------------------------------------------------


class XGBoostLearner(EncodedModelLearner[xgb.Booster]):
    """A learner whose shared model is an XGBoost booster.

    Parameters
    ----------
    params
        XGBoost training parameters (``max_depth``, ``eta``, ``subsample``, ...).
        ``objective`` may be given (``"binary:logistic"``, ``"multi:softprob"`` or a
        ``"reg:..."`` objective); otherwise it is inferred from the labels: float
        labels mean regression, integer labels classification. ``nthread`` defaults to
        1 (validations of a round already run in parallel). ``seed`` is set per round.
    data
        This learner's private train, vote and test sets.
    rounds_per_proposal
        Boosting rounds a proposal adds to the current booster.
    metric
        ``"accuracy"``, ``"auc"`` (binary), ``"logloss"``, ``"rmse"`` (regression), or
        a callable ``(y_true, prediction) -> float`` where ``prediction`` is what
        :meth:`predict_raw` returns (probabilities of class 1 for binary, one column per
        class for multi-class, values for regression; ``y_true`` holds class indices).
    higher_is_better
        Direction of ``metric``; required for a callable, inferred for the named ones.
    test_metric
        What ``test_score`` reports (e.g. vote on ``"logloss"``, report
        ``"accuracy"``); default: ``metric``.
    classes
        Every class label of the task, so that learners whose share lacks some labels
        still build the same model. Default: the labels found in this learner's data.
    seed
        Seeds training together with the round index.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from colearning.data.types import LearnerData
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> data = LearnerData(train=(X[:300], y[:300]), vote=(X[300:400], y[300:400]),
    ...                    test=(X[400:], y[400:]))
    >>> learner = XGBoostLearner({"max_depth": 2}, data, rounds_per_proposal=3)
    >>> proposal = learner.mli_propose_weights()
    >>> learner.mli_test_weights(proposal).vote
    True
    """

    def __init__(
        self,
        params: Mapping[str, Any],
        data: LearnerData,
        *,
        rounds_per_proposal: int = 5,
        metric: str | MetricFn = "accuracy",
        higher_is_better: bool | None = None,
        test_metric: str | MetricFn | None = None,
        classes: Sequence[Any] | Array | None = None,
        seed: int = 0,
    ) -> None:
        if not isinstance(rounds_per_proposal, int) or rounds_per_proposal < 1:
            raise ConfigError(
                f"rounds_per_proposal must be an integer >= 1; got {rounds_per_proposal!r}"
            )
        self.data = data
        self.rounds_per_proposal = rounds_per_proposal
        self.seed = int(seed)
        self._round = 0
        #: How many times a model was scored on the vote set (tests count on it).
        self.evaluations = 0
        self.params: dict[str, Any] = {"nthread": 1, **dict(params)}
        self.params.pop("seed", None)
        self.params.pop("random_state", None)

        y_all = np.concatenate([np.asarray(s[1]) for s in (data.train, data.vote, data.test)])
        objective = self.params.get("objective")
        if objective is None:
            is_regression = y_all.dtype.kind == "f" and classes is None
            if is_regression:
                objective = "reg:squarederror"
            else:
                n = len(np.unique(y_all) if classes is None else np.asarray(classes))
                objective = "binary:logistic" if n <= 2 else "multi:softprob"
        if not isinstance(objective, str) or not (
            objective in _CLASSIFICATION_OBJECTIVES or objective.startswith("reg:")
        ):
            raise ConfigError(
                "params['objective'] must be 'binary:logistic', 'multi:softprob' or a "
                f"'reg:...' objective; got {objective!r} (for class labels use "
                "'multi:softprob', not 'multi:softmax')"
            )
        self.objective: str = objective
        self.kind = "regression" if objective.startswith("reg:") else "classification"
        self.params["objective"] = objective

        if self.kind == "classification":
            self.classes: Array | None = np.unique(
                y_all if classes is None else np.asarray(classes)
            )
            if objective == "binary:logistic" and len(self.classes) != 2:
                raise ConfigError(
                    f"objective 'binary:logistic' needs exactly 2 classes; got "
                    f"{len(self.classes)} ({self.classes.tolist()}); use 'multi:softprob'"
                )
            self.num_class = len(self.classes) if objective == "multi:softprob" else 0
            if self.num_class:
                self.params["num_class"] = self.num_class
        else:
            self.classes = None
            self.num_class = 0
            if classes is not None:
                raise ConfigError(f"classes must be None for objective {objective!r}")

        allowed = (
            ("rmse",)
            if self.kind == "regression"
            else ("accuracy", "auc", "logloss")
            if objective == "binary:logistic"
            else ("accuracy", "logloss")
        )
        if callable(metric):
            if higher_is_better is None:
                raise ConfigError(
                    "higher_is_better must be True or False for a callable metric; got None"
                )
            self.metric: str | MetricFn = metric
        else:
            if self.kind == "regression" and metric == "accuracy":
                metric = "rmse"  # the default metric, on a regression task
            if metric not in allowed:
                raise ConfigError(
                    f"metric for objective {objective!r} must be one of {list(allowed)} or a "
                    f"callable (y_true, prediction) -> float; got {metric!r}"
                )
            self.metric = metric
            if higher_is_better is None:
                higher_is_better = _BUILTIN_METRICS[metric]
        self.higher_is_better = bool(higher_is_better)
        self._set_test_metric(metric, test_metric, allowed)
        self._set_splits(data)

        # The initial model: one boosting round, deterministic in (data, seed), so that
        # it exports to ONNX and fixes base_score (a 0-round booster would estimate it
        # again on whichever learner trains first).
        booster = self._train(None, 1, np.random.default_rng([self.seed, 2**31 - 1]))
        self._set_current(self._encode(booster), booster, None)

    # -- helpers ------------------------------------------------------------------------

    def _xy(self, xy: tuple[Array, Array], name: str) -> tuple[Array, Array]:
        X = np.asarray(xy[0], dtype=np.float32)
        if X.ndim != 2:
            raise DataError(f"{name} X must be 2-D (rows x features); got shape {X.shape}")
        y = np.asarray(xy[1])
        if self.classes is not None:
            index = np.searchsorted(self.classes, y)
            index = np.clip(index, 0, len(self.classes) - 1)
            if len(y) and not np.array_equal(self.classes[index], y):
                unknown = sorted(set(np.unique(y).tolist()) - set(self.classes.tolist()))
                raise DataError(
                    f"{name} labels {unknown} are not among classes {self.classes.tolist()}; "
                    "pass every class of the task as classes=..."
                )
            return X, index.astype(np.int64)
        return X, y.astype(np.float64)

    def _train(
        self, start: xgb.Booster | None, rounds: int, rng: np.random.Generator
    ) -> xgb.Booster:
        params = {**self.params, "seed": int(rng.integers(2**31 - 1))}
        dtrain = xgb.DMatrix(self._X_train, label=self._y_train)
        return xgb.train(params, dtrain, rounds, xgb_model=start)

    @staticmethod
    def _encode(booster: xgb.Booster) -> Weights:
        raw = booster.save_raw("ubj")
        return Weights({"booster": np.frombuffer(bytes(raw), dtype=np.uint8)})

    def _decode(self, weights: Weights) -> xgb.Booster:
        check_weights(weights, self._weights)
        return booster_from_bytes(
            weights.arrays["booster"],
            objective=self.objective,
            n_features=self.n_features,
            num_class=self.num_class,
        )

    def _score(
        self, booster: xgb.Booster, X: Array, y: Array, metric: str | MetricFn | None = None
    ) -> float:
        out = self._predict_raw(booster, X)
        metric = self.metric if metric is None else metric
        if callable(metric):
            return float(metric(y, out))
        return _metric_value(metric, y, out, self.kind)

    @staticmethod
    def _predict_raw(booster: xgb.Booster, X: Array) -> Array:
        # inplace_predict is thread-safe: voters score in parallel threads.
        return np.asarray(booster.inplace_predict(np.asarray(X, dtype=np.float32)))

    def _propose_model(self, current: xgb.Booster, rng: np.random.Generator) -> xgb.Booster:
        """Add ``rounds_per_proposal`` boosting rounds on local data to a copy of
        ``current``."""
        start = xgb.Booster(model_file=bytearray(current.save_raw("ubj")))
        return self._train(start, self.rounds_per_proposal, rng)

    def _to_onnx(self, model: xgb.Booster) -> bytes:
        """Input ``"input"`` of shape ``[None, n_features]`` float32."""
        return to_onnx(model, self.n_features)

    # -- extras ---------------------------------------------------------------------------

    @property
    def booster(self) -> xgb.Booster:
        """The current booster (do not train it in place)."""
        return self._model

    def predict_raw(self, X: Array) -> Array:
        """The current booster's output: probabilities or regression values."""
        return self._predict_raw(self._model, X)

    def predict(self, X: Array) -> Array:
        """Class labels (classification) or values (regression) of the current model."""
        out = self.predict_raw(X)
        if self.classes is None:
            return out
        index = (out > 0.5).astype(np.int64) if out.ndim == 1 else np.argmax(out, axis=1)
        return np.asarray(self.classes[index])


def to_onnx(booster: xgb.Booster, n_features: int, target_opset: int = 15) -> bytes:
    """Convert ``booster`` to ONNX bytes with onnxmltools.

    Raises
    ------
    MissingExtraError
        If onnxmltools is not installed.
    WeightsError
        If onnxmltools cannot convert this booster.
    """
    require_extra("onnxmltools", "xgboost", "exporting an XGBoost model to ONNX")
    from onnxmltools import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    try:
        onx = convert_xgboost(
            booster,
            initial_types=[("input", FloatTensorType([None, n_features]))],
            target_opset=target_opset,
        )
    except Exception as exc:  # any converter failure is reported the same way
        raise WeightsError(
            f"onnxmltools {__import__('onnxmltools').__version__} cannot convert this "
            f"XGBoost {xgb.__version__} booster to ONNX ({type(exc).__name__}: {exc}); "
            "export Booster.save_raw('ubj') instead"
        ) from exc
    return bytes(onx.SerializeToString())
