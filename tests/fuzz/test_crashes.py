"""Every crash the fuzzers (and the property tests) found, as a regression test: each
input once ended in another exception than a ``ColearningError`` (or in two readers
disagreeing); now each is a clean refusal. docs/robustness.md lists them."""

import json
import struct
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from colearning.core.codec import decode, read_header, sealed_arrays
from colearning.core.exceptions import WeightsError
from colearning.learners._formats import parse_ubjson


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


def test_deep_json_is_refused_before_the_parser_recurses():
    """The suite once segfaulted in ``json.loads`` on the deep headers above: a worker
    thread's C stack ran out before Python's recursion limit (which a library may
    raise) stopped the parser. Depth is measured first, without recursion: with the
    limit raised and in a thread, each is still a clean refusal. In a subprocess, so a
    regression fails this test instead of killing pytest."""
    blobs = [with_header(CODEC_CRASHES[n], bytes(8)) for n in ("deep JSON", "deep layout JSON")]
    code = (
        "import sys, threading\n"
        "sys.setrecursionlimit(10**7)\n"
        "from colearning.core.codec import decode\n"
        "from colearning.core.exceptions import WeightsError\n"
        f"blobs = {blobs!r}\n"
        "out = []\n"
        "def run():\n"
        "    for blob in blobs:\n"
        "        try:\n"
        "            decode(blob)\n"
        "        except WeightsError as exc:\n"
        "            out.append(str(exc))\n"
        "t = threading.Thread(target=run); t.start(); t.join()\n"
        "print(len(out), all('nested too deeply' in m for m in out))\n"
    )
    done = subprocess.run(
        [sys.executable, "-"], input=code, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["2", "True"], done.stdout


# -- the booster and forest readers ---------------------------------------------------

BOOSTER_PARENTS = Path(__file__).with_name("data") / "booster-parents-segfault.ubj"


def test_a_booster_whose_parents_do_not_match_its_links_is_refused():
    """fuzz.booster, 2,000 executions in: one bit of a parent index changed (2 to
    4194306) passed every check, and XGBoost 3.2.0 segfaulted loading it. Run in a
    subprocess, so that a regression fails this test instead of killing pytest."""
    code = (
        "import sys; from colearning.core.exceptions import WeightsError\n"
        "from colearning.learners.xgboost import booster_from_bytes\n"
        "try:\n"
        f"    booster_from_bytes(open({str(BOOSTER_PARENTS)!r}, 'rb').read(),"
        " objective='binary:logistic', n_features=6)\n"
        "except WeightsError as exc:\n"
        "    print('refused:', exc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "refused: tree 1: parents do not match the child links" in proc.stdout


def test_typed_arrays_of_empty_values_cannot_multiply_the_input():
    """A typed array of typed arrays of ``Z`` built len(blob)**2 values: a 14 KB blob
    took 260 MB and two minutes. Now at most one value is built per byte."""
    inner = b"$Z#I" + struct.pack(">h", 12000)
    blob = b"{U\x01a[$[#I" + struct.pack(">h", 2400) + inner * 2400 + b"}"
    tracemalloc.start()
    try:
        with pytest.raises(WeightsError, match="more values than bytes"):
            parse_ubjson(blob)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 * len(blob)


# -- the gRPC messages ----------------------------------------------------------------


def test_a_spec_with_a_dtype_numpy_cannot_read_is_refused_when_described():
    """A Description whose spec named dtype 'garbage' was taken, and the first check of
    weights against it raised TypeError from np.dtype."""
    from colearning.network._proto import colearning_pb2 as pb
    from colearning.network.convert import spec_from_proto

    for spec in (
        pb.TensorSpec(name="a", dtype="garbage", shape=[1]),
        pb.TensorSpec(name="a", dtype="<f8", shape=[-1]),
        pb.TensorSpec(name="a", dtype="O", shape=[1]),
    ):
        with pytest.raises(WeightsError, match="the weights spec gives"):
            spec_from_proto([spec])


def test_stream_bytes_that_are_not_protobuf_are_a_transfer_error():
    """parse_message and receive_weights let protobuf's DecodeError out."""
    from colearning.network.transfer import TransferError, parse_message, receive_weights

    with pytest.raises(TransferError, match="not protobuf"):
        parse_message(b"\x0a\xff")
    with pytest.raises(TransferError, match="not protobuf"):
        receive_weights([b"\x0a\xff"], 1 << 20)


def test_a_model_stream_keeps_nothing_past_its_announced_size():
    """CurrentModel kept every chunk until the stream ended (no bound), and an unknown
    format raised ValueError from ModelFormat."""
    from colearning.network._proto import colearning_pb2 as pb
    from colearning.network.transfer import TransferError, receive_model

    def endless():
        yield pb.ModelMessage(header=pb.ModelHeader(model_format="ONNX", size=4))
        while True:
            yield pb.ModelMessage(chunk=b"\0" * 3)

    with pytest.raises(TransferError, match="announced 4 bytes and sent more"):
        receive_model(endless(), 1 << 20)
    odd = [
        pb.ModelMessage(header=pb.ModelHeader(model_format="PICKLE", size=1)),
        pb.ModelMessage(chunk=b"x"),
    ]
    with pytest.raises(TransferError, match="format 'PICKLE'"):
        receive_model(odd, 1 << 20)
