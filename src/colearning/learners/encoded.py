"""The protocol half shared by learners whose whole model travels as one encoded
``uint8`` array (a boosted-tree booster, a forest).

A subclass says how to grow a model from the current one, how to encode, decode (with
its checks) and score a model, and how to export it; this class does the rest of the
interface: seeding proposals from ``(seed, round_index)``, voting strictly-better, and
reusing the vote score computed in ``mli_test_weights`` when the same weights are
accepted.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from typing import Any, Generic, TypeVar

import numpy as np

from colearning.core.exceptions import ConfigError, WeightsError
from colearning.core.interface import (
    Array,
    ColearnModel,
    MachineLearningInterface,
    ModelFormat,
    ProposedWeights,
    Weights,
)
from colearning.data.types import LearnerData

Model = TypeVar("Model")


def check_tree_links(left: Array, right: Array, n_nodes: int, where: str) -> Array:
    """Check the child links of one decision tree received from another party.

    Every node has both children or none; children lie in ``[1, n_nodes)``; no node has
    two parents, and the root is nobody's child, so a walk from the root can never loop
    (a cycle would hang prediction). Returns the leaf mask.

    Raises
    ------
    WeightsError
        Naming ``where`` (e.g. ``"tree 3"``) and the broken rule.
    """
    leaf: Array = np.asarray(left == -1)
    if np.any(leaf != (right == -1)):
        raise WeightsError(f"{where}: a node has exactly one child")
    children = np.concatenate([left[~leaf], right[~leaf]])
    if np.any((children < 1) | (children >= n_nodes)):
        raise WeightsError(f"{where}: a child index is outside [1, {n_nodes})")
    if len(np.unique(children)) != len(children):
        raise WeightsError(f"{where}: a node has two parents (not a tree)")
    return leaf


class EncodedModelLearner(MachineLearningInterface, Generic[Model]):
    """Base of :class:`~colearning.learners.xgboost.XGBoostLearner` and
    :class:`~colearning.learners.forest.RandomForestLearner`.

    Subclasses set ``seed``, ``metric``, ``higher_is_better`` and ``evaluations``, call
    :meth:`_set_test_metric` and :meth:`_set_splits`, then :meth:`_set_current` with
    their first model.
    """

    seed: int
    metric: Any
    test_metric: Any
    higher_is_better: bool
    evaluations: int
    n_features: int
    _X_train: Array
    _y_train: Array
    _X_vote: Array
    _y_vote: Array
    _X_test: Array
    _y_test: Array
    _round: int = 0

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
    def _score(self, model: Model, X: Array, y: Array, metric: Any = None) -> float:
        """``metric`` (default: the vote metric) of ``model`` on ``(X, y)``."""

    @abc.abstractmethod
    def _to_onnx(self, model: Model) -> bytes:
        """``model`` exported as ONNX bytes."""

    # -- shared machinery -----------------------------------------------------------------

    def _set_test_metric(self, metric: Any, test_metric: Any, allowed: Iterable[str]) -> None:
        """``test_metric``, checked; ``None`` means the vote ``metric``."""
        allowed = list(allowed)
        if test_metric is not None and not callable(test_metric) and test_metric not in allowed:
            raise ConfigError(
                f"test_metric must be one of {allowed} or a callable; got {test_metric!r}"
            )
        self.test_metric = metric if test_metric is None else test_metric

    def _set_splits(self, data: LearnerData) -> None:
        """Checked arrays of the train, vote and test splits (``_xy`` of the subclass)."""
        self._X_train, self._y_train = self._xy(data.train, "train")
        self._X_vote, self._y_vote = self._xy(data.vote, "vote")
        self._X_test, self._y_test = self._xy(data.test, "test")
        self.n_features = int(self._X_train.shape[1])

    @abc.abstractmethod
    def _xy(self, xy: tuple[Array, Array], name: str) -> tuple[Array, Array]:
        """One split as checked arrays; raises ``DataError``."""

    def _vote_score_of(self, model: Model) -> float:
        self.evaluations += 1
        return self._score(model, self._X_vote, self._y_vote)

    def _better(self, score: float, than: float) -> bool:
        return score > than if self.higher_is_better else score < than

    def _set_current(self, weights: Weights, model: Model, vote_score: float | None) -> None:
        self._weights = weights
        self._model = model
        self._vote_score = vote_score if vote_score is not None else self._vote_score_of(model)
        self._cache: tuple[Weights, float] | None = None

    # -- the interface --------------------------------------------------------------------

    def mli_set_round(self, round_index: int) -> None:
        """Remember the round index: it seeds the next proposal."""
        self._round = int(round_index)

    def mli_propose_weights(self) -> Weights:
        """Train on local data from the current model; the current model is unchanged."""
        rng = np.random.default_rng([self.seed, self._round])
        return self._encode(self._propose_model(self._model, rng))

    def mli_test_weights(self, weights: Weights) -> ProposedWeights:
        """Score ``weights`` on the vote and test sets; approve if strictly better."""
        model = self._decode(weights)
        vote_score = self._vote_score_of(model)
        test_score = (
            self._score(model, self._X_test, self._y_test, self.test_metric)
            if len(self._y_test)
            else None
        )
        self._cache = (weights, vote_score)
        return ProposedWeights(
            weights, vote_score, test_score, self._better(vote_score, self._vote_score)
        )

    def mli_accept_weights(self, weights: Weights) -> None:
        """Adopt ``weights``, reusing the vote score computed when they were tested."""
        model = self._decode(weights)
        cached = self._cache
        same = cached is not None and (cached[0] is weights or cached[0] == weights)
        self._set_current(weights, model, cached[1] if same and cached else None)

    def mli_get_current_weights(self) -> Weights:
        return self._weights

    def mli_get_current_model(self) -> ColearnModel:
        """The current model as ONNX bytes (``ColearnModel.model``)."""
        return ColearnModel(ModelFormat.ONNX, model=self._to_onnx(self._model))
