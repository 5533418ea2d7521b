import numpy as np
import pytest

from colearning import ProposedWeights, Weights


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


@pytest.mark.parametrize("bad", [42, "abc", None])
def test_weights_refuse_non_array_payloads(bad):
    with pytest.raises(TypeError, match="Weights"):
        Weights(bad)


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
