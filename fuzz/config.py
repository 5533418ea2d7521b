"""Fuzz config files: a TOML file through ``read_toml``, ``to_run_config`` and
``RunConfig.resolved`` (every setting checked against its task), as ``colearn run
--config FILE`` reads it.

    python -m fuzz.config -runs=5000

Every input must end in a ``ConfigError`` or in a resolved config whose ``to_dict``
reads back to the same config.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["colearning"]):
    from colearning.cli.config import read_toml, to_run_config
    from colearning.core.exceptions import ConfigError
    from colearning.tasks.runner import RunConfig

from fuzz._common import main

FILE = Path(tempfile.mkdtemp(prefix="colearning-fuzz-config-")) / "run.toml"


def seeds() -> list[bytes]:
    return [
        b'task = "quadratic"\nrounds = 5\nlearners = 3\nthreshold = 0.5\nseed = 1\n',
        b'task = "digits-mlp"\nrounds = 2\nvote_threshold = 0.6\n[params]\nepochs = 1\n',
        b'task = "quadratic"\nmode = "aggregate"\ncombiner = "median"\nout = "runs/x"\n',
        b'task = "synthetic-softmax"\nlearners = 10\ncommittee = 3\ndata-dir = "d"\n',
    ]


def test_one(data: bytes) -> None:
    FILE.write_bytes(data)
    try:
        config, _ = to_run_config(read_toml(FILE))
        resolved = config.resolved()
    except ConfigError:
        return
    again = RunConfig.from_dict(resolved.to_dict()).resolved()
    if again != resolved:
        raise AssertionError(f"to_dict does not read back: {resolved} -> {again}")


if __name__ == "__main__":
    main(test_one, seeds, sys.argv, max_len=4096)
