import pytest

from colearning.core.exceptions import ConfigError
from colearning.core.tally import passes, tally, threshold_fraction

# (votes in learner order, proposer, threshold, accepted, approvals, eligible)
CASES = [
    # one learner alone always accepts, whatever the threshold
    ([None], 0, 0.5, True, 0, 0),
    ([None], 0, 1.0, True, 0, 0),
    # two learners: the single voter decides
    ([None, True], 0, 0.5, True, 1, 1),
    ([None, False], 0, 0.5, False, 0, 1),
    ([False, None], 1, 0.5, False, 0, 1),
    # exact tie passes at 0.5
    ([None, True, False], 0, 0.5, True, 1, 2),
    ([True, None, True, False, False], 1, 0.5, True, 2, 4),
    # the proposer's own entry is ignored even if it says True
    ([True, False, False], 0, 0.5, False, 0, 2),
    # failures (None) count as not approving and stay in the denominator
    ([None, True, None, None], 0, 0.5, False, 1, 3),
    ([None, None, None, None], 0, 0.5, False, 0, 3),
    ([None, None, None, None], 0, 0.0, True, 0, 3),  # threshold 0: nobody needed
    # unanimity
    ([None, True, True, True], 0, 1.0, True, 3, 3),
    ([None, True, True, False], 0, 1.0, False, 2, 3),
    # float traps: 0.7 * 10 is 7.000000000000001 in floats, exactly 7 here
    ([None] + [True] * 7 + [False] * 3, 0, 0.7, True, 7, 10),
    ([None] + [True] * 6 + [False] * 4, 0, 0.7, False, 6, 10),
    ([None, True, True, False], 0, 2 / 3, True, 2, 3),
]


@pytest.mark.parametrize("votes, proposer, threshold, accepted, approvals, eligible", CASES)
def test_tally_table(votes, proposer, threshold, accepted, approvals, eligible):
    assert tally(votes, proposer, threshold) == (accepted, approvals, eligible)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "0.5", None, True])
def test_threshold_outside_unit_interval_is_refused(bad):
    with pytest.raises(ConfigError, match="vote_threshold"):
        threshold_fraction(bad)


def test_message_names_the_value():
    with pytest.raises(ConfigError, match=r"\[0, 1\]; got 1.5"):
        passes(1, 2, 1.5)


def test_proposer_out_of_range():
    with pytest.raises(ValueError, match="proposer index 3"):
        tally([None, True], 3, 0.5)


def test_monotone_in_approvals():
    for eligible in range(0, 12):
        results = [passes(a, eligible, 0.6) for a in range(eligible + 1)]
        assert results == sorted(results)  # once passing, more approvals keep passing
