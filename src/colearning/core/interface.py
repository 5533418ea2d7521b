"""The learner interface and the values that cross it.

A learner is any object implementing :class:`MachineLearningInterface`. The names are
those of the earlier Colearn library (``colearn.ml_interface``), so a learner written
for it ports by changing its imports (``docs/porting.md``). Nothing here imports an ML
framework: PyTorch tensors are recognised by duck typing and rebuilt only where PyTorch
is already installed.
"""

from __future__ import annotations

import abc
import enum
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from colearning.core.exceptions import LearnerError, WeightsError, WeightsTypeError

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
class DiffPrivConfig:
    """Colearn's differential-privacy settings (target budget, clipping and noise).

    Kept for learners ported from Colearn; this library's own DP learner takes
    :class:`colearning.privacy.DPConfig`, which also derives the noise from a budget.
    """

    target_epsilon: float
    target_delta: float
    max_grad_norm: float
    noise_multiplier: float


@dataclass(frozen=True)
class TrainingSummary:
    """What a learner reports about the training behind a proposal."""

    dp_budget: DiffPrivBudget | None = None
    error_code: ErrorCodes | None = None


# -- weights ------------------------------------------------------------------------------

#: How a payload was given, so that ``Weights.weights`` gives the same kind back.
Container = Literal["dict", "OrderedDict", "list", "tuple", "value"]
#: What one element was: a NumPy array, a PyTorch tensor, or a Python number / list.
Element = Literal["numpy", "torch", "python"]

_BYTES = (bytes, bytearray, memoryview)
_RESERVED_NAMES = frozenset({"__metadata__"})  # safetensors keeps its header there
_VALUE_NAME = "value"


def _bytes_refusal(where: str, value: Any) -> WeightsTypeError:
    size = len(value) if hasattr(value, "__len__") else "?"
    pickled = bytes(value[:1]) == b"\x80" if isinstance(value, _BYTES) and len(value) else False
    what = "pickled bytes" if pickled else f"{type(value).__name__} ({size} bytes)"
    return WeightsTypeError(
        f"{where} holds {what}; colearning never sends raw bytes between parties, because "
        "bytes are usually a pickle and unpickling another party's data can run any code. "
        "Encode the model with a safe format of its own library (skops, XGBoost UBJSON, "
        "ONNX, safetensors) and pass it as a uint8 array, np.frombuffer(blob, np.uint8), "
        "or use a bundled learner that does (RandomForestLearner, XGBoostLearner)"
    )


def _is_tensor(value: Any) -> bool:
    module = type(value).__module__
    return module.split(".", 1)[0] == "torch" and hasattr(value, "detach")


def _element_kind(value: Any, where: str) -> Element:
    """Classify one element, refusing what can never be weights."""
    if isinstance(value, np.ndarray | np.generic):
        return "numpy"
    if _is_tensor(value):
        return "torch"
    if isinstance(value, _BYTES):
        raise _bytes_refusal(where, value)
    if isinstance(value, bool | int | float | list | tuple):
        return "python"
    raise WeightsTypeError(
        f"{where} must be a numpy array, a PyTorch tensor or a number; got "
        f"{type(value).__name__}. Convert the model's parameters to arrays (encode other "
        "models to bytes in a safe format and pass them as a uint8 array)"
    )


def _to_array(value: Any, kind: Element, where: str) -> Array:
    if kind == "torch":
        tensor = value.detach()
        try:
            array = tensor.cpu().numpy()
        except TypeError as exc:  # e.g. bfloat16, which NumPy has no dtype for
            raise WeightsTypeError(
                f"{where} is a {tensor.dtype} tensor, which NumPy cannot hold ({exc}); "
                "cast it (tensor.float()) before proposing"
            ) from exc
    else:
        try:
            array = np.asarray(value)
        except (TypeError, ValueError) as exc:  # ragged nested lists
            raise WeightsTypeError(
                f"{where} must be array-like; got a {type(value).__name__} that NumPy "
                f"cannot turn into an array ({exc})"
            ) from exc
    if array.dtype == object or array.dtype.kind in "OSUV":
        raise WeightsTypeError(
            f"{where} must be a numeric array; got dtype={array.dtype} (ragged lists, "
            "strings or Python objects). Encode non-array models to bytes in a safe "
            "format and pass them as a uint8 array"
        )
    if array.flags.writeable:
        # A read-only view: in one process learners share the arrays themselves, so
        # nobody may change them through the Weights; the caller keeps its own flags.
        array = array.view()
        array.flags.writeable = False
    return array  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Layout:
    """How a payload maps onto named arrays: its container, names and element kinds."""

    container: Container
    names: tuple[str, ...]
    elements: tuple[Element, ...]


def _layout_of(payload: Any) -> Layout:
    if isinstance(payload, Mapping):
        names: list[str] = []
        for name in payload:
            if not isinstance(name, str) or not name:
                raise WeightsTypeError(f"weight names must be non-empty strings; got {name!r}")
            if name in _RESERVED_NAMES:
                raise WeightsError(
                    f"weight name {name!r} is reserved by the safetensors format; rename it"
                )
            names.append(name)
        container: Container = "OrderedDict" if isinstance(payload, OrderedDict) else "dict"
        values: Sequence[Any] = list(payload.values())
    elif isinstance(payload, list | tuple):
        container = "list" if isinstance(payload, list) else "tuple"
        names = [str(i) for i in range(len(payload))]
        values = payload
    elif isinstance(payload, _BYTES):
        raise _bytes_refusal("Weights(weights=...)", payload)
    elif isinstance(payload, bool | int | float | np.ndarray | np.generic) or _is_tensor(payload):
        container, names, values = "value", [_VALUE_NAME], [payload]
    else:
        raise WeightsTypeError(
            "Weights(weights=...) takes a mapping of name -> array, a list of arrays, one "
            f"array or tensor, or a number; got {type(payload).__name__}"
        )
    kinds = tuple(
        _element_kind(v, f"weight {n!r}" if container != "value" else "Weights(weights=...)")
        for n, v in zip(names, values, strict=True)
    )
    return Layout(container, tuple(names), kinds)


class Weights:
    """A model's parameters, plus an optional :class:`TrainingSummary`.

    ``weights`` is whatever the learner holds its parameters in: a mapping
    ``name -> array`` (a PyTorch ``state_dict`` of tensors included), a list of
    arrays (as Keras' ``get_weights()`` returns), a single array, or a plain number.
    :attr:`weights` gives back exactly what was passed in, so a learner ported from
    Colearn can hand it straight to ``model.load_state_dict`` or ``model.set_weights``;
    weights that crossed a process boundary come back in the same form (tensors as
    tensors, numbers as numbers, lists as lists).

    :attr:`arrays` is the other view, the one the codec, the store and the wire use:
    named, read-only NumPy arrays (a list's arrays are named ``"0"``, ``"1"``, ...; a
    single array or number is named ``"value"``). In one process the arrays share
    memory with the payload: nothing is copied.

    Raw bytes (usually a pickle) are refused with an error that names the safe way.

    Examples
    --------
    >>> import numpy as np
    >>> w = Weights(weights={"coef": np.zeros((2, 3)), "bias": np.zeros(3)})
    >>> list(w.arrays)
    ['coef', 'bias']
    >>> Weights(weights=[np.ones(2), np.zeros(1)]).weights[0]
    array([1., 1.])
    >>> Weights(weights=3).weights, Weights(weights=3).arrays["value"].dtype
    (3, dtype('int64'))
    """

    __slots__ = ("_arrays", "_layout", "_lock", "_payload", "training_summary")
    _arrays: dict[str, Array] | None
    _layout: Layout
    _payload: Any
    training_summary: TrainingSummary | None

    def __init__(
        self,
        weights: Any,
        training_summary: TrainingSummary | None = None,
    ) -> None:
        self._lock = threading.Lock()
        if isinstance(weights, Weights):
            self._layout = weights._layout
            self._payload = weights._payload
            self._arrays = weights._arrays
        else:
            self._layout = _layout_of(weights)
            self._payload = weights
            self._arrays = None
            if "torch" not in self._layout.elements or not _any_off_cpu(weights, self._layout):
                # Cheap (views, no copies) and catches ragged or object arrays at once;
                # only GPU tensors wait until their arrays are needed.
                self._arrays = self._build_arrays()
        self.training_summary = training_summary

    @classmethod
    def from_arrays(
        cls,
        arrays: Mapping[str, Array],
        layout: Layout | None = None,
        training_summary: TrainingSummary | None = None,
    ) -> Weights:
        """Weights from named arrays (as decoded), given back in ``layout``'s form."""
        self = cls.__new__(cls)
        self._lock = threading.Lock()
        names = tuple(arrays)
        if layout is None:
            layout = Layout("dict", names, tuple("numpy" for _ in names))
        if layout.names != names:
            raise WeightsError(
                f"layout names {list(layout.names)} differ from arrays {list(names)}"
            )
        frozen = {}
        for name, array in arrays.items():
            if not isinstance(name, str) or not name or name in _RESERVED_NAMES:
                raise WeightsError(
                    f"weight names must be non-empty strings other than "
                    f"{sorted(_RESERVED_NAMES)} (reserved by the safetensors format); got "
                    f"{name!r}"
                )
            frozen[name] = _to_array(array, "numpy", f"weight {name!r}")
        self._layout = layout
        self._arrays = frozen
        self._payload = _UNBUILT
        self.training_summary = training_summary
        return self

    # -- the two views ------------------------------------------------------------------

    @property
    def weights(self) -> Any:
        """The payload in the form the learner gave it."""
        payload = self._payload
        if payload is _UNBUILT:
            with self._lock:
                if self._payload is _UNBUILT:
                    self._payload = _rebuild(self.arrays, self._layout)
                payload = self._payload
        return payload

    @property
    def arrays(self) -> Mapping[str, Array]:
        """The named, read-only arrays, in order."""
        arrays = self._arrays
        if arrays is None:
            with self._lock:
                if self._arrays is None:
                    self._arrays = self._build_arrays()
                arrays = self._arrays
        return arrays

    def _build_arrays(self) -> dict[str, Array]:
        layout, payload = self._layout, self._payload
        if layout.container == "value":
            values: Sequence[Any] = [payload]
        elif isinstance(payload, Mapping):
            values = list(payload.values())
        else:
            values = payload
        return {
            name: _to_array(value, kind, f"weight {name!r}")
            for name, value, kind in zip(layout.names, values, layout.elements, strict=True)
        }

    @property
    def layout(self) -> Layout:
        """The payload's container, names and element kinds."""
        return self._layout

    @property
    def is_list(self) -> bool:
        """Whether these weights were given as an ordered list (or tuple) of arrays."""
        return self._layout.container in ("list", "tuple")

    @property
    def nbytes(self) -> int:
        """Total size of the arrays in bytes."""
        return sum(a.nbytes for a in self.arrays.values())

    def __iter__(self) -> Iterator[str]:
        return iter(self._layout.names)

    def __len__(self) -> int:
        return len(self._layout.names)

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}: {a.dtype}{list(a.shape)}" for k, a in self.arrays.items())
        return f"Weights({{{parts}}}, training_summary={self.training_summary!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Weights):
            return NotImplemented
        if list(self.arrays) != list(other.arrays):
            return False
        return all(
            a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
            for a, b in zip(self.arrays.values(), other.arrays.values(), strict=True)
        )

    __hash__ = None  # type: ignore[assignment]


class _Unbuilt:
    def __repr__(self) -> str:
        return "<not built>"


_UNBUILT: Any = _Unbuilt()


def _any_off_cpu(payload: Any, layout: Layout) -> bool:
    if layout.container == "value":
        values: Sequence[Any] = [payload]
    elif isinstance(payload, Mapping):
        values = list(payload.values())
    else:
        values = payload
    return any(
        kind == "torch" and getattr(getattr(v, "device", None), "type", "cpu") != "cpu"
        for v, kind in zip(values, layout.elements, strict=True)
    )


def _rebuild(arrays: Mapping[str, Array], layout: Layout) -> Any:
    """The payload of ``layout``'s form from decoded arrays."""
    torch: Any = None
    if "torch" in layout.elements:
        import importlib
        import importlib.util

        if importlib.util.find_spec("torch") is not None:
            # the receiver is a PyTorch learner: it has torch
            torch = importlib.import_module("torch")
    values = []
    for array, kind in zip(arrays.values(), layout.elements, strict=True):
        if kind == "torch" and torch is not None:
            values.append(torch.from_numpy(np.array(array)))  # a writable copy
        elif kind == "python":
            values.append(array.tolist() if array.ndim else array.item())
        else:
            values.append(array)
    if layout.container == "value":
        return values[0]
    if layout.container == "list":
        return values
    if layout.container == "tuple":
        return tuple(values)
    mapping = OrderedDict if layout.container == "OrderedDict" else dict
    return mapping(zip(layout.names, values, strict=True))


# -- verdicts, models, predictions ----------------------------------------------------------


@dataclass(frozen=True)
class ProposedWeights:
    """One learner's verdict on a proposal.

    ``vote`` is ``True`` (approve), ``False`` (reject) or ``None`` where no vote was
    cast (the proposer's own entry). A learner that failed or timed out has
    ``vote=False`` and the reason in ``error``. ``criterion`` names the score, as later
    Colearn versions did (which also allowed ``{criterion: score}`` dictionaries as
    scores; the driver reads the criterion's entry).
    """

    weights: Weights | None
    vote_score: Any
    test_score: Any
    vote: bool | None
    error: str | None = None
    criterion: str | None = None


class ModelFormat(enum.Enum):
    """Formats :meth:`MachineLearningInterface.mli_get_current_model` may return."""

    ONNX = "onnx"
    SAFETENSORS = "safetensors"
    SKOPS = "skops"
    XGBOOST_UBJSON = "xgboost-ubjson"


@dataclass(frozen=True)
class ColearnModel:
    """A model in an exportable format: ``model`` holds the bytes or object."""

    model_format: ModelFormat | None = None
    model_file: str = ""
    model: Any = field(default=None, compare=False)


@dataclass(frozen=True)
class PredictionRequest:
    """Input for :meth:`MachineLearningInterface.mli_make_prediction` (Colearn's name)."""

    name: str
    input_data: Any
    pred_dataloader_key: Any = None


@dataclass(frozen=True)
class Prediction:
    """What :meth:`MachineLearningInterface.mli_make_prediction` returns."""

    name: str
    prediction_data: Any


@dataclass(frozen=True)
class LearnerTags:
    """What a learner declares about itself; ``check_learner`` picks its checks by them
    and the driver relies on them.

    Attributes
    ----------
    deterministic
        A proposal is a pure function of the current weights, the learner's data, its
        seed and the round index given to ``mli_set_round``: a resumed experiment then
        ends exactly like an uninterrupted one, and a proposal may be trained early.
    exports_model
        ``mli_get_current_model`` returns an exportable model.
    restores_progress
        State beyond the weights (a privacy accountant) is rebuilt by
        ``mli_restore_progress``.
    encoded_model
        The weights are one ``uint8`` array holding an encoded model whose length may
        change from proposal to proposal.
    private
        Proposals carry a :class:`TrainingSummary` with a differential-privacy budget.
    """

    deterministic: bool = False
    exports_model: bool = False
    restores_progress: bool = False
    encoded_model: bool = False
    private: bool = False


class MachineLearningInterface(abc.ABC):
    """What every learner implements.

    The driver calls these methods; a learner never talks to another learner.
    ``mli_propose_weights`` and ``mli_test_weights`` must not change the learner's
    current weights (``colearning.testing.check_learner`` checks this). The four
    abstract methods are Colearn 0.2's; ``mli_get_current_model`` (exporting) and
    ``mli_make_prediction`` are optional and say so when called but not implemented.
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

    def mli_get_current_model(self) -> ColearnModel:
        """Return the current model in an exportable format (optional).

        Raises
        ------
        LearnerError
            If the learner does not implement it.
        """
        raise LearnerError(
            f"{type(self).__name__} does not implement mli_get_current_model(), which "
            "exporting the model needs; return a colearning.ColearnModel (for example "
            "ONNX bytes) from it, or export the raw weights (colearn export --format "
            "safetensors)"
        )

    def mli_make_prediction(self, request: PredictionRequest) -> Prediction:
        """Predict with the current model (optional; Colearn's later interface)."""
        raise LearnerError(
            f"{type(self).__name__} does not implement mli_make_prediction(); implement "
            "it to serve predictions"
        )

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

    def mli_tags(self) -> LearnerTags:
        """What this learner declares about itself (see :class:`LearnerTags`).

        The default declares nothing but whether ``mli_get_current_model`` is
        implemented; bundled learners declare more.
        """
        exports = (
            type(self).mli_get_current_model is not MachineLearningInterface.mli_get_current_model
        )
        return LearnerTags(exports_model=exports)
