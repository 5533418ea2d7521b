"""A weights transfer is refused, with a reason, unless it is whole and matches its id."""

import hashlib

import numpy as np
import pytest

from colearning.core.codec import encode
from colearning.core.interface import Weights
from colearning.network._proto import colearning_pb2 as pb
from colearning.network.transfer import (
    TransferError,
    header_message,
    receive_weights,
    send_weights,
)

BLOB = encode(Weights({"w": np.arange(300_000, dtype=np.float64)}))  # 2.4 MB: 3 chunks
WID = hashlib.sha256(BLOB).hexdigest()


def test_round_trip_in_chunks():
    msgs = list(send_weights(WID, BLOB))
    assert len(msgs) == 1 + 3 and all(len(m.chunk) <= 1 << 20 for m in msgs[1:])
    got = receive_weights(msgs, max_bytes=len(BLOB))
    assert got.blob == BLOB and got.weights_id == WID


def test_by_id_carries_no_bytes():
    got = receive_weights(send_weights(WID, None), max_bytes=1)
    assert got.blob is None and got.weights_id == WID


def test_over_the_limit_is_refused_before_any_chunk_is_read():
    def stream():
        yield header_message(WID, len(BLOB))
        raise AssertionError("a chunk was read after an over-limit header")

    with pytest.raises(TransferError, match="accepts at most 1.0 MiB.*--max-bytes"):
        receive_weights(stream(), max_bytes=1 << 20)


def test_truncated_stream_is_refused():
    msgs = list(send_weights(WID, BLOB))[:-1]
    with pytest.raises(TransferError, match="truncated"):
        receive_weights(msgs, max_bytes=1 << 30)


def test_more_than_announced_is_refused():
    msgs = [*send_weights(WID, BLOB), pb.WeightsMessage(chunk=b"x")]
    with pytest.raises(TransferError, match="sent more"):
        receive_weights(msgs, max_bytes=1 << 30)


def test_bytes_not_matching_their_id_are_refused():
    damaged = bytearray(BLOB)
    damaged[-1] ^= 1
    with pytest.raises(TransferError, match="not to the id they came with"):
        receive_weights(send_weights(WID, bytes(damaged)), max_bytes=1 << 30)


def test_a_stream_without_a_header_or_with_a_bad_id_is_refused():
    with pytest.raises(TransferError, match="must start with its header"):
        receive_weights([pb.WeightsMessage(chunk=b"x")], max_bytes=10)
    with pytest.raises(TransferError, match="not a hex SHA-256"):
        receive_weights(send_weights("nothex", BLOB), max_bytes=1 << 30)
    with pytest.raises(TransferError, match="empty"):
        receive_weights([], max_bytes=10)
