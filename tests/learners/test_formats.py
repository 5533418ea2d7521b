"""The readers of received models, alone: valid input gives a checked document,
anything else a WeightsError (never another exception, a crash or a hang)."""

import io
import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import skops.io as sio
import xgboost as xgb
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from colearning.core.exceptions import WeightsError
from colearning.learners import _formats as formats

N_FEATURES = 30


@pytest.fixture(scope="module")
def booster_blob() -> bytes:
    X, y = load_breast_cancer(return_X_y=True)
    params = {"objective": "binary:logistic", "max_depth": 2, "nthread": 1, "seed": 0}
    booster = xgb.train(params, xgb.DMatrix(X, label=y), 3)
    return bytes(booster.save_raw("ubj"))


@pytest.fixture(scope="module")
def forest_blob() -> bytes:
    X, y = load_iris(return_X_y=True)
    forest = RandomForestClassifier(n_estimators=2, max_depth=3, random_state=0).fit(X, y)
    return formats.canonical_skops(sio.dumps(forest))


def read(blob: bytes) -> dict:
    return formats.read_booster(blob, objective="binary:logistic", n_features=N_FEATURES)


def mutations(raw: bytes, seed: int, count: int) -> list[bytes]:
    """Random bytes, truncations and bit flips of ``raw``."""
    rng = np.random.default_rng(seed)
    out = [b"", b"{", b"}", raw + b"\x00", raw[:-1], raw[:1]]
    out.append(rng.integers(0, 256, 300, dtype=np.uint8).tobytes())
    out.append(raw[:1] + rng.integers(0, 256, 300, dtype=np.uint8).tobytes())
    for _ in range(count):
        out.append(raw[: int(rng.integers(1, len(raw)))])
        flipped = bytearray(raw)
        for _ in range(int(rng.integers(1, 4))):
            flipped[int(rng.integers(len(flipped)))] = int(rng.integers(256))
        out.append(bytes(flipped))
    return out


# -- importable alone -------------------------------------------------------------------


def test_the_readers_import_without_xgboost_skops_or_sklearn():
    code = (
        "import sys, colearning.learners._formats;"
        "print(','.join(m for m in ('xgboost', 'skops', 'sklearn', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# -- UBJSON -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("blob", "expected"),
    [
        (b"{U\x01aU\x05}", {"a": 5}),
        (b"{U\x01aSU\x02hi}", {"a": "hi"}),
        (b"{U\x01a[TFZ]}", {"a": [True, False, None]}),
        (b"{#U\x01U\x01ai\xff", {"a": -1}),  # a counted object has no closing brace
        (b"{U\x01aD" + np.array([1.5], ">f8").tobytes() + b"}", {"a": 1.5}),
    ],
)
def test_parse_ubjson_reads_what_xgboost_writes(blob, expected):
    assert formats.parse_ubjson(blob) == expected


def test_typed_arrays_become_numpy_arrays():
    payload = np.array([1, -2, 3], dtype=">i4").tobytes()
    doc = formats.parse_ubjson(b"{U\x01a[$l#U\x03" + payload + b"}")
    assert doc["a"].dtype == np.int32 and doc["a"].tolist() == [1, -2, 3]


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"", "first byte"),
        (b"[]", "must be a UBJSON object"),
        (b"{U\x01aU\x05", "data ends"),
        (b"{U\x01aU\x05}X", "1 trailing byte"),
        (b"{U\x01aU\x01U\x01aU\x02}", "duplicate key 'a'"),
        (b"{U\x01aQ}", "unknown marker"),
        (b"{U\x02\xff\xfeU\x01}", "not UTF-8"),
        (b"{U\x01a[$U}", "must give its count"),
        (b"{U\x01a[$l#U\x09\x00}", "data ends"),
        (b"{U\x01aSL" + (2**40).to_bytes(8, "big") + b"}", "impossible"),
        (b"{U\x01a" + b"[" * 40 + b"]" * 40 + b"}", "nesting deeper than 32"),
    ],
)
def test_parse_ubjson_refuses_malformed_input(blob, message):
    with pytest.raises(WeightsError, match=message):
        formats.parse_ubjson(blob)


# -- boosters ---------------------------------------------------------------------------


def test_a_valid_booster_reads_and_rewrites_as_the_same_model(booster_blob):
    doc = read(booster_blob)
    assert doc["learner"]["objective"]["name"] == "binary:logistic"
    checked = xgb.Booster(model_file=bytearray(formats.booster_json(doc)))
    original = xgb.Booster(model_file=bytearray(booster_blob))
    assert json.loads(bytes(checked.save_raw("json"))) == json.loads(
        bytes(original.save_raw("json"))
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"objective": "reg:squarederror"}, "objective must be 'reg:squarederror'"),
        ({"n_features": 4}, "must take 4 features"),
        ({"num_class": 3}, "num_class=3"),
    ],
)
def test_a_booster_of_another_kind_is_refused(booster_blob, kwargs, message):
    settings = {"objective": "binary:logistic", "n_features": N_FEATURES, **kwargs}
    with pytest.raises(WeightsError, match=message):
        formats.read_booster(booster_blob, **settings)


def _tree(doc):
    tree = doc["learner"]["gradient_booster"]["model"]["trees"][1]
    for key, value in tree.items():
        if isinstance(value, np.ndarray):
            tree[key] = np.array(value)  # writable copies
    return tree


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: _tree(d)["left_children"].__setitem__(1, 1), "two parents|outside"),
        (lambda d: _tree(d)["right_children"].__setitem__(0, 99), "outside"),
        (lambda d: _tree(d)["left_children"].__setitem__(0, -1), "exactly one child"),
        (lambda d: _tree(d)["split_indices"].__setitem__(0, N_FEATURES), "feature index"),
        (lambda d: _tree(d)["split_conditions"].__setitem__(0, np.nan), "NaN"),
        (lambda d: _tree(d)["split_type"].__setitem__(0, 1), "numerical"),
        (lambda d: _tree(d).__setitem__("base_weights", [1.0]), "num_nodes"),
        (lambda d: _tree(d).__setitem__("id", 7), "id must be 1"),
        (lambda d: d["learner"]["gradient_booster"].__setitem__("name", "gblinear"), "gbtree"),
        (
            lambda d: d["learner"]["learner_model_param"].__setitem__("base_score", "nan"),
            "base_score",
        ),
        (lambda d: d["learner"]["gradient_booster"]["model"]["trees"].pop(), "num_trees"),
        (lambda d: d.__setitem__("learner", []), "must be"),
        (lambda d: d.pop("version"), "lacks 'version'"),
    ],
)
def test_unsafe_boosters_are_refused(booster_blob, mutate, message):
    doc = formats.parse_ubjson(booster_blob)
    formats.check_booster_document(doc, objective="binary:logistic", n_features=N_FEATURES)
    mutate(doc)
    with pytest.raises(WeightsError, match=message):
        formats.check_booster_document(doc, objective="binary:logistic", n_features=N_FEATURES)


def test_fuzzed_boosters_give_a_document_or_a_weights_error(booster_blob):
    refused = 0
    cases = mutations(booster_blob, seed=0, count=150)
    for blob in cases:
        try:
            doc = read(blob)
        except WeightsError:
            refused += 1
        else:  # a flip inside a number can leave a valid model
            assert isinstance(doc, dict)
            formats.booster_json(doc)
    assert refused >= len(cases) // 2


def test_oversized_and_empty_boosters_are_refused(monkeypatch, booster_blob):
    with pytest.raises(WeightsError, match="empty"):
        read(b"")
    monkeypatch.setattr(formats, "MAX_BOOSTER_BYTES", len(booster_blob) - 1)
    with pytest.raises(WeightsError, match="at most"):
        read(booster_blob)


# -- skops ------------------------------------------------------------------------------


def test_a_valid_forest_schema_is_returned(forest_blob):
    schema = formats.read_skops_schema(forest_blob)
    assert schema["__class__"] == "RandomForestClassifier"


def test_canonical_skops_gives_equal_bytes_for_equal_forests():
    X, y = load_iris(return_X_y=True)
    a, b = (
        RandomForestClassifier(n_estimators=2, max_depth=3, random_state=0).fit(X, y)
        for _ in range(2)
    )
    dumped = sio.dumps(a), sio.dumps(b)
    assert dumped[0] != dumped[1]  # ids from id(), times from the clock
    schemas = [
        json.loads(zipfile.ZipFile(io.BytesIO(formats.canonical_skops(d))).read("schema.json"))
        for d in dumped
    ]
    assert schemas[0] == schemas[1]


def _zip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"", "empty"),
        (b"PK\x03\x04garbage", "not a skops file"),
        (_zip({"other.json": b"{}"}), "lacks schema.json"),
        (_zip({"schema.json": b"{}", "run.py": b""}), "unexpected files"),
        (_zip({"schema.json": b"{not json"}), "not a skops file"),
        (
            _zip({"schema.json": json.dumps({"__module__": "os", "__class__": "system"}).encode()}),
            r"allowlist: \['os.system'\]",
        ),
        (
            _zip({"schema.json": json.dumps({"__loader__": "FunctionNode"}).encode()}),
            "loaders outside the allowlist",
        ),
    ],
)
def test_malformed_or_hostile_skops_files_are_refused(blob, message):
    with pytest.raises(WeightsError, match=message):
        formats.read_skops_schema(blob)


def test_other_objects_are_refused_before_skops_builds_anything():
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(X, y)
    with pytest.raises(WeightsError, match="LogisticRegression"):
        formats.read_skops_schema(sio.dumps(model))


def test_fuzzed_forests_give_a_schema_or_a_weights_error(forest_blob):
    for blob in mutations(forest_blob, seed=1, count=60):
        try:
            schema = formats.read_skops_schema(blob)
        except WeightsError:
            continue
        assert schema is not None


# -- trees ------------------------------------------------------------------------------


def _nodes():
    # root 0 -> (1, 2); 1 -> (3, 4); 2, 3, 4 leaves
    left = np.array([1, 3, -1, -1, -1])
    right = np.array([2, 4, -1, -1, -1])
    feature = np.array([0, 1, -2, -2, -2])
    threshold = np.array([0.5, 1.5, -2.0, -2.0, -2.0])
    value = np.ones((5, 1, 3))
    return left, right, feature, threshold, value


def test_a_proper_tree_passes():
    left, right, feature, threshold, value = _nodes()
    leaf = formats.check_tree_links(left, right, 5, "tree 0")
    assert leaf.tolist() == [False, False, True, True, True]
    formats.check_tree_nodes(
        left, right, feature, threshold, value, node_count=5, n_features=2, n_values=3, where="t"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda n: n[0].__setitem__(1, 0), "outside"),  # the root as a child: a loop
        (lambda n: n[0].__setitem__(1, 2), "two parents"),
        (lambda n: n[1].__setitem__(1, -1), "exactly one child"),
        (lambda n: n[2].__setitem__(1, 2), "feature index"),
        (lambda n: n[3].__setitem__(0, np.inf), "NaN/Inf"),
        (lambda n: n[4].__setitem__((0, 0, 0), np.nan), "NaN/Inf"),
    ],
)
def test_broken_trees_are_refused(change, message):
    nodes = _nodes()
    change(nodes)
    with pytest.raises(WeightsError, match=message):
        formats.check_tree_nodes(*nodes, node_count=5, n_features=2, n_values=3, where="tree 3")


def test_tree_arrays_of_the_wrong_size_are_refused():
    left, right, feature, threshold, value = _nodes()
    with pytest.raises(WeightsError, match="node_count=6"):
        formats.check_tree_nodes(
            left,
            right,
            feature,
            threshold,
            value,
            node_count=6,
            n_features=2,
            n_values=3,
            where="t",
        )
    with pytest.raises(WeightsError, match="value has shape"):
        formats.check_tree_nodes(
            left,
            right,
            feature,
            threshold,
            value,
            node_count=5,
            n_features=2,
            n_values=4,
            where="t",
        )
