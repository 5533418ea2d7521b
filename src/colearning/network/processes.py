"""Learner servers as subprocesses on 127.0.0.1, each a ``colearn learner serve``
command of its own (``colearn run --processes`` forks its servers from one launcher
instead: :mod:`colearning.network.launcher`).

Readiness is awaited, never guessed: a server writes its port to a file once it
listens (renamed into place, so a reader never sees half a number), and the pool then
waits for each to answer. The processes go away with their parent whatever happens:
:meth:`LearnerProcesses.stop` ends them and reaps them, and on Linux each child also
asks the kernel to end it if its parent dies (``PR_SET_PDEATHSIG``), which covers a
parent killed with SIGKILL.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from colearning.core.exceptions import ConfigError

_PR_SET_PDEATHSIG = 1


def _die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent dies (Linux; runs
    in the child, between fork and exec, or in a forked server)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, int(sig))


class LearnerProcesses:
    """Start learner servers as subprocesses; :meth:`stop` ends and reaps them all."""

    def __init__(
        self, commands: Sequence[Sequence[str]], log_dir: str | Path | None = None
    ) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="colearning-learners-")
        self.log_dir = Path(log_dir) if log_dir else Path(self._tmp.name)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.commands = [list(c) for c in commands]
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []
        self.ports: list[int] = []

    @property
    def tmp(self) -> Path:
        return Path(self._tmp.name)

    def start(self) -> LearnerProcesses:
        try:
            for i, cmd in enumerate(self.commands):
                log = self.log_dir / f"learner-{i}.log"
                self.logs.append(log)
                with log.open("wb") as fh:
                    self.procs.append(
                        subprocess.Popen(
                            cmd,
                            stdin=subprocess.DEVNULL,
                            stdout=fh,
                            stderr=subprocess.STDOUT,
                            start_new_session=True,  # Ctrl-C reaches the coordinator only
                            preexec_fn=_die_with_parent
                            if sys.platform.startswith("linux")
                            else None,
                        )
                    )
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, port_files: Sequence[str | Path], timeout: float = 120.0) -> list[int]:
        """Wait until every server wrote its port file; a server that exits first is an
        error quoting the end of its log."""
        deadline = time.monotonic() + timeout
        ports: dict[int, int] = {}
        while len(ports) < len(port_files):
            for i, path in enumerate(port_files):
                if i in ports:
                    continue
                code = self.procs[i].poll()
                if code is not None:
                    raise ConfigError(
                        f"learner-{i}'s server exited with code {code} before it was ready:\n"
                        + self.tail(i)
                    )
                text = Path(path).read_text().strip() if Path(path).exists() else ""
                if text.isdigit():
                    ports[i] = int(text)
            if len(ports) < len(port_files):
                if time.monotonic() > deadline:
                    waiting = [f"learner-{i}" for i in range(len(port_files)) if i not in ports]
                    raise ConfigError(
                        f"learner servers {waiting} were not listening after {timeout:g} s; "
                        f"their logs are in {self.log_dir}"
                    )
                time.sleep(0.02)
        self.ports = [ports[i] for i in range(len(port_files))]
        return self.ports

    def tail(self, i: int, lines: int = 15) -> str:
        try:
            text = self.logs[i].read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def alive(self) -> list[int]:
        return [p.pid for p in self.procs if p.poll() is None]

    def stop(self, grace: float = 5.0) -> None:
        """End every server (SIGTERM, then SIGKILL after ``grace`` seconds) and reap it."""
        for p in self.procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for p in self.procs:
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if self.log_dir == Path(self._tmp.name):
            return  # logs kept until cleanup() for the caller to quote
        self._tmp.cleanup()

    def cleanup(self) -> None:
        self._tmp.cleanup()

    def __enter__(self) -> LearnerProcesses:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def write_port_file(path: str | Path, port: int) -> None:
    """Write ``port`` to ``path`` atomically (a temporary name, then a rename)."""
    p = Path(path)
    tmp = p.with_name(p.name + f".{os.getpid()}.tmp")
    tmp.write_text(f"{port}\n")
    os.replace(tmp, p)
