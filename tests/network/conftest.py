"""Real learner servers: ``colearn learner serve`` subprocesses on 127.0.0.1 ports.

A server is ready once it has written its port file (it writes it after it listens);
nothing here sleeps and hopes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
COLEARN = [sys.executable, "-m", "colearning.cli.main"]


def env(**extra: str) -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(HERE), e.get("PYTHONPATH", "")])
    e.update(extra)
    return e


class Served:
    """One ``colearn learner serve`` process."""

    def __init__(self, tmp: Path, args: list[str], name: str, environ: dict[str, str]) -> None:
        self.tmp = tmp
        self.args = args
        self.name = name
        self.environ = environ
        self.port_file = tmp / f"{name}-{uuid.uuid4().hex[:6]}.port"
        self.log = tmp / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self, port: int = 0) -> Served:
        self.port_file.unlink(missing_ok=True)
        with self.log.open("ab") as fh:
            self.proc = subprocess.Popen(
                [
                    *COLEARN,
                    "learner",
                    "serve",
                    *self.args,
                    "--port",
                    str(port),
                    "--port-file",
                    str(self.port_file),
                ],
                stdout=fh,
                stderr=subprocess.STDOUT,
                env=self.environ,
            )
        deadline = time.monotonic() + 120
        while not self.port_file.exists():
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited:\n{self.log.read_text()}")
            if time.monotonic() > deadline:  # a hung start, not a speed bound
                raise AssertionError(f"{self.name} never listened:\n{self.log.read_text()}")
            time.sleep(0.02)
        self.port = int(self.port_file.read_text())
        return self

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def serve(tmp_path):
    """``serve(*args, name=..., **env)``: start a learner server; all are stopped after."""
    made: list[Served] = []

    def start(*args: str, name: str = "learner", port: int = 0, **environ: str) -> Served:
        s = Served(tmp_path, list(args), name, env(**environ)).start(port)
        made.append(s)
        return s

    yield start
    for s in made:
        s.stop()
