"""Learners' data are views into one buffer: the rows of split_learner_data, shared."""

import numpy as np

from colearning.data import Dataset, partition_dataset, share_dataset, split_learner_data
from colearning.data.partition import partition


def dataset(rows=300):
    rng = np.random.default_rng(1)
    return Dataset("toy", rng.normal(size=(rows, 3)), rng.integers(0, 3, rows))


def test_shares_hold_the_same_rows_as_each_learners_own_split():
    ds = dataset()
    shares = share_dataset(ds, 4, "dirichlet:1.0", seed=3)
    for i, rows in enumerate(partition(ds.y, 4, "dirichlet:1.0", 3, min_rows=10)):
        own = split_learner_data(ds.X, ds.y, rows, np.random.SeedSequence(3, spawn_key=(i,)))
        part = shares.part(i)
        for split in ("train", "vote", "test"):
            for a, b in zip(getattr(part, split), getattr(own, split), strict=True):
                assert np.array_equal(a, b)


def test_every_learner_views_one_read_only_buffer():
    ds = dataset()
    shares = share_dataset(ds, 5, "iid", seed=0)
    assert shares.X.nbytes == ds.X.nbytes  # one copy of the data set, not one per learner
    for part in partition_dataset(ds, 5, "iid", seed=0) + shares.parts():
        for X, y in (part.train, part.vote, part.test):
            assert not X.flags.writeable and not y.flags.writeable
    for part in shares.parts():
        for X, _ in (part.train, part.vote, part.test):
            assert np.shares_memory(X, shares.X)
    # learner after learner, train then vote then test
    assert shares.bounds[0, 0] == 0 and shares.bounds[-1, 3] == len(ds)
    assert (shares.bounds[1:, 0] == shares.bounds[:-1, 3]).all()
