"""How an aggregate round turns several proposals into one candidate: pure functions.

Each combiner takes the proposals' named arrays (in the plan's proposer order) and
returns one set of named arrays of the same names, shapes and dtypes:

``mean``
    The data-size-weighted mean (FedAvg's rule): proposal ``i`` counts in proportion
    to its learner's train rows (equal weights where sizes are not known). Not robust:
    one poisoned proposal moves it anywhere, and a learner that overstates its size
    steers it.
``median``
    The coordinate-wise median. Each coordinate is the median of the proposals'
    values, so fewer than half of the proposals cannot move it outside the range of
    the others' values.
``trimmed-mean`` (``trimmed-mean:TRIM``, default ``TRIM = 0.2``)
    The coordinate-wise trimmed mean: at each coordinate the ``c = ceil(TRIM * k)``
    largest and ``c`` smallest of the ``k`` values are cut (never so many that nothing
    is left: ``c <= (k - 1) // 2``) and the rest averaged. With ``k >= 3`` it tolerates
    at least one poisoned proposal, and ``c`` of them in general.

``multi-krum`` (``multi-krum:F``, default ``F = (k - 3) // 2``)
    Multi-Krum (Blanchard et al. 2017): each proposal is scored by the sum of its
    squared distances to its ``k - F - 2`` nearest others; the ``k - F`` best scored
    are averaged. Tolerates ``F`` poisoned proposals when ``k > 2F + 2``.

:func:`fltrust` (FLTrust, Cao et al. 2021) is here as a pure function, not a
``--combiner``: it needs a reference update that a server trains on a clean root data
set of its own, and this protocol has no trusted server (``colearn bench robustness``
gives it one, as a reference baseline).

The robust combiners ignore data sizes: a claim about one's data is exactly what a
robust rule must not trust. Floats are combined in float64 and cast back to the
proposals' dtype; the sums run in a fixed order with NumPy's element-wise arithmetic
(no BLAS), so the same proposals give the same bits, and so the same weights id, on
every run. Integer arrays (counters such as batch norm's ``num_batches_tracked``)
take the lower coordinate-wise median whatever the combiner, so they stay integers and
one proposal cannot inflate them. A ``uint8`` encoded model (a booster, a forest) is not
a set of coordinates: combining one is refused.

A **server step** (FedAvgM, Hsu et al. 2019) can follow any combiner: with
``server_lr`` (``eta``) and ``server_momentum`` (``beta``) the candidate is
``current + eta * (combined - current) + beta * (current - previous)``, where
``previous`` is the shared model before the step the last round adopted
(:func:`server_step`). That is FedAvg with server momentum (heavy ball) written over
adopted models: the momentum is the last step the voters approved, read from the record
(two adopted models), not kept as hidden state, so a resumed run computes the same
candidate to the bit. After a rejected round there is no momentum term: the vote
restarts it, as an adaptive restart does when the objective rises (O'Donoghue and
Candes 2015), and a step the voters turned down is not pushed again.
The defaults (``eta = 1``, ``beta = 0``) leave the combined proposals as they are.

Nothing here imports anything beyond NumPy; these are the functions a ledger or another
party can re-run to check a candidate.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from colearning.core.exceptions import ConfigError, WeightsError
from colearning.core.interface import Array, Weights

#: The names ``colearn run --combiner`` takes (``trimmed-mean:TRIM`` sets the trim).
COMBINERS = ("mean", "median", "trimmed-mean", "multi-krum")
DEFAULT_TRIM = 0.2

Arrays = Mapping[str, Array]


# -- the pure functions -------------------------------------------------------------------


def weighted_mean(
    proposals: Sequence[Arrays], sizes: Sequence[float] | None = None
) -> dict[str, Array]:
    """The mean of ``proposals`` weighted by ``sizes`` (equal weights if ``None``).

    >>> import numpy as np
    >>> weighted_mean([{"w": np.array([0.0])}, {"w": np.array([3.0])}], [2, 1])["w"]
    array([1.])
    """
    names = _check(proposals)
    share = _shares(len(proposals), sizes)
    out: dict[str, Array] = {}
    for name in names:
        first = proposals[0][name]
        if first.dtype.kind != "f":
            out[name] = _lower_median([p[name] for p in proposals])
            continue
        acc = np.zeros(first.shape, np.float64)
        wide = first.dtype == np.float64  # no copy to widen (the same bits either way)
        for p, s in zip(proposals, share, strict=True):
            acc += s * (p[name] if wide else p[name].astype(np.float64))
        out[name] = _as(acc, first)
    return out


def coordinate_median(proposals: Sequence[Arrays]) -> dict[str, Array]:
    """The coordinate-wise median (the mean of the two middle values for even ``k``).

    >>> import numpy as np
    >>> ps = [{"w": np.array(v)} for v in ([1.0, 5.0], [2.0, 6.0], [1e9, -1e9])]
    >>> coordinate_median(ps)["w"]
    array([2., 5.])
    """
    names = _check(proposals)
    out: dict[str, Array] = {}
    for name in names:
        first = proposals[0][name]
        if first.dtype.kind != "f":
            out[name] = _lower_median([p[name] for p in proposals])
            continue
        stacked = _sorted_stack([p[name] for p in proposals])
        k = len(proposals)
        middle = (stacked[(k - 1) // 2] + stacked[k // 2]) / 2.0
        out[name] = _as(middle, first)
    return out


def trimmed_mean(proposals: Sequence[Arrays], trim: float = DEFAULT_TRIM) -> dict[str, Array]:
    """The coordinate-wise mean after cutting ``trim_count(trim, k)`` values from each end.

    >>> import numpy as np
    >>> ps = [{"w": np.array([v])} for v in (1.0, 2.0, 3.0, 4.0, 1e9)]
    >>> trimmed_mean(ps, 0.2)["w"]
    array([3.])
    """
    names = _check(proposals)
    cut = trim_count(trim, len(proposals))
    out: dict[str, Array] = {}
    for name in names:
        first = proposals[0][name]
        if first.dtype.kind != "f":
            out[name] = _lower_median([p[name] for p in proposals])
            continue
        kept = _sorted_stack([p[name] for p in proposals])[cut : len(proposals) - cut]
        acc = np.zeros(first.shape, np.float64)
        for row in kept:  # a fixed order, element-wise: the same bits every run
            acc += row
        out[name] = _as(acc / len(kept), first)
    return out


def server_step(
    combined: Arrays,
    current: Arrays,
    previous: Arrays | None,
    lr: float = 1.0,
    momentum: float = 0.0,
) -> dict[str, Array]:
    """``current + lr * (combined - current) + momentum * (current - previous)`` for the
    float arrays (in float64, cast back); the integer arrays stay ``combined``'s. With
    ``previous`` ``None`` (nothing adopted yet) there is no momentum term.

    >>> import numpy as np
    >>> cur, prev = {"w": np.array([1.0])}, {"w": np.array([0.5])}
    >>> server_step({"w": np.array([2.0])}, cur, prev, lr=2.0, momentum=0.5)["w"]
    array([3.25])
    """
    _check_server(lr, momentum)
    sources = [combined, current] if previous is None else [combined, current, previous]
    names = _check(sources)
    out: dict[str, Array] = {}
    for name in names:
        new = combined[name]
        if new.dtype.kind != "f":
            out[name] = np.array(new, copy=True)
            continue
        base = current[name].astype(np.float64)
        step = base + lr * (new.astype(np.float64) - base)
        if previous is not None and momentum:
            step = step + momentum * (base - previous[name].astype(np.float64))
        out[name] = _as(step, new)
    return out


def trim_count(trim: float, k: int) -> int:
    """Values cut from each end by the trimmed mean of ``k`` values: ``ceil(trim * k)``,
    but never so many that nothing is left.

    >>> [trim_count(0.2, k) for k in (1, 2, 3, 5, 10, 11)]
    [0, 0, 1, 1, 2, 3]
    """
    _check_trim(trim)
    return min(math.ceil(trim * k - 1e-12), (k - 1) // 2)


#: Scores within this relative distance of each other rank as equal (by position), so
#: which proposals Multi-Krum keeps never rests on float noise.
_SCORE_RTOL = 1e-9


def _flat(proposal: Arrays, names: Sequence[str]) -> Array:
    return np.concatenate([proposal[n].astype(np.float64).ravel() for n in names])


def krum_scores(proposals: Sequence[Arrays], byzantine: int) -> list[float]:
    """Krum's score of each proposal: the sum of squared distances to its
    ``k - byzantine - 2`` nearest others (at least 1)."""
    names = [n for n in _check(proposals) if proposals[0][n].dtype.kind == "f"]
    k = len(proposals)
    if k == 1:
        return [0.0]
    flat = [_flat(p, names) for p in proposals]
    d = np.zeros((k, k))
    for i in range(k):
        for j in range(i + 1, k):
            diff = flat[i] - flat[j]
            d[i, j] = d[j, i] = float(np.dot(diff, diff))
    near = max(1, k - byzantine - 2)
    return [float(np.sum(np.sort(np.delete(d[i], i))[:near])) for i in range(k)]


def multi_krum(proposals: Sequence[Arrays], byzantine: int | None = None) -> dict[str, Array]:
    """The mean of the ``k - byzantine`` proposals with the lowest Krum scores
    (``byzantine`` default ``(k - 3) // 2``); scores within a relative ``1e-9`` of each
    other rank by position.

    >>> import numpy as np
    >>> ps = [{"w": np.array([v])} for v in (1.0, 1.1, 0.9, 1.0, 50.0)]
    >>> multi_krum(ps, 1)["w"]
    array([1.])
    """
    k = len(proposals)
    f = krum_byzantine(byzantine, k)
    scores = krum_scores(proposals, f)
    top = max(scores) or 1.0
    # a score's rank rounded to 1e-9 of the largest: near-equal scores rank by position
    ranked = sorted(range(k), key=lambda i: (round(scores[i] / top / _SCORE_RTOL), i))
    chosen = sorted(ranked[: max(1, k - f)])
    return weighted_mean([proposals[i] for i in chosen])


def krum_byzantine(byzantine: int | None, k: int) -> int:
    if byzantine is None:
        return max(0, (k - 3) // 2)
    if isinstance(byzantine, bool) or not isinstance(byzantine, int) or byzantine < 0:
        raise ConfigError(
            f"multi-krum:F needs F, the poisoned proposals tolerated, a whole number >= 0; "
            f"got {byzantine!r}"
        )
    return min(byzantine, max(0, k - 1))


def fltrust(proposals: Sequence[Arrays], current: Arrays, reference: Arrays) -> dict[str, Array]:
    """FLTrust (Cao et al. 2021): ``current`` plus the mean of the proposals' updates,
    each rescaled to the reference update's norm and weighted by the ReLU of its cosine
    similarity with the reference update (the update a trusted party trained on clean
    root data). A proposal whose update is (within ``1e-9``) orthogonal or opposite to
    the reference counts for nothing; if all do, the current weights are returned.

    >>> import numpy as np
    >>> cur = {"w": np.zeros(2)}
    >>> ps = [{"w": np.array([1.0, 0.0])}, {"w": np.array([-9.0, 0.0])}]
    >>> fltrust(ps, cur, {"w": np.array([2.0, 0.0])})["w"]
    array([2., 0.])
    """
    names = _check([*proposals, current, reference])
    floats = [n for n in names if current[n].dtype.kind == "f"]
    base = _flat(current, floats)
    g0 = _flat(reference, floats) - base
    n0 = float(np.linalg.norm(g0))
    total = 0.0
    acc = np.zeros_like(base)
    for p in proposals:
        g = _flat(p, floats) - base
        ng = float(np.linalg.norm(g))
        if ng == 0.0 or n0 == 0.0:
            continue
        trust = float(np.dot(g, g0)) / (ng * n0)
        if trust <= _SCORE_RTOL:
            continue
        acc += trust * (n0 / ng) * g
        total += trust
    flat = base + (acc / total if total > 0 else 0.0)
    out: dict[str, Array] = {}
    start = 0
    for name in names:
        like = current[name]
        if like.dtype.kind != "f":
            out[name] = _lower_median([p[name] for p in proposals])
            continue
        out[name] = _as(flat[start : start + like.size], like)
        start += like.size
    return out


# -- the combiner a plan carries ------------------------------------------------------------


@dataclass(frozen=True)
class Combiner:
    """A named combiner with its settings, as a plan carries it.

    ``sizes`` maps learner ids to their train rows, for the weighted mean; a learner
    missing from it counts as the mean of the known sizes (equal weights if none is
    known).

    Examples
    --------
    >>> import numpy as np
    >>> from colearning.core.interface import Weights
    >>> c = Combiner.parse("trimmed-mean:0.25")
    >>> c.name, c.trim, c.spec
    ('trimmed-mean', 0.25, 'trimmed-mean:0.25')
    >>> w = c.combine([("a", Weights({"w": np.ones(2)})), ("b", Weights({"w": np.ones(2)}))])
    >>> w.arrays["w"]
    array([1., 1.])
    """

    name: str = "mean"
    trim: float = DEFAULT_TRIM
    sizes: Mapping[str, float] | None = None
    byzantine: int | None = None
    #: the server step (:func:`server_step`): 1 and 0 leave the combination as it is
    server_lr: float = 1.0
    server_momentum: float = 0.0

    def __post_init__(self) -> None:
        if self.name not in COMBINERS:
            raise ConfigError(
                f"combiner must be one of {', '.join(COMBINERS)} (trimmed-mean:TRIM sets the "
                f"share trimmed from each end); got {self.name!r}"
            )
        _check_trim(self.trim)
        _check_server(self.server_lr, self.server_momentum)
        if self.sizes is not None:
            bad = {k: v for k, v in self.sizes.items() if not _is_positive(v)}
            if bad:
                key = next(iter(bad))
                raise ConfigError(f"data sizes must be numbers > 0; got {bad[key]!r} for {key!r}")

    @property
    def has_server_step(self) -> bool:
        """Whether the candidate takes a server step (``server_lr != 1`` or momentum)."""
        return self.server_lr != 1.0 or self.server_momentum != 0.0

    @classmethod
    def parse(
        cls,
        spec: str | Combiner,
        sizes: Mapping[str, float] | None = None,
        *,
        server_lr: float | None = None,
        server_momentum: float | None = None,
    ) -> Combiner:
        """``"mean"``, ``"median"``, ``"trimmed-mean"`` or ``"trimmed-mean:TRIM"``;
        ``sizes``, ``server_lr`` and ``server_momentum``, where given, replace
        ``spec``'s."""
        base = cls._parse(spec, sizes)
        if server_lr is None and server_momentum is None:
            return base
        return dataclasses.replace(
            base,
            server_lr=base.server_lr if server_lr is None else server_lr,
            server_momentum=base.server_momentum if server_momentum is None else server_momentum,
        )

    @classmethod
    def _parse(cls, spec: str | Combiner, sizes: Mapping[str, float] | None) -> Combiner:
        if isinstance(spec, Combiner):
            return spec if sizes is None else dataclasses.replace(spec, sizes=sizes)
        if not isinstance(spec, str):
            raise ConfigError(
                f"combiner must be a name such as 'mean' or 'trimmed-mean:0.2'; got {spec!r}"
            )
        name, _, arg = spec.strip().partition(":")
        trim = DEFAULT_TRIM
        if arg and name == "multi-krum":
            if not arg.strip().isdigit():
                raise ConfigError(
                    f"multi-krum:F needs F, the poisoned proposals tolerated, a whole "
                    f"number >= 0; got {spec!r}"
                )
            return cls(name, trim, sizes, int(arg))
        if arg:
            if name != "trimmed-mean":
                raise ConfigError(
                    "only trimmed-mean takes a setting (trimmed-mean:TRIM), and multi-krum "
                    f"one (multi-krum:F); got {spec!r}"
                )
            try:
                trim = float(arg)
            except ValueError:
                raise ConfigError(
                    f"trimmed-mean:TRIM needs a number TRIM in [0, 0.5); got {spec!r}"
                ) from None
        return cls(name, trim, sizes)

    @property
    def spec(self) -> str:
        """The name as ``parse`` takes it (``trimmed-mean:0.25`` with its trim)."""
        if self.name == "multi-krum" and self.byzantine is not None:
            return f"multi-krum:{self.byzantine}"
        return f"trimmed-mean:{self.trim:g}" if self.name == "trimmed-mean" else self.name

    @property
    def label(self) -> str:
        """:attr:`spec`, and the server step where there is one, as each candidate
        records it: ``"mean"``, ``"mean server-lr=1.5 server-momentum=0.5"``."""
        if not self.has_server_step:
            return self.spec
        return f"{self.spec} server-lr={self.server_lr:g} server-momentum={self.server_momentum:g}"

    def combine(
        self,
        proposals: Sequence[tuple[str, Weights]],
        current: Weights | None = None,
        previous: Weights | None = None,
    ) -> Weights:
        """One candidate from ``(learner_id, weights)`` pairs, in the given order; the
        candidate keeps the first proposal's layout (a torch ``state_dict`` stays one).
        With a server step, ``current`` (the shared model) is required and ``previous``
        (the shared model before its last adopted step; ``None`` if none was) gives
        the momentum."""
        if not proposals:
            raise ConfigError("a combiner needs at least one proposal; got none")
        arrays = [w.arrays for _, w in proposals]
        if self.name == "mean":
            combined = weighted_mean(arrays, self._sizes([lid for lid, _ in proposals]))
        elif self.name == "median":
            combined = coordinate_median(arrays)
        elif self.name == "multi-krum":
            combined = multi_krum(arrays, self.byzantine)
        else:
            combined = trimmed_mean(arrays, self.trim)
        if self.has_server_step:
            if current is None:
                raise ConfigError(
                    f"combiner {self.label!r} takes a server step from the current model; "
                    "combine() got none (pass current=, and previous= for the momentum)"
                )
            combined = server_step(
                combined,
                current.arrays,
                None if previous is None else previous.arrays,
                self.server_lr,
                self.server_momentum,
            )
        return Weights.from_arrays(combined, proposals[0][1].layout)

    def describe(self) -> dict[str, object]:
        out: dict[str, object] = {"combiner": self.spec}
        if self.has_server_step:
            out.update(server_lr=self.server_lr, server_momentum=self.server_momentum)
        return out

    def _sizes(self, learner_ids: Sequence[str]) -> list[float] | None:
        if not self.sizes:
            return None
        known = [float(self.sizes[i]) for i in learner_ids if i in self.sizes]
        fill = sum(known) / len(known) if known else 1.0
        return [float(self.sizes.get(i, fill)) for i in learner_ids]


# -- checks ---------------------------------------------------------------------------------


def _check(proposals: Sequence[Arrays]) -> tuple[str, ...]:
    if not proposals:
        raise ConfigError("a combiner needs at least one proposal; got none")
    names = tuple(proposals[0])
    for i, p in enumerate(proposals[1:], start=1):
        if tuple(p) != names:
            raise WeightsError(
                f"proposal {i} has arrays {list(p)}; proposal 0 has {list(names)}. "
                "Proposals are combined name by name and must hold the same arrays"
            )
    for name in names:
        first = proposals[0][name]
        if first.dtype == np.uint8 and first.ndim == 1:
            raise WeightsError(
                f"array {name!r} is an encoded model (1-D uint8); an encoded model such as "
                "a booster or a forest cannot be averaged coordinate by coordinate. Use the "
                "single round mode for this learner"
            )
        for i, p in enumerate(proposals[1:], start=1):
            if p[name].shape != first.shape or p[name].dtype != first.dtype:
                raise WeightsError(
                    f"array {name!r} of proposal {i} is {p[name].dtype}{list(p[name].shape)}; "
                    f"proposal 0's is {first.dtype}{list(first.shape)}. Proposals must "
                    "fit the same model"
                )
    return names


def _shares(k: int, sizes: Sequence[float] | None) -> list[float]:
    if sizes is None:
        return [1.0 / k] * k
    if len(sizes) != k:
        raise ConfigError(f"got {len(sizes)} data sizes for {k} proposals")
    if not all(_is_positive(s) for s in sizes):
        raise ConfigError(f"data sizes must be numbers > 0; got {list(sizes)}")
    total = float(sum(float(s) for s in sizes))
    return [float(s) / total for s in sizes]


#: The largest server learning rate taken: past it a step overshoots the combination by
#: more than any useful FedAvgM setting does (Hsu et al. use 1 with momentum 0.9).
MAX_SERVER_LR = 10.0


def _check_server(lr: float, momentum: float) -> None:
    if not (_is_number(lr) and 0 < float(lr) <= MAX_SERVER_LR):
        raise ConfigError(
            f"server_lr must be a number in (0, {MAX_SERVER_LR:g}]: the share of the step "
            f"from the current model to the combined proposals that the candidate takes "
            f"(1 takes the combination as it is); got {lr!r}"
        )
    if not (_is_number(momentum) and 0 <= float(momentum) < 1):
        raise ConfigError(
            f"server_momentum must be a number in [0, 1): the share of the last adopted step "
            f"added to the candidate (0 for none, 0.9 as FedAvgM); got {momentum!r}"
        )


def _is_number(value: object) -> bool:
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _check_trim(trim: float) -> None:
    if isinstance(trim, bool) or not isinstance(trim, (int, float)) or not 0 <= trim < 0.5:
        raise ConfigError(
            f"trim must be a share in [0, 0.5) cut from each end; got {trim!r} (0.2 cuts "
            "the highest and lowest fifth of the values at each coordinate)"
        )


def _is_positive(value: object) -> bool:
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
        and float(value) > 0
    )


def _sorted_stack(arrays: Sequence[Array]) -> Array:
    return np.sort(np.stack([a.astype(np.float64) for a in arrays]), axis=0)


def _lower_median(arrays: Sequence[Array]) -> Array:
    stacked = np.sort(np.stack(arrays), axis=0)
    return _as(stacked[(len(arrays) - 1) // 2], arrays[0])


def _as(values: Array, like: Array) -> Array:
    """``values`` as a fresh array of ``like``'s dtype and shape (0-d stays 0-d)."""
    return np.array(values, dtype=like.dtype).reshape(like.shape)
