"""Readers and checkers for the encoded models other parties send: XGBoost UBJSON
boosters and skops forests.

Everything here is pure Python and NumPy: importing this module needs neither XGBoost
nor skops, so the readers can be tested and fuzzed alone. Each public reader takes
bytes and returns a checked document, or raises :class:`WeightsError` naming what is
wrong; nothing else escapes (the fuzz tests hold them to that).

Why: XGBoost's model loader trusts its input (truncated or bit-flipped UBJSON crashed
or hung xgboost 3.2.0 on 8 of 10 fuzzed blobs), and scikit-learn's tree prediction
trusts its node arrays (a bad child index reads out of bounds, a cycle loops forever).
So a received model is parsed and checked here before its own library sees it.

- :func:`read_booster` parses a booster's UBJSON strictly and checks the document
  against the expected model; :func:`booster_json` rewrites a checked document as the
  JSON XGBoost then loads.
- :func:`read_skops_schema` checks a skops zip (its files, sizes, and that every type
  it names is in :data:`TRUSTED_TYPES`) before skops builds anything;
  :func:`canonical_skops` rewrites ``skops.io.dumps`` bytes so that equal forests give
  equal bytes; :func:`check_tree_nodes` checks one decoded tree's node arrays.
"""

from __future__ import annotations

import io
import json
import math
import re
import zipfile
from typing import Any

import numpy as np

from colearning.core.codec import check_json_depth
from colearning.core.exceptions import WeightsError
from colearning.core.interface import Array

__all__ = [
    "MAX_BOOSTER_BYTES",
    "MAX_FOREST_BYTES",
    "TRUSTED_TYPES",
    "booster_json",
    "canonical_skops",
    "check_booster_document",
    "check_tree_links",
    "check_tree_nodes",
    "parse_ubjson",
    "read_booster",
    "read_skops_schema",
]

# A booster larger than this is refused before parsing (a model of 2,000 trees of depth
# 8 is about 30 MB).
MAX_BOOSTER_BYTES = 256 * 1024 * 1024
# Largest forest blob accepted, and largest total size of its unpacked files.
MAX_FOREST_BYTES = 512 * 1024 * 1024
_MAX_DEPTH = 32


def _raw(blob: bytes | bytearray | memoryview | Array) -> bytes:
    return bytes(blob.tobytes() if isinstance(blob, np.ndarray) else blob)


# -- trees ------------------------------------------------------------------------------


def check_tree_links(left: Array, right: Array, n_nodes: int, where: str) -> Array:
    """Check the child links of one decision tree received from another party.

    Every node has both children or none; children lie in ``[1, n_nodes)``; no node has
    two parents, and the root is nobody's child, so a walk from the root can never loop
    (a cycle would hang prediction). Returns the leaf mask.

    Raises
    ------
    WeightsError
        Naming ``where`` (e.g. ``"tree 3"``) and the broken rule.

    Examples
    --------
    >>> import numpy as np
    >>> check_tree_links(np.array([1, -1, -1]), np.array([2, -1, -1]), 3, "tree 0")
    array([False,  True,  True])
    >>> check_tree_links(np.array([1, 1, -1]), np.array([2, 2, -1]), 3, "tree 0")
    Traceback (most recent call last):
    ...
    colearning.core.exceptions.WeightsError: tree 0: a node has two parents (not a tree)
    """
    leaf: Array = np.asarray(left == -1)
    if np.any(leaf != (right == -1)):
        raise WeightsError(f"{where}: a node has exactly one child")
    children = np.concatenate([left[~leaf], right[~leaf]])
    if np.any((children < 1) | (children >= n_nodes)):
        raise WeightsError(f"{where}: a child index is outside [1, {n_nodes})")
    if len(np.unique(children)) != len(children):
        raise WeightsError(f"{where}: a node has two parents (not a tree)")
    return leaf


def check_tree_nodes(
    left: Array,
    right: Array,
    feature: Array,
    threshold: Array,
    value: Array,
    *,
    node_count: int,
    n_features: int,
    n_values: int,
    where: str,
) -> None:
    """Check the node arrays of one scikit-learn decision tree (``tree.tree_``).

    All arrays have ``node_count`` entries, ``value`` has shape
    ``(node_count, 1, n_values)``;
    the links form a tree (:func:`check_tree_links`); split features lie in
    ``[0, n_features)``; thresholds and values are finite.

    Raises
    ------
    WeightsError
        Naming ``where`` and the broken rule.
    """
    left = np.asarray(left, dtype=np.int64)
    right = np.asarray(right, dtype=np.int64)
    feature = np.asarray(feature, dtype=np.int64)
    threshold = np.asarray(threshold)
    value = np.asarray(value)
    n = int(node_count)
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
    At most one value is built per byte of input: every value XGBoost writes takes at
    least its marker byte, but the elements of a typed array of ``Z``, ``T`` or ``F``
    take none, so nested counts alone could build len(blob)**2 objects (a 14 KB blob
    built 17 million objects, 260 MB, in 133 s).
    """

    def __init__(self, blob: bytes) -> None:
        self.blob = blob
        self.pos = 0
        self.budget = len(blob)

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
        self.budget -= 1
        if self.budget < 0:
            raise self.fail("more values than bytes (a typed array of empty values)")
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


def parse_ubjson(blob: bytes | bytearray | memoryview | Array) -> dict[str, Any]:
    """Parse a UBJSON object strictly (bounds, no duplicate keys, no trailing bytes,
    nesting of at most 32 levels); typed numeric arrays become NumPy arrays.

    Raises
    ------
    WeightsError
        Naming the problem and its byte offset.

    Examples
    --------
    >>> parse_ubjson(b"{U\\x01aU\\x05}")
    {'a': 5}
    >>> parse_ubjson(b"{U\\x01aU")
    Traceback (most recent call last):
    ...
    colearning.core.exceptions.WeightsError: booster bytes are not a valid XGBoost UBJSON model: ...
    """
    raw = _raw(blob)
    reader = _UBJReader(raw)
    if raw[:1] != b"{":
        raise reader.fail("the model must be a UBJSON object (first byte '{')")
    doc = reader.value()
    if reader.pos != len(raw):
        raise reader.fail(f"{len(raw) - reader.pos} trailing byte(s)")
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


#: The parent XGBoost writes for a root (its invalid node id, -1, as 31 bits).
_NO_PARENT = 2**31 - 1


def _check_parents(parents: Array, left: Array, right: Array, leaf: Array, index: int) -> None:
    """Each node's parent is the node that links to it; the root has none. XGBoost
    3.2.0 follows ``parents`` without checking it: one out of range segfaulted it
    (found by ``fuzz.booster``)."""
    n = len(parents)
    expected = np.full(n, -1, dtype=np.int64)
    inner = np.flatnonzero(~leaf)
    expected[left[inner]] = inner
    expected[right[inner]] = inner
    expected[0] = _NO_PARENT
    linked = expected >= 0
    if np.any(parents[linked] != expected[linked]):
        raise WeightsError(f"tree {index}: parents do not match the child links")
    others = parents[~linked]  # nodes nobody links to (pruned): a parent in range, or none
    if np.any(((others < 0) | (others >= n)) & (others != _NO_PARENT)):
        raise WeightsError(f"tree {index}: a parent index is outside [0, {n})")


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
    _check_parents(arrays["parents"].astype(np.int64), left, right, leaf, index)
    # Leaves (and nodes deleted by pruning, which are leaves) carry no usable feature.
    features = arrays["split_indices"].astype(np.int64)[~leaf]
    if np.any((features < 0) | (features >= n_features)):
        raise WeightsError(f"tree {index}: a split feature index is outside [0, {n_features})")


def _numbers(value: Any, name: str) -> Array:
    array = np.asarray(value)
    if array.ndim != 1 or (array.size and array.dtype.kind not in "iu"):
        raise WeightsError(f"booster model field {name!r} must be a list of integers")
    return array.astype(np.int64)


def check_booster_document(
    doc: Any, *, objective: str, n_features: int, num_class: int = 0
) -> None:
    """Raise :class:`WeightsError` unless ``doc`` (a parsed booster) is a safe model of
    the expected kind: ``gbtree``, the given objective, number of features and classes,
    one target, numerical splits only, every tree a proper tree whose child and feature
    indices are in range, finite numbers."""
    try:
        if not isinstance(doc, dict):
            raise WeightsError(f"booster model must be an object; got {type(doc).__name__}")
        _check_fields(doc, objective=objective, n_features=n_features, num_class=num_class)
    except WeightsError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError) as exc:
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


def read_booster(
    blob: bytes | bytearray | memoryview | Array,
    *,
    objective: str,
    n_features: int,
    num_class: int = 0,
) -> dict[str, Any]:
    """Parse and check a booster another party sent; the checked document.

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
        Naming what is wrong: empty or too large, not UBJSON, truncated, another kind
        of model, a tree whose indices are out of range or that loops, NaN/Inf numbers.

    Examples
    --------
    >>> read_booster(b"{}", objective="binary:logistic", n_features=4)
    Traceback (most recent call last):
    ...
    colearning.core.exceptions.WeightsError: booster model lacks 'version'; ...
    """
    raw = _raw(blob)
    if not raw:
        raise WeightsError("booster bytes are empty; send Booster.save_raw('ubj') bytes")
    if len(raw) > MAX_BOOSTER_BYTES:
        raise WeightsError(f"booster is {len(raw)} bytes; at most {MAX_BOOSTER_BYTES} are accepted")
    doc = parse_ubjson(raw)
    check_booster_document(doc, objective=objective, n_features=n_features, num_class=num_class)
    return doc


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


def booster_json(doc: dict[str, Any]) -> bytes:
    """A checked booster document as the JSON bytes XGBoost loads.

    Raises
    ------
    WeightsError
        If the document holds a NaN/Inf number (JSON has none).
    """
    return json.dumps(_to_jsonable(doc), allow_nan=False).encode("utf-8")


# -- skops forests ----------------------------------------------------------------------

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
_NPY_NAME = re.compile(r"^[0-9A-Za-z_.-]{1,64}\.npy$")
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def _canonical_schema(schema: Any) -> tuple[Any, dict[str, str]]:
    """Number every ``__id__`` afresh and ``.npy`` file names in order of appearance.

    Every node gets its own id (from 1: skops does not memoize an id of 0). skops gives
    one id to each Python object it meets, so two equal forests whose attributes happen
    to share objects differently (an interned ``"gini"`` string shared by the forest
    and its trees in a freshly fitted forest, separate strings in a decoded one) would
    otherwise give different bytes; each node is written in full anyway, so dropping
    the sharing loses nothing.
    """
    counter = [0]
    files: dict[str, str] = {}

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for key, value in node.items():
                if key == "__id__":
                    counter[0] += 1
                    out[key] = counter[0]
                elif key == "file" and isinstance(value, str):
                    out[key] = files.setdefault(value, f"{len(files):06d}.npy")
                else:
                    out[key] = walk(value)
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema), files


def canonical_skops(raw: bytes) -> bytes:
    """``skops.io.dumps`` bytes rewritten byte-deterministically.

    ``skops.io.dumps`` is not: file names and ``__id__`` values come from ``id()``, the
    zip's timestamps from the clock. Here ids and ``.npy`` files are numbered in order
    of appearance and timestamps fixed, so equal objects give equal bytes (and equal
    weights ids).
    """
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


def _check_npy(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
    """An ``.npy`` file's header must describe exactly the bytes that follow it, and no
    Python objects. NumPy allocates the array its header claims before reading a file
    from a zip, so this is checked first: a header that claims 100 GB is refused
    without allocating anything."""
    with archive.open(info) as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise WeightsError(f"forest blob file {info.filename} has .npy version {version}")
        data_start = fh.tell()
    if dtype.hasobject:
        raise WeightsError(f"forest blob file {info.filename} holds Python objects")
    claimed = math.prod(shape) * dtype.itemsize
    if data_start + claimed != info.file_size:
        raise WeightsError(
            f"forest blob file {info.filename} declares {claimed} bytes of array data but "
            f"holds {info.file_size - data_start}"
        )


def read_skops_schema(blob: bytes | bytearray | memoryview | Array) -> Any:
    """Check a skops file another party sent before skops builds anything from it;
    its ``schema.json``, checked.

    The zip must hold only ``schema.json`` and ``*.npy`` files, unpack to at most
    :data:`MAX_FOREST_BYTES`, and name only types in :data:`TRUSTED_TYPES` (and known
    skops loaders) anywhere in its schema.

    Raises
    ------
    WeightsError
        Naming what is wrong (for untrusted types: which ones).

    Examples
    --------
    >>> read_skops_schema(b"not a zip")
    Traceback (most recent call last):
    ...
    colearning.core.exceptions.WeightsError: forest bytes are not a skops file (BadZipFile: ...
    """
    raw = _raw(blob)
    if not raw:
        raise WeightsError("forest bytes are empty; send skops.io.dumps bytes")
    if len(raw) > MAX_FOREST_BYTES:
        raise WeightsError(f"forest is {len(raw)} bytes; at most {MAX_FOREST_BYTES} accepted")
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
            for info in infos:
                if info.filename != "schema.json":
                    _check_npy(archive, info)
            text = archive.read("schema.json")
            check_json_depth(text, "the forest's schema.json")
            schema = json.loads(text)
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
    return schema
