"""Weights on the wire: the codec's bytes in chunks, a header first, verified on arrival.

A transfer is a header (the weights id, the size, optionally the training summary)
followed by the bytes in chunks of :data:`CHUNK` (``bench/network_transfer.py
--chunks`` measures the sizes side by side). No single message holds the model, so
there is no ceiling on its size (protobuf refuses messages over 2 GiB). The receiver

1. refuses a size over its limit **before** allocating anything,
2. refuses a stream that brings more bytes than announced, or ends before them
   (truncated: the sender disconnected or was cut off),
3. hashes the bytes as they arrive and refuses them unless they hash to the id they
   came with.

Each chunk is written into one buffer of the announced size as it arrives (an
anonymous memory map: its pages are taken as they are written, so a size announced
but never sent costs nothing), and hashed there; nothing is joined, and decoding
(:func:`colearning.core.codec.decode`) gives arrays that are views of that buffer. A
receiver holds about one payload, not two or three.

Chunks skip protobuf's copies on both sides: :func:`chunk_message` writes the wire
bytes of ``WeightsMessage(chunk=...)`` directly (a tag, a length, the bytes) and
:func:`parse_message` hands a chunk on as a view of the received message. Every
other message goes through protobuf, and the bytes on the wire are exactly
protobuf's, so any implementation of ``colearning.proto`` interoperates.
"""

from __future__ import annotations

import hashlib
import mmap
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from colearning.core.exceptions import WeightsError
from colearning.core.interface import ColearnModel, ModelFormat, TrainingSummary
from colearning.network._proto import colearning_pb2 as pb
from colearning.network._proto import colearning_pb2_grpc as pb_grpc
from colearning.network.convert import (
    RemoteFailure,
    failure_from_proto,
    summary_from_proto,
    summary_to_proto,
)

#: Bytes per chunk message (see ``bench/network_transfer.py --chunks``).
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
    blob: memoryview | None  # read-only, over the receive buffer
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


# -- chunks without protobuf's copies ---------------------------------------------------------

#: The tag of ``WeightsMessage.chunk``: field 2, wire type 2 (length-delimited).
_CHUNK_TAG = 0x12


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def chunk_message(data: bytes | memoryview) -> bytes:
    """The wire bytes of ``WeightsMessage(chunk=data)``, with one copy of ``data``
    (protobuf would take two: into a ``bytes`` for the field, then out again)."""
    return b"".join((bytes((_CHUNK_TAG,)), _varint(len(data)), data))


def serialize_message(message: pb.WeightsMessage | bytes) -> bytes:
    """A weights-stream message for the wire: ``bytes`` are already its wire form."""
    if isinstance(message, bytes):
        return message
    data: bytes = message.SerializeToString()
    return data


def parse_message(data: bytes) -> pb.WeightsMessage | memoryview:
    """A received weights-stream message: a chunk (exactly one ``chunk`` field, as
    every sender writes it) as a view of ``data``; anything else parsed by protobuf,
    which reads every valid encoding."""
    if data[:1] == b"\x12":
        n = shift = 0
        i = 1
        while i < len(data) and i <= 10:
            b = data[i]
            i += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                if i + n == len(data):
                    return memoryview(data)[i:]
                break
    try:
        message: pb.WeightsMessage = pb.WeightsMessage.FromString(data)
    except DecodeError as exc:  # gRPC reports a deserializer's error as the call's
        raise TransferError(f"a weights-stream message is not protobuf: {exc}") from None
    return message


_SERVICE = "colearning.v1.Learner"
_WEIGHTS_IN = ("Test", "Accept")
_WEIGHTS_OUT = ("Propose", "CurrentWeights")


class LearnerStub(pb_grpc.LearnerStub):  # type: ignore[misc]
    """The generated client stub, its weights streams using :func:`chunk_message` and
    :func:`parse_message`, and two more callables for a transfer by id.

    ``TestById`` and ``AcceptById`` call ``Test`` and ``Accept`` with their one message
    as a unary call: on the wire a client stream of one message and a unary request are
    the same frames, and gRPC's Python client runs a thread per streaming call to read
    its request iterator (half its cost, here, for a call that sends only an id).
    """

    def __init__(self, channel: grpc.Channel) -> None:
        super().__init__(channel)
        replies = {"Test": pb.TestReply, "Accept": pb.AcceptReply}
        requests = {"Propose": pb.ProposeRequest, "CurrentWeights": pb.CurrentWeightsRequest}
        for name in _WEIGHTS_IN:
            path = f"/{_SERVICE}/{name}"
            setattr(
                self,
                name,
                channel.stream_unary(
                    path,
                    request_serializer=serialize_message,
                    response_deserializer=replies[name].FromString,
                    _registered_method=True,
                ),
            )
            setattr(
                self,
                f"{name}ById",
                channel.unary_unary(
                    path,
                    request_serializer=serialize_message,
                    response_deserializer=replies[name].FromString,
                    _registered_method=True,
                ),
            )
        for name in _WEIGHTS_OUT:
            setattr(
                self,
                name,
                channel.unary_stream(
                    f"/{_SERVICE}/{name}",
                    request_serializer=requests[name].SerializeToString,
                    response_deserializer=parse_message,
                    _registered_method=True,
                ),
            )

    TestById: Any
    AcceptById: Any


def learner_stub(channel: grpc.Channel) -> LearnerStub:
    """A :class:`LearnerStub` on ``channel``."""
    return LearnerStub(channel)


def add_learner_service(servicer: Any, server: grpc.Server) -> None:
    """Register ``servicer`` as ``colearning.v1.Learner`` on ``server``, as the generated
    ``add_LearnerServicer_to_server`` does, the weights streams using
    :func:`parse_message` and :func:`serialize_message`."""
    handlers = {
        "Describe": grpc.unary_unary_rpc_method_handler(
            servicer.Describe,
            request_deserializer=pb.DescribeRequest.FromString,
            response_serializer=pb.Description.SerializeToString,
        ),
        "Propose": grpc.unary_stream_rpc_method_handler(
            servicer.Propose,
            request_deserializer=pb.ProposeRequest.FromString,
            response_serializer=serialize_message,
        ),
        "Test": grpc.stream_unary_rpc_method_handler(
            servicer.Test,
            request_deserializer=parse_message,
            response_serializer=pb.TestReply.SerializeToString,
        ),
        "Accept": grpc.stream_unary_rpc_method_handler(
            servicer.Accept,
            request_deserializer=parse_message,
            response_serializer=pb.AcceptReply.SerializeToString,
        ),
        "CurrentWeights": grpc.unary_stream_rpc_method_handler(
            servicer.CurrentWeights,
            request_deserializer=pb.CurrentWeightsRequest.FromString,
            response_serializer=serialize_message,
        ),
        "CurrentModel": grpc.unary_stream_rpc_method_handler(
            servicer.CurrentModel,
            request_deserializer=pb.CurrentModelRequest.FromString,
            response_serializer=pb.ModelMessage.SerializeToString,
        ),
        "RestoreProgress": grpc.unary_unary_rpc_method_handler(
            servicer.RestoreProgress,
            request_deserializer=pb.RestoreProgressRequest.FromString,
            response_serializer=pb.RestoreProgressReply.SerializeToString,
        ),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(_SERVICE, handlers),))
    server.add_registered_method_handlers(_SERVICE, handlers)


def by_id_message(
    weights_id: str, *, training_summary: TrainingSummary | None = None, round_index: int = -1
) -> bytes:
    """The one wire message of a transfer by id."""
    data: bytes = header_message(
        weights_id, 0, by_id=True, training_summary=training_summary, round_index=round_index
    ).SerializeToString()
    return data


def send_weights(
    weights_id: str,
    blob: bytes | memoryview | None,
    *,
    training_summary: TrainingSummary | None = None,
    round_index: int = -1,
    chunk: int = CHUNK,
) -> Iterator[bytes]:
    """The wire messages of one transfer; ``blob=None`` sends the id only."""
    if blob is None:
        yield by_id_message(weights_id, training_summary=training_summary, round_index=round_index)
        return
    view = memoryview(blob).cast("B")
    yield header_message(
        weights_id, len(view), training_summary=training_summary, round_index=round_index
    ).SerializeToString()
    for start in range(0, len(view), chunk):
        yield chunk_message(view[start : start + chunk])


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


Message = pb.WeightsMessage | memoryview | bytes


def receive_weights(messages: Iterable[Message], max_bytes: int) -> Received:
    """Read one transfer from ``messages``, enforcing ``max_bytes`` and the id.

    ``messages`` are what :func:`parse_message` gives (protobuf messages, or chunks as
    views), or their wire bytes.

    Raises
    ------
    TransferError
        If the transfer is malformed, over the limit, truncated or damaged.
    RemoteFailureError
        If the sender sent a failure instead of weights.
    """
    stream = (parse_message(m) if isinstance(m, bytes) else m for m in messages)
    first = next(stream, None)
    if first is None:
        raise TransferError("the weights transfer was empty: no header came (truncated)")
    part = "chunk" if isinstance(first, memoryview) else first.WhichOneof("part")
    if part == "failure":
        raise RemoteFailureError(failure_from_proto(first.failure))  # type: ignore[union-attr]
    if part != "header":
        raise TransferError(
            f"a weights transfer must start with its header; it started with a {part or 'blank'} "
            "message (the sender speaks another protocol)"
        )
    assert not isinstance(first, memoryview)
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
    # the announced size is within the limit: map it (pages are taken as written)
    try:
        buffer = memoryview(mmap.mmap(-1, size) if size else bytearray())
    except (OSError, MemoryError, OverflowError) as exc:
        raise TransferError(
            f"cannot reserve {_size(size)} for the weights {wid[:12]}... the sender announced "
            f"({exc}); lower the limit on this side (--max-bytes) or free memory"
        ) from None
    got = 0
    digest = hashlib.sha256()
    for msg in stream:
        if isinstance(msg, memoryview):
            data: bytes | memoryview = msg
        else:
            part = msg.WhichOneof("part")
            if part == "failure":
                raise RemoteFailureError(failure_from_proto(msg.failure))
            if part != "chunk":
                raise TransferError(
                    f"a second {part or 'blank'} message came in the middle of a transfer"
                )
            data = msg.chunk
        n = len(data)
        if got + n > size:
            raise TransferError(
                f"the sender announced {size} bytes for {wid[:12]}... and sent more; refused"
            )
        place = buffer[got : got + n]
        place[:] = data
        digest.update(place)
        got += n
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
    return Received(wid, buffer.toreadonly(), summary, int(header.round_index))


def receive_model(messages: Iterable[pb.ModelMessage], max_bytes: int) -> ColearnModel:
    """Read a ``CurrentModel`` stream: a header, then chunks adding up to its size.

    Raises
    ------
    TransferError
        If the header is missing or not first, names an unknown format, announces more
        than ``max_bytes``, or the chunks bring more or fewer bytes than announced
        (checked as each arrives, so nothing past the announced size is kept).
    RemoteFailureError
        If the learner sent a failure instead.
    """
    header: Any = None
    parts: list[bytes] = []
    got = 0
    for msg in messages:
        part = msg.WhichOneof("part")
        if part == "failure":
            raise RemoteFailureError(failure_from_proto(msg.failure))
        if part == "header":
            if header is not None:
                raise TransferError("the model transfer sent a second header")
            header = msg.header
            if header.size > max_bytes:
                raise TransferError(
                    f"the model is {_size(header.size)}; the limit is {_size(max_bytes)}"
                )
        elif part == "chunk":
            if header is None:
                raise TransferError("the model transfer sent bytes before its header")
            got += len(msg.chunk)
            if got > header.size:
                raise TransferError(
                    f"the model transfer announced {header.size} bytes and sent more"
                )
            parts.append(msg.chunk)
        else:
            raise TransferError("the model transfer sent a blank message")
    if header is None or got != header.size:
        raise TransferError("the model transfer was truncated")
    formats = {f.value: f for f in ModelFormat}
    if header.model_format and header.model_format not in formats:
        raise TransferError(
            f"the model's format {header.model_format[:40]!r} is not one of {sorted(formats)}"
        )
    fmt = formats[header.model_format] if header.model_format else None
    return ColearnModel(fmt, header.model_file, b"".join(parts))
