"""A Keras 3 learner (extra ``keras``), on the PyTorch backend.

The shared model is a Keras model's weights. A proposal trains a clone of the model,
with a fresh optimizer, for a few epochs on the proposer's data; voters evaluate the
proposal on their own vote set with ``model.evaluate``.

Weights are named arrays in ``model.weights`` order, named after the variables' paths
(``"dense/kernel"``), made independent of the numbers Keras appends to automatic names
(``dense_7`` in one model is ``dense`` in another built the same way): the model's own
name is dropped and, at each level, layers are renamed ``base``, ``base_1``, ... in
order of appearance. So every learner built by the same code gets the same names,
whatever else the process built before.

This module sets ``KERAS_BACKEND=torch`` unless it is already set; Keras must not have
been imported with another backend (a :class:`ConfigError` says so).
"""

from __future__ import annotations

import os
import re
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from colearning.core.exceptions import ConfigError, DataError, WeightsError, require_extra
from colearning.core.interface import Array, ColearnModel, ModelFormat, Weights
from colearning.data.types import LearnerData
from colearning.learners._base import LearnerBase
from colearning.learners.metrics import METRICS, Metric, framework_metric

os.environ.setdefault("KERAS_BACKEND", "torch")
require_extra("keras", "keras", "the Keras learner")
require_extra("torch", "keras", "the Keras learner (PyTorch backend)")

import keras  # noqa: E402 - after the backend is chosen and the extra checked

__all__ = ["KerasLearner", "keras", "stable_weight_names"]

_LOWER_IS_BETTER = re.compile(r"loss|error|crossentropy|mse|mae|rmse|hinge|divergence")


def _check_backend() -> None:
    backend = keras.backend.backend()
    if backend != "torch":
        raise ConfigError(
            f"the Keras learner runs on the 'torch' backend; Keras was already loaded with "
            f"backend {backend!r}. Set KERAS_BACKEND=torch before anything imports keras"
        )


def _keras_metric(
    name: Any,
    higher_is_better: bool | None,
    reported: Sequence[str],
    what: str,
    direction_name: str,
) -> Metric:
    """A name ``model.evaluate`` reports, with its direction: the metric vocabulary's
    where it has the name (``loss``, ``accuracy``, ``mae``, ...), else as given or read
    from the name (loss, error, crossentropy, mse, mae: lower is better)."""
    if not isinstance(name, str) or name not in reported:
        raise ConfigError(
            f"{what} must be one of {sorted(reported)} (what model.evaluate reports); got {name!r}"
        )
    known = METRICS.get(name)
    if known is not None:
        if higher_is_better is not None and bool(higher_is_better) != known.higher_is_better:
            raise ConfigError(
                f"{direction_name} must be {known.higher_is_better} for {what} {name!r}; "
                f"got {higher_is_better} (leave it out for a named metric)"
            )
        return known
    direction = (
        not _LOWER_IS_BETTER.search(name) if higher_is_better is None else bool(higher_is_better)
    )
    return framework_metric(name, direction)


def stable_weight_names(model: keras.Model) -> list[str]:
    """Names for ``model.weights`` that do not depend on Keras' automatic numbering.

    Examples
    --------
    >>> def build():
    ...     return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3),
    ...                              keras.layers.Dense(2)])
    >>> first, second = build(), build()
    >>> stable_weight_names(first) == stable_weight_names(second)
    True
    >>> stable_weight_names(first)
    ['dense/kernel', 'dense/bias', 'dense_1/kernel', 'dense_1/bias']
    """
    paths = [str(v.path).split("/") for v in model.weights]
    if paths and all(len(p) > 1 and p[0] == model.name for p in paths):
        paths = [p[1:] for p in paths]
    renamed: dict[tuple[str, ...], str] = {}
    counters: dict[tuple[str, ...], dict[str, int]] = {}
    names = []
    for parts in paths:
        canonical: list[str] = []
        for depth in range(len(parts) - 1):
            key = tuple(parts[: depth + 1])
            if key not in renamed:
                base = re.sub(r"_\d+$", "", parts[depth])
                seen = counters.setdefault(tuple(canonical), {})
                n = seen.get(base, 0)
                seen[base] = n + 1
                renamed[key] = base if n == 0 else f"{base}_{n}"
            canonical.append(renamed[key])
        names.append("/".join([*canonical, parts[-1]]))
    if len(set(names)) != len(names):
        # Only for odd layer names that clash once renumbered: fall back to positions.
        names = [f"{i:04d}/{name}" for i, name in enumerate(names)]
    return names


class KerasLearner(LearnerBase):
    """A learner whose shared model is a Keras 3 model.

    Parameters
    ----------
    model
        The model; compiled, or compiled here with ``loss``, ``optimizer`` and
        ``metrics``. Its weights are this learner's starting weights. Proposals train
        a clone (``keras.models.clone_model``) compiled from the same compile config,
        so each proposal starts with a fresh optimizer.
    data
        This learner's private train, vote and test sets.
    epochs
        Passes over the local training set per proposal.
    batch_size
        Batch size for training and evaluation.
    vote_metric
        ``"loss"`` (lower is better) or the name of a compiled metric, as
        ``model.evaluate(..., return_dict=True)`` reports it (e.g. ``"accuracy"``).
    higher_is_better
        Direction of ``vote_metric``: that of :mod:`colearning.learners.metrics` for
        its names (``loss``, ``accuracy``, ``mae``, ``rmse``, ...); for other names
        inferred when ``None`` (names with loss, error, crossentropy, mse, mae: lower
        is better).
    test_metric
        What ``test_score`` reports (e.g. vote on ``"loss"``, report ``"accuracy"``);
        default: ``vote_metric``.
    test_higher_is_better
        Direction of ``test_metric``, as ``higher_is_better``.
    seed
        Seeds the data order and any random layers (dropout) of a proposal, together
        with the round index. Unseeded layers draw from torch's global generator, which
        is seeded inside ``torch.random.fork_rng`` and so restored afterwards; do not
        train other torch models in other threads of the same process meanwhile.
    loss, optimizer, metrics
        Used to compile ``model`` when it is not compiled.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from colearning.data.types import LearnerData
    >>> X, y = load_iris(return_X_y=True)
    >>> data = LearnerData(train=(X[::3], y[::3]), vote=(X[1::3], y[1::3]),
    ...                    test=(X[2::3], y[2::3]))
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, "softmax")])
    >>> learner = KerasLearner(model, data, loss="sparse_categorical_crossentropy",
    ...                        optimizer="adam", metrics=["accuracy"])
    >>> list(learner.mli_get_current_weights())
    ['dense/kernel', 'dense/bias']
    """

    def __init__(
        self,
        model: keras.Model,
        data: LearnerData,
        *,
        epochs: int = 1,
        batch_size: int = 32,
        vote_metric: str = "loss",
        higher_is_better: bool | None = None,
        test_metric: str | None = None,
        test_higher_is_better: bool | None = None,
        seed: int = 0,
        loss: Any = None,
        optimizer: Any = "adam",
        metrics: Sequence[Any] | None = None,
    ) -> None:
        _check_backend()
        if not isinstance(model, keras.Model):
            raise ConfigError(f"model must be a keras.Model; got {type(model).__name__}")
        if not isinstance(epochs, int) or epochs < 1:
            raise ConfigError(f"epochs must be an integer >= 1; got {epochs!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be an integer >= 1; got {batch_size!r}")
        super().__init__(seed=seed)
        self.epochs = epochs
        self.batch_size = batch_size
        self.data = data
        self._X_train, self._y_train = self._xy(data.train, "train")
        self._X_vote, self._y_vote = self._xy(data.vote, "vote")
        self._X_test, self._y_test = self._xy(data.test, "test")
        if len(self._y_vote) == 0:
            raise DataError("the vote split must hold at least one row; got 0")

        if not getattr(model, "compiled", False):
            if loss is None:
                raise ConfigError(
                    "the model is not compiled, so loss must be given; got loss=None "
                    "(compile the model, or pass loss=..., optimizer=..., metrics=[...])"
                )
            model.compile(optimizer=optimizer, loss=loss, metrics=list(metrics or []))
        self._compile_config = model.get_compile_config()
        self._model = model
        # Builds an unbuilt model; and the ONNX export needs a model that was called.
        model(self._X_train[:1], training=False)
        self.names = stable_weight_names(model)
        # The model that scores weights: the current model stays untouched.
        self._scratch = self._clone()

        # Which names model.evaluate reports (one row is enough to list them; the
        # scores all come from _scores).
        reported = list(self._evaluate(self._scratch, self._X_vote[:1], self._y_vote[:1]))
        self._vote_metric = _keras_metric(
            vote_metric, higher_is_better, reported, "vote_metric", "higher_is_better"
        )
        self._test_metric = (
            self._vote_metric
            if test_metric is None
            else _keras_metric(
                test_metric, test_higher_is_better, reported, "test_metric", "test_higher_is_better"
            )
        )
        self._start(self._to_weights(model.get_weights()))

    # -- helpers ------------------------------------------------------------------------

    @staticmethod
    def _xy(xy: tuple[Array, Array], name: str) -> tuple[Array, Array]:
        X = np.asarray(xy[0])
        if X.dtype.kind in "fiub":
            X = X.astype(np.float32)
        y = np.asarray(xy[1])
        if len(X) != len(y):
            raise DataError(f"{name} X has {len(X)} rows but y has {len(y)}")
        return X, y

    def _clone(self) -> keras.Model:
        clone = keras.models.clone_model(self._model)
        if not clone.built:
            clone(self._X_train[:1])
        clone.compile_from_config(self._compile_config)
        return clone

    def _to_weights(self, arrays: list[Array]) -> Weights:
        return Weights({n: np.asarray(a) for n, a in zip(self.names, arrays, strict=True)})

    @staticmethod
    def _as_list(weights: Weights) -> list[Array]:
        # Copies: the shared arrays are read-only and torch wants writable memory.
        return [np.array(a) for a in weights.arrays.values()]

    def _evaluate(self, model: keras.Model, X: Array, y: Array) -> dict[str, float]:
        result = model.evaluate(X, y, batch_size=self.batch_size, verbose=0, return_dict=True)
        return {k: float(v) for k, v in result.items()}

    def _scores(self, weights: Weights) -> tuple[float, float | None]:
        try:
            self._scratch.set_weights(self._as_list(weights))
        except ValueError as exc:  # pragma: no cover - check_weights catches shapes first
            raise WeightsError(f"the model refused these weights: {exc}") from exc
        vote = self._evaluate(self._scratch, self._X_vote, self._y_vote)[self.vote_metric]
        test = (
            self._evaluate(self._scratch, self._X_test, self._y_test)[self.test_metric]
            if len(self._y_test)
            else None
        )
        return vote, test

    def _install(self, weights: Weights) -> None:
        self._model.set_weights(self._as_list(weights))

    def _seed_random_layers(self, model: keras.Model, rng: np.random.Generator) -> None:
        """Give every seed generator of ``model`` (dropout, noise) a state drawn from
        ``rng``, so a proposal is reproducible without global seeding."""
        for layer in model._flatten_layers(include_self=True, recursive=True):
            for generator in getattr(layer, "_seed_generators", []) or []:
                seed = int(rng.integers(2**31 - 1))
                generator.state.assign(np.array([seed, 0], dtype=generator.state.dtype))

    # -- the interface --------------------------------------------------------------------

    def mli_propose_weights(self) -> Weights:
        """Train a clone of the current model, with a fresh optimizer, for ``epochs``
        passes over local data in an order seeded by ``(seed, round_index)``."""
        import torch

        rng = self._round_rng()
        clone = self._clone()
        clone.set_weights(self._as_list(self.mli_get_current_weights()))
        self._seed_random_layers(clone, rng)
        # Unseeded Keras layers (Dropout() without seed=) draw from torch's global RNG:
        # seed it inside a fork, so the caller's global random state is left as it was.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(rng.integers(2**31 - 1)))
            for _ in range(self.epochs):
                order = rng.permutation(len(self._y_train))
                clone.fit(
                    self._X_train[order],
                    self._y_train[order],
                    batch_size=self.batch_size,
                    epochs=1,
                    shuffle=False,
                    verbose=0,
                )
        return self._to_weights(clone.get_weights())

    def mli_get_current_model(self) -> ColearnModel:
        """The current model as ONNX bytes (``ColearnModel.model``), exported with
        ``model.export(format="onnx")``; the batch dimension is dynamic."""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.onnx"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch tracer chatter about constants
                self._model.export(str(path), format="onnx", verbose=False)
            blob = path.read_bytes()
        return ColearnModel(ModelFormat.ONNX, model=blob)

    # -- extras ---------------------------------------------------------------------------

    @property
    def model(self) -> keras.Model:
        """The model holding the current weights (do not train it in place)."""
        return self._model

    def predict(self, X: Array) -> Array:
        """The current model's outputs for ``X``."""
        X = np.asarray(X, dtype=np.float32)
        return np.asarray(self._model.predict(X, batch_size=self.batch_size, verbose=0))
