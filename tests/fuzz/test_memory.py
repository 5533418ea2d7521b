"""Claims are checked before allocation: a header claiming a 100 GB array is refused
without trying, in a process whose address space is limited to 3 GiB (RLIMIT_AS), so
an attempt would fail with MemoryError (or OSError) instead of a refusal."""

import subprocess
import sys
import textwrap

import pytest

PRELUDE = """
import io, json, resource, sys, zipfile
import numpy as np
from colearning.core.exceptions import ColearningError
GB100 = 100 * 10**9
def header(h, data=b""):
    raw = json.dumps(h).encode()
    return len(raw).to_bytes(8, "little") + raw + data
def refused(call):
    try:
        call()
    except ColearningError as exc:
        print("refused:", str(exc)[:200])
    else:
        print("accepted")
"""

CASES = {
    "codec": """
from colearning.core.codec import decode
blob = header({"a": {"dtype": "F64", "shape": [GB100 // 8], "data_offsets": [0, GB100]}})
refused(lambda: decode(blob))
""",
    "store blob": """
import pathlib, tempfile
from colearning.core.codec import weights_id
from colearning.core.store import _read_blob
blob = header({"a": {"dtype": "F64", "shape": [GB100 // 8], "data_offsets": [0, GB100]}})
path = pathlib.Path(tempfile.mkdtemp()) / "b.safetensors"
path.write_bytes(blob)
refused(lambda: _read_blob(path, weights_id(blob), path.parent))
""",
    "transfer": """
from colearning.network.transfer import header_message, receive_weights
first = header_message("ab" * 32, GB100).SerializeToString()
refused(lambda: receive_weights([first], max_bytes=2 * GB100))
""",
    "forest npy": """
from colearning.learners._formats import read_skops_schema
npy = io.BytesIO()
np.lib.format.write_array_header_1_0(npy, {"descr": "<f8", "fortran_order": False,
                                            "shape": (GB100 // 8,)})
zipped = io.BytesIO()
with zipfile.ZipFile(zipped, "w") as z:
    z.writestr("schema.json", json.dumps({"__class__": "ndarray"}))
    z.writestr("a.npy", npy.getvalue())
refused(lambda: read_skops_schema(zipped.getvalue()))
""",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_100_gb_claim_is_refused_without_allocating(name):
    code = (
        PRELUDE
        + textwrap.dedent(
            """
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, resource.RLIM_INFINITY))
        """
        )
        + CASES[name]
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "OPENBLAS_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("refused:"), proc.stdout
