"""Fuzz the receiving side of the gRPC messages: a weights stream (``parse_message``
then ``receive_weights``, then ``decode`` of what arrives), a model stream
(``receive_model``), and the replies a coordinator reads (``Description``,
``TestReply``, ``AcceptReply`` through ``convert``).

    python -m fuzz.network -runs=20000

The first byte picks the message kind; the rest is one message, or, for the streams,
messages each prefixed with a 2-byte little-endian length. Every input must end in a
``ColearningError`` (``TransferError``, ``WeightsError``), in the sender's own failure
(``RemoteFailureError``, the protocol's way to say "I failed", carried as a value), or
in a checked value; protobuf's own ``DecodeError`` on a reply is what gRPC's
deserializer turns into a failed call, and counts as a refusal.
"""

from __future__ import annotations

import contextlib
import sys
from typing import TypeVar

import atheris

with atheris.instrument_imports(include=["colearning"]):
    import numpy as np
    from google.protobuf.message import DecodeError

    from colearning.core.codec import WeightsSpec, check_weights, decode, encode, weights_id
    from colearning.core.exceptions import ColearningError
    from colearning.core.interface import (
        DiffPrivBudget,
        LearnerTags,
        ProposedWeights,
        TrainingSummary,
        Weights,
    )
    from colearning.network._proto import colearning_pb2 as pb
    from colearning.network.convert import (
        LearnerDescription,
        description_from_proto,
        description_to_proto,
        failure_from_proto,
        read_verdict,
        verdict_from_proto,
        verdict_to_proto,
    )
    from colearning.network.transfer import (
        RemoteFailureError,
        parse_message,
        receive_model,
        receive_weights,
        send_weights,
    )

from fuzz._common import main

MAX_BYTES = 1 << 16
REFERENCE = Weights({"a": np.arange(6.0).reshape(2, 3), "b": np.ones(3, np.float32)})
T = TypeVar("T")
KINDS = ("weights", "model", "description", "verdict", "accept")


def frames(messages: list[bytes]) -> bytes:
    return b"".join(len(m).to_bytes(2, "little") + m for m in messages)


def unframe(data: bytes) -> list[bytes]:
    out, i = [], 0
    while i + 2 <= len(data):
        n = int.from_bytes(data[i : i + 2], "little")
        out.append(data[i + 2 : i + 2 + n])
        i += 2 + n
    return out


def seeds() -> list[bytes]:
    w = REFERENCE
    blob = encode(w)
    wid = weights_id(blob)
    summary = TrainingSummary(DiffPrivBudget(1.0, 1e-5, 0.5, 1e-6))
    stream = list(send_weights(wid, blob, training_summary=summary, round_index=3, chunk=40))
    by_id = list(send_weights(wid, None, round_index=2))
    model = [
        pb.ModelMessage(header=pb.ModelHeader(model_format="ONNX", model_file="m", size=5)),
        pb.ModelMessage(chunk=b"ab"),
        pb.ModelMessage(chunk=b"cde"),
    ]
    failure = pb.ModelMessage(failure=pb.Failure(reason=pb.RAISED, message="no"))
    description = LearnerDescription(
        "learner-0", "quadratic", WeightsSpec.of(w), "0.1.0", 1, LearnerTags(), "x", wid
    )
    verdict = ProposedWeights(None, vote_score=0.5, test_score=0.25, vote=True)
    return [
        b"\0" + frames(stream),
        b"\0" + frames(by_id),
        b"\1" + frames([m.SerializeToString() for m in model]),
        b"\1" + frames([failure.SerializeToString()]),
        b"\2" + description_to_proto(description).SerializeToString(),
        b"\3" + verdict_to_proto(verdict).SerializeToString(),
        b"\4" + pb.AcceptReply(failure=pb.Failure(message="x")).SerializeToString(),
    ]


def reply(cls: type[T], data: bytes) -> T | None:
    """A reply as gRPC's deserializer reads it: protobuf's refusal fails the call."""
    try:
        return cls.FromString(data)
    except DecodeError:
        return None


def test_one(data: bytes) -> None:
    if not data:
        return
    kind, rest = KINDS[data[0] % len(KINDS)], data[1:]
    try:
        if kind == "weights":
            got = receive_weights(unframe(rest), MAX_BYTES)
            if got.blob is not None:
                decode(got.blob, REFERENCE)
        elif kind == "model":
            messages = [reply(pb.ModelMessage, m) for m in unframe(rest)]
            receive_model([m for m in messages if m is not None], MAX_BYTES)
        elif kind == "description":
            description = reply(pb.Description, rest)
            if description is not None:
                check_weights(REFERENCE, description_from_proto(description).spec)
        elif kind == "verdict":
            verdict = reply(pb.TestReply, rest)
            if verdict is not None:
                read_verdict(verdict_from_proto(verdict))
        else:
            accept = reply(pb.AcceptReply, rest)
            if accept is not None and accept.HasField("failure"):
                failure_from_proto(accept.failure)
    except (ColearningError, RemoteFailureError):
        pass
    for message in unframe(rest)[:4]:  # each as a weights-stream message on its own
        with contextlib.suppress(ColearningError):
            parse_message(message)


if __name__ == "__main__":
    main(test_one, seeds, sys.argv)
