import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from colearning import Weights, WeightsError, check_weights, decode, encode, id_of
from colearning.core.codec import (
    MAX_HEADER_BYTES,
    check_weights_id,
    is_weights_id,
    read_header,
    sealed_arrays,
)


def test_round_trip_keeps_names_order_and_dtypes():
    w = Weights({"z": np.arange(3, dtype=np.float32), "a": np.ones((2, 2), np.int64)})
    back = decode(encode(w))
    assert list(back.arrays) == ["z", "a"]
    assert back == w
    assert back.arrays["z"].dtype == np.float32


def test_list_weights_stay_lists_through_the_codec():
    w = Weights([np.zeros(2)] * 11)
    back = decode(encode(w))
    assert back.is_list
    assert isinstance(back.weights, list) and len(back.weights) == 11
    assert list(back.arrays) == [str(i) for i in range(11)]  # "10" after "9", not after "1"


def test_id_is_deterministic_and_content_addressed():
    w = Weights({"a": np.zeros(3), "b": np.ones(2), "c": np.zeros(1, np.float32)})
    ids = {id_of(w) for _ in range(50)}
    assert len(ids) == 1
    changed = Weights({"a": np.zeros(3), "b": np.array([1.0, 2.0]), "c": np.zeros(1, np.float32)})
    assert id_of(changed) not in ids


def test_foreign_bytes_are_refused_without_unpickling():
    import pickle

    blob = pickle.dumps({"a": np.zeros(2)})
    with pytest.raises(WeightsError, match="not safetensors"):
        decode(blob)


@pytest.mark.parametrize(
    "weights, message",
    [
        (Weights({"w": np.ones(4)}), r"weight 'w' has shape \(4,\); expected \(3,\)"),
        (Weights({"w": np.ones(3, np.float32)}), "dtype float32; expected float64"),
        (Weights({"v": np.ones(3)}), r"missing \['w'\], unexpected \['v'\]"),
        (Weights({"w": np.array([1.0, np.nan, np.inf])}), "2 NaN/Inf"),
    ],
)
def test_check_weights_names_what_is_wrong(weights, message):
    with pytest.raises(WeightsError, match=message):
        check_weights(weights, Weights({"w": np.zeros(3)}))


def test_decode_checks_against_expected():
    with pytest.raises(WeightsError, match="shape"):
        decode(encode(Weights({"w": np.ones(4)})), Weights({"w": np.zeros(3)}))


def test_encoded_models_may_change_length():
    ref = Weights({"booster": np.zeros(10, np.uint8)})
    check_weights(Weights({"booster": np.zeros(25, np.uint8)}), ref)


@settings(max_examples=60, deadline=None)
@given(
    arrays=st.lists(
        hnp.arrays(
            dtype=st.sampled_from([np.float32, np.float64, np.int32, np.uint8, np.int64]),
            shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=4),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_any_numeric_arrays_round_trip(arrays):
    w = Weights({f"p{i}": a for i, a in enumerate(arrays)})
    back = decode(encode(w))
    assert back == w
    assert id_of(back) == id_of(w)


def test_decode_reads_any_buffer_and_does_not_copy_it():
    w = Weights({"a": np.arange(6.0).reshape(2, 3), "b": np.ones(4, np.float32)})
    buffer = bytearray(encode(w))
    back = decode(memoryview(buffer))
    assert back == w
    for array in back.arrays.values():
        assert np.shares_memory(array, np.frombuffer(buffer, np.uint8))  # a view, no copy
        assert not array.flags.writeable


_SIZES = {"F64": 8, "F32": 4, "U8": 1, "I16": 2, "BOOL": 1, "BF16": 2, "X": 1}


@st.composite
def _headers(draw):
    """A safetensors header and data length: laid out correctly, then perhaps broken
    (an offset moved, the data shortened or lengthened, a dtype unknown to NumPy)."""
    names = draw(st.lists(st.sampled_from("abcd"), unique=True, max_size=4))
    entries, end = {}, 0
    for name in names:
        dtype = draw(st.sampled_from(["F64", "F32", "U8", "I16", "BOOL"]))
        shape = draw(st.lists(st.integers(0, 4), max_size=3))
        size = int(np.prod(shape)) * _SIZES[dtype]
        entries[name] = {"dtype": dtype, "shape": shape, "data_offsets": [end, end + size]}
        end += size
    data_len = end
    breakage = draw(st.sampled_from(["none", "none", "offset", "length", "dtype", "shape"]))
    if entries and breakage in ("offset", "dtype", "shape"):
        entry = entries[draw(st.sampled_from(sorted(entries)))]
        if breakage == "offset":
            i = draw(st.integers(0, 1))
            entry["data_offsets"][i] = max(0, entry["data_offsets"][i] + draw(st.integers(-9, 9)))
        elif breakage == "dtype":
            entry["dtype"] = draw(st.sampled_from(["BF16", "X", "F32", "I16"]))
        else:
            entry["shape"] = draw(st.lists(st.integers(0, 4), max_size=3))
    if breakage == "length":
        data_len = max(0, data_len + draw(st.integers(-9, 9)))
    return entries, data_len


def _blob(entries, data_len):
    import json

    header = json.dumps(entries).encode()
    header += b" " * (-len(header) % 8)
    data = (bytes(range(256)) * (data_len // 256 + 1))[:data_len]
    return len(header).to_bytes(8, "little") + header + data


@settings(max_examples=300, deadline=None)
@given(layout=_headers())
def test_decode_accepts_exactly_what_safetensors_accepts(layout):
    """The codec reads safetensors itself (to decode without copying): on any header it
    must refuse what safetensors refuses and read what it reads, to the same arrays."""
    from safetensors.numpy import load

    from colearning.core.codec import _read_blob

    blob = _blob(*layout)
    try:
        want = load(blob)
    except Exception:
        want = None
    try:
        _, got = _read_blob(blob)
    except Exception as exc:
        assert want is None, f"refused what safetensors reads: {exc}"
        return
    assert want is not None, "read what safetensors refuses"
    assert sorted(got) == sorted(want)
    for name in want:
        assert got[name].dtype == want[name].dtype and got[name].shape == want[name].shape
        assert got[name].tobytes() == want[name].tobytes()


# -- hostile bytes ------------------------------------------------------------------------

VALID = encode(
    Weights({"a": np.arange(6.0).reshape(2, 3), "s": np.float32(2), "b": np.zeros(2, np.uint8)})
)


def refused_or_weights(blob):
    """Every byte string ends in a WeightsError or in weights that re-encode exactly;
    the strict header reader and the sealed views agree with decode."""
    try:
        weights = decode(blob)
    except WeightsError:
        weights = None
    try:
        views = sealed_arrays(bytes(blob))
    except WeightsError:
        views = None
    try:
        header = read_header(bytes(blob))
    except WeightsError:
        header = None
    if views is not None:  # the strict reader accepts only what decode reads alike
        assert weights is not None and header is not None
        assert list(views) == list(weights.arrays)
        for name, view in views.items():
            np.testing.assert_array_equal(view, weights.arrays[name])
    return weights


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_are_refused_cleanly(blob):
    refused_or_weights(blob)


@settings(max_examples=600, deadline=None)
@given(
    edits=st.lists(
        st.tuples(
            st.sampled_from(["flip", "cut", "insert"]),
            st.integers(0, len(VALID) - 1),
            st.binary(min_size=1, max_size=8),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_damaged_blobs_are_refused_cleanly(edits):
    blob = bytearray(VALID)
    for kind, at, data in edits:
        at = min(at, max(len(blob) - 1, 0))
        if kind == "flip" and blob:
            blob[at] ^= data[0] or 1
        elif kind == "cut":
            del blob[at:]
        else:
            blob[at:at] = data
    refused_or_weights(bytes(blob))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


def with_header(header, data=b""):
    raw = json.dumps(header).encode()
    return len(raw).to_bytes(8, "little") + raw + data


@settings(max_examples=500, deadline=None)
@given(
    dtype=st.sampled_from(["F64", "F32", "U8", "BOOL", "C64", "BF16", "F8_E4M3", "X"])
    | json_values,
    shape=st.lists(st.integers(-2, 2**40), max_size=3) | json_values,
    offsets=st.lists(st.integers(-8, 2**40), min_size=0, max_size=3) | json_values,
    metadata=json_values,
    extra=st.dictionaries(st.text(max_size=6), json_values, max_size=2),
    data=st.binary(max_size=64),
)
def test_crafted_headers_are_refused_cleanly(dtype, shape, offsets, metadata, extra, data):
    entry = {"dtype": dtype, "shape": shape, "data_offsets": offsets, **extra}
    refused_or_weights(with_header({"__metadata__": metadata, "a": entry}, data))


@settings(max_examples=300, deadline=None)
@given(
    layout=st.dictionaries(
        st.sampled_from(["order", "scalars", "is_list", "container", "elements"]),
        json_values | st.lists(st.sampled_from(["a", "b", "c", 1, None]), max_size=4),
        max_size=5,
    )
)
def test_crafted_layout_metadata_is_refused_cleanly(layout):
    entries = {
        "a": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]},
        "b": {"dtype": "F64", "shape": [2], "data_offsets": [8, 24]},
    }
    blob = with_header({"__metadata__": {"colearning": json.dumps(layout)}, **entries}, b"\0" * 24)
    weights = refused_or_weights(blob)
    if weights is not None:
        assert sorted(weights.arrays) == ["a", "b"]


@pytest.mark.parametrize(
    "layout",
    [{"order": 5}, {"order": ["a", 1]}, {"scalars": 5}, {"scalars": [["a"]]}, {"container": 3}],
)
def test_the_layouts_the_issue_found_are_weights_errors(layout):
    blob = with_header(
        {
            "__metadata__": {"colearning": json.dumps(layout)},
            "a": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]},
        },
        b"\0" * 8,
    )
    with pytest.raises(WeightsError, match="malformed layout"):
        decode(blob)


def test_a_weight_named_like_the_header_key_is_refused_when_built():
    with pytest.raises(WeightsError, match="reserved"):
        Weights({"__metadata__": np.zeros(1)})


def test_a_header_longer_than_the_limit_is_refused_before_reading():
    blob = (MAX_HEADER_BYTES + 1).to_bytes(8, "little") + b"{}"
    with pytest.raises(WeightsError, match="more than the"):
        read_header(blob)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=70) | st.sampled_from(["../../../../etc/passwd", "A" * 64, "ab" * 32]))
def test_weights_ids_are_64_lowercase_hex_digits(text):
    expected = len(text) == 64 and all(c in "0123456789abcdef" for c in text)
    assert is_weights_id(text) is expected
    if expected:
        assert check_weights_id(text, "the id") == text
    else:
        with pytest.raises(WeightsError, match="64 lowercase hex digits"):
            check_weights_id(text, "the id")


@settings(max_examples=80, deadline=None)
@given(
    arrays=st.lists(
        hnp.arrays(
            dtype=st.sampled_from(
                [np.float32, np.float64, np.int8, np.uint8, np.bool_, np.float16]
            ),
            shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
        ),
        min_size=0,
        max_size=4,
    )
)
def test_every_encoding_passes_the_strict_reader(arrays):
    w = Weights({f"p{i}": a for i, a in enumerate(arrays)})
    blob = encode(w)
    assert read_header(blob).total_size == len(blob)
    views = sealed_arrays(blob)
    assert Weights.from_arrays(views) == w


# -- the bytes are safetensors' own, to the byte ------------------------------------------

_ALL_DTYPES = [
    np.bool_,
    np.uint8,
    np.int8,
    np.int16,
    np.uint16,
    np.float16,
    np.int32,
    np.uint32,
    np.float32,
    np.complex64,
    np.float64,
    np.int64,
    np.uint64,
]


@st.composite
def _any_weights(draw):
    """Weights as users make them: any dtype safetensors takes (big-endian too), 0-d,
    empty and transposed arrays, names with quotes, backslashes, controls and accents."""
    names = draw(
        st.lists(
            st.text(alphabet='abzAZ_.:- 0"\\\n\té\u2028', min_size=1, max_size=4),
            unique=True,
            max_size=5,
        )
    )
    arrays = {}
    for name in names:
        dtype = np.dtype(draw(st.sampled_from(_ALL_DTYPES)))
        if draw(st.booleans()) and dtype.itemsize > 1:
            dtype = dtype.newbyteorder(">")
        array = draw(hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0)))
        arrays[name] = array.T if draw(st.booleans()) else array
    as_list = draw(st.booleans())
    return Weights(list(arrays.values()) if as_list else arrays)


@settings(max_examples=300, deadline=None)
@given(weights=_any_weights())
def test_encode_writes_the_bytes_safetensors_writes(weights):
    from colearning.core.codec import encode_with_safetensors, weights_id

    theirs = encode_with_safetensors(weights)
    assert encode(weights) == theirs
    assert id_of(weights) == weights_id(theirs)


def test_common_weights_are_laid_out_here_and_the_rest_by_safetensors():
    from colearning.core.codec import _layout

    assert _layout(Weights({"w": np.ones(3), "b": np.zeros((2, 2), np.float32)})) is not None
    assert _layout(Weights([np.arange(3, dtype=np.int64), np.array(True)])) is not None
    assert _layout(Weights({"w": np.ones(3, dtype=">f8")})) is None  # safetensors byteswaps
    assert _layout(Weights({'a"b': np.ones(3)})) is None  # JSON escaping left to it


def test_a_header_reused_for_its_form_still_gives_safetensors_bytes():
    # The header is built once per form (layout, names, dtypes, shapes) and reused:
    # weights of one form with other values, and forms that differ only in their
    # container, a 0-d array or a transposed array, must each get their own bytes.
    from collections import OrderedDict

    from colearning.core import codec

    rng = np.random.default_rng(0)
    forms = [
        lambda: Weights({"w": rng.normal(size=(2, 3)), "b": rng.normal(size=3)}),
        lambda: Weights(OrderedDict(w=rng.normal(size=(2, 3)), b=rng.normal(size=3))),
        lambda: Weights([rng.normal(size=(2, 3)), rng.normal(size=3)]),
        lambda: Weights((rng.normal(size=(2, 3)), rng.normal(size=3))),
        lambda: Weights({"w": rng.normal(size=(3, 2)).T, "b": rng.normal(size=3)}),
        lambda: Weights({"w": rng.normal(size=(2, 3)), "b": np.array(rng.normal())}),
        lambda: Weights({"w": rng.normal(size=(2, 3)), "b": np.array([rng.normal()])}),
        lambda: Weights({"w": rng.normal(size=(2, 3)).astype(np.float32), "b": rng.normal(size=3)}),
    ]
    seen = set()
    for _ in range(3):
        for make in forms:
            weights = make()
            theirs = codec.encode_with_safetensors(weights)
            assert encode(weights) == theirs
            assert id_of(weights) == codec.weights_id(theirs)
            assert decode(theirs) == weights
            seen.add(codec.weights_id(theirs))
    assert len(seen) == 3 * len(forms)
    # a full cache is emptied, not grown
    for size in range(codec._HEADERS_KEPT + 5):
        encode(Weights({"w": np.zeros(size + 1)}))
    assert len(codec._HEADERS) <= codec._HEADERS_KEPT


def test_json_depth_is_measured_only_past_the_bracket_count():
    from colearning.core.codec import MAX_JSON_DEPTH, json_deeper_than, json_depth

    flat = b"[" + b"[1]," * (MAX_JSON_DEPTH + 50) + b"1]"  # many brackets, depth 2
    assert json_depth(flat) == 2 and not json_deeper_than(flat)
    deep = b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1)
    assert json_deeper_than(deep) and not json_deeper_than(deep, MAX_JSON_DEPTH + 1)
    quoted = b'["' + b"[" * (MAX_JSON_DEPTH + 5) + b'"]'  # brackets inside a string
    assert not json_deeper_than(quoted)
    assert json_deeper_than("[" * 3, 2)  # text as well as bytes


def test_large_headers_are_checked_but_not_kept():
    # a party that sends a different large header each time must not fill memory
    from colearning.core import codec

    codec._PARSED.clear()
    codec._LAYOUTS.clear()
    small = encode(Weights({"w": np.zeros(3)}))
    names = {f"w{i:06d}": np.zeros(1) for i in range(6000)}  # a header of ~400 KB
    large = encode(Weights(names))
    assert codec.header_length(large) > codec._CACHED_HEADER_BYTES
    assert decode(small) == Weights({"w": np.zeros(3)})
    assert len(decode(large).arrays) == 6000
    kept = [len(raw) for raw in codec._PARSED]
    assert kept and max(kept) <= codec._CACHED_HEADER_BYTES
    assert all(len(raw or "") <= codec._CACHED_HEADER_BYTES for raw, _ in codec._LAYOUTS)
