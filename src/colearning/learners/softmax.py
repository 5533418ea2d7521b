"""A learner that needs nothing but NumPy: multinomial logistic regression.

:class:`SoftmaxLearner` is small on purpose: with a few dozen rows per learner, a call
takes tens of microseconds, so 10,000 of them fit in one process (or a few Ray actors)
and a round's time is the protocol's own, not the model's. It is what the
``synthetic-softmax`` task and ``bench/scale.py`` simulate large experiments with.

Its weights are ``W`` (features x classes) and ``b`` (classes), from zero, in the
data's float type. A
proposal is ``epochs`` passes of minibatch gradient descent on the cross-entropy (with
an L2 term) over the train split, the batches shuffled by
``SeedSequence([seed, 1, round_index])``: a pure function of the current weights, the
data, the seed and the round, as every bundled learner's is. Vote and test accuracy
are computed in one pass over the vote and test rows; when the two splits lie next to
each other in one buffer (as :func:`colearning.data.share_dataset` lays them out) that
pass reads them in place, without a copy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from colearning.core.exceptions import ConfigError, DataError, require_extra
from colearning.core.interface import Array, ColearnModel, ModelFormat, Weights
from colearning.data.types import LearnerData
from colearning.learners._base import LearnerBase
from colearning.learners.metrics import METRICS

__all__ = ["SoftmaxLearner", "adjacent_rows"]

_ROUND_TAG = 1


def adjacent_rows(first: Array, second: Array) -> Array:
    """``first`` and ``second`` stacked by rows: a read-only view when ``second``'s rows
    follow ``first``'s in the same C-contiguous buffer, else a new array.

    >>> import numpy as np
    >>> X = np.arange(12.0).reshape(6, 2)
    >>> np.shares_memory(adjacent_rows(X[1:3], X[3:5]), X)
    True
    >>> adjacent_rows(X[0:1], X[3:5]).tolist()
    [[0.0, 1.0], [6.0, 7.0], [8.0, 9.0]]
    """
    if (
        first.ndim == second.ndim == 2
        and first.dtype == second.dtype
        and first.shape[1] == second.shape[1]
        and len(first)
        and len(second)
        and first.flags.c_contiguous
        and second.flags.c_contiguous
        and first.base is not None
        and first.base is second.base  # views of one buffer: the memory between is valid
        and second.__array_interface__["data"][0]
        == first.__array_interface__["data"][0] + first.nbytes
    ):
        return np.lib.stride_tricks.as_strided(
            first,
            shape=(len(first) + len(second), first.shape[1]),
            strides=first.strides,
            writeable=False,
        )
    return np.concatenate([first, second])


class SoftmaxLearner(LearnerBase):
    """Multinomial logistic regression by minibatch gradient descent, in NumPy.

    Parameters
    ----------
    data
        Train, vote and test splits; ``X`` of shape (rows, features), ``y`` labels.
        Train and vote must not be empty.
    classes
        Every class label of the task (default: the labels in ``data``).
    learning_rate
        Step size, > 0.
    epochs
        Passes over the train split per proposal, >= 1.
    batch_size
        Rows per gradient step, >= 1.
    l2
        Weight of the L2 penalty, >= 0.
    seed
        Integer >= 0; with the round index it seeds each proposal's shuffles.

    Examples
    --------
    >>> import numpy as np
    >>> from colearning.data import Dataset, partition_dataset
    >>> rng = np.random.default_rng(0)
    >>> ds = Dataset("toy", rng.normal(size=(200, 3)), rng.integers(0, 2, 200))
    >>> learner = SoftmaxLearner(partition_dataset(ds, 2, "iid", seed=0)[0], seed=1)
    >>> list(learner.mli_get_current_weights())
    ['W', 'b']
    >>> isinstance(learner.mli_test_weights(learner.mli_propose_weights()).vote, bool)
    True
    """

    def __init__(
        self,
        data: LearnerData,
        *,
        classes: Any = None,
        learning_rate: float = 0.5,
        epochs: int = 1,
        batch_size: int = 32,
        l2: float = 1e-4,
        seed: int = 0,
    ) -> None:
        super().__init__(seed=seed)
        if not (isinstance(learning_rate, int | float) and learning_rate > 0):
            raise ConfigError(f"learning_rate must be a number > 0; got {learning_rate!r}")
        if isinstance(epochs, bool) or not isinstance(epochs, int | np.integer) or epochs < 1:
            raise ConfigError(f"epochs must be an integer >= 1; got {epochs!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
            raise ConfigError(f"batch_size must be an integer >= 1; got {batch_size!r}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be an integer >= 1; got {batch_size!r}")
        if not (isinstance(l2, int | float) and l2 >= 0):
            raise ConfigError(f"l2 must be a number >= 0; got {l2!r}")
        self._vote_metric = self._test_metric = METRICS["accuracy"]
        self.learning_rate = float(learning_rate)
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.l2 = float(l2)
        X_train, y_train = (np.asarray(a) for a in data.train)
        X_vote, y_vote = (np.asarray(a) for a in data.vote)
        X_test, y_test = (np.asarray(a) for a in data.test)
        if X_train.ndim != 2 or len(y_train) == 0 or len(y_vote) == 0:
            raise DataError(
                "SoftmaxLearner needs 2-D X and at least one train and one vote row; got "
                f"train X {X_train.shape}, {len(y_vote)} vote rows (give this learner more "
                "data, or use fewer learners)"
            )
        labels = np.unique(np.concatenate([y_train, y_vote, y_test]))
        self.classes: Array = labels if classes is None else np.unique(np.asarray(classes))
        unknown = np.setdiff1d(labels, self.classes)
        if len(unknown):
            raise DataError(
                f"the data holds labels {unknown.tolist()} that are not in classes "
                f"{self.classes.tolist()}; pass every class label of the task"
            )
        self.n_features = int(X_train.shape[1])
        self._X_train, self._y_train = X_train, self._index(y_train)
        self._X_scored = adjacent_rows(X_vote, X_test) if len(y_test) else X_vote
        self._y_scored = self._index(np.concatenate([y_vote, y_test]))
        self._n_vote = len(y_vote)
        k = len(self.classes)
        # the data's own float type (float32 for the bundled and synthetic sets), so
        # no product converts the rows first
        self._dtype = X_train.dtype if X_train.dtype.kind == "f" else np.dtype(np.float64)
        self._start(
            Weights(
                {
                    "W": np.zeros((self.n_features, k), dtype=self._dtype),
                    "b": np.zeros(k, dtype=self._dtype),
                }
            )
        )

    def _index(self, y: Array) -> Array:
        """Labels as class positions (the labels themselves when they are 0 .. k-1)."""
        k = len(self.classes)
        if self.classes.dtype.kind in "iu" and np.array_equal(self.classes, np.arange(k)):
            return y
        return np.searchsorted(self.classes, y)

    # -- LearnerBase -----------------------------------------------------------------------

    def _scores(self, weights: Weights) -> tuple[float, float | None]:
        arrays = weights.arrays
        predicted = np.argmax(self._X_scored @ arrays["W"] + arrays["b"], axis=1)
        right = predicted == self._y_scored
        n = self._n_vote
        vote = float(np.mean(right[:n]))
        test = float(np.mean(right[n:])) if len(right) > n else None
        return vote, test

    def _install(self, weights: Weights) -> None:
        pass  # the current weights live in self._current alone

    def _vote_predictions(self, weights: Weights) -> tuple[Array, Array] | None:
        arrays = weights.arrays
        n = self._n_vote
        predicted = np.argmax(self._X_scored[:n] @ arrays["W"] + arrays["b"], axis=1)
        return self.classes[self._y_scored[:n]], self.classes[predicted]

    def mli_propose_weights(self) -> Weights:
        """``epochs`` passes of minibatch gradient descent from the current weights;
        deterministic in (weights, data, seed, round index)."""
        rng = self._round_rng(_ROUND_TAG)
        current = self.mli_get_current_weights().arrays
        W = np.array(current["W"], dtype=self._dtype)
        b = np.array(current["b"], dtype=self._dtype)
        X, y = self._X_train, self._y_train
        n, step = len(y), self.learning_rate
        for _ in range(self.epochs):
            order = rng.permutation(n)
            for start in range(0, n, self.batch_size):
                rows = order[start : start + self.batch_size]
                Xb = X[rows]
                z = Xb @ W + b
                z -= z.max(axis=1, keepdims=True)
                p = np.exp(z)
                p /= p.sum(axis=1, keepdims=True)
                p[np.arange(len(rows)), y[rows]] -= 1.0
                p /= len(rows)
                W -= step * (Xb.T @ p + self.l2 * W)
                b -= step * p.sum(axis=0)
        return Weights({"W": W, "b": b})

    def mli_get_current_model(self) -> ColearnModel:
        """The current model as ONNX bytes (``ModelFormat.ONNX``): input ``"X"``
        (float32, rows x features), outputs ``"label"`` (int64, the class labels) and
        ``"scores"`` (float32, ``X @ W + b``).

        Raises
        ------
        MissingExtraError
            If onnx is not installed (``pip install 'colearning[export]'``).
        """
        require_extra("onnx", "export", "exporting the softmax learner's model to ONNX")
        from onnx import TensorProto, helper, numpy_helper

        arrays = self.mli_get_current_weights().arrays
        W = np.asarray(arrays["W"], dtype=np.float32)
        b = np.asarray(arrays["b"], dtype=np.float32)
        labels = np.asarray(self.classes, dtype=np.int64)
        nodes = [
            helper.make_node("MatMul", ["X", "W"], ["XW"]),
            helper.make_node("Add", ["XW", "b"], ["scores"]),
            helper.make_node("ArgMax", ["scores"], ["position"], axis=1, keepdims=0),
            helper.make_node("Gather", ["classes", "position"], ["label"], axis=0),
        ]
        graph = helper.make_graph(
            nodes,
            "colearning-softmax",
            [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, self.n_features])],
            [
                helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
                helper.make_tensor_value_info("scores", TensorProto.FLOAT, [None, len(b)]),
            ],
            initializer=[
                numpy_helper.from_array(W, "W"),
                numpy_helper.from_array(b, "b"),
                numpy_helper.from_array(labels, "classes"),
            ],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        model.ir_version = 8  # read by every onnxruntime since 1.10
        return ColearnModel(ModelFormat.ONNX, model=model.SerializeToString())

    def predict(self, X: Any) -> Array:
        """The current model's class labels for ``X``."""
        arrays = self.mli_get_current_weights().arrays
        scores = np.asarray(X, dtype=self._dtype) @ arrays["W"] + arrays["b"]
        return np.asarray(self.classes[np.argmax(scores, axis=1)])

    def __repr__(self) -> str:
        return (
            f"SoftmaxLearner(features={self.n_features}, classes={len(self.classes)}, "
            f"learning_rate={self.learning_rate}, epochs={self.epochs}, seed={self.seed})"
        )
