"""The protocol half every bundled learner shares.

A framework learner says how to train, score, load and dump its model; everything
else about taking part in a round lives here, once:

- **the proposal's random stream** comes from ``(seed, round_index)``:
  :meth:`LearnerBase.mli_set_round` validates and stores the round, and
  :meth:`LearnerBase._round_seed_sequence` / :meth:`LearnerBase._round_rng` give the
  proposal's ``SeedSequence`` / ``Generator``;
- **one scoring path**: the subclass implements ``_scores(weights) -> (vote_score,
  test_score)`` and the base scores the current weights (the baseline) and every
  candidate with it, so the same weights always get the same score. (The
  scikit-learn learner once scored its baseline on the vote split alone and
  candidates on vote and test stacked; BLAS picked another kernel for the other
  matrix size, the same weights scored 163.5699893441253 and 163.5699893393461, and
  the learner approved its own unchanged model on another machine.)
- **the score cache**: the current weights are scored once, when first needed;
  ``mli_accept_weights`` reuses the scores ``mli_test_weights`` computed for the very
  same weights;
- **the vote** (:func:`better`): NaN is worse than anything, the current weights (or a
  copy of them) are never approved, and no decision rests on float noise;
- ``check_weights`` on the way in, the ``evaluations`` counter, and ``mli_tags``;
- **the training-data seam** (:meth:`LearnerBase.train_split`,
  :meth:`LearnerBase.training_on`): a learner whose train split is arrays lets a
  caller read it and train one proposal on other arrays. Data-poisoning attacks
  (``colearning.attacks``: label flipping, backdoors) use it to act as a party that
  poisons its own data; nothing in the protocol does.

Ties
----
Two vote scores within ``TIE_RTOL * max(1, |baseline|)`` of each other, with
``TIE_RTOL = 1e-9``, are a tie, and a tie does not approve. Why that size: float noise
in a score (another BLAS kernel, another summation order, a GPU's non-deterministic
reductions) is of the order of the float64 rounding of a mean over the vote set
(``rows * 2.2e-16``, about 2e-12 for 10,000 rows) or of a float32 model's outputs
averaged over many rows (the kernel change above moved a score by 3e-11 of its value);
a real improvement is far larger (one more row right in a vote set of a million rows
moves accuracy by 1e-6). Relative for large scores (losses, RMSE in the hundreds), and
absolute below 1, where metrics such as accuracy and AUC live.
"""

from __future__ import annotations

import abc
import contextlib
import math
import weakref
from collections.abc import Iterator, Sequence
from typing import ClassVar, Generic, TypeVar

import numpy as np

from colearning.core.codec import WeightsSpec, check_weights
from colearning.core.exceptions import ConfigError, DataError, LearnerError
from colearning.core.interface import (
    Array,
    ColearnModel,
    LearnerTags,
    MachineLearningInterface,
    ModelFormat,
    ProposedWeights,
    Weights,
)
from colearning.data.types import LearnerData
from colearning.learners.metrics import Metric

__all__ = ["TIE_RTOL", "EncodedModelLearner", "LearnerBase", "better", "round_seed"]

#: Relative tolerance within which two vote scores tie (see the module docstring).
TIE_RTOL = 1e-9

Scores = tuple[float, float | None]
Model = TypeVar("Model")


def better(
    score: float, than: float, *, higher_is_better: bool = True, rtol: float = TIE_RTOL
) -> bool:
    """Whether ``score`` is better than ``than`` by more than float noise.

    NaN is worse than anything (a NaN score never wins; anything beats a NaN
    baseline). A difference within ``rtol * max(1, |than|)`` is a tie, and a tie is not
    better.

    Examples
    --------
    >>> better(0.91, 0.90), better(0.90, 0.90), better(0.9 + 1e-12, 0.9)
    (True, False, False)
    >>> better(163.5699893393461, 163.5699893441253, higher_is_better=False)
    False
    >>> better(float("nan"), 0.5), better(0.5, float("nan"))
    (False, True)
    """
    score, than = float(score), float(than)
    if math.isnan(score):
        return False
    if math.isnan(than):
        return True
    if math.isinf(than) or math.isinf(score):
        # No tolerance at infinity: a finite loss beats a diverged (infinite) one.
        return score > than if higher_is_better else score < than
    if abs(score - than) <= rtol * max(1.0, abs(than)):
        return False
    return score > than if higher_is_better else score < than


def round_seed(seed: int, round_index: int) -> int:
    """A 63-bit seed for ``(seed, round_index)``; independent streams per round.

    Examples
    --------
    >>> round_seed(0, 1) == round_seed(0, 1) != round_seed(0, 2)
    True
    """
    state = np.random.SeedSequence([seed, round_index]).generate_state(1, np.uint64)
    return int(state[0] >> np.uint64(1))


def _is_index(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _refs(weights: Weights) -> tuple[weakref.ref[Array], ...]:
    return tuple(weakref.ref(a) for a in weights.arrays.values())


def _same(weights: Weights, arrays: Sequence[Array]) -> bool:
    """Whether ``weights`` hold these arrays: the very objects, or equal values."""
    mine = list(weights.arrays.values())
    if len(mine) != len(arrays):
        return False
    if all(a is b for a, b in zip(mine, arrays, strict=True)):
        return True
    return all(
        a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
        for a, b in zip(mine, arrays, strict=True)
    )


class LearnerBase(MachineLearningInterface):
    """Base of the bundled learners: the protocol half they share.

    A subclass calls ``super().__init__(seed=...)``, sets ``_vote_metric`` and
    ``_test_metric`` (:class:`~colearning.learners.metrics.Metric`), calls
    :meth:`_start` with its first weights, and implements:

    - :meth:`_scores`: ``(vote_score, test_score or None)`` of given weights: the one
      scoring path, for the current weights and every candidate alike;
    - :meth:`_install`: load accepted weights into its model;
    - ``mli_propose_weights`` (seeded by :meth:`_round_rng` or
      :meth:`_round_seed_sequence`) and ``mli_get_current_model``.

    Examples
    --------
    >>> import numpy as np
    >>> from colearning import Weights
    >>> from colearning.learners.metrics import METRICS
    >>> class Mean(LearnerBase):
    ...     '''Votes on the squared distance of one number to a target.'''
    ...     def __init__(self, target, seed=0):
    ...         super().__init__(seed=seed)
    ...         self.target = target
    ...         self._vote_metric = self._test_metric = METRICS["rmse"]
    ...         self._start(Weights({"x": np.zeros(1)}))
    ...     def _scores(self, weights):
    ...         return float(abs(weights.arrays["x"][0] - self.target)), None
    ...     def _install(self, weights):
    ...         pass
    ...     def mli_propose_weights(self):
    ...         step = self._round_rng().normal()
    ...         return Weights({"x": self.mli_get_current_weights().arrays["x"] + step})
    >>> learner = Mean(target=1.0)
    >>> learner.mli_test_weights(Weights({"x": np.ones(1)})).vote
    True
    >>> learner.mli_test_weights(Weights({"x": np.zeros(1)})).vote  # a copy of itself
    False
    """

    #: Relative tolerance of a tie (see :func:`better`).
    tie_rtol: ClassVar[float] = TIE_RTOL

    _vote_metric: Metric
    _test_metric: Metric

    def __init__(self, *, seed: int) -> None:
        if not _is_index(seed) or seed < 0:
            raise ConfigError(f"seed must be an integer >= 0; got {seed!r}")
        self.seed = int(seed)
        self._round = 0
        self._evaluations = 0

    def _start(self, weights: Weights, spec: WeightsSpec | None = None) -> None:
        """Make ``weights`` the first current weights; ``spec`` (default: theirs) is
        what incoming weights must match."""
        self._spec = spec if spec is not None else WeightsSpec.of(weights)
        self._current = weights
        self._current_scores: Scores | None = None  # computed when first needed
        self._tested: tuple[tuple[weakref.ref[Array], ...], Scores] | None = None

    # -- what a subclass provides -------------------------------------------------------

    @abc.abstractmethod
    def _scores(self, weights: Weights) -> Scores:
        """``(vote_score, test_score)`` of ``weights`` (``test_score`` ``None`` without
        a test set). The only way this learner scores anything, so it must be a
        function of the weights' values alone."""

    @abc.abstractmethod
    def _install(self, weights: Weights) -> None:
        """Load checked ``weights`` into the model that holds the current weights; on
        an error nothing may have changed."""

    def _as_current(self, weights: Weights) -> Weights:
        """The form accepted weights are kept (and given back) in; default as given."""
        return weights

    # -- the training-data seam (colearning.attacks) --------------------------------------

    def _get_train_split(self) -> tuple[Array, Array] | None:
        """The train split as ``(X, y)`` arrays, or ``None`` where this learner does not
        hold it as arrays (a torch learner fed by DataLoaders). Subclasses that hold
        arrays override this and :meth:`_set_train_split`."""
        return None

    def _set_train_split(self, X: Array, y: Array) -> None:
        """Make ``(X, y)`` the train split (same feature shape and label kind)."""
        raise NotImplementedError

    def train_split(self) -> tuple[Array, Array]:
        """This learner's train split as ``(X, y)`` arrays, in the form it trains on.

        Raises
        ------
        LearnerError
            If this learner does not hold its train split as arrays.
        """
        split = self._get_train_split()
        if split is None:
            raise LearnerError(
                f"{type(self).__name__} does not give access to its training data as "
                "arrays (a learner built on DataLoaders, say); build it from a LearnerData, "
                "or implement _get_train_split/_set_train_split (learners/_base.py)"
            )
        return split

    @contextlib.contextmanager
    def training_on(self, X: Array, y: Array) -> Iterator[None]:
        """Within the block, proposals train on ``(X, y)`` instead of the train split;
        the split is restored afterwards, even on an error.

        Examples
        --------
        >>> from sklearn.linear_model import SGDClassifier
        >>> from colearning.data import load_dataset, partition_dataset
        >>> from colearning.learners.sklearn import SKLearnLearner
        >>> ds = load_dataset("iris")
        >>> learner = SKLearnLearner(SGDClassifier(loss="log_loss"),
        ...                          partition_dataset(ds, 2, "iid", seed=0)[0])
        >>> X, y = learner.train_split()
        >>> with learner.training_on(X[:10], y[:10]):
        ...     len(learner.train_split()[1])
        10
        >>> len(learner.train_split()[1]) == len(y)
        True
        """
        before = self.train_split()
        X, y = np.asarray(X), np.asarray(y)
        if X.shape[1:] != before[0].shape[1:] or len(X) != len(y) or len(y) == 0:
            raise DataError(
                f"training_on needs X of shape (rows, {', '.join(map(str, before[0].shape[1:]))}) "
                f"and as many labels, at least one row; got X {X.shape} and y {y.shape}"
            )
        self._set_train_split(X.astype(before[0].dtype, copy=False), y.astype(before[1].dtype))
        try:
            yield
        finally:
            self._set_train_split(*before)

    # -- per-class predictions (colearning.attacks.defences.PerClassVoter) -----------------

    def _vote_predictions(self, weights: Weights) -> tuple[Array, Array] | None:
        """``(true, predicted)`` class labels of every vote row under ``weights``
        (checked), or ``None`` where this learner cannot say (a regressor, a learner
        without the hook). Classifiers that can override this."""
        return None

    def vote_predictions(self, weights: Weights) -> tuple[Array, Array]:
        """The vote split's true class labels and the labels ``weights`` predict for
        it, row by row: what a per-class vote check counts. The current weights are
        unchanged.

        Raises
        ------
        WeightsError
            If the weights do not fit this model or hold NaN/Inf.
        LearnerError
            If this learner gives no per-class predictions (a regressor, or a learner
            without ``_vote_predictions``).
        """
        check_weights(weights, self._spec)
        got = self._vote_predictions(weights)
        if got is None:
            raise LearnerError(
                f"{type(self).__name__} gives no per-class predictions on its vote set "
                "(a regressor, or a learner without _vote_predictions, learners/_base.py); "
                "a per-class vote check needs a classifier that implements it"
            )
        true, predicted = (np.asarray(a) for a in got)
        return true, predicted

    # -- randomness ---------------------------------------------------------------------

    @property
    def round_index(self) -> int:
        """The round index last given to :meth:`mli_set_round` (0 before any)."""
        return self._round

    def _round_seed_sequence(self, *tags: int, seed: int | None = None) -> np.random.SeedSequence:
        """``SeedSequence([seed, *tags, round_index])``: the proposal's entropy."""
        return np.random.SeedSequence([self.seed if seed is None else seed, *tags, self._round])

    def _round_rng(self, *tags: int) -> np.random.Generator:
        """``default_rng([seed, *tags, round_index])``: the proposal's generator."""
        return np.random.default_rng(self._round_seed_sequence(*tags))

    # -- scores -------------------------------------------------------------------------

    @property
    def vote_metric(self) -> str:
        """The name of the metric that decides the vote."""
        return self._vote_metric.name

    @property
    def test_metric(self) -> str:
        """The name of the metric ``test_score`` reports."""
        return self._test_metric.name

    @property
    def higher_is_better(self) -> bool:
        """Whether a larger vote score is better."""
        return self._vote_metric.higher_is_better

    @property
    def evaluations(self) -> int:
        """How many times weights were scored (vote and test sets) since construction."""
        return self._evaluations

    def better(self, score: float, than: float) -> bool:
        """Whether vote score ``score`` beats ``than`` (see :func:`better`)."""
        return better(
            score, than, higher_is_better=self._vote_metric.higher_is_better, rtol=self.tie_rtol
        )

    def current_vote_score(self) -> float:
        """The current weights' vote score (computed once per current weights)."""
        return self._current_pair()[0]

    def _score(self, weights: Weights) -> Scores:
        self._evaluations += 1
        vote, test = self._scores(weights)
        test = None if test is None or not math.isfinite(float(test)) else float(test)
        return float(vote), test

    def _current_pair(self) -> Scores:
        if self._current_scores is None:
            self._current_scores = self._score(self._current)
        return self._current_scores

    def _is_current(self, weights: Weights) -> bool:
        return weights is self._current or _same(weights, list(self._current.arrays.values()))

    def _cached(self, weights: Weights) -> Scores | None:
        """The scores of these very weights, if this learner computed them."""
        if self._is_current(weights):
            return self._current_scores
        return self._cached_test(weights)

    def _cached_test(self, weights: Weights) -> Scores | None:
        """The scores of the weights last tested, if ``weights`` are those."""
        if self._tested is None:
            return None
        refs, scores = self._tested
        arrays = [r() for r in refs]
        if any(a is None for a in arrays):
            return None
        return scores if _same(weights, arrays) else None  # type: ignore[arg-type]

    # -- the interface ------------------------------------------------------------------

    def mli_set_round(self, round_index: int) -> None:
        """Remember the round index: with ``seed`` it seeds the next proposal.

        Raises
        ------
        ConfigError
            If ``round_index`` is not an integer >= 0.
        """
        if not _is_index(round_index) or round_index < 0:
            raise ConfigError(f"round_index must be an integer >= 0; got {round_index!r}")
        self._round = int(round_index)

    def mli_test_weights(self, weights: Weights) -> ProposedWeights:
        """Score ``weights`` on the vote and test sets; approve iff the vote score is
        better than the current weights' by more than float noise.

        The current weights (or a copy of them) are never approved.

        Raises
        ------
        WeightsError
            If the weights do not fit this model or hold NaN/Inf.
        LearnerError
            If the vote metric gives a non-finite score for these weights.
        """
        check_weights(weights, self._spec)
        current = self._is_current(weights)
        if current:
            vote_score, test_score = self._current_pair()
        else:
            cached = self._cached_test(weights)
            vote_score, test_score = cached if cached is not None else self._score(weights)
            self._tested = (_refs(weights), (vote_score, test_score))
        if not math.isfinite(vote_score):
            raise LearnerError(
                f"the {self.vote_metric} of these weights on the vote set is {vote_score}; "
                "the vote metric must give a finite score"
            )
        vote = not current and self.better(vote_score, self.current_vote_score())
        return ProposedWeights(weights, vote_score, test_score, vote)

    def mli_accept_weights(self, weights: Weights) -> None:
        """Adopt ``weights``; on a :class:`WeightsError` nothing changes.

        Reuses the scores :meth:`mli_test_weights` computed for these very weights;
        weights it never tested are scored when their score is first needed.
        """
        check_weights(weights, self._spec)
        scores = self._cached(weights)
        self._install(weights)
        self._current = self._as_current(weights)
        self._current_scores = scores

    def mli_get_current_weights(self) -> Weights:
        """The current weights (read-only arrays; safe to share)."""
        return self._current

    def mli_tags(self) -> LearnerTags:
        """Deterministic proposals (from ``(seed, round_index)``) and an ONNX export."""
        return LearnerTags(deterministic=True, exports_model=True)


class EncodedModelLearner(LearnerBase, Generic[Model]):
    """Base of the learners whose whole model travels as one encoded ``uint8`` array
    (:class:`~colearning.learners.xgboost.XGBoostLearner`,
    :class:`~colearning.learners.forest.RandomForestLearner`).

    A subclass provides encode, decode (with its checks), training from a model, the
    model's raw output and the ONNX export; a received model is decoded and checked
    before it is scored or installed. Subclasses set ``classes`` (``None`` for
    regression), call :meth:`_set_splits`, and :meth:`_start` with their first model's
    weights.
    """

    classes: Array | None
    n_features: int
    _X_train: Array
    _y_train: Array
    _X_vote: Array
    _y_vote: Array
    _X_test: Array
    _y_test: Array
    _model: Model

    # -- what a subclass provides ---------------------------------------------------------

    @abc.abstractmethod
    def _propose_model(self, current: Model, rng: np.random.Generator) -> Model:
        """A new model trained on local data from (a copy of) ``current``."""

    @abc.abstractmethod
    def _encode(self, model: Model) -> Weights:
        """``model`` as weights holding one ``uint8`` array."""

    @abc.abstractmethod
    def _decode(self, weights: Weights) -> Model:
        """The model in ``weights``, checked; raises ``WeightsError``."""

    @abc.abstractmethod
    def _predict_raw(self, model: Model, X: Array) -> Array:
        """Probabilities (classification) or values (regression) of ``model``."""

    @abc.abstractmethod
    def _to_onnx(self, model: Model) -> bytes:
        """``model`` exported as ONNX bytes."""

    # -- shared machinery -----------------------------------------------------------------

    def _set_splits(self, data: LearnerData) -> None:
        """Checked arrays of the train, vote and test splits."""
        self._X_train, self._y_train = self._xy(data.train, "train")
        self._X_vote, self._y_vote = self._xy(data.vote, "vote")
        self._X_test, self._y_test = self._xy(data.test, "test")
        if len(self._y_vote) == 0:
            raise DataError(
                "the vote split must hold at least one row; got 0 (give this learner "
                "more data, or use fewer learners)"
            )
        self.n_features = int(self._X_train.shape[1])

    def _xy(self, xy: tuple[Array, Array], name: str) -> tuple[Array, Array]:
        """One split as float32 inputs and class indices (or float64 targets)."""
        X = np.asarray(xy[0], dtype=np.float32)
        if X.ndim != 2:
            raise DataError(f"{name} X must be 2-D (rows x features); got shape {X.shape}")
        y = np.asarray(xy[1])
        if self.classes is None:
            return X, y.astype(np.float64)
        index = np.clip(np.searchsorted(self.classes, y), 0, len(self.classes) - 1)
        if len(y) and not np.array_equal(self.classes[index], y):
            unknown = sorted(set(np.unique(y).tolist()) - set(self.classes.tolist()))
            raise DataError(
                f"{name} labels {unknown} are not among classes {self.classes.tolist()}; "
                "pass every class of the task as classes=..."
            )
        return X, index.astype(np.int64)

    def _output(self, raw: Array, metric: Metric) -> Array:
        """What ``metric`` needs, from the raw output: class indices for predictions."""
        if self.classes is None or metric.output not in ("predictions",):
            return raw
        if raw.ndim == 1:
            return (raw > 0.5).astype(np.int64)
        return np.asarray(np.argmax(raw, axis=1))

    def _metric_on(self, metric: Metric, model: Model, X: Array, y: Array) -> float:
        raw = self._predict_raw(model, X)
        columns = None if self.classes is None else np.arange(len(self.classes))
        return metric(y, self._output(raw, metric), columns)

    def _scores(self, weights: Weights) -> Scores:
        model = self._decode(weights)
        vote = self._metric_on(self._vote_metric, model, self._X_vote, self._y_vote)
        test = (
            self._metric_on(self._test_metric, model, self._X_test, self._y_test)
            if len(self._y_test)
            else None
        )
        return vote, test

    def _install(self, weights: Weights) -> None:
        self._model = self._decode(weights)

    def _vote_predictions(self, weights: Weights) -> tuple[Array, Array] | None:
        if self.classes is None:
            return None
        raw = self._predict_raw(self._decode(weights), self._X_vote)
        index = (raw > 0.5).astype(np.int64) if raw.ndim == 1 else np.argmax(raw, axis=1)
        return self.classes[self._y_vote], self.classes[index]

    def _get_train_split(self) -> tuple[Array, Array]:
        return self._X_train, self._y_train

    def _set_train_split(self, X: Array, y: Array) -> None:
        self._X_train, self._y_train = X, y

    # -- the interface --------------------------------------------------------------------

    def mli_propose_weights(self) -> Weights:
        """Train on local data from the current model (seeded by ``(seed,
        round_index)``); the current model is unchanged."""
        return self._encode(self._propose_model(self._model, self._round_rng()))

    def mli_get_current_model(self) -> ColearnModel:
        """The current model as ONNX bytes (``ColearnModel.model``)."""
        return ColearnModel(ModelFormat.ONNX, model=self._to_onnx(self._model))

    def mli_tags(self) -> LearnerTags:
        """Deterministic, exports ONNX, and the model is one encoded ``uint8`` array."""
        return LearnerTags(deterministic=True, exports_model=True, encoded_model=True)
