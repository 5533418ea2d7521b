"""Sharing a data set out among learners, and splitting each share.

A partition spec is a short string:

``"iid"``
    Rows shuffled and dealt out in equal shares.
``"dirichlet:ALPHA"``
    Label skew: for every class, the shares of its rows across learners are drawn from
    ``Dirichlet(ALPHA, ..., ALPHA)``. Small ALPHA (0.1) gives each learner a few
    classes; large ALPHA (100) is close to iid. Classification data only.
``"shards:K"``
    Rows sorted by label (by target, for regression), cut into ``n_learners * K``
    contiguous shards, and each learner given K shards at random (the pathological
    non-iid split of McMahan et al., 2017).

Every random choice comes from ``np.random.default_rng(seed)``, so the same inputs
always give the same partition. Each learner's share is then split into train, vote and
test sets (default 60/20/20), shuffled for learner ``i`` with
``np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(i,)))``, the ``i``-th
child of ``seed`` (an independent stream, whatever the number of learners).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from colearning.core.exceptions import ConfigError, DataError
from colearning.data.types import Array, Dataset, LearnerData, Shares

DEFAULT_FRACTIONS: tuple[float, float, float] = (0.6, 0.2, 0.2)
#: Rows a learner needs at least, by default, in :func:`partition_dataset`.
DEFAULT_MIN_ROWS = 10
#: the smallest train, vote or test share ``--split`` takes
MIN_SPLIT_SHARE = 0.01
#: How many Dirichlet draws :func:`partition` makes to give every learner
#: ``min_rows`` rows before it settles for the fairest draw.
DIRICHLET_TRIES = 100

#: The largest ALPHA and K a spec may name: beyond them a Dirichlet split is iid in all
#: but name, and no data set has that many shards per learner.
MAX_ALPHA = 1e6
MAX_SHARDS = 1_000_000

_SPEC_HELP = "partition must be 'iid', 'dirichlet:ALPHA' (ALPHA > 0) or 'shards:K' (K >= 1)"


@dataclass(frozen=True)
class PartitionSpec:
    """A parsed partition spec: ``kind`` and its one parameter, if any."""

    kind: Literal["iid", "dirichlet", "shards"]
    alpha: float | None = None
    shards: int | None = None

    def __str__(self) -> str:
        if self.kind == "dirichlet":
            return f"dirichlet:{self.alpha!r}"  # repr: parses back to the same alpha
        if self.kind == "shards":
            return f"shards:{self.shards}"
        return "iid"


def parse_partition(spec: str | PartitionSpec) -> PartitionSpec:
    """Parse ``"iid"``, ``"dirichlet:ALPHA"`` or ``"shards:K"``.

    Raises
    ------
    ConfigError
        For anything else, naming the value.

    Examples
    --------
    >>> parse_partition("dirichlet:0.5")
    PartitionSpec(kind='dirichlet', alpha=0.5, shards=None)
    >>> parse_partition("dirichlet:-1")
    Traceback (most recent call last):
    ...
    colearning.core.exceptions.ConfigError: partition must be 'iid', 'dirichlet:ALPHA' \
(ALPHA > 0) or 'shards:K' (K >= 1); got 'dirichlet:-1'
    """
    if isinstance(spec, PartitionSpec):
        return spec
    shown = repr(spec) if len(repr(spec)) <= 60 else repr(spec)[:57] + "..."
    bad = ConfigError(f"{_SPEC_HELP}; got {shown}")
    if not isinstance(spec, str):
        raise bad
    kind, _, arg = spec.strip().partition(":")
    kind, arg = kind.strip().lower(), arg.strip()
    if kind == "iid" and not arg:
        return PartitionSpec("iid")
    if kind == "dirichlet":
        try:
            alpha = float(arg)
        except ValueError:
            raise bad from None
        if not (math.isfinite(alpha) and alpha > 0):
            raise bad
        if alpha > MAX_ALPHA:
            raise ConfigError(
                f"partition dirichlet:ALPHA takes ALPHA <= {MAX_ALPHA:g} (larger is iid in "
                f"all but name; use 'iid'); got {shown}"
            )
        return PartitionSpec("dirichlet", alpha=alpha)
    if kind == "shards":
        # plain decimal digits only: int() would also take "1_000" and other scripts' digits
        if not (arg.isascii() and arg.isdigit()) or not arg.strip("0"):
            raise bad
        if len(arg.lstrip("0")) > 7 or int(arg) > MAX_SHARDS:
            raise ConfigError(
                f"partition shards:K takes K <= {MAX_SHARDS} shards per learner (and no "
                f"more shards in all than the data set has rows); got {shown}"
            )
        return PartitionSpec("shards", shards=int(arg))
    raise bad


def _check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be an integer >= 0; got {seed!r}")


def _check_n_learners(n_learners: int) -> None:
    if isinstance(n_learners, bool) or not isinstance(n_learners, (int, np.integer)):
        raise ConfigError(f"n_learners must be an integer >= 1; got {n_learners!r}")
    if n_learners < 1:
        raise ConfigError(f"n_learners must be >= 1; got {n_learners}")


def partition(
    y: Array,
    n_learners: int,
    spec: str | PartitionSpec,
    seed: int,
    *,
    min_rows: int = 0,
) -> list[Array]:
    """Share the rows of a data set with labels ``y`` out among ``n_learners``.

    Parameters
    ----------
    y
        Labels (or regression targets, for ``"iid"`` and ``"shards:K"``).
    n_learners
        How many shares, >= 1.
    spec
        ``"iid"``, ``"dirichlet:ALPHA"`` or ``"shards:K"`` (see the module docstring).
    seed
        Seeds ``np.random.default_rng``; the same inputs give the same partition.
    min_rows
        For ``"dirichlet:ALPHA"`` only: redraw (up to ``DIRICHLET_TRIES`` times) until
        every learner has at least this many rows; if no draw manages, the draw whose
        smallest share is largest is returned, and the caller decides
        (:func:`partition_dataset` raises :class:`DataError`).

    Returns
    -------
    list of numpy.ndarray
        One sorted ``int64`` index array per learner; disjoint, together covering
        every row. A share may be empty: check it, or use :func:`partition_dataset`.

    Raises
    ------
    ConfigError
        For a bad spec, ``n_learners < 1``, or Dirichlet skew on non-integer labels.

    Examples
    --------
    >>> import numpy as np
    >>> parts = partition(np.array([0, 0, 1, 1, 2, 2]), 3, "iid", seed=0)
    >>> sorted(np.concatenate(parts).tolist())
    [0, 1, 2, 3, 4, 5]
    """
    parsed = parse_partition(spec)
    _check_n_learners(n_learners)
    _check_seed(seed)
    y = np.asarray(y)
    if y.ndim != 1:
        raise ConfigError(f"y must be a 1-D array of labels; got shape {y.shape}")
    rng = np.random.default_rng(seed)
    if parsed.kind == "iid":
        parts = np.array_split(rng.permutation(len(y)), n_learners)
    elif parsed.kind == "shards":
        assert parsed.shards is not None
        parts = _shards(y, n_learners, parsed.shards, rng)
    else:
        assert parsed.alpha is not None
        if y.dtype.kind not in "iub":
            raise ConfigError(
                f"partition {str(parsed)!r} needs integer class labels; got {y.dtype} "
                "targets (for regression use 'iid' or 'shards:K')"
            )
        parts = _dirichlet(y, n_learners, parsed.alpha, rng, min_rows)
    return [np.sort(p).astype(np.int64) for p in parts]


def _shards(y: Array, n_learners: int, k: int, rng: np.random.Generator) -> list[Array]:
    # Shuffle before the stable sort so that rows of one label land in shards at random.
    shuffled = rng.permutation(len(y))
    order = shuffled[np.argsort(y[shuffled], kind="stable")]
    shards = np.array_split(order, n_learners * k)
    owners = rng.permutation(n_learners * k).reshape(n_learners, k)
    return [np.concatenate([shards[s] for s in row]) for row in owners]


def _dirichlet(
    y: Array, n_learners: int, alpha: float, rng: np.random.Generator, min_rows: int
) -> list[Array]:
    classes = np.unique(y)
    by_class = [np.flatnonzero(y == c) for c in classes]
    best: list[Array] | None = None
    best_min = -1
    for _ in range(DIRICHLET_TRIES):
        shares: list[list[Array]] = [[] for _ in range(n_learners)]
        for rows in by_class:
            rows = rng.permutation(rows)
            proportions = rng.dirichlet(np.full(n_learners, alpha))
            cuts = (np.cumsum(proportions)[:-1] * len(rows)).astype(np.int64)
            for learner, piece in enumerate(np.split(rows, cuts)):
                shares[learner].append(piece)
        parts = [np.concatenate(s) for s in shares]
        smallest = min(len(p) for p in parts)
        if smallest > best_min:
            best, best_min = parts, smallest
        if smallest >= min_rows:
            break
    assert best is not None
    return best


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    values = tuple(float(f) for f in fractions)
    if (
        len(values) != 3
        or not all(math.isfinite(f) and f > 0 for f in values)
        or not math.isclose(sum(values), 1.0, abs_tol=1e-9)
    ):
        raise ConfigError(
            "fractions must be three numbers > 0 (train, vote, test) that sum to 1; "
            f"got {tuple(fractions)!r}"
        )
    return values[0], values[1], values[2]


def parse_split(text: str) -> tuple[float, float, float]:
    """The train, vote and test shares written ``TRAIN,VOTE,TEST`` (``colearn run
    --split``), each > 0, summing to 1.

    >>> parse_split("0.5,0.3,0.2")
    (0.5, 0.3, 0.2)
    """
    parts = str(text).split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3:
        raise ConfigError(
            f"split must be three shares TRAIN,VOTE,TEST, e.g. 0.6,0.2,0.2 (the default); "
            f"got {text!r}"
        )
    try:
        fractions = _check_fractions(values)
    except ConfigError:
        raise ConfigError(
            f"split must be three shares TRAIN,VOTE,TEST, each > 0, that sum to 1, e.g. "
            f"0.5,0.3,0.2; got {text!r} (sum {sum(values):g})"
        ) from None
    if min(fractions) < MIN_SPLIT_SHARE:
        raise ConfigError(
            f"split shares must each be at least {MIN_SPLIT_SHARE:g} (a split with fewer "
            f"rows than that in one part leaves it empty on most learners); got {text!r}"
        )
    return fractions


def split_sizes(
    n_rows: int, fractions: Sequence[float] = DEFAULT_FRACTIONS
) -> tuple[int, int, int]:
    """Rows of train, vote and test for a share of ``n_rows``.

    Largest-remainder rounding: the sizes add up to ``n_rows`` and each is within one
    row of its exact fraction.

    Examples
    --------
    >>> split_sizes(10)
    (6, 2, 2)
    >>> split_sizes(7)
    (4, 2, 1)
    """
    exact = [f * n_rows for f in _check_fractions(fractions)]
    sizes = [math.floor(e) for e in exact]
    # Ties go to the earlier split (train, then vote), hence the stable sort.
    by_remainder = sorted(range(3), key=lambda i: -(exact[i] - sizes[i]))
    for i in by_remainder[: n_rows - sum(sizes)]:
        sizes[i] += 1
    return sizes[0], sizes[1], sizes[2]


def min_rows_for(fractions: Sequence[float] = DEFAULT_FRACTIONS) -> int:
    """The fewest rows for which train, vote and test each get at least one row.

    Examples
    --------
    >>> min_rows_for((0.6, 0.2, 0.2))
    4
    """
    _check_fractions(fractions)
    n = 3
    while min(split_sizes(n, fractions)) < 1:
        n += 1
    return n


def split_indices(
    indices: Array,
    seed: int | Sequence[int] | np.random.SeedSequence,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
) -> tuple[Array, Array, Array]:
    """The train, vote and test rows of one learner's ``indices`` (shuffled with
    ``np.random.default_rng(seed)``, sizes by :func:`split_sizes`).

    Examples
    --------
    >>> import numpy as np
    >>> [len(s) for s in split_indices(np.arange(10), seed=0)]
    [6, 2, 2]
    """
    n_train, n_vote, _ = split_sizes(len(indices), fractions)
    order = np.random.default_rng(seed).permutation(np.asarray(indices, dtype=np.int64))
    return order[:n_train], order[n_train : n_train + n_vote], order[n_train + n_vote :]


def split_learner_data(
    X: Array,
    y: Array,
    indices: Array,
    seed: int | Sequence[int] | np.random.SeedSequence,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
) -> LearnerData:
    """Split one learner's rows into train, vote and test sets.

    Parameters
    ----------
    X, y
        The whole data set.
    indices
        This learner's rows (from :func:`partition`).
    seed
        Seeds the shuffle (``np.random.default_rng(seed)``): an int, a sequence of
        ints, or a ``SeedSequence``.
    fractions
        Shares of train, vote and test, each > 0, summing to 1 (sizes by
        :func:`split_sizes`).

    Returns
    -------
    LearnerData
        Copies of the rows; a split may be empty when ``indices`` is very short.

    Examples
    --------
    >>> import numpy as np
    >>> X, y = np.arange(20.0).reshape(10, 2), np.arange(10) % 2
    >>> split_learner_data(X, y, np.arange(10), seed=0).sizes
    (6, 2, 2)
    """
    return learner_data(X, y, split_indices(indices, seed, fractions))


def learner_data(X: Array, y: Array, rows: tuple[Array, Array, Array]) -> LearnerData:
    """The :class:`LearnerData` of ``(train, vote, test)`` row indices into ``X, y``."""
    train, vote, test = rows
    return LearnerData(train=(X[train], y[train]), vote=(X[vote], y[vote]), test=(X[test], y[test]))


def _fix(parsed: PartitionSpec) -> str:
    if parsed.kind == "dirichlet":
        return "use fewer learners, a larger alpha, or 'iid'"
    # iid and shards both give every learner about len(y) / n_learners rows
    return "use fewer learners or a larger data set"


def partition_dataset(
    dataset: Dataset,
    n_learners: int,
    spec: str | PartitionSpec,
    seed: int,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    min_rows: int = DEFAULT_MIN_ROWS,
) -> list[LearnerData]:
    """Share ``dataset`` out among ``n_learners`` and split each share (the rows of
    :func:`partition_indices`).

    The learners' arrays are read-only views into one copy of the data set
    (:func:`share_dataset`), not a copy each.

    The learners' arrays are read-only views into one copy of the data set
    (:func:`share_dataset`), not a copy each.

    Parameters
    ----------
    dataset
        The whole data set.
    n_learners
        How many learners, >= 1.
    spec
        ``"iid"``, ``"dirichlet:ALPHA"`` or ``"shards:K"``.
    seed
        Seeds the partition and every learner's split.
    fractions
        Train, vote and test shares of each learner's rows.
    min_rows
        Rows every learner needs at least; never fewer than train, vote and test one
        row each need (:func:`min_rows_for`). Dirichlet draws are redrawn (seeded, a
        bounded number of times) until every learner has this many.

    Returns
    -------
    list of LearnerData
        One per learner, in learner order.

    Raises
    ------
    DataError
        If a learner would get fewer than ``min_rows`` rows, naming the learner, its
        row count and the fix.
    ConfigError
        For a bad spec, ``n_learners``, ``fractions`` or ``min_rows``.

    Examples
    --------
    >>> from colearning.data.datasets import load_dataset
    >>> parts = partition_dataset(load_dataset("iris"), 3, "iid", seed=0)
    >>> [p.sizes for p in parts]
    [(30, 10, 10), (30, 10, 10), (30, 10, 10)]
    """
    return share_dataset(dataset, n_learners, spec, seed, fractions, min_rows).parts()


def share_dataset(
    dataset: Dataset,
    n_learners: int,
    spec: str | PartitionSpec,
    seed: int,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    min_rows: int = DEFAULT_MIN_ROWS,
) -> Shares:
    """:func:`partition_dataset` as one :class:`~colearning.data.types.Shares`: every
    learner's rows (train, vote, test, learner after learner) gathered once into one
    read-only buffer, which each learner's data views. Same arguments, same rows in the
    same order as :func:`partition_indices` gives each learner.

    Examples
    --------
    >>> from colearning.data.datasets import load_dataset
    >>> shares = share_dataset(load_dataset("iris"), 3, "iid", seed=0)
    >>> shares.X.shape, shares.bounds[1].tolist(), shares.part(1).vote[0].base is not None
    ((150, 4), [50, 80, 90, 100], True)
    """
    rows = partition_indices(dataset, n_learners, spec, seed, fractions, min_rows)
    bounds, start = np.zeros((len(rows), 4), dtype=np.int64), 0
    for i, (train, vote, test) in enumerate(rows):
        n_train, n_vote = len(train), len(vote)
        bounds[i] = (
            start,
            start + n_train,
            start + n_train + n_vote,
            start + n_train + n_vote + len(test),
        )
        start = int(bounds[i, 3])
    gather = np.concatenate([np.concatenate(r) for r in rows]) if rows else np.zeros(0, np.int64)
    return Shares(dataset.X[gather], dataset.y[gather], bounds)


def partition_indices(
    dataset: Dataset,
    n_learners: int,
    spec: str | PartitionSpec,
    seed: int,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    min_rows: int = DEFAULT_MIN_ROWS,
) -> list[tuple[Array, Array, Array]]:
    """The ``(train, vote, test)`` row indices :func:`partition_dataset` gives each
    learner, so that another program can read the very same shares (the benchmark
    against Flower writes them to a file). Same arguments and errors.

    Examples
    --------
    >>> from colearning.data.datasets import load_dataset
    >>> rows = partition_indices(load_dataset("iris"), 3, "iid", seed=0)
    >>> [len(r) for r in rows[0]]
    [30, 10, 10]
    """
    parsed = parse_partition(spec)
    _check_n_learners(n_learners)
    _check_seed(seed)
    if isinstance(min_rows, bool) or not isinstance(min_rows, (int, np.integer)) or min_rows < 0:
        raise ConfigError(f"min_rows must be an integer >= 0; got {min_rows!r}")
    if parsed.kind == "dirichlet" and dataset.kind != "classification":
        raise ConfigError(
            f"partition {str(parsed)!r} skews class labels, but {dataset.name} is a "
            f"{dataset.kind} data set; use 'iid' or 'shards:K'"
        )
    need = max(int(min_rows), min_rows_for(fractions))
    parts = partition(dataset.y, n_learners, parsed, seed, min_rows=need)
    for i, rows in enumerate(parts):
        if len(rows) < need:
            raise DataError(
                f"learner {i} of {n_learners} gets {len(rows)} rows of {dataset.name} "
                f"({len(dataset)} rows) with partition {str(parsed)!r}, fewer than the "
                f"{need} each learner needs; {_fix(parsed)}"
            )
    return [
        split_indices(rows, np.random.SeedSequence(seed, spawn_key=(i,)), fractions)
        for i, rows in enumerate(parts)
    ]
