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

Scoring: the vote and the test split are scored in one pass (one call into
scikit-learn instead of two halves the time spent holding the GIL, which limits
parallel validation), for the current weights and every candidate alike
(:class:`~colearning.learners._base.LearnerBase`: one scoring path, so the same
weights always score the same).

Nothing that crosses between parties is anything but numpy arrays: weights are
installed into this learner's own estimator, never unpickled.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

import numpy as np

from colearning.core.exceptions import ConfigError, DataError, require_extra
from colearning.core.interface import Array, ColearnModel, ModelFormat, Weights
from colearning.data.types import LearnerData
from colearning.learners._base import LearnerBase
from colearning.learners.metrics import CLASSIFICATION, REGRESSION, Metric, MetricFn, resolve_metric

__all__ = ["MetricFn", "SKLearnLearner"]

Kind = Literal["classification", "regression"]

# Tags that keep the seed streams of initialisation and of rounds apart
# (SeedSequence([s]) and SeedSequence([s, 0]) are the same stream).
_INIT_TAG = 0
_ROUND_TAG = 1
# Rows of the train split the estimator sees once at construction, to create its
# arrays: a single small step, so the initial model is close to its random start.
_INIT_ROWS = 32
_MAX_SEED = 2**31 - 1


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


class SKLearnLearner(LearnerBase):
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
    vote_metric
        What decides the vote, from :mod:`colearning.learners.metrics`:
        ``"accuracy"``, ``"balanced_accuracy"``, ``"f1_macro"``, ``"roc_auc"``,
        ``"log_loss"``, ``"neg_log_loss"`` (classifiers) or ``"rmse"``, ``"mae"``,
        ``"r2"`` (regressors), or a callable ``(y_true, y_pred) -> float`` on
        ``predict`` output. Default (``None``): ``"accuracy"`` for a classifier,
        ``"rmse"`` for a regressor.
    higher_is_better
        Whether a larger vote score is better. Implied by a named metric (``rmse``,
        ``mae`` and ``log_loss`` are losses); required for a callable.
    test_metric
        What ``test_score`` reports, from the same names (or a callable, with
        ``test_higher_is_better``); default: ``vote_metric``.
    test_higher_is_better
        Direction of a callable ``test_metric``.
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
        vote_metric: str | MetricFn | None = None,
        higher_is_better: bool | None = None,
        test_metric: str | MetricFn | None = None,
        test_higher_is_better: bool | None = None,
        epochs: int = 1,
        seed: int = 0,
    ) -> None:
        require_extra("sklearn", "sklearn", "the scikit-learn learner")
        from sklearn.base import clone, is_classifier, is_regressor

        super().__init__(seed=seed)
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

        self._kind: Kind = kind
        allowed = CLASSIFICATION if kind == "classification" else REGRESSION
        default = "accuracy" if kind == "classification" else "rmse"
        self._vote_metric = resolve_metric(
            vote_metric,
            higher_is_better,
            allowed=allowed,
            what="vote_metric",
            default=default,
            task=kind,
            callable_output="predictions",
        )
        self._test_metric = (
            self._vote_metric
            if test_metric is None
            else resolve_metric(
                test_metric,
                test_higher_is_better,
                allowed=allowed,
                what="test_metric",
                task=kind,
                callable_output="predictions",
                direction_name="test_higher_is_better",
            )
        )
        self.epochs = int(epochs)
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
        for metric in (self._vote_metric, self._test_metric):
            if metric.output == "probabilities" and not hasattr(model, "predict_proba"):
                raise ConfigError(
                    f"metric {metric.name!r} needs predicted probabilities, which "
                    f"{type(model).__name__}(loss={getattr(model, 'loss', None)!r}) does not "
                    "give; use loss='log_loss' for SGDClassifier, or another metric"
                )
        if self._vote_metric.name == "roc_auc" and len(np.unique(self._vote[1])) < 2:
            raise DataError(
                "vote_metric 'roc_auc' needs at least two classes in the vote split; got only "
                f"{np.unique(self._vote[1]).tolist()} (use 'accuracy', or a partition "
                "with less label skew)"
            )

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
        self._start(Weights(self._arrays_of(self._template)))

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

    def _put(self, estimator: Any, weights: Weights, *, writable: bool) -> None:
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

    def _install(self, weights: Weights) -> None:
        # The current weights live in self._current alone: every use installs them.
        pass

    def _get_train_split(self) -> tuple[Array, Array]:
        return self._train

    def _set_train_split(self, X: Array, y: Array) -> None:
        self._train = (X, y)

    # -- scoring ------------------------------------------------------------------------

    def _output(self, estimator: Any, X: Array, metric: Metric) -> Array:
        if metric.output == "probabilities":
            return np.asarray(estimator.predict_proba(X))
        if metric.output == "scores":
            if hasattr(estimator, "predict_proba"):
                return np.asarray(estimator.predict_proba(X))
            return np.asarray(estimator.decision_function(X))
        return np.asarray(estimator.predict(X))

    def _scores(self, weights: Weights) -> tuple[float, float | None]:
        """Vote and test scores from one pass over the stacked splits (always the same
        matrix, so the same weights always get the same vote score)."""
        X_vote, y_vote = self._vote
        X_test, y_test = self._test
        self._put(self._eval, weights, writable=False)
        if not len(y_test):
            out = self._output(self._eval, X_vote, self._vote_metric)
            return self._vote_metric(y_vote, out, self.classes), None
        if self._vote_and_test is None:
            self._vote_and_test = np.concatenate([X_vote, X_test])
        n = len(y_vote)
        vote_out = self._output(self._eval, self._vote_and_test, self._vote_metric)
        test_out = (
            vote_out
            if self._test_metric.output == self._vote_metric.output
            else self._output(self._eval, self._vote_and_test, self._test_metric)
        )
        return (
            self._vote_metric(y_vote, vote_out[:n], self.classes),
            self._test_metric(y_test, test_out[n:], self.classes),
        )

    def _vote_predictions(self, weights: Weights) -> tuple[Array, Array] | None:
        if self.classes is None:
            return None
        X_vote, y_vote = self._vote
        self._put(self._eval, weights, writable=False)
        return np.asarray(y_vote), np.asarray(self._eval.predict(X_vote))

    # -- the interface ------------------------------------------------------------------

    def mli_propose_weights(self) -> Weights:
        """Train a copy of the model from the current weights for ``epochs`` passes.

        Deterministic in (current weights, train split, ``seed``, round index); the
        current weights stay as they are.
        """
        rng = self._round_rng(_ROUND_TAG)
        estimator = copy.deepcopy(self._template)
        self._put(estimator, self.mli_get_current_weights(), writable=True)
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
            If skl2onnx is not installed (``pip install 'colearning[sklearn]'``).
        """
        require_extra("skl2onnx", "sklearn", "exporting a scikit-learn model to ONNX")
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType, Int64TensorType

        estimator = copy.deepcopy(self._template)
        self._put(estimator, self.mli_get_current_weights(), writable=True)
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
        self._put(self._eval, self.mli_get_current_weights(), writable=False)
        return np.asarray(self._eval.predict(np.asarray(X)))

    def __repr__(self) -> str:
        rows = "/".join(str(len(s[1])) for s in (self._train, self._vote, self._test))
        return (
            f"SKLearnLearner({type(self._template).__name__}, "
            f"vote_metric={self.vote_metric!r}, epochs={self.epochs}, seed={self.seed}, "
            f"train/vote/test rows={rows})"
        )


def _set_random_state(estimator: Any, seed: int) -> None:
    if hasattr(estimator, "random_state"):
        estimator.random_state = seed
