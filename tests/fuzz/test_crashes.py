"""Every crash the fuzzers (and the property tests) found, as a regression test: each
input once ended in another exception than a ``ColearningError`` (or in two readers
disagreeing); now each is a clean refusal. docs/robustness.md lists them."""

import json

import pytest

from colearning.core.codec import decode, read_header, sealed_arrays
from colearning.core.exceptions import WeightsError


def with_header(header: object, data: bytes = b"") -> bytes:
    raw = json.dumps(header).encode() if not isinstance(header, bytes) else header
    return len(raw).to_bytes(8, "little") + raw + data


def entry(dtype="F64", shape=(1,), offsets=(0, 8)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


CODEC_CRASHES = {
    # atheris (fuzz.codec): the strict reader took the last of two entries of one name,
    # decode refused the header, so sealed_arrays read what decode refused
    "a name twice": b'{"a":'
    + json.dumps(entry()).encode()
    + b',"a":'
    + json.dumps(entry()).encode()
    + b"}",
    # an empty array whose other dimension NumPy cannot hold: ValueError from reshape
    "a dimension of 2**63": {"a": entry(shape=(0, 2**63), offsets=(0, 0))},
    # more dimensions than NumPy allows: ValueError from reshape
    "65 dimensions": {"a": entry(shape=(0,) * 65, offsets=(0, 0))},
    # JSON nested past Python's recursion limit: RecursionError from json.loads
    "deep JSON": b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "deep layout JSON": {
        "__metadata__": {"colearning": "[" * 100_000 + "]" * 100_000},
        "a": entry(),
    },
}


@pytest.mark.parametrize("name", sorted(CODEC_CRASHES))
def test_codec_crashes_are_refusals(name):
    blob = with_header(CODEC_CRASHES[name], b"\0" * 8)
    for read in (decode, sealed_arrays, read_header):
        if read is read_header and name == "deep layout JSON":
            read(blob)  # the header is fine; its layout is not read there
            continue
        with pytest.raises(WeightsError):
            read(blob)
