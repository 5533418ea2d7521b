"""Partitions: specs, coverage, seeding, skew, and learners left without data."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from colearning.core.exceptions import ConfigError, DataError
from colearning.data import (
    Dataset,
    PartitionSpec,
    load_dataset,
    min_rows_for,
    parse_partition,
    parse_split,
    partition,
    partition_dataset,
    split_learner_data,
    split_sizes,
)

SPECS = ["iid", "dirichlet:0.5", "dirichlet:0.1", "shards:2"]


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def label_shares(y, parts, n_classes):
    return np.array([np.bincount(y[p], minlength=n_classes) / max(len(p), 1) for p in parts])


def skew(y, parts, n_classes):
    """Mean total-variation distance between a learner's labels and all labels."""
    overall = np.bincount(y, minlength=n_classes) / len(y)
    return float(np.mean(0.5 * np.abs(label_shares(y, parts, n_classes) - overall).sum(axis=1)))


# -- specs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("iid", PartitionSpec("iid")),
        ("dirichlet:0.5", PartitionSpec("dirichlet", alpha=0.5)),
        (" Dirichlet: 2 ", PartitionSpec("dirichlet", alpha=2.0)),
        ("shards:3", PartitionSpec("shards", shards=3)),
    ],
)
def test_parse_partition_accepts_the_three_forms(spec, parsed):
    assert parse_partition(spec) == parsed
    assert parse_partition(parsed) is parsed


@pytest.mark.parametrize(
    "spec",
    [
        "dirichlet:-1",
        "dirichlet:0",
        "dirichlet:",
        "dirichlet:x",
        "dirichlet:nan",
        "dirichlet:inf",
        "shards:0",
        "shards:1.5",
        "shards:",
        "iid:2",
        "random",
        "",
        3,
        None,
    ],
)
def test_bad_specs_are_config_errors_naming_the_value(spec):
    with pytest.raises(ConfigError) as info:
        parse_partition(spec)
    assert str(info.value).startswith("partition must be 'iid', 'dirichlet:ALPHA' (ALPHA > 0)")
    assert f"got {spec!r}" in str(info.value)


def test_bad_spec_message_in_full():
    with pytest.raises(ConfigError) as info:
        partition(np.zeros(10, int), 2, "dirichlet:-1", seed=0)
    assert str(info.value) == (
        "partition must be 'iid', 'dirichlet:ALPHA' (ALPHA > 0) or 'shards:K' (K >= 1); "
        "got 'dirichlet:-1'"
    )


@pytest.mark.parametrize("n", [0, -3, 2.5, True])
def test_n_learners_must_be_a_positive_integer(n):
    with pytest.raises(ConfigError, match="n_learners must be"):
        partition(np.zeros(10, int), n, "iid", seed=0)


@pytest.mark.parametrize("seed", [-1, 1.5])
def test_seed_must_be_a_non_negative_integer(seed):
    with pytest.raises(ConfigError, match="seed must be an integer >= 0"):
        partition(np.zeros(10, int), 2, "iid", seed=seed)


def test_dirichlet_refuses_float_targets():
    with pytest.raises(ConfigError, match="needs integer class labels"):
        partition(np.linspace(0, 1, 20), 2, "dirichlet:1", seed=0)


# -- partition --------------------------------------------------------------------------


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("n_learners", [1, 3, 10])
def test_partitions_are_disjoint_and_cover_every_row(digits, spec, n_learners):
    parts = partition(digits.y, n_learners, spec, seed=0)
    assert len(parts) == n_learners
    assert all(p.dtype == np.int64 for p in parts)
    everything = np.concatenate(parts)
    assert len(everything) == len(digits.y)
    assert np.array_equal(np.sort(everything), np.arange(len(digits.y)))


@pytest.mark.parametrize("spec", SPECS)
def test_partitions_are_seeded(digits, spec):
    a = partition(digits.y, 5, spec, seed=7)
    b = partition(digits.y, 5, spec, seed=7)
    c = partition(digits.y, 5, spec, seed=8)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_iid_shares_are_equal_in_size_and_in_labels(digits):
    parts = partition(digits.y, 5, "iid", seed=0)
    assert {len(p) for p in parts} <= {359, 360}
    assert skew(digits.y, parts, 10) < 0.08


def test_small_alpha_skews_labels_far_more_than_iid(digits):
    iid = np.mean([skew(digits.y, partition(digits.y, 10, "iid", s), 10) for s in range(3)])
    low = np.mean(
        [skew(digits.y, partition(digits.y, 10, "dirichlet:0.1", s), 10) for s in range(3)]
    )
    high = np.mean(
        [skew(digits.y, partition(digits.y, 10, "dirichlet:1000", s), 10) for s in range(3)]
    )
    assert low > 0.5
    assert low > 5 * iid
    assert high < 0.1  # a very large alpha is close to iid


def test_small_alpha_leaves_learners_with_few_classes(digits):
    parts = partition(digits.y, 10, "dirichlet:0.1", seed=0)
    # "present" = at least 5% of the learner's rows
    dominant = [(label_shares(digits.y, [p], 10)[0] >= 0.05).sum() for p in parts]
    assert np.mean(dominant) < 5


def test_shards_give_each_learner_few_labels(digits):
    n, k = 10, 2
    parts = partition(digits.y, n, f"shards:{k}", seed=0)
    # 20 shards of ~90 rows over classes of ~180 rows: a shard spans <= 2 labels
    assert all(len(np.unique(digits.y[p])) <= 2 * k for p in parts)
    assert {len(p) for p in parts} <= {179, 180}
    assert skew(digits.y, parts, 10) > 0.5


def test_one_shard_per_learner_of_sorted_labels_is_nearly_pure(digits):
    parts = partition(digits.y, 10, "shards:1", seed=3)
    # classes of 174..183 rows in shards of ~180: a shard is almost all one label
    assert all(label_shares(digits.y, [p], 10).max() > 0.95 for p in parts)
    assert all(len(np.unique(digits.y[p])) <= 3 for p in parts)


def test_shards_sort_regression_targets():
    y = np.linspace(0.0, 1.0, 100)
    parts = partition(y, 4, "shards:1", seed=0)
    # y is increasing, so one contiguous range of targets is one run of row numbers
    for p in parts:
        assert len(p) == 25 and np.all(np.diff(np.sort(p)) == 1)


def test_dirichlet_redraws_until_every_learner_has_min_rows(digits):
    first = partition(digits.y, 10, "dirichlet:0.1", seed=1)
    assert min(len(p) for p in first) < 60  # the first draw starves someone
    redrawn = partition(digits.y, 10, "dirichlet:0.1", seed=1, min_rows=60)
    assert min(len(p) for p in redrawn) >= 60
    again = partition(digits.y, 10, "dirichlet:0.1", seed=1, min_rows=60)
    assert all(np.array_equal(a, b) for a, b in zip(redrawn, again, strict=True))


# -- splits -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "sizes"), [(10, (6, 2, 2)), (7, (4, 2, 1)), (100, (60, 20, 20)), (4, (2, 1, 1))]
)
def test_split_sizes_round_by_largest_remainder(n, sizes):
    assert split_sizes(n) == sizes
    assert sum(split_sizes(n)) == n


def test_min_rows_for_default_fractions():
    assert min_rows_for() == 4
    assert min(split_sizes(3)) == 0
    assert min_rows_for((0.8, 0.1, 0.1)) == 7  # (5, 1, 1)


@pytest.mark.parametrize(
    "fractions", [(0.6, 0.2), (0.6, 0.3, 0.2), (0.8, 0.2, 0.0), (1.2, -0.1, -0.1)]
)
def test_bad_fractions_are_config_errors(fractions):
    with pytest.raises(ConfigError, match="fractions must be three numbers > 0"):
        split_sizes(10, fractions)


def test_split_learner_data_is_a_seeded_disjoint_shuffle():
    X = np.arange(200, dtype=np.float32).reshape(100, 2)
    y = np.arange(100)
    rows = np.arange(10, 60)
    data = split_learner_data(X, y, rows, seed=1)
    assert data.sizes == (30, 10, 10)
    labels = np.concatenate([data.train[1], data.vote[1], data.test[1]])
    assert sorted(labels.tolist()) == rows.tolist()
    np.testing.assert_array_equal(data.train[0][:, 0], data.train[1] * 2)  # rows stay whole
    assert not np.array_equal(data.train[1], np.sort(data.train[1]))  # shuffled
    same = split_learner_data(X, y, rows, seed=1)
    other = split_learner_data(X, y, rows, seed=2)
    np.testing.assert_array_equal(data.train[1], same.train[1])
    assert not np.array_equal(data.train[1], other.train[1])


def test_split_learner_data_custom_fractions():
    X, y = np.zeros((20, 1)), np.zeros(20, int)
    assert split_learner_data(X, y, np.arange(20), 0, (0.5, 0.25, 0.25)).sizes == (10, 5, 5)


# -- partition_dataset ------------------------------------------------------------------


@pytest.mark.parametrize("spec", SPECS)
def test_partition_dataset_gives_every_learner_three_non_empty_splits(digits, spec):
    parts = partition_dataset(digits, 5, spec, seed=0)
    assert len(parts) == 5
    assert sum(sum(p.sizes) for p in parts) == len(digits)
    for p in parts:
        assert min(p.sizes) >= 1
        assert p.train[0].dtype == np.float32 and p.train[1].dtype == np.int64
    again = partition_dataset(digits, 5, spec, seed=0)
    for a, b in zip(parts, again, strict=True):
        np.testing.assert_array_equal(a.vote[0], b.vote[0])


def test_learners_are_shuffled_with_their_own_streams(digits):
    ids = Dataset("ids", digits.X, np.arange(len(digits)))  # y = row number
    rows = partition(ids.y, 2, "iid", seed=0)
    parts = partition_dataset(ids, 2, "iid", seed=0)
    # where in its own sorted rows each learner's first train rows come from
    patterns = [np.searchsorted(rows[i], parts[i].train[1][:50]) for i in range(2)]
    assert not np.array_equal(patterns[0], patterns[1])


def test_starving_dirichlet_partition_names_learner_rows_and_fix(digits):
    with pytest.raises(DataError) as info:
        partition_dataset(digits, 50, "dirichlet:0.05", seed=0)
    message = str(info.value)
    assert message.startswith("learner ")
    assert " of 50 gets " in message
    assert "rows of digits (1797 rows) with partition 'dirichlet:0.05'" in message
    assert message.endswith("use fewer learners, a larger alpha, or 'iid'")


def test_too_many_learners_for_iid_is_a_data_error(digits):
    with pytest.raises(DataError, match=r"learner 0 of 200 gets 9 rows of digits .*'iid'"):
        partition_dataset(digits, 200, "iid", seed=0)
    assert len(partition_dataset(digits, 200, "iid", seed=0, min_rows=5)) == 200


def test_min_rows_never_drops_below_one_row_per_split(digits):
    tiny = Dataset("tiny", digits.X[:9], digits.y[:9])
    with pytest.raises(DataError, match="gets 3 rows of tiny .* fewer than the 4 each"):
        partition_dataset(tiny, 3, "iid", seed=0, min_rows=0)


def test_too_many_learners_for_shards_is_a_data_error(digits):
    with pytest.raises(DataError, match="with partition 'shards:2', .*; use fewer learners"):
        partition_dataset(digits, 200, "shards:2", seed=0)


def test_dirichlet_partition_dataset_redraws_to_feed_everyone(digits):
    parts = partition_dataset(digits, 10, "dirichlet:0.1", seed=1, min_rows=60)
    assert min(sum(p.sizes) for p in parts) >= 60


def test_dirichlet_on_regression_data_is_a_config_error():
    diabetes = load_dataset("diabetes")
    with pytest.raises(ConfigError, match="diabetes is a regression data set; use 'iid'"):
        partition_dataset(diabetes, 3, "dirichlet:1", seed=0)
    assert len(partition_dataset(diabetes, 3, "shards:2", seed=0)) == 3


@pytest.mark.parametrize("min_rows", [-1, 2.5])
def test_bad_min_rows(digits, min_rows):
    with pytest.raises(ConfigError, match="min_rows must be"):
        partition_dataset(digits, 2, "iid", seed=0, min_rows=min_rows)


@pytest.mark.parametrize("spec", ["iid", "dirichlet:0.5", "shards:2"])
def test_partition_indices_are_the_rows_partition_dataset_gives(spec):
    from colearning.data import load_dataset, partition_dataset, partition_indices

    dataset = load_dataset("digits")
    parts = partition_dataset(dataset, 7, spec, seed=3)
    rows = partition_indices(dataset, 7, spec, seed=3)
    for part, (train, vote, test) in zip(parts, rows, strict=True):
        for (X, y), idx in ((part.train, train), (part.vote, vote), (part.test, test)):
            np.testing.assert_array_equal(X, dataset.X[idx])
            np.testing.assert_array_equal(y, dataset.y[idx])
    every = np.concatenate([np.concatenate(r) for r in rows])
    assert sorted(every.tolist()) == list(range(len(dataset)))


@settings(max_examples=500, deadline=None)
@given(
    st.text(max_size=30)
    | st.builds(
        lambda kind, arg: f"{kind}:{arg}",
        st.sampled_from(["iid", "dirichlet", "shards", "SHARDS", " shards "]),
        st.integers(-5, 10**30).map(str)
        | st.floats(allow_nan=True, allow_infinity=True).map(repr)
        | st.sampled_from(["1_000", "+5", "٣", "9" * 5000, "0005", "1e400", ""]),
    )
)
def test_any_partition_string_is_a_spec_or_a_config_error(text):
    from colearning.data.partition import MAX_ALPHA, MAX_SHARDS, PartitionSpec

    try:
        spec = parse_partition(text)
    except ConfigError as exc:
        assert len(str(exc)) < 300  # a long value is shortened, not echoed
        return
    assert isinstance(spec, PartitionSpec)
    assert parse_partition(str(spec)) == spec
    if spec.kind == "shards":
        assert spec.shards is not None and 1 <= spec.shards <= MAX_SHARDS
    if spec.kind == "dirichlet":
        assert spec.alpha is not None and 0 < spec.alpha <= MAX_ALPHA


@pytest.mark.parametrize(
    "text, shares",
    [("0.6,0.2,0.2", (0.6, 0.2, 0.2)), (" 0.4, 0.4 ,0.2", (0.4, 0.4, 0.2)), ("1/2,0,0", None)],
)
def test_parse_split_reads_three_shares(text, shares):
    if shares is None:
        with pytest.raises(ConfigError, match="split must be three shares"):
            parse_split(text)
    else:
        assert parse_split(text) == shares


@pytest.mark.parametrize(
    "text, message",
    [
        ("0.5,0.3", "three shares TRAIN,VOTE,TEST, e.g. 0.6,0.2,0.2"),
        ("0.5,0.5,0.5", "that sum to 1, e.g. 0.5,0.3,0.2; got '0.5,0.5,0.5' (sum 1.5)"),
        ("1,0,0", "each > 0"),
        ("nan,0.5,0.5", "each > 0"),
        ("0.98,0.015,0.005", "must each be at least 0.01"),
    ],
)
def test_a_bad_split_names_the_value_and_the_form(text, message):
    with pytest.raises(ConfigError) as err:
        parse_split(text)
    assert message in str(err.value)
