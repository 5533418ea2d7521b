"""Weights as they travel between the driver and learners: an id with the arrays (in
process) or the bytes (on demand).

In one process nothing is encoded on a round's critical path: the driver hands
learners the arrays themselves and computes the id (SHA-256 of the safetensors bytes)
on a background thread while validators work. A remote pool asks the same reference
for its bytes and id, and sends only the id to a learner that already holds them.
"""

from __future__ import annotations

import threading
from concurrent.futures import Executor, Future

import numpy as np

from colearning.core.codec import check_weights_id, decode, encode, id_of, sealed_arrays, weights_id
from colearning.core.exceptions import WeightsError
from colearning.core.interface import Array, Weights

#: Weights up to this many bytes are encoded and hashed where they are, not on another
#: thread (hashing 64 KiB takes about 40 us; a hand-off and the wait for it, more).
ENCODE_HERE_BYTES = 64 * 1024


class WeightsRef:
    """A reference to one set of weights: its id, plus the arrays or the bytes.

    Build it from weights (:meth:`of`) or from received bytes (:meth:`from_blob`); the
    missing views are computed when first asked for, once, thread-safely.

    Examples
    --------
    >>> import numpy as np
    >>> ref = WeightsRef.of(Weights({"w": np.zeros(2)}))
    >>> ref2 = WeightsRef.from_blob(ref.blob())
    >>> ref2.weights_id == ref.weights_id and ref2.weights == ref.weights
    True
    """

    __slots__ = ("_blob", "_id", "_lock", "_pending", "_weights")

    def __init__(
        self,
        weights: Weights | None = None,
        *,
        weights_id: str | None = None,
        blob: bytes | None = None,
    ) -> None:
        if weights is None and blob is None:
            raise WeightsError("a WeightsRef needs the weights or their bytes; got neither")
        if weights_id is not None:
            check_weights_id(weights_id, "a WeightsRef's weights_id")
        self._weights = weights
        self._id = weights_id
        self._blob = blob
        self._pending: Future[None] | None = None
        self._lock = threading.Lock()

    @classmethod
    def of(cls, weights: Weights, weights_id: str | None = None) -> WeightsRef:
        """A reference to ``weights`` (their id computed when needed, if not given)."""
        return cls(weights, weights_id=weights_id)

    @classmethod
    def from_blob(cls, blob: bytes, weights_id: str | None = None) -> WeightsRef:
        """A reference to encoded weights; if ``weights_id`` is given it is checked."""
        actual = weights_id_of(blob)
        if weights_id is not None:
            check_weights_id(weights_id, "the id that came with these bytes")
        if weights_id is not None and actual != weights_id:
            raise WeightsError(
                f"these {len(blob)} bytes hash to {actual[:12]}..., not to the id they came "
                f"with ({weights_id[:12]}...); they were damaged or substituted in transit"
            )
        return cls(blob=blob, weights_id=actual)

    # -- views ---------------------------------------------------------------------------

    @property
    def weights(self) -> Weights:
        """The weights (decoded from the bytes the first time, if built from bytes)."""
        if self._weights is None:
            with self._lock:
                if self._weights is None:
                    assert self._blob is not None
                    self._weights = decode(self._blob)
        return self._weights

    @property
    def weights_id(self) -> str:
        """The id: SHA-256 of the safetensors bytes. Without the bytes at hand, the
        arrays are hashed as they would be laid out (:func:`~colearning.core.codec.id_of`),
        so a proposal's id costs no copy of it; the bytes are made only if asked for."""
        if self._id is None:
            pending = self._pending
            if pending is not None:
                pending.result()
            with self._lock:
                if self._id is None:
                    if self._blob is not None:
                        self._id = weights_id(self._blob)
                    else:
                        assert self._weights is not None
                        self._id = id_of(self._weights)
        return self._id

    def blob(self) -> bytes:
        """The safetensors bytes (encoded once if needed)."""
        if self._blob is None:
            self._encode()
        assert self._blob is not None
        return self._blob

    @property
    def has_blob(self) -> bool:
        return self._blob is not None

    def sealed(self) -> WeightsRef:
        """A reference to the same weights whose arrays nobody else can change.

        A learner's proposal shares memory with the learner (``Weights.arrays`` are
        read-only *views*; the learner still holds the writable buffer behind them). A
        learner that keeps that buffer and trains in place later would change every
        learner's model, and what they hold would no longer hash to the recorded id.
        The sealed weights are read-only views of this reference's own encoded bytes,
        an immutable ``bytes`` object whose SHA-256 is the id: nothing is copied
        beyond the encoding that computing the id needs anyway, and the payload keeps
        its form (``Weights.weights`` rebuilds a ``state_dict`` as tensors, a list as
        a list).
        """
        blob = self.blob()
        if not isinstance(blob, bytes):
            blob = bytes(blob)
        wid = self.weights_id
        original = self.weights
        views = sealed_arrays(blob)
        arrays: dict[str, Array] = {}
        for name, array in original.arrays.items():
            view = views.get(name)
            if view is None or view.dtype != array.dtype or view.shape != array.shape:
                # safetensors stores little-endian; a big-endian array keeps its dtype
                # in a private read-only copy instead
                view = np.array(array, copy=True)
                view.flags.writeable = False
            arrays[name] = view
        weights = Weights.from_arrays(arrays, original.layout, original.training_summary)
        return WeightsRef(weights, weights_id=wid, blob=blob)

    def start_encoding(self, executor: Executor) -> None:
        """Encode and hash on ``executor`` now, so ``blob()`` and ``weights_id`` are
        ready when wanted (the driver does this while validators work).

        Weights of at most :data:`ENCODE_HERE_BYTES` are encoded on this thread at
        once: handing them to another thread and waiting for it later costs more than
        the encoding."""
        with self._lock:
            if self._pending is not None or (self._blob is not None and self._id is not None):
                return
            if self._weights is not None and self._weights.nbytes <= ENCODE_HERE_BYTES:
                self._encode_locked()
                return
            self._pending = executor.submit(self._encode_now)

    def _encode(self) -> None:
        pending = self._pending
        if pending is not None:
            pending.result()
            return
        with self._lock:
            if self._blob is None or self._id is None:
                self._encode_locked()

    def _encode_now(self) -> None:
        with self._lock:
            if self._blob is None or self._id is None:
                self._encode_locked()

    def _encode_locked(self) -> None:
        if self._blob is None:
            assert self._weights is not None
            self._blob = encode(self._weights)
        if self._id is None:
            self._id = weights_id(self._blob)

    def __repr__(self) -> str:
        shown = self._id[:12] + "..." if self._id else "(id pending)"
        return f"WeightsRef({shown})"


def weights_id_of(blob: bytes) -> str:
    return weights_id(blob)
