"""The one codec: weights <-> safetensors bytes, and the SHA-256 id of those bytes.

Safetensors holds only a JSON header and raw little-endian arrays, so decoding bytes
from another party can never run code (unlike pickle). The order of the arrays and
whether they were given as a list travel in the header's metadata.

Incoming weights are checked against what the receiver expects with
:func:`check_weights`: the same names in the same order, the same dtypes and shapes
(a 1-D ``uint8`` array is an encoded model, such as a boosted-tree booster, whose length
may change), and no NaN or Inf.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from colearning.core.exceptions import WeightsError
from colearning.core.interface import Array, Weights

# One metadata key only: safetensors writes metadata from a hash map, so with two keys
# their order (and so the bytes and the id) would change from call to call.
_META_KEY = "colearning"


def encode(weights: Weights) -> bytes:
    """Serialize ``weights`` to safetensors bytes (the training summary is not included).

    Examples
    --------
    >>> import numpy as np
    >>> w = Weights(weights={"a": np.arange(3.0)})
    >>> decode(encode(w)) == w
    True
    """
    from safetensors.numpy import save

    arrays = {name: np.ascontiguousarray(a) for name, a in weights.arrays.items()}
    # safetensors' numpy binding stores a 0-d array as shape (1,): remember which.
    scalars = [name for name, a in weights.arrays.items() if a.ndim == 0]
    layout = json.dumps({"order": list(arrays), "is_list": weights.is_list, "scalars": scalars})
    metadata = {_META_KEY: layout}
    try:
        return save(arrays, metadata=metadata)
    except Exception as exc:
        raise WeightsError(f"cannot encode weights with safetensors: {exc}") from exc


def weights_id(blob: bytes) -> str:
    """The id of encoded weights: the hex SHA-256 of their bytes."""
    return hashlib.sha256(blob).hexdigest()


def id_of(weights: Weights) -> str:
    """Encode ``weights`` and return their id."""
    return weights_id(encode(weights))


def decode(blob: bytes, expected: Weights | WeightsSpec | None = None) -> Weights:
    """Parse safetensors bytes into :class:`Weights`, optionally checking them.

    Raises
    ------
    WeightsError
        If the bytes are not a safetensors blob, or do not match ``expected``.
    """
    from safetensors.numpy import load

    try:
        arrays = load(bytes(blob))
    except Exception as exc:
        raise WeightsError(
            f"these {len(blob)} bytes are not safetensors-encoded weights ({exc}); "
            "send weights encoded with colearning.core.codec.encode"
        ) from exc
    layout = _layout(blob)
    order = layout.get("order") or sorted(arrays)
    if sorted(order) != sorted(arrays):
        raise WeightsError(
            f"weights header lists arrays {order} but the blob holds {sorted(arrays)}"
        )
    scalars = set(layout.get("scalars") or ())
    ordered = {
        name: arrays[name].reshape(())
        if name in scalars and arrays[name].size == 1
        else arrays[name]
        for name in order
    }
    weights = Weights(list(ordered.values()) if layout.get("is_list") is True else ordered)
    if expected is not None:
        check_weights(weights, expected)
    return weights


def _layout(blob: bytes) -> dict[str, Any]:
    """Order and list-ness from the header (absent in plain safetensors files)."""
    header_len = int.from_bytes(bytes(blob[:8]), "little")
    header = json.loads(bytes(blob[8 : 8 + header_len]))
    raw = (header.get("__metadata__") or {}).get(_META_KEY)
    try:
        layout = json.loads(raw) if raw else {}
    except json.JSONDecodeError as exc:
        raise WeightsError(f"weights header holds unreadable layout {raw!r}: {exc}") from exc
    if not isinstance(layout, dict):
        raise WeightsError(f"weights header layout must be a JSON object; got {raw!r}")
    return layout


@dataclass(frozen=True)
class WeightsSpec:
    """Names, dtypes and shapes a receiver expects, in order."""

    entries: tuple[tuple[str, str, tuple[int, ...]], ...]

    @classmethod
    def of(cls, weights: Weights) -> WeightsSpec:
        return cls(tuple((n, a.dtype.str, a.shape) for n, a in weights.arrays.items()))

    def as_dict(self) -> Mapping[str, tuple[str, tuple[int, ...]]]:
        return {n: (d, s) for n, d, s in self.entries}


def _is_encoded_model(dtype: str, shape: tuple[int, ...]) -> bool:
    return np.dtype(dtype) == np.uint8 and len(shape) == 1


def check_weights(weights: Weights, expected: Weights | WeightsSpec) -> None:
    """Raise :class:`WeightsError` unless ``weights`` fit ``expected`` and are finite.

    Examples
    --------
    >>> import numpy as np
    >>> ref = Weights(weights={"w": np.zeros(3)})
    >>> check_weights(Weights(weights={"w": np.ones(3)}), ref)
    >>> check_weights(Weights(weights={"w": np.ones(4)}), ref)
    Traceback (most recent call last):
    ...
    colearning.core.exceptions.WeightsError: weight 'w' has shape (4,); expected (3,) ...
    """
    spec = expected if isinstance(expected, WeightsSpec) else WeightsSpec.of(expected)
    want = spec.as_dict()
    got_names = list(weights.arrays)
    want_names = [n for n, _, _ in spec.entries]
    if got_names != want_names:
        missing = [n for n in want_names if n not in weights.arrays]
        extra = [n for n in got_names if n not in want]
        raise WeightsError(
            f"weight names do not match: missing {missing}, unexpected {extra}"
            + ("" if missing or extra else f", order {got_names} instead of {want_names}")
            + "; the proposal must come from the same model architecture"
        )
    for name, array in weights.arrays.items():
        dtype, shape = want[name]
        if array.dtype.str != dtype:
            raise WeightsError(
                f"weight {name!r} has dtype {array.dtype}; expected {np.dtype(dtype)} "
                "(cast it before proposing, or use the same model on every learner)"
            )
        if array.shape != shape and not _is_encoded_model(dtype, shape):
            raise WeightsError(
                f"weight {name!r} has shape {array.shape}; expected {shape} "
                "(the proposal must come from the same model architecture)"
            )
        _check_finite(name, array)


def _check_finite(name: str, array: Array) -> None:
    if array.dtype.kind in "fc" and not np.isfinite(array).all():
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        raise WeightsError(
            f"weight {name!r} holds {bad} NaN/Inf value(s); a diverged model cannot be "
            "proposed (lower the learning rate or clip gradients)"
        )


def check_finite(weights: Weights) -> None:
    """Raise :class:`WeightsError` if any float array holds NaN or Inf."""
    for name, array in weights.arrays.items():
        _check_finite(name, array)
