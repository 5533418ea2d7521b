"""Each atheris harness in ``fuzz/`` runs for a fixed number of executions (libFuzzer's
``-runs``, with a fixed ``-seed``), each in its own process (atheris sets up once per
process), under the harness's address-space limit. A crash (any exception other than
a clean refusal) makes libFuzzer exit non-zero, with the input and the traceback."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: executions per harness in CI: what each does in a few seconds on one core
#: (docs/robustness.md, "Hostile input", has the rates)
RUNS = {
    "codec": 10_000,
    "network": 10_000,
    "booster": 1_000,
    "forest": 2_000,
    "config": 1_000,
    "store": 100,
}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_the_fuzzer_finds_no_crash(name, tmp_path):
    runs = RUNS[name]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            f"fuzz.{name}",
            f"-runs={runs}",
            "-seed=1",
            f"-artifact_prefix={tmp_path}/",
            str(tmp_path / "corpus"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"},
    )
    tail = (proc.stdout + proc.stderr)[-6000:]
    assert proc.returncode == 0, f"fuzz.{name} crashed:\n{tail}"
    # libFuzzer counts the seed corpus's inputs too, and may pass -runs by a few (it
    # said "Done 103 runs" for -runs=100 once): at least the runs asked for
    done = re.search(r"Done (\d+) runs", proc.stderr)
    assert done and int(done.group(1)) >= runs, tail
