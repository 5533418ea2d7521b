"""The combiners: table-tested pure functions, and what a poisoned proposal can do."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from colearning import ConfigError, Weights
from colearning.core.combiners import (
    Combiner,
    coordinate_median,
    server_step,
    trim_count,
    trimmed_mean,
    weighted_mean,
)
from colearning.core.exceptions import WeightsError


def arrays(*values):
    return [{"w": np.array(v, dtype=np.float64)} for v in values]


@pytest.mark.parametrize(
    ("values", "sizes", "expected"),
    [
        ([[1.0, 2.0]], None, [1.0, 2.0]),
        ([[0.0, 0.0], [2.0, 4.0]], None, [1.0, 2.0]),
        ([[0.0], [3.0]], [2, 1], [1.0]),
        ([[0.0], [3.0]], [1, 2], [2.0]),
        ([[1.0], [1.0], [4.0]], [1, 1, 1], [2.0]),
    ],
)
def test_weighted_mean(values, sizes, expected):
    assert weighted_mean(arrays(*values), sizes)["w"].tolist() == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([[5.0]], [5.0]),
        ([[1.0], [3.0]], [2.0]),  # even k: the mean of the two middle values
        ([[1.0, 9.0], [2.0, 8.0], [3.0, 7.0]], [2.0, 8.0]),  # coordinate by coordinate
        ([[1.0], [2.0], [1e12]], [2.0]),
    ],
)
def test_coordinate_median(values, expected):
    assert coordinate_median(arrays(*values))["w"].tolist() == expected


@pytest.mark.parametrize(
    ("values", "trim", "expected"),
    [
        ([[1.0], [2.0], [3.0], [4.0], [100.0]], 0.2, [3.0]),  # cuts 1 and 100
        ([[1.0], [2.0], [3.0]], 0.2, [2.0]),  # k = 3 still cuts one from each end
        ([[1.0], [3.0]], 0.2, [2.0]),  # k = 2: nothing can be cut
        ([[1.0], [2.0], [3.0], [4.0], [100.0]], 0.0, [22.0]),  # no trim: the mean
    ],
)
def test_trimmed_mean(values, trim, expected):
    assert trimmed_mean(arrays(*values), trim)["w"].tolist() == expected


@pytest.mark.parametrize(
    ("trim", "k", "cut"),
    [(0.2, 1, 0), (0.2, 2, 0), (0.2, 3, 1), (0.2, 5, 1), (0.2, 10, 2), (0.3, 10, 3), (0.1, 20, 2)],
)
def test_trim_count(trim, k, cut):
    assert trim_count(trim, k) == cut


def test_dtypes_and_layout_are_kept_and_integer_counters_take_the_lower_median():
    proposals = [
        ("a", Weights({"w": np.array([1.0, 2.0], np.float32), "n": np.array(3, np.int64)})),
        ("b", Weights({"w": np.array([3.0, 4.0], np.float32), "n": np.array(5, np.int64)})),
    ]
    for name in ("mean", "median", "trimmed-mean"):
        combined = Combiner(name).combine(proposals)
        assert list(combined.arrays) == ["w", "n"]
        assert combined.arrays["w"].dtype == np.float32
        assert combined.arrays["w"].tolist() == [2.0, 3.0]
        assert combined.arrays["n"].dtype == np.int64 and int(combined.arrays["n"]) == 3


def test_a_list_payload_comes_back_as_a_list():
    proposals = [("a", Weights([np.zeros(2)])), ("b", Weights([np.full(2, 2.0)]))]
    combined = Combiner("mean").combine(proposals)
    assert combined.is_list and combined.weights[0].tolist() == [1.0, 1.0]


def test_weighted_mean_uses_the_combiners_sizes_by_learner_id():
    proposals = [("a", Weights({"w": np.zeros(1)})), ("b", Weights({"w": np.ones(1)}))]
    assert Combiner("mean", sizes={"a": 3, "b": 1}).combine(proposals).arrays["w"][0] == 0.25
    # a learner without a known size counts as the mean of the known ones
    assert Combiner("mean", sizes={"a": 3}).combine(proposals).arrays["w"][0] == 0.5


def test_the_same_proposals_give_the_same_bits():
    rng = np.random.default_rng(0)
    proposals = [("p", Weights({"w": rng.standard_normal(1000).astype(np.float32)}))] * 7
    for name in ("mean", "median", "trimmed-mean"):
        a = Combiner(name).combine(proposals).arrays["w"]
        b = Combiner(name).combine(list(proposals)).arrays["w"]
        assert a.tobytes() == b.tobytes()


# -- a poisoned proposal -----------------------------------------------------------------

honest_values = st.lists(
    st.floats(-10, 10, allow_nan=False, allow_subnormal=False), min_size=4, max_size=9
)
poison = st.sampled_from([1e30, -1e30, 1e6, -1e6])


@settings(max_examples=60, deadline=None)
@given(honest=honest_values, bad=poison)
def test_one_poisoned_proposal_cannot_take_a_robust_combiner_outside_the_honest_range(honest, bad):
    proposals = arrays(*[[v] for v in honest]) + arrays([bad])
    lo, hi = min(honest), max(honest)
    for combined in (coordinate_median(proposals), trimmed_mean(proposals, 0.2)):
        value = float(combined["w"][0])
        assert lo - 1e-9 <= value <= hi + 1e-9


def test_one_poisoned_proposal_does_steer_the_mean():
    # why the robust combiners exist: the mean follows the poison
    proposals = arrays([1.0], [1.0], [1.0], [1.0], [1e6])
    assert weighted_mean(proposals)["w"][0] > 1e5
    assert coordinate_median(proposals)["w"][0] == 1.0
    assert trimmed_mean(proposals)["w"][0] == 1.0


# -- refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("average", "combiner must be one of mean, median, trimmed-mean"),
        ("median:0.2", "only trimmed-mean takes a setting"),
        ("trimmed-mean:x", "needs a number TRIM"),
        ("trimmed-mean:0.5", r"trim must be a share in \[0, 0.5\) cut from each end; got 0.5"),
        (3, "combiner must be a name"),
    ],
)
def test_bad_combiner_specs_are_refused_naming_the_value(spec, match):
    with pytest.raises(ConfigError, match=match):
        Combiner.parse(spec)


def test_parse_round_trips_the_spec():
    for spec in ("mean", "median", "trimmed-mean:0.2", "trimmed-mean:0.35"):
        assert Combiner.parse(spec).spec == spec


def test_bad_sizes_and_mismatched_proposals_are_refused():
    with pytest.raises(ConfigError, match="data sizes must be numbers > 0; got 0"):
        Combiner("mean", sizes={"a": 0})
    with pytest.raises(WeightsError, match="proposal 1 has arrays"):
        weighted_mean([{"w": np.zeros(1)}, {"v": np.zeros(1)}])
    with pytest.raises(WeightsError, match=r"float64\[2\]; proposal 0's is float64\[1\]"):
        coordinate_median([{"w": np.zeros(1)}, {"w": np.zeros(2)}])
    with pytest.raises(ConfigError, match="at least one proposal"):
        trimmed_mean([])


def test_an_encoded_model_is_not_averaged():
    blob = [{"model": np.frombuffer(b"abc", np.uint8)}] * 2
    with pytest.raises(WeightsError, match="encoded model .* cannot be averaged"):
        weighted_mean(blob)


# -- the server step ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("combined", "current", "previous", "lr", "momentum", "expected"),
    [
        ([2.0], [1.0], None, 1.0, 0.0, [2.0]),  # the defaults: the combination as it is
        ([2.0], [1.0], None, 1.5, 0.0, [2.5]),
        ([2.0], [1.0], None, 0.5, 0.0, [1.5]),
        ([2.0], [1.0], None, 1.0, 0.9, [2.0]),  # nothing adopted yet: no momentum
        ([2.0], [1.0], [0.0], 1.0, 0.5, [2.5]),
        ([1.0], [1.0], [3.0], 1.0, 0.25, [0.5]),  # momentum points back the way it came
        ([4.0, 0.0], [2.0, 0.0], [1.0, 1.0], 2.0, 0.5, [6.5, -0.5]),
    ],
)
def test_server_step(combined, current, previous, lr, momentum, expected):
    prev = None if previous is None else {"w": np.array(previous)}
    got = server_step({"w": np.array(combined)}, {"w": np.array(current)}, prev, lr, momentum)
    assert got["w"].tolist() == expected


def test_the_server_step_keeps_dtypes_and_leaves_integer_counters_to_the_combiner():
    combined = {"w": np.array([2.0], np.float32), "n": np.array(7, np.int64)}
    current = {"w": np.array([1.0], np.float32), "n": np.array(3, np.int64)}
    got = server_step(combined, current, current, 2.0, 0.5)
    assert got["w"].dtype == np.float32 and got["w"].tolist() == [3.0]
    assert got["n"].dtype == np.int64 and int(got["n"]) == 7


def test_a_combiner_with_a_server_step_steps_from_the_current_model():
    c = Combiner.parse("mean", server_lr=2.0, server_momentum=0.5)
    assert c.has_server_step and not Combiner("mean").has_server_step
    assert c.label == "mean server-lr=2 server-momentum=0.5" and c.spec == "mean"
    assert c.describe() == {"combiner": "mean", "server_lr": 2.0, "server_momentum": 0.5}
    ps = [("a", Weights({"w": np.array([1.0])})), ("b", Weights({"w": np.array([3.0])}))]
    cur, prev = Weights({"w": np.array([1.0])}), Weights({"w": np.array([0.0])})
    assert c.combine(ps, cur, prev).arrays["w"].tolist() == [1.0 + 2.0 * 1.0 + 0.5 * 1.0]
    assert c.combine(ps, cur).arrays["w"].tolist() == [3.0]
    with pytest.raises(ConfigError, match="takes a server step from the current model"):
        c.combine(ps)
    assert Combiner("mean").combine(ps).arrays["w"].tolist() == [2.0]  # needs no current


def test_parse_keeps_the_server_step_of_a_combiner_it_is_given_new_sizes():
    c = Combiner.parse(Combiner.parse("median", server_momentum=0.9), {"a": 1.0})
    assert (c.name, c.server_lr, c.server_momentum, c.sizes) == ("median", 1.0, 0.9, {"a": 1.0})


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"server_lr": 0}, r"server_lr must be a number in \(0, 10\].*; got 0"),
        ({"server_lr": -1.0}, r"server_lr must be .*; got -1.0"),
        ({"server_lr": 11.0}, r"server_lr must be .*; got 11.0"),
        ({"server_lr": float("nan")}, r"server_lr must be .*; got nan"),
        ({"server_lr": "2"}, r"server_lr must be .*; got '2'"),
        ({"server_momentum": 1.0}, r"server_momentum must be a number in \[0, 1\).*; got 1.0"),
        ({"server_momentum": -0.1}, r"server_momentum must be .*; got -0.1"),
        ({"server_momentum": True}, r"server_momentum must be .*; got True"),
    ],
)
def test_bad_server_steps_are_refused_naming_the_value(options, match):
    with pytest.raises(ConfigError, match=match):
        Combiner.parse("mean", **options)
