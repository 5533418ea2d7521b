"""A learner for scikit-learn estimators that train incrementally with ``partial_fit``.

:class:`SKLearnLearner` wraps ``MLPClassifier``, ``MLPRegressor``, ``SGDClassifier``,
``SGDRegressor`` (and the other linear ``partial_fit`` models built on SGD, such as
``Perceptron``). Its weights are the estimator's arrays, by name:

- MLP: ``coefs_.0``, ``coefs_.1``, ..., then ``intercepts_.0``, ``intercepts_.1``, ...
- linear (SGD): ``coef_``, ``intercept_``

in the estimator's own dtype (an MLP trained on ``float32`` data keeps ``float32``).

**A proposal is a pure function of (current weights, train data, seed, round index).**
The learner keeps a *template*: the estimator as fitted once at construction (one
``partial_fit`` on up to 32 seeded rows of the train split, which creates its arrays;
an MLP keeps that seeded start, a linear model is reset to zeros, where SGD starts). Every
proposal trains a fresh copy of that template with the current weights installed, so
no optimizer state (MLP's Adam moments, the ``t_`` sample counter that drives SGD's
learning-rate schedule, ``n_iter_``) carries over from one proposal to the next, and
all randomness (the shuffle of each epoch, the estimator's ``random_state``) derives
from ``np.random.SeedSequence([seed, 1, round_index])``. This is what lets an
interrupted and resumed experiment end with exactly the model an uninterrupted one
ends with: the resumed learner has lost nothing a proposal depends on. The price: each
proposal starts its optimizer cold (Adam's first steps are full-size; SGD's "optimal"
schedule restarts from its large initial step), so prefer a constant or adaptive
learning rate for SGD.

Nothing that crosses between parties is anything but numpy arrays: weights are
installed into this learner's own estimator, never unpickled.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from colearning.core.codec import WeightsSpec, check_weights
from colearning.core.exceptions import ConfigError, DataError, LearnerError, require_extra
from colearning.core.interface import (
    Array,
    ColearnModel,
    MachineLearningInterface,
    ModelFormat,
    ProposedWeights,
    Weights,
)
from colearning.data.types import LearnerData

__all__ = ["METRICS", "MetricFn", "SKLearnLearner"]

MetricFn = Callable[[Array, Array], float]

# Tags that keep the seed streams of initialisation and of rounds apart
# (SeedSequence([s]) and SeedSequence([s, 0]) are the same stream).
_INIT_TAG = 0
_ROUND_TAG = 1
# Rows of the train split the estimator sees once at construction, to create its
# arrays: a single small step, so the initial model is close to its random start.
_INIT_ROWS = 32
_MAX_SEED = 2**31 - 1


# -- metrics ----------------------------------------------------------------------------
# Written with numpy rather than sklearn.metrics where that is short: scikit-learn warns
# (balanced accuracy, for a class predicted but absent from the vote set; routine
# under label skew) and silencing warnings is process-global, not thread-safe, while
# learners are scored in parallel threads.


def _accuracy(y: Array, pred: Array, classes: Array | None) -> float:
    return float(np.mean(pred == y))


def _balanced_accuracy(y: Array, pred: Array, classes: Array | None) -> float:
    # Mean recall over the classes present in y (as sklearn's, without its warning).
    return float(np.mean([np.mean(pred[y == c] == c) for c in np.unique(y)]))


def _f1_macro(y: Array, pred: Array, classes: Array | None) -> float:
    # Macro F1 over the labels in y or pred; 0 where a class has no tp, fp or fn
    # (sklearn's f1_score(average="macro", zero_division=0)).
    scores = []
    for c in np.union1d(np.unique(y), np.unique(pred)):
        tp = int(np.sum((pred == c) & (y == c)))
        fp = int(np.sum((pred == c) & (y != c)))
        fn = int(np.sum((pred != c) & (y == c)))
        denominator = 2 * tp + fp + fn
        scores.append(2 * tp / denominator if denominator else 0.0)
    return float(np.mean(scores))


def _log_loss(y: Array, proba: Array, classes: Array | None) -> float:
    assert classes is not None
    eps = float(np.finfo(proba.dtype).eps) if proba.dtype.kind == "f" else 1e-15
    picked = proba[np.arange(len(y)), np.searchsorted(classes, y)]
    return float(-np.mean(np.log(np.clip(picked.astype(np.float64), eps, 1.0))))


def _neg_log_loss(y: Array, proba: Array, classes: Array | None) -> float:
    return -_log_loss(y, proba, classes)


def _roc_auc(y: Array, scores: Array, classes: Array | None) -> float:
    """Binary AUC, or for several classes the mean one-vs-rest AUC over the classes
    present in ``y`` (a learner's vote set under label skew lacks some classes)."""
    from sklearn.metrics import roc_auc_score

    assert classes is not None
    present = np.unique(y)
    if len(present) < 2:
        return math.nan
    if scores.ndim == 1:
        return float(roc_auc_score(y == classes[-1], scores))
    if len(classes) == 2:
        return float(roc_auc_score(y == classes[1], scores[:, 1]))
    columns = np.searchsorted(classes, present)
    aucs = [roc_auc_score(y == c, scores[:, j]) for c, j in zip(present, columns, strict=True)]
    return float(np.mean(aucs))


def _rmse(y: Array, pred: Array, classes: Array | None) -> float:
    return float(np.sqrt(np.mean((np.asarray(pred, np.float64) - y) ** 2)))


def _mae(y: Array, pred: Array, classes: Array | None) -> float:
    return float(np.mean(np.abs(np.asarray(pred, np.float64) - y)))


def _r2(y: Array, pred: Array, classes: Array | None) -> float:
    y = np.asarray(y, np.float64)
    residual = float(np.sum((y - np.asarray(pred, np.float64)) ** 2))
    total = float(np.sum((y - y.mean()) ** 2))
    if total == 0.0:  # constant targets: sklearn's force_finite convention
        return 1.0 if residual == 0.0 else 0.0
    return 1.0 - residual / total


Output = Literal["predict", "proba", "scores"]
Kind = Literal["classification", "regression"]


@dataclass(frozen=True)
class _Metric:
    name: str
    higher_is_better: bool
    output: Output
    kind: Kind | None  # None: any model (a user's callable)
    fn: Callable[[Array, Array, Array | None], float]


#: The metric names :class:`SKLearnLearner` takes, by name.
METRICS: Mapping[str, _Metric] = {
    m.name: m
    for m in (
        _Metric("accuracy", True, "predict", "classification", _accuracy),
        _Metric("balanced_accuracy", True, "predict", "classification", _balanced_accuracy),
        _Metric("f1_macro", True, "predict", "classification", _f1_macro),
        _Metric("roc_auc", True, "scores", "classification", _roc_auc),
        _Metric("neg_log_loss", True, "proba", "classification", _neg_log_loss),
        _Metric("log_loss", False, "proba", "classification", _log_loss),
        _Metric("rmse", False, "predict", "regression", _rmse),
        _Metric("mae", False, "predict", "regression", _mae),
        _Metric("r2", True, "predict", "regression", _r2),
    )
}


def _resolve_metric(
    metric: str | MetricFn | None, higher_is_better: bool | None, kind: Kind
) -> _Metric:
    if metric is None:
        metric = "accuracy" if kind == "classification" else "rmse"
    if callable(metric):
        if higher_is_better is None:
            raise ConfigError(
                "higher_is_better must be given for a callable metric; got None "
                "(pass higher_is_better=True for a score, False for a loss)"
            )
        user_fn = metric
        name = str(getattr(metric, "__name__", type(metric).__name__))

        def call(y: Array, pred: Array, classes: Array | None) -> float:
            return float(user_fn(y, pred))

        return _Metric(name, bool(higher_is_better), "predict", None, call)
    if not isinstance(metric, str) or metric not in METRICS:
        raise ConfigError(
            f"metric must be one of {', '.join(METRICS)} or a callable "
            f"(y_true, y_pred) -> float; got {metric!r}"
        )
    resolved = METRICS[metric]
    if resolved.kind != kind:
        suitable = ", ".join(n for n, m in METRICS.items() if m.kind == kind)
        raise ConfigError(
            f"metric {metric!r} is a {resolved.kind} metric but the model is a {kind} "
            f"model; use one of {suitable}"
        )
    if higher_is_better is not None and bool(higher_is_better) != resolved.higher_is_better:
        raise ConfigError(
            f"higher_is_better must be {resolved.higher_is_better} for metric {metric!r}; "
            f"got {higher_is_better} (leave it out for a named metric)"
        )
    return resolved


def _check_split(name: str, xy: Any, required: bool) -> tuple[Array, Array]:
    X, y = np.asarray(xy[0]), np.asarray(xy[1])
    if X.ndim != 2 or y.ndim != 1 or len(X) != len(y):
        raise DataError(
            f"the {name} split must be X of shape (rows, features) and y of shape (rows,); "
            f"got X {X.shape} and y {y.shape}"
        )
    if required and len(y) == 0:
        raise DataError(
            f"the {name} split must hold at least one row; got 0 "
            "(give this learner more data, or use fewer learners)"
        )
    return X, y


# -- the learner ------------------------------------------------------------------------


class SKLearnLearner(MachineLearningInterface):
    """A learner around an incrementally trainable scikit-learn estimator.

    Parameters
    ----------
    model
        An unfitted ``MLPClassifier``, ``MLPRegressor``, ``SGDClassifier`` or
        ``SGDRegressor`` (any estimator with ``partial_fit`` whose parameters are
        ``coefs_``/``intercepts_`` or ``coef_``/``intercept_``). It is cloned, never
        changed; its ``random_state`` is replaced by seeds derived from ``seed``.
    data
        This learner's train, vote and test splits. Train and vote must not be empty;
        with an empty test split ``test_score`` is ``None``.
    classes
        Every class label of the task (classifiers only). Pass the data set's full
        list (``Dataset.classes``) so that all learners build arrays of the same shape
        even when their shares lack some classes; by default, the labels in ``data``.
    metric
        ``"accuracy"``, ``"balanced_accuracy"``, ``"f1_macro"``, ``"roc_auc"``,
        ``"neg_log_loss"``, ``"log_loss"`` (classifiers) or ``"rmse"``, ``"mae"``,
        ``"r2"`` (regressors), or a callable ``(y_true, y_pred) -> float`` on
        ``predict`` output. Default (``None``): ``"accuracy"`` for a classifier,
        ``"rmse"`` for a regressor.
    higher_is_better
        Whether a larger score is better. Implied by a named metric (``rmse``, ``mae``
        and ``log_loss`` are losses); required for a callable.
    epochs
        Passes of ``partial_fit`` over the train split per proposal, >= 1.
    seed
        Integer >= 0; all of this learner's randomness derives from it (with the
        round index, for proposals).

    Raises
    ------
    ConfigError
        For an estimator without ``partial_fit``, an unknown or unsuitable metric, or
        a bad ``epochs``/``seed``.
    DataError
        For an empty train or vote split, or labels outside ``classes``.

    Examples
    --------
    >>> from sklearn.linear_model import SGDClassifier
    >>> from colearning.data import load_dataset, partition_dataset
    >>> ds = load_dataset("iris")
    >>> data = partition_dataset(ds, 2, "iid", seed=0)[0]
    >>> learner = SKLearnLearner(SGDClassifier(loss="log_loss"), data, classes=ds.classes)
    >>> list(learner.mli_get_current_weights())
    ['coef_', 'intercept_']
    >>> learner.mli_set_round(0)
    >>> verdict = learner.mli_test_weights(learner.mli_propose_weights())
    >>> isinstance(verdict.vote, bool)
    True
    """

    def __init__(
        self,
        model: Any,
        data: LearnerData,
        *,
        classes: Any = None,
        metric: str | MetricFn | None = None,
        higher_is_better: bool | None = None,
        epochs: int = 1,
        seed: int = 0,
    ) -> None:
        require_extra("sklearn", "sklearn", "the scikit-learn learner")
        from sklearn.base import clone, is_classifier, is_regressor

        if not hasattr(model, "partial_fit"):
            hint = (
                " (an MLP trains incrementally only with solver='adam' or 'sgd')"
                if hasattr(model, "hidden_layer_sizes")
                else ""
            )
            raise ConfigError(
                "model must be an estimator with partial_fit, such as SGDClassifier, "
                f"SGDRegressor, MLPClassifier or MLPRegressor; got {type(model).__name__}" + hint
            )
        if is_classifier(model):
            kind: Kind = "classification"
        elif is_regressor(model):
            kind = "regression"
        else:
            raise ConfigError(
                f"model must be a classifier or a regressor; got {type(model).__name__}"
            )
        if getattr(model, "early_stopping", False) and hasattr(model, "hidden_layer_sizes"):
            raise ConfigError(
                "model.early_stopping must be False; got True (partial_fit cannot stop "
                "early; the vote already refuses updates that do not help)"
            )
        if getattr(model, "average", False):
            raise ConfigError(
                f"model.average must be False; got {model.average!r} (averaged SGD keeps "
                "a second set of arrays that would not travel with the weights)"
            )
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
            raise ConfigError(f"epochs must be an integer >= 1; got {epochs!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ConfigError(f"seed must be an integer >= 0; got {seed!r}")

        self._kind: Kind = kind
        self._metric = _resolve_metric(metric, higher_is_better, kind)
        self.epochs = int(epochs)
        self.seed = int(seed)
        self._train = _check_split("train", data.train, required=True)
        self._vote = _check_split("vote", data.vote, required=True)
        self._test = _check_split("test", data.test, required=False)
        self._vote_and_test: Array | None = None  # stacked on first use
        widths = {s[0].shape[1] for s in (self._train, self._vote, self._test) if len(s[1])}
        if len(widths) != 1:
            raise DataError(
                f"train, vote and test must have the same number of features; got {sorted(widths)}"
            )
        self.n_features: int = widths.pop()
        self.classes: Array | None = self._resolve_classes(classes)
        if self._metric.output == "proba" and not hasattr(model, "predict_proba"):
            raise ConfigError(
                f"metric {self._metric.name!r} needs predicted probabilities, which "
                f"{type(model).__name__}(loss={getattr(model, 'loss', None)!r}) does not "
                "give; use loss='log_loss' for SGDClassifier, or another metric"
            )
        if self._metric.name == "roc_auc" and len(np.unique(self._vote[1])) < 2:
            raise DataError(
                "metric 'roc_auc' needs at least two classes in the vote split; got only "
                f"{np.unique(self._vote[1]).tolist()} (use 'accuracy', or a partition "
                "with less label skew)"
            )

        self._round = 0
        self._template = self._initial_fit(clone(model))
        self._mlp = hasattr(self._template, "coefs_")
        if not self._mlp and not (
            hasattr(self._template, "coef_") and hasattr(self._template, "intercept_")
        ):
            raise ConfigError(
                "model must keep its parameters in coefs_/intercepts_ (MLP) or "
                f"coef_/intercept_ (linear SGD models); {type(model).__name__} has neither"
            )
        self._n_layers = len(self._template.coefs_) if self._mlp else 0
        # Scores and predicts; a learner is called from one thread at a time.
        self._eval = copy.deepcopy(self._template)
        self._weights = Weights(self._arrays_of(self._template))
        self._spec = WeightsSpec.of(self._weights)
        self._evaluations = 0
        self._vote_score = self._score(self._weights, self._vote)
        self._evaluations = 0
        self._last_tested: tuple[Weights, float] | None = None

    # -- construction -------------------------------------------------------------------

    def _resolve_classes(self, classes: Any) -> Array | None:
        if self._kind == "regression":
            if classes is not None:
                raise ConfigError(f"classes must be None for a regressor; got {classes!r}")
            return None
        labels = np.unique(np.concatenate([self._train[1], self._vote[1], self._test[1]]))
        if classes is None:
            return labels
        resolved = np.unique(np.asarray(classes))
        unknown = np.setdiff1d(labels, resolved)
        if len(unknown):
            raise DataError(
                f"the data holds labels {unknown.tolist()} that are not in classes "
                f"{resolved.tolist()}; pass every class label of the task"
            )
        return resolved

    def _initial_fit(self, estimator: Any) -> Any:
        """One ``partial_fit`` on a small seeded sample: creates the arrays."""
        rng = np.random.default_rng([self.seed, _INIT_TAG])
        X, y = self._train
        rows = rng.permutation(len(y))[: min(len(y), _INIT_ROWS)]
        _set_random_state(estimator, int(rng.integers(_MAX_SEED)))
        batch_size = getattr(estimator, "batch_size", None)
        if isinstance(batch_size, (int, np.integer)) and batch_size > len(rows):
            estimator.batch_size = len(rows)  # as partial_fit would, without its warning
        if self._kind == "classification":
            estimator.partial_fit(X[rows], y[rows], classes=self.classes)
        else:
            estimator.partial_fit(X[rows], y[rows])
        if batch_size is not None:
            estimator.batch_size = batch_size
        if not hasattr(estimator, "coefs_") and hasattr(estimator, "coef_"):
            # A linear model starts where SGD itself starts: at zero. (That one pass
            # would already fit an easy data set, leaving the experiment nothing to do.)
            estimator.coef_ = np.zeros_like(estimator.coef_)
            estimator.intercept_ = np.zeros_like(estimator.intercept_)
        # Each proposal starts a fresh optimizer (see the module docstring).
        if hasattr(estimator, "_optimizer"):
            del estimator._optimizer
        return estimator

    # -- weights <-> estimator ----------------------------------------------------------

    def _arrays_of(self, estimator: Any) -> dict[str, Array]:
        if self._mlp:
            arrays = {f"coefs_.{i}": a for i, a in enumerate(estimator.coefs_)}
            arrays.update({f"intercepts_.{i}": a for i, a in enumerate(estimator.intercepts_)})
        else:
            arrays = {"coef_": estimator.coef_, "intercept_": estimator.intercept_}
        # Copies: the estimator may train on (and so change) its own arrays later.
        return {name: np.array(a, copy=True) for name, a in arrays.items()}

    def _install(self, estimator: Any, weights: Weights, *, writable: bool) -> None:
        """Put ``weights`` into ``estimator``: read-only views are enough to predict;
        training changes the arrays in place, so it gets copies."""

        def get(name: str) -> Array:
            array = weights.arrays[name]
            return np.array(array, copy=True) if writable else array

        if self._mlp:
            estimator.coefs_ = [get(f"coefs_.{i}") for i in range(self._n_layers)]
            estimator.intercepts_ = [get(f"intercepts_.{i}") for i in range(self._n_layers)]
        else:
            estimator.coef_ = get("coef_")
            estimator.intercept_ = get("intercept_")

    # -- scoring ------------------------------------------------------------------------

    def _output(self, estimator: Any, X: Array) -> Array:
        if self._metric.output == "proba":
            return np.asarray(estimator.predict_proba(X))
        if self._metric.output == "scores":
            if hasattr(estimator, "predict_proba"):
                return np.asarray(estimator.predict_proba(X))
            return np.asarray(estimator.decision_function(X))
        return np.asarray(estimator.predict(X))

    def _score(self, weights: Weights, split: tuple[Array, Array]) -> float:
        X, y = split
        self._install(self._eval, weights, writable=False)
        if split is self._vote:
            self._evaluations += 1
        return self._metric.fn(y, self._output(self._eval, X), self.classes)

    def _scores(self, weights: Weights) -> tuple[float, float | None]:
        """Vote and test scores from one pass over the stacked splits: one call into
        scikit-learn instead of two halves the time spent holding the GIL, which is
        what limits parallel validation."""
        X_vote, y_vote = self._vote
        X_test, y_test = self._test
        if not len(y_test):
            return self._score(weights, self._vote), None
        if self._vote_and_test is None:
            self._vote_and_test = np.concatenate([X_vote, X_test])
        self._install(self._eval, weights, writable=False)
        self._evaluations += 1
        out = self._output(self._eval, self._vote_and_test)
        n = len(y_vote)
        return (
            self._metric.fn(y_vote, out[:n], self.classes),
            self._metric.fn(y_test, out[n:], self.classes),
        )

    def _better(self, score: float, than: float) -> bool:
        """Strictly better; NaN is worse than anything."""
        if math.isnan(score):
            return False
        if math.isnan(than):
            return True
        return score > than if self._metric.higher_is_better else score < than

    def _cached_vote_score(self, weights: Weights) -> float | None:
        if self._last_tested is None:
            return None
        tested, score = self._last_tested
        return score if _same_arrays(tested, weights) else None

    # -- the interface ------------------------------------------------------------------

    def mli_set_round(self, round_index: int) -> None:
        """Remember the round index: with ``seed`` it seeds the next proposal."""
        if (
            isinstance(round_index, bool)
            or not isinstance(round_index, (int, np.integer))
            or round_index < 0
        ):
            raise ConfigError(f"round_index must be an integer >= 0; got {round_index!r}")
        self._round = int(round_index)

    def mli_propose_weights(self) -> Weights:
        """Train a copy of the model from the current weights for ``epochs`` passes.

        Deterministic in (current weights, train split, ``seed``, round index); the
        current weights stay as they are.
        """
        rng = np.random.default_rng([self.seed, _ROUND_TAG, self._round])
        estimator = copy.deepcopy(self._template)
        self._install(estimator, self._weights, writable=True)
        X, y = self._train
        batch_size = getattr(estimator, "batch_size", None)
        if isinstance(batch_size, (int, np.integer)) and batch_size > len(y):
            # As partial_fit would clip it, minus its warning on every proposal.
            estimator.batch_size = len(y)
        for _ in range(self.epochs):
            order = rng.permutation(len(y))
            _set_random_state(estimator, int(rng.integers(_MAX_SEED)))
            estimator.partial_fit(X[order], y[order])
        return Weights(self._arrays_of(estimator))

    def mli_test_weights(self, weights: Weights) -> ProposedWeights:
        """Score ``weights`` on the vote and test splits; approve iff the vote score is
        strictly better than the current weights'.

        Raises
        ------
        WeightsError
            If the weights do not fit this model or hold NaN/Inf.
        LearnerError
            If the metric gives a non-finite vote score for these weights.
        """
        check_weights(weights, self._spec)
        vote_score, test_score = self._scores(weights)
        if not math.isfinite(vote_score):
            raise LearnerError(
                f"the {self._metric.name} of these weights on the vote split is "
                f"{vote_score}; the metric must give a finite score"
            )
        self._last_tested = (weights, vote_score)
        if test_score is not None and not math.isfinite(test_score):
            test_score = None  # e.g. ROC AUC of a test split with one class
        return ProposedWeights(
            weights=weights,
            vote_score=vote_score,
            test_score=test_score,
            vote=self._better(vote_score, self._vote_score),
        )

    def mli_accept_weights(self, weights: Weights) -> None:
        """Adopt ``weights``; on a :class:`WeightsError` nothing changes.

        Reuses the vote score from :meth:`mli_test_weights` when it scored these very
        weights last.
        """
        check_weights(weights, self._spec)
        score = self._cached_vote_score(weights)
        if score is None:
            score = self._score(weights, self._vote)
        self._weights = weights
        self._vote_score = score

    def mli_get_current_weights(self) -> Weights:
        """The current weights (read-only arrays; safe to share)."""
        return self._weights

    def mli_get_current_model(self) -> ColearnModel:
        """The current model as ONNX bytes (``ModelFormat.ONNX``).

        The graph takes one ``float32`` input ``"X"`` of shape ``(rows, n_features)``.
        Outputs: an MLP classifier's ``label`` and ``probabilities`` (a plain tensor,
        no ZipMap); a linear classifier's ``label`` and ``scores`` (its
        ``decision_function``: float32 probabilities of a confident linear model
        saturate and tie, so the label is taken from the scores, as ``predict``
        does); a regressor's ``variable``.

        Raises
        ------
        MissingExtraError
            If skl2onnx is not installed (``pip install 'colearning[export]'``).
        """
        require_extra("skl2onnx", "export", "exporting a scikit-learn model to ONNX")
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType, Int64TensorType

        estimator = copy.deepcopy(self._template)
        self._install(estimator, self._weights, writable=True)
        options: dict[int, dict[str, Any]] | None = None
        final_types: list[tuple[str, Any]] | None = None
        if self._kind == "classification":
            options = {id(estimator): {"zipmap": False}}
            if not self._mlp:
                # Labels from the raw scores, as predict() does: the float32 sigmoids of
                # a confident linear model saturate at 1.0 and tie, and the tie would
                # pick the first class.
                options[id(estimator)]["raw_scores"] = True
                assert self.classes is not None
                if self.classes.dtype.kind in "iu":
                    final_types = [
                        ("label", Int64TensorType([None])),
                        ("scores", FloatTensorType([None, None])),
                    ]
        onnx_model = convert_sklearn(
            estimator,
            name="colearning",
            initial_types=[("X", FloatTensorType([None, self.n_features]))],
            options=options,
            final_types=final_types,
        )
        return ColearnModel(ModelFormat.ONNX, model=onnx_model.SerializeToString())

    # -- conveniences -------------------------------------------------------------------

    def predict(self, X: Any) -> Array:
        """The current model's predictions for ``X``."""
        self._install(self._eval, self._weights, writable=False)
        return np.asarray(self._eval.predict(np.asarray(X)))

    @property
    def metric(self) -> str:
        """The metric's name (a callable's ``__name__``)."""
        return self._metric.name

    @property
    def higher_is_better(self) -> bool:
        """Whether a larger score is better."""
        return self._metric.higher_is_better

    @property
    def current_vote_score(self) -> float:
        """The current weights' score on the vote split."""
        return self._vote_score

    @property
    def evaluations(self) -> int:
        """How many times weights were scored on the vote split since construction."""
        return self._evaluations

    def __repr__(self) -> str:
        rows = "/".join(str(len(s[1])) for s in (self._train, self._vote, self._test))
        return (
            f"SKLearnLearner({type(self._template).__name__}, metric={self.metric!r}, "
            f"epochs={self.epochs}, seed={self.seed}, train/vote/test rows={rows})"
        )


def _set_random_state(estimator: Any, seed: int) -> None:
    if hasattr(estimator, "random_state"):
        estimator.random_state = seed


def _same_arrays(a: Weights, b: Weights) -> bool:
    """Whether ``a`` and ``b`` hold the very same array objects (read-only views), so
    a score of one is a score of the other."""
    if a is b:
        return True
    if list(a.arrays) != list(b.arrays):
        return False
    return all(x is y for x, y in zip(a.arrays.values(), b.arrays.values(), strict=True))
