"""Fuzz the weights codec: ``decode``, ``sealed_arrays`` and ``read_header``.

    python -m fuzz.codec -runs=20000

Every input must end in a :class:`WeightsError` or in weights; when it is weights, the
strict reader and the sealed views agree with ``decode`` and the weights re-encode to
bytes that decode to the same arrays.
"""

from __future__ import annotations

import contextlib
import sys

import atheris

with atheris.instrument_imports(include=["colearning"]):
    import numpy as np

    from colearning.core.codec import decode, encode, read_header, sealed_arrays
    from colearning.core.exceptions import WeightsError
    from colearning.core.interface import Weights

from fuzz._common import main


def seeds() -> list[bytes]:
    """Valid encodings of every dtype, shape kind and payload form the codec writes."""
    rng = np.random.default_rng(0)
    forms = [
        Weights(
            {"a": np.arange(6.0).reshape(2, 3), "s": np.float32(2), "b": np.zeros(2, np.uint8)}
        ),
        Weights([np.ones(3, np.float16), np.zeros((0, 2), np.int64), np.array([True, False])]),
        Weights({"w": rng.normal(size=(4, 4)).astype(np.float32), "c": np.ones(2, np.complex64)}),
        Weights({"booster": np.frombuffer(b"{U\x01aU\x05}", np.uint8).copy()}),
        Weights({}),
        Weights({"i8": np.arange(-3, 3, dtype=np.int8), "u64": np.arange(3, dtype=np.uint64)}),
    ]
    return [encode(w) for w in forms]


def test_one(data: bytes) -> None:
    try:
        weights = decode(data)
    except WeightsError:
        weights = None
    try:
        views = sealed_arrays(data)
    except WeightsError:
        views = None
    with contextlib.suppress(WeightsError):
        read_header(data)
    if views is not None:
        if weights is None:
            raise AssertionError("sealed_arrays read what decode refused")
        if list(views) != list(weights.arrays):
            raise AssertionError("sealed_arrays and decode disagree on the names")
        for name, view in views.items():
            if view.tobytes() != weights.arrays[name].tobytes():
                raise AssertionError(f"sealed_arrays and decode disagree on {name!r}")
    if weights is not None:
        again = decode(encode(weights))
        if list(again.arrays) != list(weights.arrays):
            raise AssertionError("re-encoding changed the names")


if __name__ == "__main__":
    main(test_one, seeds, sys.argv)
