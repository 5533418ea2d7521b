import numpy as np
import pytest

from colearning import ProposedWeights, Weights, WeightsError, decode, encode


def test_weights_from_mapping_and_list():
    w = Weights({"b": np.zeros(2), "a": [1.0, 2.0]})
    assert list(w.arrays) == ["b", "a"]
    assert isinstance(w.weights, dict)
    lw = Weights([np.zeros(2), np.ones(3)])
    assert isinstance(lw.weights, list)
    assert lw.weights[1].shape == (3,)


def test_arrays_are_read_only_views_and_caller_array_keeps_its_flag():
    mine = np.zeros(3)
    w = Weights({"a": mine})
    with pytest.raises(ValueError):
        w.arrays["a"][0] = 1.0
    mine[0] = 5.0  # the caller's array stays writeable
    assert w.arrays["a"][0] == 5.0  # and is shared, not copied


@pytest.mark.parametrize("bad", ["abc", None, object(), {"a": None}, {"a": "text"}])
def test_weights_refuse_non_array_payloads(bad):
    with pytest.raises(WeightsError) as info:
        Weights(bad)
    assert isinstance(info.value, TypeError)  # callers catching the builtin still do


@pytest.mark.parametrize(
    "payload",
    [b"\x80\x04abc", bytearray(b"xyz"), {"model": b"\x80\x04pickled"}, [b"a"]],
)
def test_bytes_are_refused_at_once_naming_the_safe_fix(payload):
    with pytest.raises(WeightsError, match="uint8 array") as info:
        Weights(payload)
    assert "RandomForestLearner" in str(info.value)
    if isinstance(payload, (bytes, dict)):
        assert "pickle" in str(info.value)


def test_a_number_stays_a_number_and_round_trips():
    w = Weights(weights=3)
    assert w.weights == 3 and isinstance(w.weights, int)
    assert w.arrays["value"].shape == ()
    back = decode(encode(w))
    assert back.weights == 3 and isinstance(back.weights, int)
    f = decode(encode(Weights(2.5)))
    assert f.weights == 2.5 and isinstance(f.weights, float)


def test_payload_is_given_back_as_the_same_object():
    payload = {"a": np.zeros(2)}
    assert Weights(payload).weights is payload
    listed = [np.zeros(1)]
    assert Weights(listed).weights is listed


@pytest.mark.parametrize(
    "payload",
    [
        {"a": np.zeros(2), "b": np.ones((2, 2), np.float32)},
        [np.zeros(2), np.ones(3)],
        (np.zeros(2), np.ones(3)),
        {"w": [1.0, 2.0], "n": 3},
        np.arange(4.0),
    ],
)
def test_decoded_weights_come_back_in_the_same_form(payload):
    back = decode(encode(Weights(payload))).weights
    assert type(back) is type(payload)
    if isinstance(payload, dict):
        for k, v in payload.items():
            assert type(back[k]) is type(v)
            np.testing.assert_array_equal(back[k], v)


def test_reserved_name_is_refused():
    with pytest.raises(WeightsError, match="reserved"):
        Weights({"__metadata__": np.zeros(1)})


def test_numpy_dict_and_list_layout_bytes_are_unchanged():
    # The first codec wrote exactly these keys; ids of existing experiments depend on it.
    import json

    blob = encode(Weights({"a": np.zeros(1)}))
    header = json.loads(blob[8 : 8 + int.from_bytes(blob[:8], "little")])
    layout = json.loads(header["__metadata__"]["colearning"])
    assert list(layout) == ["order", "is_list", "scalars"]


def test_ragged_values_are_refused_with_a_hint():
    with pytest.raises((TypeError, ValueError)):
        Weights({"a": [[1, 2], [3]]})


def test_equality_compares_names_dtypes_and_values():
    assert Weights({"a": np.zeros(2)}) == Weights({"a": np.zeros(2)})
    assert Weights({"a": np.zeros(2)}) != Weights({"a": np.zeros(2, np.float32)})
    assert Weights({"a": np.zeros(2)}) != Weights({"b": np.zeros(2)})


def test_proposed_weights_is_frozen():
    p = ProposedWeights(None, 1.0, 1.0, True)
    with pytest.raises(AttributeError):
        p.vote = False  # type: ignore[misc]


def test_from_arrays_refuses_the_name_safetensors_keeps_its_header_under():
    from colearning import WeightsError

    with pytest.raises(WeightsError, match="reserved by the safetensors format"):
        Weights.from_arrays({"__metadata__": np.zeros(1)})
