"""anvil, a real Ethereum dev node (Foundry's), from the npm package ``@foundry-rs/anvil``.

:func:`find_anvil` looks, in order, at ``$COLEARN_ANVIL``, the project-local install
that ``scripts/setup`` makes (``.tools/anvil``), and ``PATH``. :class:`Anvil` starts
one on a free port, pinned to the Cancun hardfork the contract is compiled for,
optionally keeping its state in a file (``--state``: loaded at start, saved on exit).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
from pathlib import Path
from types import TracebackType

from colearning.core.exceptions import LedgerError

ANVIL_VERSION = "1.7.1"
HARDFORK = "cancun"
_PLATFORM_BIN = "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
INSTALL_HINT = (
    "anvil (the npm package @foundry-rs/anvil) is not installed: run scripts/setup, "
    f"or `npm install --prefix .tools/anvil @foundry-rs/anvil@{ANVIL_VERSION}`, or set "
    "COLEARN_ANVIL to an anvil binary"
)


def _project_root() -> Path:
    return Path(__file__).resolve().parents[3]


def find_anvil() -> str:
    """The anvil binary to run; raises :class:`LedgerError` naming the install command."""
    given = os.environ.get("COLEARN_ANVIL")
    if given:
        if not Path(given).is_file():
            raise LedgerError(f"COLEARN_ANVIL={given} is not a file; {INSTALL_HINT}")
        return given
    local = _project_root() / ".tools" / "anvil" / _PLATFORM_BIN
    if local.is_file():
        return str(local)
    found = shutil.which("anvil")
    if found:
        return found
    raise LedgerError(INSTALL_HINT)


class Anvil:
    """A running anvil node. Use as a context manager; :attr:`url` is its JSON-RPC URL.

    Stopping sends SIGTERM, on which anvil saves its state to ``state`` (if given).
    """

    def __init__(
        self,
        port: int | None = None,
        state: str | os.PathLike[str] | None = None,
        quiet: bool = True,
        extra: tuple[str, ...] = (),
    ) -> None:
        self.binary = find_anvil()
        self.state = None if state is None else Path(state)
        args = [self.binary, "--port", str(port or 0), "--hardfork", HARDFORK, *extra]
        if self.state is not None:
            args += ["--state", str(self.state)]
        self.process = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.url = self._listening(quiet)
        self.chain_id = 31337

    def _listening(self, quiet: bool) -> str:
        """Read anvil's output until it says where it listens (then keep draining it)."""
        assert self.process.stdout is not None
        lines = []
        for line in self.process.stdout:
            lines.append(line)
            match = re.search(r"Listening on ([0-9.]+):(\d+)", line)
            if match:
                out = self.process.stdout
                threading.Thread(
                    target=_drain, args=(out, quiet), daemon=True, name="anvil-output"
                ).start()
                return f"http://{match.group(1)}:{match.group(2)}"
        self.process.wait()
        tail = "".join(lines[-5:]).strip()
        raise LedgerError(f"anvil exited ({self.process.returncode}) before listening: {tail}")

    def wait(self) -> int:
        try:
            return self.process.wait()
        except KeyboardInterrupt:
            self.stop()
            return 0

    def stop(self) -> None:
        """SIGTERM (anvil saves its state), then wait for it to exit."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """SIGKILL: the node dies without saving anything."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> Anvil:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _drain(stream: object, quiet: bool) -> None:
    for line in stream:  # type: ignore[attr-defined]
        if not quiet:
            print(line, end="", flush=True)
