"""A gradient-boosted tree learner on XGBoost (extra ``xgboost``).

The shared model is an XGBoost booster. A proposal adds a few boosting rounds on the
proposer's data to the current booster; voters score it on their own vote set.

Weights are one array, ``{"booster": uint8[...]}``: the booster in XGBoost's own
UBJSON format (``Booster.save_raw("ubj")``), never pickle.

Incoming booster bytes are **not** handed to XGBoost as they are: XGBoost's model
loader trusts its input, and truncated or bit-flipped UBJSON can crash the process
(segmentation fault) or hang it (a cycle in a tree). So a received booster is parsed
here in pure Python with a strict UBJSON reader, checked against the expected model
(objective, number of features and classes, gbtree only, numerical splits only, every
tree a proper tree whose child and feature indices are in range, finite numbers), and
only that checked document, re-written as JSON, is loaded into XGBoost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from colearning.core.exceptions import ConfigError, WeightsError, require_extra
from colearning.core.interface import Array, Weights
from colearning.data.types import LearnerData
from colearning.learners._base import EncodedModelLearner
from colearning.learners._formats import booster_json, read_booster
from colearning.learners.metrics import CLASSIFICATION, REGRESSION, MetricFn, resolve_metric
from colearning.learners.metrics import Task as MetricTask

require_extra("xgboost", "xgboost", "the XGBoost learner")

import xgboost as xgb  # noqa: E402 - after the extra check, for its message

__all__ = ["XGBoostLearner", "booster_from_bytes", "to_onnx"]

_CLASSIFICATION_OBJECTIVES = ("binary:logistic", "multi:softprob")


def booster_from_bytes(
    blob: bytes | Array, *, objective: str, n_features: int, num_class: int = 0
) -> xgb.Booster:
    """Load a booster received from another party, after checking it is safe.

    The bytes are parsed and checked in pure Python first
    (:func:`colearning.learners._formats.read_booster`); only the checked document,
    rewritten as JSON, reaches XGBoost.

    Parameters
    ----------
    blob
        ``Booster.save_raw("ubj")`` bytes (or the ``uint8`` array holding them).
    objective, n_features, num_class
        What the booster must be: its objective, its number of input features, and
        its number of classes (0 for binary and regression objectives).

    Raises
    ------
    WeightsError
        Naming what is wrong: not UBJSON, truncated, another kind of model, a tree
        whose indices are out of range or that loops, NaN/Inf numbers.
    """
    doc = read_booster(blob, objective=objective, n_features=n_features, num_class=num_class)
    try:
        return xgb.Booster(model_file=bytearray(booster_json(doc)))
    except xgb.core.XGBoostError as exc:
        first_line = str(exc).splitlines()[0]
        raise WeightsError(f"XGBoost refused the checked booster: {first_line}") from exc


# -- the learner --------------------------------------------------------------------------


class XGBoostLearner(EncodedModelLearner[xgb.Booster]):
    """A learner whose shared model is an XGBoost booster.

    Parameters
    ----------
    params
        XGBoost training parameters (``max_depth``, ``eta``, ``subsample``, ...).
        ``objective`` may be given (``"binary:logistic"``, ``"multi:softprob"`` or a
        ``"reg:..."`` objective); otherwise it is inferred from the labels: float
        labels mean regression, integer labels classification. ``nthread`` defaults to
        1 (validations of a round already run in parallel). ``seed`` is set per round.
    data
        This learner's private train, vote and test sets.
    rounds_per_proposal
        Boosting rounds a proposal adds to the current booster.
    vote_metric
        A name of :mod:`colearning.learners.metrics`: ``"accuracy"`` (the default for
        classification), ``"balanced_accuracy"``, ``"f1_macro"``, ``"roc_auc"``,
        ``"log_loss"``, ``"neg_log_loss"``; ``"rmse"`` (the default for regression),
        ``"mae"``, ``"r2"``; or a callable ``(y_true, prediction) -> float`` where
        ``prediction`` is what :meth:`predict_raw` returns (probabilities of class 1
        for binary, one column per class for multi-class, values for regression;
        ``y_true`` holds class indices).
    higher_is_better
        Direction of ``vote_metric``; required for a callable, implied by a name.
    test_metric
        What ``test_score`` reports (e.g. vote on ``"log_loss"``, report
        ``"accuracy"``); default: ``vote_metric``.
    test_higher_is_better
        Direction of a callable ``test_metric``.
    classes
        Every class label of the task, so that learners whose share lacks some labels
        still build the same model. Default: the labels found in this learner's data.
    seed
        Seeds training together with the round index.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from colearning.data.types import LearnerData
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> data = LearnerData(train=(X[:300], y[:300]), vote=(X[300:400], y[300:400]),
    ...                    test=(X[400:], y[400:]))
    >>> learner = XGBoostLearner({"max_depth": 2}, data, rounds_per_proposal=3)
    >>> proposal = learner.mli_propose_weights()
    >>> learner.mli_test_weights(proposal).vote
    True
    """

    def __init__(
        self,
        params: Mapping[str, Any],
        data: LearnerData,
        *,
        rounds_per_proposal: int = 5,
        vote_metric: str | MetricFn | None = None,
        higher_is_better: bool | None = None,
        test_metric: str | MetricFn | None = None,
        test_higher_is_better: bool | None = None,
        classes: Sequence[Any] | Array | None = None,
        seed: int = 0,
    ) -> None:
        if not isinstance(rounds_per_proposal, int) or rounds_per_proposal < 1:
            raise ConfigError(
                f"rounds_per_proposal must be an integer >= 1; got {rounds_per_proposal!r}"
            )
        super().__init__(seed=seed)
        self.data = data
        self.rounds_per_proposal = rounds_per_proposal
        self.params: dict[str, Any] = {"nthread": 1, **dict(params)}
        self.params.pop("seed", None)
        self.params.pop("random_state", None)

        y_all = np.concatenate([np.asarray(s[1]) for s in (data.train, data.vote, data.test)])
        objective = self.params.get("objective")
        if objective is None:
            is_regression = y_all.dtype.kind == "f" and classes is None
            if is_regression:
                objective = "reg:squarederror"
            else:
                n = len(np.unique(y_all) if classes is None else np.asarray(classes))
                objective = "binary:logistic" if n <= 2 else "multi:softprob"
        if not isinstance(objective, str) or not (
            objective in _CLASSIFICATION_OBJECTIVES or objective.startswith("reg:")
        ):
            raise ConfigError(
                "params['objective'] must be 'binary:logistic', 'multi:softprob' or a "
                f"'reg:...' objective; got {objective!r} (for class labels use "
                "'multi:softprob', not 'multi:softmax')"
            )
        self.objective: str = objective
        self.kind = "regression" if objective.startswith("reg:") else "classification"
        self.params["objective"] = objective

        if self.kind == "classification":
            self.classes = np.unique(y_all if classes is None else np.asarray(classes))
            if objective == "binary:logistic" and len(self.classes) != 2:
                raise ConfigError(
                    f"objective 'binary:logistic' needs exactly 2 classes; got "
                    f"{len(self.classes)} ({self.classes.tolist()}); use 'multi:softprob'"
                )
            self.num_class = len(self.classes) if objective == "multi:softprob" else 0
            if self.num_class:
                self.params["num_class"] = self.num_class
        else:
            self.classes = None
            self.num_class = 0
            if classes is not None:
                raise ConfigError(f"classes must be None for objective {objective!r}")

        task: MetricTask = "regression" if self.kind == "regression" else "classification"
        allowed = REGRESSION if task == "regression" else CLASSIFICATION
        self._vote_metric = resolve_metric(
            vote_metric, higher_is_better, allowed=allowed, what="vote_metric", task=task
        )
        self._test_metric = (
            self._vote_metric
            if test_metric is None
            else resolve_metric(
                test_metric,
                test_higher_is_better,
                allowed=allowed,
                what="test_metric",
                task=task,
                direction_name="test_higher_is_better",
            )
        )
        self._set_splits(data)

        # The initial model: one boosting round, deterministic in (data, seed), so that
        # it exports to ONNX and fixes base_score (a 0-round booster would estimate it
        # again on whichever learner trains first).
        booster = self._train(None, 1, np.random.default_rng([self.seed, 2**31 - 1]))
        self._model = booster
        self._start(self._encode(booster))

    # -- helpers ------------------------------------------------------------------------

    def _train(
        self, start: xgb.Booster | None, rounds: int, rng: np.random.Generator
    ) -> xgb.Booster:
        params = {**self.params, "seed": int(rng.integers(2**31 - 1))}
        dtrain = xgb.DMatrix(self._X_train, label=self._y_train)
        return xgb.train(params, dtrain, rounds, xgb_model=start)

    def _encode(self, booster: xgb.Booster) -> Weights:
        raw = booster.save_raw("ubj")
        return Weights({"booster": np.frombuffer(bytes(raw), dtype=np.uint8)})

    def _decode(self, weights: Weights) -> xgb.Booster:
        return booster_from_bytes(
            weights.arrays["booster"],
            objective=self.objective,
            n_features=self.n_features,
            num_class=self.num_class,
        )

    def _predict_raw(self, booster: xgb.Booster, X: Array) -> Array:
        # inplace_predict is thread-safe: voters score in parallel threads.
        return np.asarray(booster.inplace_predict(np.asarray(X, dtype=np.float32)))

    def _propose_model(self, current: xgb.Booster, rng: np.random.Generator) -> xgb.Booster:
        """Add ``rounds_per_proposal`` boosting rounds on local data to a copy of
        ``current``."""
        start = xgb.Booster(model_file=bytearray(current.save_raw("ubj")))
        return self._train(start, self.rounds_per_proposal, rng)

    def _to_onnx(self, model: xgb.Booster) -> bytes:
        """Input ``"input"`` of shape ``[None, n_features]`` float32."""
        return to_onnx(model, self.n_features)

    # -- extras ---------------------------------------------------------------------------

    @property
    def booster(self) -> xgb.Booster:
        """The current booster (do not train it in place)."""
        return self._model

    def predict_raw(self, X: Array) -> Array:
        """The current booster's output: probabilities or regression values."""
        return self._predict_raw(self._model, X)

    def predict(self, X: Array) -> Array:
        """Class labels (classification) or values (regression) of the current model."""
        out = self.predict_raw(X)
        if self.classes is None:
            return out
        index = (out > 0.5).astype(np.int64) if out.ndim == 1 else np.argmax(out, axis=1)
        return np.asarray(self.classes[index])


def to_onnx(booster: xgb.Booster, n_features: int, target_opset: int = 15) -> bytes:
    """Convert ``booster`` to ONNX bytes with onnxmltools.

    Raises
    ------
    MissingExtraError
        If onnxmltools is not installed.
    WeightsError
        If onnxmltools cannot convert this booster.
    """
    require_extra("onnxmltools", "xgboost", "exporting an XGBoost model to ONNX")
    from onnxmltools import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    try:
        onx = convert_xgboost(
            booster,
            initial_types=[("input", FloatTensorType([None, n_features]))],
            target_opset=target_opset,
        )
    except Exception as exc:  # any converter failure is reported the same way
        raise WeightsError(
            f"onnxmltools {__import__('onnxmltools').__version__} cannot convert this "
            f"XGBoost {xgb.__version__} booster to ONNX ({type(exc).__name__}: {exc}); "
            "export Booster.save_raw('ubj') instead"
        ) from exc
    return bytes(onx.SerializeToString())
