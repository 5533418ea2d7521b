"""How the driver reaches learners: one seam, several transports.

:class:`LearnerPool` is what the driver talks to. It addresses learners by id, and
weights travel as a :class:`~colearning.core.weights_ref.WeightsRef` (the id, plus the
arrays in process or the bytes on demand), so a remote pool can send an id where the
other side already holds the weights. :class:`LocalPool` holds learners in this
process and runs calls on daemon worker threads, so the validations of a round run in
parallel (learners that release the GIL, as NumPy, PyTorch and scikit-learn do in
their kernels, use every core). The gRPC and Ray pools implement the same methods.

Every call returns an :class:`Outcome` instead of raising: a learner that raises or
runs past its timeout is data for the round record, not a crash of the experiment, and
the failure is typed (:class:`~colearning.core.protocol.Failure`: raised, timed out,
bad answer, unreachable). Calls to one learner never overlap (a per-learner lock), so
a call that timed out and is still running delays that learner's next call rather
than racing it.
"""

from __future__ import annotations

import math
import queue
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from colearning.core.exceptions import ConfigError
from colearning.core.interface import (
    LearnerTags,
    MachineLearningInterface,
    ProposedWeights,
    Weights,
)
from colearning.core.protocol import Failure, Reason
from colearning.core.weights_ref import WeightsRef
from colearning.runtime.allocator import share_malloc_arena
from colearning.runtime.threads import one_blas_thread, torch_threads

T = TypeVar("T")


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """The result of one call: its ``value`` or its ``failure``, and its duration."""

    value: T | None
    failure: Failure | None
    seconds: float

    @property
    def ok(self) -> bool:
        return self.failure is None

    @property
    def error(self) -> str | None:
        """The failure as text (``None`` if the call succeeded)."""
        return None if self.failure is None else str(self.failure)

    @classmethod
    def failed(cls, reason: Reason, message: str, seconds: float = 0.0) -> Outcome[Any]:
        return cls(None, Failure(reason, message), seconds)


#: The longest timeout a call may have: a year (beyond it the clocks and waits the
#: pool uses overflow; leave the timeout out for none).
MAX_TIMEOUT = 365 * 24 * 3600.0


def check_timeout(timeout: object) -> None:
    """Raise :class:`ConfigError` unless ``timeout`` is ``None`` or a finite number of
    seconds in (0, :data:`MAX_TIMEOUT`]."""
    if timeout is None:
        return
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not math.isfinite(timeout)
        or not 0 < timeout <= MAX_TIMEOUT
    ):
        raise ConfigError(
            f"timeout must be a number of seconds in (0, {MAX_TIMEOUT:.0f}] or None (no "
            f"timeout); got {timeout!r}"
        )


class LearnerPool(Protocol):
    """The learners of an experiment, as the driver sees them: addressed by id.

    Calls on several learners run in parallel and return one :class:`Outcome` per id,
    in the order asked. ``timeout`` is each call's deadline in seconds (``None``: no
    deadline).
    """

    @property
    def learner_ids(self) -> Sequence[str]:
        """The learners' ids, in experiment order."""
        ...

    def propose(
        self, learner_ids: Sequence[str], round_index: int, timeout: float | None
    ) -> dict[str, Outcome[Weights]]:
        """Ask ``learner_ids`` to propose weights for ``round_index`` (told first)."""
        ...

    def test(
        self, learner_ids: Sequence[str], weights: WeightsRef, timeout: float | None
    ) -> dict[str, Outcome[ProposedWeights]]:
        """Ask ``learner_ids`` to score and vote on ``weights``."""
        ...

    def accept(
        self, learner_ids: Sequence[str], weights: WeightsRef, timeout: float | None
    ) -> dict[str, Outcome[None]]:
        """Ask ``learner_ids`` to adopt ``weights``."""
        ...

    def current_weights(self, learner_id: str, timeout: float | None) -> Outcome[Weights]:
        """One learner's current weights."""
        ...

    def restore_progress(
        self, learner_id: str, proposals_made: int, timeout: float | None
    ) -> Outcome[None]:
        """Tell a learner how many proposals it made before a resume."""
        ...

    def tags(self, learner_id: str) -> LearnerTags:
        """What a learner declares about itself (default tags if it cannot say)."""
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
        self.error: Failure | None = None
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
            job.error = Failure(
                Reason.TIMED_OUT,
                f"timed out after {timeout:g} s waiting for its previous call to end",
            )
        else:
            try:
                with torch_threads(job.single_thread):
                    job.value = job.fn()
            finally:
                job.lock.release()
    except BaseException as exc:
        job.error = Failure(Reason.RAISED, _describe(exc))
    job.seconds = time.perf_counter() - start
    return job.batch.finish(job)


def _describe(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


class LocalPool:
    """Learners in this process, called on worker threads.

    Parameters
    ----------
    learners
        The learners, in order, or a mapping ``learner_id -> learner``.
    learner_ids
        Their ids when ``learners`` is a sequence; default ``learner-0``,
        ``learner-1``, ...
    max_workers
        Threads for parallel calls (default: one per learner, at most 32).
    """

    def __init__(
        self,
        learners: Sequence[MachineLearningInterface] | Mapping[str, MachineLearningInterface],
        learner_ids: Sequence[str] | None = None,
        max_workers: int | None = None,
    ) -> None:
        if isinstance(learners, Mapping):
            if learner_ids is not None:
                raise ConfigError("give learner_ids or a mapping of id -> learner, not both")
            ids = [str(k) for k in learners]
            members = list(learners.values())
        else:
            members = list(learners)
            ids = list(learner_ids or [f"learner-{i}" for i in range(len(members))])
        if len(ids) != len(members):
            raise ConfigError(f"got {len(ids)} learner_ids for {len(members)} learners")
        if len(set(ids)) != len(ids):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            raise ConfigError(f"learner ids must be unique; {dupes} appear more than once")
        self._ids = ids
        self._learners = dict(zip(ids, members, strict=True))
        share_malloc_arena()
        self._locks = {lid: threading.Lock() for lid in ids}
        self._workers = _Workers(max_workers or min(32, max(1, len(members))))

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def learner_ids(self) -> Sequence[str]:
        return self._ids

    @property
    def learners(self) -> list[MachineLearningInterface]:
        """The learners, in id order."""
        return [self._learners[i] for i in self._ids]

    def learner(self, learner_id: str) -> MachineLearningInterface:
        """The learner called ``learner_id``."""
        try:
            return self._learners[learner_id]
        except KeyError:
            raise ConfigError(
                f"no learner {learner_id!r} in this pool; its learners are {self._ids}"
            ) from None

    # -- the protocol's calls ---------------------------------------------------------

    def propose(
        self, learner_ids: Sequence[str], round_index: int, timeout: float | None
    ) -> dict[str, Outcome[Weights]]:
        def call(learner: MachineLearningInterface) -> Callable[[], Weights]:
            def propose() -> Weights:
                learner.mli_set_round(round_index)
                return learner.mli_propose_weights()

            return propose

        return self._run({lid: call(self.learner(lid)) for lid in learner_ids}, timeout)

    def test(
        self, learner_ids: Sequence[str], weights: WeightsRef, timeout: float | None
    ) -> dict[str, Outcome[ProposedWeights]]:
        w = weights.weights
        return self._run(
            {lid: _bind(self.learner(lid).mli_test_weights, w) for lid in learner_ids}, timeout
        )

    def accept(
        self, learner_ids: Sequence[str], weights: WeightsRef, timeout: float | None
    ) -> dict[str, Outcome[None]]:
        w = weights.weights
        return self._run(
            {lid: _bind(self.learner(lid).mli_accept_weights, w) for lid in learner_ids}, timeout
        )

    def current_weights(self, learner_id: str, timeout: float | None) -> Outcome[Weights]:
        learner = self.learner(learner_id)
        return self._run({learner_id: learner.mli_get_current_weights}, timeout)[learner_id]

    def restore_progress(
        self, learner_id: str, proposals_made: int, timeout: float | None
    ) -> Outcome[None]:
        learner = self.learner(learner_id)
        return self._run(
            {learner_id: lambda: learner.mli_restore_progress(proposals_made)}, timeout
        )[learner_id]

    def tags(self, learner_id: str) -> LearnerTags:
        try:
            tags = self.learner(learner_id).mli_tags()
        except Exception:  # a learner that cannot say declares nothing
            return LearnerTags()
        return tags if isinstance(tags, LearnerTags) else LearnerTags()

    def close(self) -> None:
        self._workers.close()

    # -- machinery --------------------------------------------------------------------

    def _run(
        self, calls: Mapping[str, Callable[[], Any]], timeout: float | None
    ) -> dict[str, Outcome[Any]]:
        check_timeout(timeout)
        batch = _Batch(len(calls), timeout)
        parallel = len(calls) > 1
        jobs = {lid: _Job(fn, self._locks[lid], batch, parallel) for lid, fn in calls.items()}
        # BLAS: one thread always; torch: one thread per call of a parallel batch, every
        # core for a lone call (the proposer training). See colearning/runtime/threads.py.
        with one_blas_thread():
            for job in jobs.values():
                self._workers.submit(job)
            self._wait(list(jobs.values()), batch)
        return {lid: _outcome(job, timeout) for lid, job in jobs.items()}

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
        return Outcome.failed(Reason.TIMED_OUT, f"timed out after {timeout:g} s", timeout or 0.0)
    if job.error is not None:
        return Outcome(None, job.error, job.seconds)
    return Outcome(job.value, None, job.seconds)


def _bind(fn: Callable[[Weights], T], weights: Weights) -> Callable[[], T]:
    return lambda: fn(weights)
