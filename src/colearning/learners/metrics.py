"""The one metric vocabulary every bundled learner and task speaks.

Each metric has a name, a direction (whether a higher score is better) and the model
output it needs:

=======================  ======  =============  ==============
name                     better  output         task
=======================  ======  =============  ==============
``accuracy``             higher  predictions    classification
``balanced_accuracy``    higher  predictions    classification
``f1_macro``             higher  predictions    classification
``roc_auc``              higher  scores         classification
``log_loss``             lower   probabilities  classification
``neg_log_loss``         higher  probabilities  classification
``calibrated_log_loss``  lower   probabilities  classification
``rmse``                 lower   predictions    regression
``mae``                  lower   predictions    regression
``r2``                   higher  predictions    regression
``loss``                 lower   framework      any
=======================  ======  =============  ==============

``predictions`` are class labels (or values, for regression), ``probabilities`` one
column per class in ``classes`` order (or, for two classes, a 1-D array holding the
probability of the second), ``scores`` probabilities or decision-function values.
``loss`` is the framework's own training loss (output ``framework``: only the framework
computes it, in the PyTorch and Keras learners); it has no function here.

``calibrated_log_loss`` is the log loss after one temperature ``T >= 1`` is fitted to the
rows scored: probabilities ``p`` become ``p**(1/T)``, renormalised (the logits divided by
``T``), with the ``T`` that gives the lowest log loss, found by a golden-section search
over ``log T`` in ``[0, log 20]`` with a fixed number of steps
(:func:`calibrated_log_loss`). Over-confidence then costs a model nothing: a model whose
logits are only scaled up scores as before (while the fitted ``T`` stays in the
bracket). ``T`` is never below 1, so a model right on every row is not paid for
sharpening without bound (vote sets of a few rows would tie at a loss of 0).

The metrics are written in NumPy, not with ``sklearn.metrics``: scikit-learn warns
(balanced accuracy, for a class predicted but absent from a vote set, which is routine
under label skew) and silencing warnings is process-global, not thread-safe, while
learners score in parallel threads. The test suite checks them against scikit-learn.

Examples
--------
>>> import numpy as np
>>> METRICS["log_loss"].higher_is_better, METRICS["log_loss"].output
(False, 'probabilities')
>>> METRICS["accuracy"](np.array([0, 1, 1]), np.array([0, 1, 0]))
0.6666666666666666
>>> resolve_metric("auc", None, allowed=("accuracy", "log_loss"), what="vote_metric")
Traceback (most recent call last):
...
colearning.core.exceptions.ConfigError: vote_metric must be one of 'accuracy', ... got 'auc' ...
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from colearning.core.exceptions import ConfigError
from colearning.core.interface import Array

__all__ = [
    "CLASSIFICATION",
    "METRICS",
    "REGRESSION",
    "Metric",
    "MetricFn",
    "Output",
    "Task",
    "calibrated_log_loss",
    "direction_of",
    "framework_metric",
    "resolve_metric",
]

#: What a metric needs from the model. ``"framework"``: the framework computes it (its
#: loss, a Keras compiled metric); ``"raw"``: the output a learner documents for a
#: user's callable, such as logits.
Output = Literal["predictions", "probabilities", "scores", "framework", "raw"]
Task = Literal["classification", "regression"]
#: A user's metric: ``f(y_true, output) -> float``.
MetricFn = Callable[[Array, Array], float]

# Probabilities are clipped to [eps, 1] before the log. 1e-15 is what the tree learners
# always used (and scikit-learn before 1.5); float32 probabilities use their own
# machine epsilon, since 1 - 1e-8 already rounds to 1 in float32.
_LOG_EPS = 1e-15


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


def _columns(proba: Array) -> Array:
    """Probabilities as one column per class (a 1-D array is P(second class))."""
    return np.column_stack([1.0 - proba, proba]) if proba.ndim == 1 else proba


def _class_index(y: Array, classes: Array | None, n_columns: int) -> Array:
    if classes is None:
        classes = np.arange(n_columns)
    return np.searchsorted(classes, y)


def _log_loss(y: Array, proba: Array, classes: Array | None) -> float:
    proba = _columns(proba)
    eps = max(float(np.finfo(proba.dtype).eps), _LOG_EPS) if proba.dtype.kind == "f" else _LOG_EPS
    picked = proba[np.arange(len(y)), _class_index(y, classes, proba.shape[1])]
    return float(-np.mean(np.log(np.clip(picked.astype(np.float64), eps, 1.0))))


def _neg_log_loss(y: Array, proba: Array, classes: Array | None) -> float:
    return -_log_loss(y, proba, classes)


#: The temperatures ``calibrated_log_loss`` searches: ``log T`` in this bracket, by this
#: many golden-section steps (the bracket shrinks to 3.0 * 0.618**48, about 3e-10, in
#: ``log T``; the loss is flat at its minimum, so its value is off by far less).
CALIBRATION_LOG_T = (0.0, math.log(20.0))
CALIBRATION_STEPS = 48
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


def _tempered_log_loss(logits: Array, index: Array, log_t: float) -> float:
    """Mean negative log-likelihood of ``softmax(logits / T)`` at ``index``."""
    z = logits / math.exp(log_t)
    top = z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z - top).sum(axis=1)) + top[:, 0]
    return float(np.mean(lse - z[np.arange(len(index)), index]))


def calibrated_log_loss(
    y: Array, proba: Array, classes: Array | None = None
) -> tuple[float, float]:
    """``(loss, T)``: the lowest log loss of ``proba ** (1/T)`` (renormalised) over the
    temperatures ``T`` in ``exp(CALIBRATION_LOG_T)``, and the ``T`` that gives it.

    The search is deterministic: a golden-section search over ``log T`` with
    ``CALIBRATION_STEPS`` steps and no stopping rule, whose result is the lowest loss it
    evaluated. The bracket's ends are evaluated too, so ``T = 1``, the plain log loss,
    is always a candidate and the result is never above it (for float64
    probabilities). The loss is convex in ``1/T``, so the search finds its minimum.
    Probabilities are clipped at ``1e-15``, float32 ones too (``log_loss`` clips those
    at float32's epsilon, which would undo much of a confident model's rescaling).

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([0, 1, 1, 0])
    >>> sure = np.array([[0.99, 0.01], [0.02, 0.98], [0.97, 0.03], [0.9, 0.1]])
    >>> loss, t = calibrated_log_loss(y, sure)
    >>> round(loss, 4) < round(METRICS["log_loss"](y, sure), 4), t > 1
    (True, True)
    """
    # 1e-15 whatever the dtype: the temperature acts on ratios of probabilities, which
    # float32 keeps far below its epsilon
    proba = _columns(np.asarray(proba))
    logits = np.log(np.clip(proba.astype(np.float64), _LOG_EPS, 1.0))
    index = _class_index(np.asarray(y), classes, proba.shape[1])
    lo, hi = CALIBRATION_LOG_T
    best = min((_tempered_log_loss(logits, index, a), a) for a in (lo, hi))
    a, b = lo + (1.0 - _GOLDEN) * (hi - lo), lo + _GOLDEN * (hi - lo)
    fa, fb = _tempered_log_loss(logits, index, a), _tempered_log_loss(logits, index, b)
    for _ in range(CALIBRATION_STEPS):
        best = min(best, (fa, a), (fb, b))
        if fa <= fb:  # the minimum is in [lo, b]
            hi, b, fb = b, a, fa
            a = lo + (1.0 - _GOLDEN) * (hi - lo)
            fa = _tempered_log_loss(logits, index, a)
        else:  # in [a, hi]
            lo, a, fa = a, b, fb
            b = lo + _GOLDEN * (hi - lo)
            fb = _tempered_log_loss(logits, index, b)
    loss, log_t = min(best, (fa, a), (fb, b))
    return loss, math.exp(log_t)


def _calibrated_log_loss(y: Array, proba: Array, classes: Array | None) -> float:
    return calibrated_log_loss(y, proba, classes)[0]


def _binary_auc(positive: Array, score: Array) -> float:
    """Area under the ROC curve by the rank-sum formula (ties get average ranks)."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    score = np.asarray(score, dtype=np.float64)
    order = np.argsort(score, kind="mergesort")
    _, first, counts = np.unique(score[order], return_index=True, return_counts=True)
    ranks = np.empty(len(score), dtype=np.float64)
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _roc_auc(y: Array, scores: Array, classes: Array | None) -> float:
    """Binary AUC, or for several classes the mean one-vs-rest AUC over the classes
    present in ``y`` (a learner's vote set under label skew lacks some classes); NaN
    when ``y`` holds fewer than two classes."""
    present = np.unique(y)
    if len(present) < 2:
        return math.nan
    if scores.ndim == 1 or scores.shape[1] == 1:
        # one score per row: of the last class (binary decision function or P(1))
        last = classes[-1] if classes is not None else present[-1]
        return _binary_auc(np.asarray(y == last), scores.reshape(len(y)))
    if classes is None:
        classes = np.arange(scores.shape[1])
    if len(classes) == 2:
        return _binary_auc(np.asarray(y == classes[1]), scores[:, 1])
    columns = np.searchsorted(classes, present)
    aucs = [
        _binary_auc(np.asarray(y == c), scores[:, j]) for c, j in zip(present, columns, strict=True)
    ]
    return float(np.mean(aucs))


def _values(pred: Array) -> Array:
    return np.asarray(pred, np.float64).reshape(-1)


def _rmse(y: Array, pred: Array, classes: Array | None) -> float:
    return float(np.sqrt(np.mean((_values(pred) - y) ** 2)))


def _mae(y: Array, pred: Array, classes: Array | None) -> float:
    return float(np.mean(np.abs(_values(pred) - y)))


def _r2(y: Array, pred: Array, classes: Array | None) -> float:
    y = np.asarray(y, np.float64)
    residual = float(np.sum((y - _values(pred)) ** 2))
    total = float(np.sum((y - y.mean()) ** 2))
    if total == 0.0:  # constant targets: sklearn's force_finite convention
        return 1.0 if residual == 0.0 else 0.0
    return 1.0 - residual / total


@dataclass(frozen=True)
class Metric:
    """One metric: its name, direction, the output it needs, and how it is computed.

    Call it as ``metric(y_true, output, classes)``; ``classes`` (every class label, in
    the order of the probability columns) matters only for probabilities and scores,
    and defaults to ``0 .. k-1``.

    Examples
    --------
    >>> import numpy as np
    >>> METRICS["rmse"](np.array([0.0, 2.0]), np.array([1.0, 1.0]))
    1.0
    """

    name: str
    higher_is_better: bool
    output: Output
    task: Task | None  # None: any model (the framework loss, a user's callable)
    fn: Callable[[Array, Array, Array | None], float] | None = None

    def __call__(self, y: Array, output: Array, classes: Array | None = None) -> float:
        if self.fn is None:
            raise ConfigError(
                f"metric {self.name!r} is the framework's own loss; only a framework "
                "learner (PyTorch, Keras) computes it"
            )
        return self.fn(np.asarray(y), np.asarray(output), classes)


#: Every metric name, with its direction and the output it needs.
METRICS: Mapping[str, Metric] = {
    m.name: m
    for m in (
        Metric("accuracy", True, "predictions", "classification", _accuracy),
        Metric("balanced_accuracy", True, "predictions", "classification", _balanced_accuracy),
        Metric("f1_macro", True, "predictions", "classification", _f1_macro),
        Metric("roc_auc", True, "scores", "classification", _roc_auc),
        Metric("log_loss", False, "probabilities", "classification", _log_loss),
        Metric("neg_log_loss", True, "probabilities", "classification", _neg_log_loss),
        Metric(
            "calibrated_log_loss", False, "probabilities", "classification", _calibrated_log_loss
        ),
        Metric("rmse", False, "predictions", "regression", _rmse),
        Metric("mae", False, "predictions", "regression", _mae),
        Metric("r2", True, "predictions", "regression", _r2),
        Metric("loss", False, "framework", None),
    )
}
#: The names for classifiers and for regressors (``loss`` aside).
CLASSIFICATION: tuple[str, ...] = tuple(n for n, m in METRICS.items() if m.task == "classification")
REGRESSION: tuple[str, ...] = tuple(n for n, m in METRICS.items() if m.task == "regression")


def _names(names: Iterable[str]) -> str:
    quoted = [repr(n) for n in names]
    return ", ".join(quoted)


def resolve_metric(
    metric: str | MetricFn | None,
    higher_is_better: bool | None,
    *,
    allowed: Iterable[str],
    what: str = "vote_metric",
    default: str | None = None,
    task: Task | None = None,
    callable_output: Output | None = "raw",
    direction_name: str = "higher_is_better",
) -> Metric:
    """The :class:`Metric` a learner's ``vote_metric``/``test_metric`` argument names.

    Parameters
    ----------
    metric
        A name from :data:`METRICS`, a callable ``f(y_true, output) -> float`` (on
        ``callable_output``; refused where that is ``None``), or ``None`` for
        ``default``.
    higher_is_better
        The direction: required for a callable; for a name, implied (and checked if
        given).
    allowed
        The names this learner and model can compute, in the order errors list them.
    what
        The argument's name, for errors (``"vote_metric"``, ``"test_metric"``).
    default
        The name ``None`` stands for; default: the first allowed name.
    task
        The model's task, so that a metric of the other task is named as such.
    callable_output
        What a callable metric is given (``None``: this learner takes no callable).
    direction_name
        The name of the direction argument, for errors.

    Raises
    ------
    ConfigError
        Naming the value, the allowed names and the fix.
    """
    allowed = tuple(allowed)
    if metric is None:
        metric = default if default is not None else allowed[0]
    if callable(metric):
        if callable_output is None:
            raise ConfigError(f"{what} must be one of {_names(allowed)}; got a callable")
        if higher_is_better is None:
            raise ConfigError(
                f"{direction_name} must be given for a callable {what}; got None "
                f"(pass {direction_name}=True for a score, False for a loss)"
            )
        user_fn = metric
        name = str(getattr(metric, "__name__", type(metric).__name__))

        def call(y: Array, output: Array, classes: Array | None) -> float:
            return float(user_fn(y, output))

        return Metric(name, bool(higher_is_better), callable_output, None, call)
    if not isinstance(metric, str) or metric not in allowed:
        hint = ""
        known = METRICS.get(metric) if isinstance(metric, str) else None
        if known is not None and task is not None and known.task not in (None, task):
            raise ConfigError(
                f"{what} {metric!r} is a {known.task} metric but the model is a {task} "
                f"model; use one of {_names(allowed)}"
            )
        if known is not None:
            hint = f" ({metric!r} does not suit this model)"
        elif isinstance(metric, str):
            hint = _spelling_hint(metric)
        or_callable = " or a callable" if callable_output is not None else ""
        raise ConfigError(
            f"{what} must be one of {_names(allowed)}{or_callable}; got {metric!r}{hint}"
        )
    resolved = METRICS[metric]
    if higher_is_better is not None and bool(higher_is_better) != resolved.higher_is_better:
        raise ConfigError(
            f"{direction_name} must be {resolved.higher_is_better} for {what} {metric!r}; "
            f"got {higher_is_better} (leave it out for a named metric)"
        )
    return resolved


# Spellings other libraries use, and this vocabulary's word for each.
_ALIASES: Mapping[str, str] = {
    "auc": "roc_auc",
    "logloss": "log_loss",
    "mse": "rmse",
    "neg_mean_squared_error": "rmse",
    "f1": "f1_macro",
}


def _spelling_hint(name: str) -> str:
    if name in _ALIASES:
        return f" (this library spells it {_ALIASES[name]!r})"
    return ""


def direction_of(name: str, *, default: bool | None = None) -> bool | None:
    """Whether a higher score is better for ``name``, if it is a registry name.

    Examples
    --------
    >>> direction_of("accuracy"), direction_of("loss"), direction_of("my_metric")
    (True, False, None)
    """
    metric = METRICS.get(name)
    return metric.higher_is_better if metric is not None else default


def framework_metric(name: str, higher_is_better: bool) -> Metric:
    """A metric a framework computes itself (Keras' compiled metrics), by its name."""
    known = METRICS.get(name)
    if known is not None:
        return known
    return Metric(name, bool(higher_is_better), "framework", None)
