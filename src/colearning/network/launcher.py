"""Learner servers forked from one warm process: how ``colearn run --processes`` starts
them.

Starting a learner server costs an interpreter, the imports of its framework
(scikit-learn: about 1.7 s of CPU here, PyTorch 2.3 s), the data set, and its learner.
Five fresh ``colearn learner serve`` processes paid that five times over, on the same
cores as the coordinator. Here one fresh interpreter (``python -m
colearning.network.launcher SPEC``, started by :class:`ForkedLearners` before the
coordinator does its own setup, so the two run side by side) pays it once: it loads
and shares out the data set, builds learner 0 (which imports whatever the task's
learners import) and imports what the framework imports only on first use
(:data:`FIRST_USE_IMPORTS`), and then forks one server per learner. Each server is a
process of its own (its own memory, its own gRPC server on its own port, its own log),
built exactly as ``colearn learner serve --share I/N`` builds it, and serves through
the same :func:`~colearning.network.serving.serve`.

Forking is safe because nothing has started a thread that could hold a lock at that
moment: the launcher is a fresh interpreter that has created no gRPC object (gRPC
starts its threads with its first server or channel) and has run its numerical work,
building learner 0, with one BLAS and one PyTorch thread, so no OpenMP team exists
(an OpenMP team does not survive a fork). Only BLAS's idle pool threads exist, and
OpenBLAS re-creates those in a child itself.

Readiness is reported, not polled: each server writes ``ready INDEX PORT`` to the
launcher's stdout (a pipe to the coordinator) once it listens and its health service
says SERVING; the launcher writes ``exited INDEX CODE`` for a server that ends. The
processes go with the coordinator whatever happens: the launcher asks the kernel to
send it SIGTERM when the coordinator dies (``PR_SET_PDEATHSIG``), each server asks
the same of the launcher, and the launcher, on SIGTERM, ends its servers and reaps
them.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from colearning.core.exceptions import ColearningError, ConfigError
from colearning.network.processes import _die_with_parent


def launch_spec(
    task: str,
    count: int,
    *,
    partition: str,
    seed: int,
    data_dir: str | None = None,
    params: Mapping[str, Any] | None = None,
    certs: str | None = None,
    coordinator: str | None = None,
    split: str | None = None,
) -> dict[str, Any]:
    """What the launcher serves: ``count`` learners of ``task``, shared out as ``colearn
    run --learners count`` shares them."""
    return {
        "task": task,
        "count": count,
        "partition": partition,
        "split": split,
        "seed": seed,
        "data_dir": data_dir,
        "params": dict(params or {}),
        "certs": certs,
        "coordinator": coordinator,
    }


#: modules a framework imports only when first used, by the framework that uses them.
#: PyTorch builds every optimizer through ``torch._dynamo`` (about 2.3 s of CPU here to
#: import, sympy with it): a forked server that had not inherited it paid that at its
#: first proposal, so with round-robin proposers every one of the first rounds did.
FIRST_USE_IMPORTS = {"torch": ("torch._dynamo",)}


def import_on_first_use() -> list[str]:
    """Import, once, before the forks, what the frameworks already imported would import
    on first use; the modules imported. Importing them starts no thread."""
    import importlib

    done = []
    for framework, modules in FIRST_USE_IMPORTS.items():
        if framework in sys.modules:
            for name in modules:
                importlib.import_module(name)
                done.append(name)
    return done


class ForkedLearners:
    """Start the launcher; :meth:`wait_ready` gives the servers' ports, :meth:`stop`
    ends and reaps everything.

    Parameters
    ----------
    spec
        :func:`launch_spec`'s dictionary.
    log_dir
        Where the servers' logs go (``learner-I.log``) and the launcher's own
        (``launcher.log``); a temporary directory if not given, kept until
        :meth:`cleanup`.
    """

    def __init__(self, spec: dict[str, Any], log_dir: str | Path | None = None) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="colearning-learners-")
        self.log_dir = Path(log_dir) if log_dir else Path(self._tmp.name)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.spec = {**spec, "log_dir": str(self.log_dir)}
        self.count = int(spec["count"])
        self.proc: subprocess.Popen[bytes] | None = None
        self.ports: list[int] = []
        self._buffer = b""

    def start(self) -> ForkedLearners:
        spec_file = Path(self._tmp.name) / "launch.json"
        spec_file.write_text(json.dumps(self.spec))
        with (self.log_dir / "launcher.log").open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "colearning.network.launcher", str(spec_file)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,  # Ctrl-C reaches the coordinator only
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        return self

    def _lines(self, timeout: float) -> list[str]:
        """The launcher's next lines (waiting up to ``timeout`` seconds for one)."""
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        ready, _, _ = select.select([fd], [], [], max(0.0, timeout))
        if not ready:
            return []
        data = os.read(fd, 65536)
        if not data:
            raise EOFError
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        return [line.decode("utf-8", "replace") for line in lines]

    def wait_ready(self, timeout: float = 120.0) -> list[int]:
        """Block until every server listens; a server (or the launcher) that ends first
        is an error quoting the end of its log."""
        deadline = time.monotonic() + timeout
        ports: dict[int, int] = {}
        while len(ports) < self.count:
            left = deadline - time.monotonic()
            if left <= 0:
                waiting = [f"learner-{i}" for i in range(self.count) if i not in ports]
                raise ConfigError(
                    f"learner servers {waiting} were not listening after {timeout:g} s; "
                    f"their logs are in {self.log_dir}"
                )
            try:
                lines = self._lines(left)
            except EOFError:
                assert self.proc is not None
                code = self.proc.wait()
                raise ConfigError(
                    f"the learner servers' launcher exited with code {code} before they were "
                    f"ready: {self.last_line('launcher')}"
                ) from None
            for line in lines:
                word, *rest = line.split()
                if word == "ready":
                    ports[int(rest[0])] = int(rest[1])
                elif word == "exited":
                    i, code = int(rest[0]), int(rest[1])
                    raise ConfigError(
                        f"learner-{i}'s server exited with code {code} before it was ready: "
                        + self.last_line(f"learner-{i}")
                    )
        self.ports = [ports[i] for i in range(self.count)]
        return self.ports

    def last_line(self, name: str) -> str:
        """The last line a process logged (its error, as a rule)."""
        lines = [line for line in self.tail(name).splitlines() if line.strip()]
        if not lines:
            return "it logged nothing"
        last = lines[-1]
        return last.split(": error: ", 1)[-1] if "error: " in last else last

    def tail(self, name: str, lines: int = 15) -> str:
        try:
            text = (self.log_dir / f"{name}.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float = 10.0) -> None:
        """End the launcher, which ends its servers and reaps them first (SIGKILL after
        ``grace`` seconds)."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()  # its servers follow (PR_SET_PDEATHSIG)
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def cleanup(self) -> None:
        self._tmp.cleanup()

    def __enter__(self) -> ForkedLearners:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.cleanup()


# -- the launcher process ---------------------------------------------------------------------


def _say(line: str) -> None:
    """One line to the coordinator (the pipe is stdout; a write this short is atomic)."""
    os.write(_REPORT_FD, (line + "\n").encode())


_REPORT_FD = 1


def _serve_one(spec: dict[str, Any], setup: Any, index: int, learner: Any) -> int:
    """A forked server's life: log to its own file, build its learner, serve."""
    from colearning.network import serving, tls
    from colearning.network.transfer import DEFAULT_MAX_BYTES

    log = os.open(
        Path(spec["log_dir"]) / f"learner-{index}.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644
    )
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    lid = f"learner-{index}"
    try:
        credentials = tls.server_credentials(spec["certs"], lid) if spec["certs"] else None
        if learner is None:
            served = serving.served_from(setup, index)
        else:
            task = setup.task
            served = serving.Served(learner, lid, task.name, task.metric, task.higher_is_better)
        serving.serve(
            served,
            host="127.0.0.1",
            port=0,
            credentials=credentials,
            max_bytes=DEFAULT_MAX_BYTES,
            share_cores=True,
            coordinators=(spec["coordinator"],) if credentials is not None else None,
            ready=lambda port: _say(f"ready {index} {port}"),
        )
    except ColearningError as exc:
        print(f"colearn learner serve: error: {exc}", file=sys.stderr, flush=True)
        return 2
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        return 1
    return 0


def main(argv: list[str]) -> int:
    global _REPORT_FD
    spec = json.loads(Path(argv[0]).read_text())
    _die_with_parent()  # the coordinator went: so do we (and our servers with us)
    # the coordinator reads readiness from stdout; nothing else may write there
    _REPORT_FD = os.dup(1)
    os.dup2(2, 1)

    import importlib

    from colearning.network import serving
    from colearning.network.server import LearnerServer  # noqa: F401 (imported once, here)
    from colearning.runtime.threads import one_blas_thread, torch_threads
    from colearning.tasks.runner import _module_of_extra

    try:
        setup = serving.task_setup(
            spec["task"],
            int(spec["count"]),
            partition=spec["partition"],
            split=spec.get("split"),
            seed=int(spec["seed"]),
            data_dir=spec["data_dir"],
            params=spec["params"],
        )
        # the framework first, so that the thread limits below apply to it; then learner
        # 0, with one thread, so that everything the learners need is imported before
        # the forks and no thread team exists at them
        if setup.task.extra is not None:
            importlib.import_module(_module_of_extra(setup.task.extra))
        with one_blas_thread(), torch_threads(True):
            first = setup.make_learner(setup.parts[0], 0)
        import_on_first_use()
    except ColearningError as exc:
        print(f"colearn run: error: {exc}", file=sys.stderr, flush=True)
        return 2

    parent = os.getpid()
    children: dict[int, int] = {}
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signals = {signal.SIGTERM, signal.SIGINT}
    for sig in signals:
        signal.signal(sig, stop)
    for index in range(int(spec["count"])):
        if stopping:
            break
        signal.pthread_sigmask(signal.SIG_BLOCK, signals)  # no handler between fork and reset
        pid = os.fork()
        if pid == 0:  # a server
            code = 1
            try:
                for sig in signals:
                    signal.signal(sig, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)
                _die_with_parent(signal.SIGKILL)  # the launcher went: nothing to stop us
                if os.getppid() == parent:  # else the launcher died before the line above
                    code = _serve_one(spec, setup, index, first if index == 0 else None)
            finally:
                os._exit(code)
        children[pid] = index
        signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)
    del first
    # reap the servers; once stopping, SIGKILL any still there after 5 s (polled: a
    # handler cannot interrupt a blocking waitpid, Python retries it)
    deadline = float("inf")
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            if stopping and deadline == float("inf"):
                deadline = time.monotonic() + 5.0
            if time.monotonic() > deadline:
                for child in children:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(child, signal.SIGKILL)
                deadline = float("inf") if not children else time.monotonic() + 60.0
            time.sleep(0.05)
            continue
        index = children.pop(pid)
        if not stopping:
            with contextlib.suppress(OSError):
                _say(f"exited {index} {os.waitstatus_to_exitcode(status)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
