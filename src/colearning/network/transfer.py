"""Weights on the wire: the codec's bytes in chunks, a header first, verified on arrival.

A transfer is a header (the weights id, the size, optionally the training summary)
followed by the bytes in chunks of :data:`CHUNK` (1 MiB, the size earlier measurements
for this project found best; ``bench/network_transfer.py`` measures this transport
against raw TCP at that size, other sizes were not re-measured). No single message holds
the model, so there is no ceiling on its size (protobuf refuses messages over 2 GiB). The receiver

1. refuses a size over its limit **before** allocating anything,
2. refuses a stream that brings more bytes than announced, or ends before them
   (truncated: the sender disconnected or was cut off),
3. hashes the bytes as they arrive and refuses them unless they hash to the id they
   came with.

Chunks are kept as received and joined once at the end, so the receiver holds at most
twice the payload for an instant (the chunks and the joined bytes), and decoding then
needs the bytes and the arrays: two payloads, never three.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from colearning.core.exceptions import WeightsError
from colearning.core.interface import TrainingSummary
from colearning.network._proto import colearning_pb2 as pb
from colearning.network.convert import (
    RemoteFailure,
    failure_from_proto,
    summary_from_proto,
    summary_to_proto,
)

CHUNK = 1 << 20
#: The default byte limit of one weights transfer (``--max-bytes``).
DEFAULT_MAX_BYTES = 8 << 30


class TransferError(WeightsError):
    """A weights transfer that cannot be used: over the limit, truncated, too long, or
    not hashing to its id. Nothing was changed on the receiving side."""


class RemoteFailureError(Exception):
    """The sender reported a failure instead of weights (carried in ``failure``)."""

    def __init__(self, failure: RemoteFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


@dataclass(frozen=True)
class Received:
    """A verified transfer: the id and, unless it was sent by id, the bytes."""

    weights_id: str
    blob: bytes | None
    training_summary: TrainingSummary | None
    round_index: int


def header_message(
    weights_id: str,
    size: int,
    *,
    by_id: bool = False,
    training_summary: TrainingSummary | None = None,
    round_index: int = -1,
) -> pb.WeightsMessage:
    header = pb.WeightsHeader(
        weights_id=weights_id, size=size, by_id=by_id, round_index=round_index
    )
    if training_summary is not None:
        header.training_summary.CopyFrom(summary_to_proto(training_summary))
    return pb.WeightsMessage(header=header)


def send_weights(
    weights_id: str,
    blob: bytes | None,
    *,
    training_summary: TrainingSummary | None = None,
    round_index: int = -1,
    chunk: int = CHUNK,
) -> Iterator[pb.WeightsMessage]:
    """The messages of one transfer; ``blob=None`` sends the id only."""
    if blob is None:
        yield header_message(
            weights_id, 0, by_id=True, training_summary=training_summary, round_index=round_index
        )
        return
    yield header_message(
        weights_id, len(blob), training_summary=training_summary, round_index=round_index
    )
    view = memoryview(blob)
    for start in range(0, len(blob), chunk):
        yield pb.WeightsMessage(chunk=bytes(view[start : start + chunk]))


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def receive_weights(messages: Iterable[pb.WeightsMessage], max_bytes: int) -> Received:
    """Read one transfer from ``messages``, enforcing ``max_bytes`` and the id.

    Raises
    ------
    TransferError
        If the transfer is malformed, over the limit, truncated or damaged.
    RemoteFailureError
        If the sender sent a failure instead of weights.
    """
    stream = iter(messages)
    first = next(stream, None)
    if first is None:
        raise TransferError("the weights transfer was empty: no header came (truncated)")
    part = first.WhichOneof("part")
    if part == "failure":
        raise RemoteFailureError(failure_from_proto(first.failure))
    if part != "header":
        raise TransferError(
            f"a weights transfer must start with its header; it started with a {part or 'blank'} "
            "message (the sender speaks another protocol)"
        )
    header = first.header
    wid = header.weights_id
    if len(wid) != 64 or any(c not in "0123456789abcdef" for c in wid):
        raise TransferError(
            f"the weights id {wid[:80]!r} is not a hex SHA-256 (64 characters 0-9a-f)"
        )
    try:
        summary = (
            summary_from_proto(header.training_summary)
            if header.HasField("training_summary")
            else None
        )
    except ValueError as exc:
        raise TransferError(str(exc)) from None
    if header.by_id:
        extra = next(stream, None)
        if extra is not None:
            raise TransferError("a transfer by id must not carry bytes; it did")
        return Received(wid, None, summary, int(header.round_index))
    size = int(header.size)
    if size > max_bytes:
        raise TransferError(
            f"the sender announced {_size(size)} of weights ({wid[:12]}...); this side accepts "
            f"at most {_size(max_bytes)}. If the model really is that large, raise the limit "
            "on the receiving side (colearn learner serve --max-bytes, or the pool's max_bytes)"
        )
    chunks: list[bytes] = []
    got = 0
    digest = hashlib.sha256()
    for msg in stream:
        part = msg.WhichOneof("part")
        if part == "failure":
            raise RemoteFailureError(failure_from_proto(msg.failure))
        if part != "chunk":
            raise TransferError(
                f"a second {part or 'blank'} message came in the middle of a transfer"
            )
        data = msg.chunk
        got += len(data)
        if got > size:
            raise TransferError(
                f"the sender announced {size} bytes for {wid[:12]}... and sent more; refused"
            )
        digest.update(data)
        chunks.append(data)
    if got < size:
        raise TransferError(
            f"the transfer of {wid[:12]}... ended after {got} of its {size} bytes: truncated in "
            "transit (the sender disconnected or was cut off); nothing was used"
        )
    actual = digest.hexdigest()
    if actual != wid:
        raise TransferError(
            f"these {size} bytes hash to {actual[:12]}..., not to the id they came with "
            f"({wid[:12]}...); they were damaged or substituted in transit and were not used"
        )
    blob = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    chunks.clear()
    return Received(wid, blob, summary, int(header.round_index))
