"""The learner interface and the values that cross it.

A learner is any object implementing :class:`MachineLearningInterface`. The names are
those of the earlier Colearn library, so a learner written for it ports by changing its
imports. Nothing here imports an ML framework.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]


class ErrorCodes(enum.Enum):
    """Why a learner could not train; carried in :class:`TrainingSummary`."""

    DP_BUDGET_EXCEEDED = "dp_budget_exceeded"


@dataclass(frozen=True)
class DiffPrivBudget:
    """A differential-privacy budget: the target and what has been spent so far."""

    target_epsilon: float
    target_delta: float
    consumed_epsilon: float
    consumed_delta: float


@dataclass(frozen=True)
class TrainingSummary:
    """What a learner reports about the training behind a proposal."""

    dp_budget: DiffPrivBudget | None = None
    error_code: ErrorCodes | None = None


def _frozen_array(value: Any, name: str) -> Array:
    try:
        array = np.asarray(value)
    except Exception as exc:
        raise TypeError(
            f"weight {name!r} must be array-like (numpy array, list, CPU tensor); "
            f"got {type(value).__name__}: {exc}"
        ) from exc
    if array.dtype == object:
        raise TypeError(
            f"weight {name!r} must be a numeric array; got dtype=object "
            "(ragged lists or Python objects). Encode non-array models to bytes and "
            "pass them as a uint8 array."
        )
    if array.flags.writeable:
        # A read-only view: in one process learners share the arrays themselves, so
        # nobody may change them in place; the caller's own array keeps its flags.
        array = array.view()
        array.flags.writeable = False
    return array


class Weights:
    """A model's parameters as named arrays, plus an optional :class:`TrainingSummary`.

    ``weights`` may be a mapping ``name -> array`` or, as Keras' ``get_weights()``
    returns, a list of arrays; a list keeps its order and is named ``"0"``, ``"1"``,
    and so on. ``Weights.weights`` gives back the same kind that was passed in, so a
    learner ported from Colearn can hand it straight to ``model.set_weights``.

    Arrays are held read-only: in one process learners share them without copying.

    Examples
    --------
    >>> import numpy as np
    >>> w = Weights(weights={"coef": np.zeros((2, 3)), "bias": np.zeros(3)})
    >>> list(w.arrays)
    ['coef', 'bias']
    >>> Weights(weights=[np.ones(2), np.zeros(1)]).weights[0]
    array([1., 1.])
    """

    __slots__ = ("_arrays", "_is_list", "training_summary")
    _arrays: dict[str, Array]
    _is_list: bool
    training_summary: TrainingSummary | None

    def __init__(
        self,
        weights: Mapping[str, Any] | Sequence[Any],
        training_summary: TrainingSummary | None = None,
    ) -> None:
        if isinstance(weights, Weights):
            arrays: dict[str, Array] = dict(weights.arrays)
            is_list = weights._is_list
        elif isinstance(weights, Mapping):
            arrays = {}
            for name, value in weights.items():
                if not isinstance(name, str) or not name:
                    raise TypeError(f"weight names must be non-empty strings; got {name!r}")
                arrays[name] = _frozen_array(value, name)
            is_list = False
        elif isinstance(weights, (list, tuple)):
            arrays = {str(i): _frozen_array(v, str(i)) for i, v in enumerate(weights)}
            is_list = True
        else:
            raise TypeError(
                "Weights(weights=...) takes a mapping of name -> array or a list of "
                f"arrays; got {type(weights).__name__}"
            )
        self._arrays = arrays
        self._is_list = is_list
        self.training_summary = training_summary

    @property
    def arrays(self) -> Mapping[str, Array]:
        """The named arrays, in order."""
        return self._arrays

    @property
    def weights(self) -> dict[str, Array] | list[Array]:
        """The payload in the form it was given: a list if built from a list."""
        if self._is_list:
            return list(self._arrays.values())
        return dict(self._arrays)

    @property
    def is_list(self) -> bool:
        """Whether these weights were given as an ordered list of arrays."""
        return self._is_list

    @property
    def nbytes(self) -> int:
        """Total size of the arrays in bytes."""
        return sum(a.nbytes for a in self._arrays.values())

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}: {a.dtype}{list(a.shape)}" for k, a in self._arrays.items())
        return f"Weights({{{parts}}}, training_summary={self.training_summary!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Weights):
            return NotImplemented
        if list(self._arrays) != list(other._arrays):
            return False
        return all(
            a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
            for a, b in zip(self._arrays.values(), other._arrays.values(), strict=True)
        )

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True)
class ProposedWeights:
    """One learner's verdict on a proposal.

    ``vote`` is ``True`` (approve), ``False`` (reject) or ``None`` where no vote was
    cast (the proposer's own entry). A learner that failed or timed out has
    ``vote=False`` and the reason in ``error``.
    """

    weights: Weights | None
    vote_score: float | None
    test_score: float | None
    vote: bool | None
    error: str | None = None


class ModelFormat(enum.Enum):
    """Formats :meth:`MachineLearningInterface.mli_get_current_model` may return."""

    ONNX = "onnx"
    SAFETENSORS = "safetensors"
    SKOPS = "skops"
    XGBOOST_UBJSON = "xgboost-ubjson"


@dataclass(frozen=True)
class ColearnModel:
    """A model in an exportable format: ``model`` holds the bytes or object."""

    model_format: ModelFormat
    model_file: str = ""
    model: Any = field(default=None, compare=False)


class MachineLearningInterface(abc.ABC):
    """What every learner implements.

    The driver calls these methods; a learner never talks to another learner.
    ``mli_propose_weights`` and ``mli_test_weights`` must not change the learner's
    current weights (``colearning.testing.check_learner`` checks this).
    """

    @abc.abstractmethod
    def mli_propose_weights(self) -> Weights:
        """Train on local data from the current weights and return new weights."""

    @abc.abstractmethod
    def mli_test_weights(self, weights: Weights) -> ProposedWeights:
        """Score ``weights`` on the vote set (and test set) and vote on them."""

    @abc.abstractmethod
    def mli_accept_weights(self, weights: Weights) -> None:
        """Replace the current weights with ``weights``."""

    @abc.abstractmethod
    def mli_get_current_weights(self) -> Weights:
        """Return the current weights."""

    @abc.abstractmethod
    def mli_get_current_model(self) -> ColearnModel:
        """Return the current model in an exportable format."""

    def mli_set_round(self, round_index: int) -> None:  # noqa: B027 - optional hook
        """Optional: told the round index just before proposing.

        Learners that derive their training randomness from ``(seed, round_index)``
        make an interrupted and resumed experiment end with exactly the same model as
        an uninterrupted one. The default does nothing.
        """

    def mli_restore_progress(self, proposals_made: int) -> None:  # noqa: B027 - optional hook
        """Optional: told, when an experiment resumes, how many proposals this learner
        made before the interruption.

        Learners whose state grows with each proposal outside the weights (a
        differential-privacy accountant) rebuild it here. The default does nothing.
        """
