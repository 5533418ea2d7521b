"""Multi-Krum and FLTrust: the aggregation defences the robustness benchmark compares."""

import numpy as np
import pytest

from colearning.core.combiners import Combiner, fltrust, krum_scores, multi_krum
from colearning.core.exceptions import ConfigError
from colearning.core.interface import Weights


def props(*rows):
    return [{"w": np.array(r, dtype=np.float64)} for r in rows]


def test_multi_krum_leaves_out_the_outliers():
    got = multi_krum(props([1.0, 1.0], [1.2, 0.8], [0.8, 1.2], [40.0, -40.0], [-30.0, 9.0]), 2)
    np.testing.assert_allclose(got["w"], [1.0, 1.0])


def test_multi_krum_with_no_byzantine_is_the_plain_mean():
    got = multi_krum(props([0.0], [1.0], [5.0]), 0)
    np.testing.assert_allclose(got["w"], [2.0])


def test_krum_scores_sum_the_nearest_squared_distances():
    # k=4, f=1: each proposal sums its k - f - 2 = 1 nearest squared distance
    assert krum_scores(props([0.0], [1.0], [3.0], [10.0]), 1) == [1.0, 1.0, 4.0, 49.0]


def test_near_equal_krum_scores_rank_by_position_not_by_float_noise():
    # proposals 0 and 2 are mirror images around 1: equal scores up to rounding
    base = props([1.0 - 0.1], [1.0], [1.0 + 0.1 + 1e-15], [9.0])
    a = multi_krum(base, 2)["w"]  # keeps k - f = 2: proposal 1 and the first of 0/2
    np.testing.assert_allclose(a, [(0.9 + 1.0) / 2])


def test_fltrust_weighs_updates_by_their_agreement_with_the_reference():
    current = {"w": np.zeros(2)}
    reference = {"w": np.array([1.0, 0.0])}
    # the opposite update counts for nothing; the aligned one is rescaled to |ref|
    got = fltrust(props([3.0, 0.0], [-50.0, 0.0]), current, reference)
    np.testing.assert_allclose(got["w"], [1.0, 0.0])
    # a half-aligned update counts half and is rescaled too
    got = fltrust(props([2.0, 0.0], [0.0, 5.0], [1.0, 1.0]), current, reference)
    trust = np.sqrt(0.5)
    want = (1.0 * np.array([1.0, 0.0]) + trust * np.array([1.0, 1.0]) / np.sqrt(2)) / (1 + trust)
    np.testing.assert_allclose(got["w"], want)


def test_fltrust_keeps_the_current_weights_when_nothing_agrees():
    current = {"w": np.array([5.0, 5.0])}
    got = fltrust(props([4.0, 5.0]), current, {"w": np.array([6.0, 5.0])})
    np.testing.assert_allclose(got["w"], [5.0, 5.0])


def test_multi_krum_is_a_combiner_by_name():
    c = Combiner.parse("multi-krum:1")
    assert (c.name, c.byzantine, c.spec) == ("multi-krum", 1, "multi-krum:1")
    got = c.combine(
        [(f"l{i}", Weights(p)) for i, p in enumerate(props([1.0], [1.1], [0.9], [50.0]))]
    )
    assert abs(float(got.arrays["w"][0]) - 1.0) < 1e-9
    assert Combiner.parse("multi-krum").spec == "multi-krum"


@pytest.mark.parametrize("spec", ["multi-krum:x", "multi-krum:-1", "multi-krum:1.5"])
def test_bad_multi_krum_settings_are_refused(spec):
    with pytest.raises(ConfigError, match="multi-krum:F needs F"):
        Combiner.parse(spec)
