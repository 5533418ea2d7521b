"""How the driver reaches learners: one seam, several transports.

:class:`LearnerPool` is what the driver talks to. :class:`LocalPool` holds learners in
this process and runs calls on daemon worker threads, so the validations of a round run
in parallel (learners that release the GIL, as NumPy, PyTorch and scikit-learn do in
their kernels, use every core). A remote pool implements the same methods over the
network.

Every call returns an :class:`Outcome` instead of raising: a learner that raises or
runs past its timeout is data for the round record, not a crash of the experiment.
Calls to one learner never overlap (a per-learner lock), so a call that timed out and
is still running delays that learner's next call rather than racing it.
"""

from __future__ import annotations

import ctypes
import os
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from colearning.core.interface import MachineLearningInterface, ProposedWeights, Weights
from colearning.core.threads import one_blas_thread, torch_threads

T = TypeVar("T")


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """The result of one call: ``value`` or an ``error`` message, and its duration."""

    value: T | None
    error: str | None
    seconds: float

    @property
    def ok(self) -> bool:
        return self.error is None


class LearnerPool(Protocol):
    """The learners of an experiment, as the driver sees them."""

    @property
    def learner_ids(self) -> Sequence[str]:
        """The learners' names, in order."""
        ...

    def propose(self, index: int, round_index: int, timeout: float | None) -> Outcome[Weights]:
        """Ask learner ``index`` to propose weights for round ``round_index``."""
        ...

    def test(
        self, indices: Sequence[int], weights: Weights, timeout: float | None
    ) -> list[Outcome[ProposedWeights]]:
        """Ask the learners ``indices`` to score and vote on ``weights``, in parallel."""
        ...

    def accept(
        self, indices: Sequence[int], weights: Weights, timeout: float | None
    ) -> list[Outcome[None]]:
        """Ask the learners ``indices`` to adopt ``weights``, in parallel."""
        ...

    def current_weights(self, index: int, timeout: float | None) -> Outcome[Weights]:
        """Learner ``index``'s current weights."""
        ...

    def restore_progress(
        self, index: int, proposals_made: int, timeout: float | None
    ) -> Outcome[None]:
        """Tell learner ``index`` how many proposals it made before a resume."""
        ...

    def close(self) -> None:
        """Release threads and connections."""
        ...


class _Job:
    __slots__ = (
        "abandoned",
        "batch",
        "error",
        "finished",
        "fn",
        "lock",
        "seconds",
        "single_thread",
        "started",
        "value",
    )

    def __init__(
        self, fn: Callable[[], Any], lock: threading.Lock, batch: _Batch, single_thread: bool
    ) -> None:
        self.fn = fn
        self.single_thread = single_thread
        self.lock = lock
        self.batch = batch
        self.started: float | None = None
        self.value: Any = None
        self.error: str | None = None
        self.seconds = 0.0
        self.finished = False
        self.abandoned = False


class _Batch:
    """Counts down as jobs finish; the waiter sleeps on one event, not one per job.

    ``finished`` and ``abandoned`` are only changed under ``lock``, so a job is either
    done in time or timed out, never both.
    """

    def __init__(self, size: int, timeout: float | None) -> None:
        self.remaining = size
        self.timeout = timeout
        self.lock = threading.Lock()
        self.done = threading.Event()
        if size == 0:
            self.done.set()

    def finish(self, job: _Job) -> bool:
        """Mark ``job`` finished; return whether the waiter had already given up on it."""
        with self.lock:
            job.finished = True
            self.remaining -= 1
            if self.remaining == 0:
                self.done.set()
            return job.abandoned


class _Workers:
    """A small pool of daemon threads (a hung learner must not block interpreter exit,
    which ``concurrent.futures`` would, since it joins its threads at exit)."""

    def __init__(self, size: int) -> None:
        self._size = max(1, size)
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def submit(self, job: _Job) -> None:
        if len(self._threads) < self._size:
            with self._lock:
                if len(self._threads) < self._size:
                    self._spawn()
        self._queue.put(job)

    def replace_stuck(self) -> None:
        """A worker is stuck in an abandoned call: add one so capacity stays."""
        with self._lock:
            self._spawn()

    def _spawn(self) -> None:
        thread = threading.Thread(target=self._work, name="colearning-worker", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            abandoned = _run_job(job)
            # Drop the job (and the learner and tensors it references) now, not while
            # this thread waits for the next one: a framework object freed by a daemon
            # thread during interpreter shutdown can abort the process.
            del job
            if abandoned:
                # replace_stuck() already started a successor for this thread
                with self._lock:
                    self._threads.remove(threading.current_thread())
                return

    def close(self, timeout: float = 1.0) -> None:
        """Stop the workers; wait up to ``timeout`` seconds for idle ones to exit (a
        worker stuck in an abandoned call is left behind: it is a daemon thread)."""
        threads = list(self._threads)
        for _ in threads:
            self._queue.put(None)
        deadline = time.perf_counter() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.perf_counter()))


def _run_job(job: _Job) -> bool:
    """Run ``job``; return whether it was abandoned (its result is then dropped)."""
    start = time.perf_counter()
    job.started = start
    timeout = job.batch.timeout
    try:
        got = job.lock.acquire(timeout=-1 if timeout is None else timeout)
        if not got:
            job.error = f"timed out after {timeout:g} s waiting for its previous call to end"
        else:
            try:
                with torch_threads(job.single_thread):
                    job.value = job.fn()
            finally:
                job.lock.release()
    except BaseException as exc:
        job.error = _describe(exc)
    job.seconds = time.perf_counter() - start
    return job.batch.finish(job)


def _describe(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


_M_ARENA_MAX = -8  # glibc's mallopt parameter number
_malloc_tuned = False


def _share_malloc_arena() -> None:
    """Ask glibc for a single malloc arena, once per process, before workers start.

    glibc gives each thread its own arena and hands a thread arena's memory back to the
    OS after large frees, so a proposer training on a worker thread page-faults its
    large temporaries afresh every round: an mnist-mlp proposal (hidden layer of 1,024)
    took 69 ms on a worker thread against 56 ms on the main thread; with one arena,
    57 ms. A user's own ``MALLOC_ARENA_MAX`` wins; elsewhere than glibc this does
    nothing.
    """
    global _malloc_tuned
    if _malloc_tuned:
        return
    _malloc_tuned = True
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(_M_ARENA_MAX, 1)
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        pass


class LocalPool:
    """Learners in this process, called on worker threads.

    Parameters
    ----------
    learners
        The learners, in order.
    learner_ids
        Their names; default ``learner-0``, ``learner-1``, ...
    max_workers
        Threads for parallel calls (default: one per learner, at most 32).
    """

    def __init__(
        self,
        learners: Sequence[MachineLearningInterface],
        learner_ids: Sequence[str] | None = None,
        max_workers: int | None = None,
    ) -> None:
        self.learners = list(learners)
        self._ids = list(learner_ids or [f"learner-{i}" for i in range(len(learners))])
        if len(self._ids) != len(self.learners):
            raise ValueError(f"got {len(self._ids)} learner_ids for {len(self.learners)} learners")
        _share_malloc_arena()
        self._locks = [threading.Lock() for _ in self.learners]
        self._workers = _Workers(max_workers or min(32, max(1, len(self.learners))))

    def __len__(self) -> int:
        return len(self.learners)

    @property
    def learner_ids(self) -> Sequence[str]:
        return self._ids

    # -- the protocol's calls ---------------------------------------------------------

    def propose(self, index: int, round_index: int, timeout: float | None) -> Outcome[Weights]:
        learner = self.learners[index]

        def propose() -> Weights:
            learner.mli_set_round(round_index)
            return learner.mli_propose_weights()

        return self._run([(index, propose)], timeout)[0]

    def test(
        self, indices: Sequence[int], weights: Weights, timeout: float | None
    ) -> list[Outcome[ProposedWeights]]:
        calls = [(i, _bind(self.learners[i].mli_test_weights, weights)) for i in indices]
        return self._run(calls, timeout)

    def accept(
        self, indices: Sequence[int], weights: Weights, timeout: float | None
    ) -> list[Outcome[None]]:
        calls = [(i, _bind(self.learners[i].mli_accept_weights, weights)) for i in indices]
        return self._run(calls, timeout)

    def current_weights(self, index: int, timeout: float | None) -> Outcome[Weights]:
        return self._run([(index, self.learners[index].mli_get_current_weights)], timeout)[0]

    def restore_progress(
        self, index: int, proposals_made: int, timeout: float | None
    ) -> Outcome[None]:
        learner = self.learners[index]
        return self._run([(index, lambda: learner.mli_restore_progress(proposals_made))], timeout)[
            0
        ]

    def close(self) -> None:
        self._workers.close()

    # -- machinery --------------------------------------------------------------------

    def _run(
        self, calls: Sequence[tuple[int, Callable[[], Any]]], timeout: float | None
    ) -> list[Outcome[Any]]:
        if timeout is not None and timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds or None; got {timeout}")
        batch = _Batch(len(calls), timeout)
        parallel = len(calls) > 1
        jobs = [_Job(fn, self._locks[i], batch, parallel) for i, fn in calls]
        # BLAS: one thread always; torch: one thread per call of a parallel batch, every
        # core for a lone call (the proposer training). See core/threads.py.
        with one_blas_thread():
            for job in jobs:
                self._workers.submit(job)
            self._wait(jobs, batch)
        return [_outcome(job, timeout) for job in jobs]

    def _wait(self, jobs: list[_Job], batch: _Batch) -> None:
        timeout = batch.timeout
        if timeout is None:
            batch.done.wait()
            return
        while not batch.done.wait(_until_next_deadline(jobs, timeout)):
            now = time.perf_counter()
            stuck = []
            with batch.lock:
                for job in jobs:
                    overdue = job.started is not None and now - job.started >= timeout
                    if overdue and not job.finished and not job.abandoned:
                        job.abandoned = True
                        stuck.append(job)
                resolved = all(job.finished or job.abandoned for job in jobs)
            for _ in stuck:
                self._workers.replace_stuck()
            if resolved:
                return


def _until_next_deadline(jobs: list[_Job], timeout: float) -> float:
    """Seconds until the earliest running call's deadline (a call not yet started
    cannot be due before ``timeout`` from now)."""
    now = time.perf_counter()
    starts = [j.started for j in jobs if j.started is not None and not (j.finished or j.abandoned)]
    if not starts:
        return timeout
    return max(0.0, min(starts) + timeout - now) + 1e-3


def _outcome(job: _Job, timeout: float | None) -> Outcome[Any]:
    if job.abandoned:
        return Outcome(None, f"timed out after {timeout:g} s", float(timeout or 0.0))
    if job.error is not None:
        return Outcome(None, job.error, job.seconds)
    return Outcome(job.value, None, job.seconds)


def _bind(fn: Callable[[Weights], T], weights: Weights) -> Callable[[], T]:
    return lambda: fn(weights)
