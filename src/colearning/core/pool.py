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

**Adoption can be deferred.** After an accepted round every learner must hold the new
shared weights, but a learner only needs them at its next call. A pool with an
``adopt(weights, timeout)`` method (:class:`LocalPool`, the Ray pool) records the
shared weights and has each learner accept them at the start of its next call, inside
that call (a learner that cannot accept them fails that call, with the reason);
``catch_up(timeout)`` brings every learner up to date at once. With thousands of
learners and committees of a few dozen, adoption then costs nothing per round. The
driver calls :func:`adopt`, which falls back to ``accept`` for every learner on a pool
without ``adopt`` (the gRPC pool).
"""

from __future__ import annotations

import functools
import math
import os
import queue
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeGuard, TypeVar, runtime_checkable

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


_new = object.__new__


def made_outcome(value: Any, failure: Failure | None, seconds: float) -> Outcome[Any]:
    """``Outcome(value, failure, seconds)`` for the hot paths: the same instance, made
    without the frozen dataclass's ``__init__``, which sets each field through
    ``object.__setattr__`` (0.7 us, where this takes 0.3: a committee round makes one
    per asked learner, a screened round over 100 learners six hundred).
    ``tests/core/test_pool.py`` holds it to every field of :class:`Outcome`."""
    outcome: Outcome[Any] = _new(Outcome)
    outcome.__dict__.update(value=value, failure=failure, seconds=seconds)
    return outcome


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


@runtime_checkable
class DeferredAdoption(Protocol):
    """A pool that can defer each learner's adoption of the shared weights to its next
    call (see the module docstring)."""

    def adopt(self, weights: WeightsRef, timeout: float | None) -> dict[str, Outcome[None]]:
        """Make ``weights`` every learner's weights: each accepts them before its next
        call. Returns the outcomes of adoptions made now (none, where all wait)."""
        ...

    def catch_up(self, timeout: float | None) -> dict[str, Outcome[None]]:
        """Have every learner that has not yet accepted the shared weights do so now."""
        ...


def adopt(
    pool: LearnerPool, weights: WeightsRef, timeout: float | None
) -> dict[str, Outcome[None]]:
    """Every learner of ``pool`` adopts ``weights``: deferred to each learner's next call
    where the pool can (:class:`DeferredAdoption`), else ``accept`` for everyone now."""
    if defers_adoption(pool):
        return pool.adopt(weights, timeout)
    return pool.accept(pool.learner_ids, weights, timeout)


def catch_up(pool: LearnerPool, timeout: float | None) -> dict[str, Outcome[None]]:
    """Bring every learner of ``pool`` to the shared weights now (a no-op for a pool that
    adopts at once)."""
    if defers_adoption(pool):
        return pool.catch_up(timeout)
    return {}


def defers_adoption(pool: object) -> TypeGuard[DeferredAdoption]:
    """Whether ``pool`` is a :class:`DeferredAdoption` pool: ``isinstance`` on the
    protocol, answered once per pool class (a runtime protocol check walks the
    protocol's attributes every time, and the driver asks every round)."""
    kind = type(pool)
    known = _DEFERS.get(kind)
    if known is None:
        known = _DEFERS[kind] = callable(getattr(kind, "adopt", None)) and callable(
            getattr(kind, "catch_up", None)
        )
    return known


_DEFERS: dict[type, bool] = {}


class _CatchUpError(Exception):
    """A learner could not accept the shared weights before its call."""


#: A call's argument when it takes none.
_NO_ARG: Any = object()


class _Job:
    """One call: ``fn(arg)`` (or ``fn()``), for one learner, under its lock. Kept to
    plain fields, no closure: a round makes one per learner and call."""

    __slots__ = (
        "abandoned",
        "arg",
        "batch",
        "error",
        "finished",
        "fn",
        "learner_id",
        "lock",
        "seconds",
        "single_thread",
        "started",
        "value",
    )

    def __init__(
        self,
        learner_id: str,
        fn: Callable[..., Any],
        arg: Any,
        lock: threading.Lock,
        batch: _Batch,
        single_thread: bool,
    ) -> None:
        self.learner_id = learner_id
        self.fn = fn
        self.arg = arg
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

    def __init__(
        self, size: int, timeout: float | None, before: Callable[[str], None] | None = None
    ) -> None:
        self.remaining = size
        self.timeout = timeout
        #: run before each call, in its job, with the learner's id (deferred adoption)
        self.before = before
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


#: Workers that start on a batch at once; more join (up to the pool's size) when jobs
#: are waiting and none finished for :data:`GROW_AFTER` seconds. Cheap calls (thousands
#: of small learners) are then drained by as many threads as cores, not by dozens
#: contending for the interpreter; calls that block or run long get every worker within
#: milliseconds.
EAGER_WORKERS = max(2, os.cpu_count() or 2)
GROW_AFTER = 0.002
#: A batch without a timeout runs on the calling thread, one call after another, when
#: it is a lone call or when most calls of the last batch of the same kind (propose,
#: test, accept, ...) took at most this many seconds each. Calls that short are mostly
#: interpreter time, which worker threads cannot overlap anyway (they take turns
#: holding the GIL): handing them over and waking up again costs more than the calls,
#: and on a busy machine waits for the scheduler twice. (Most, not the mean: on a
#: loaded machine a call now and then loses the core for milliseconds, which says
#: nothing about the next batch.) A batch with a timeout always goes to worker
#: threads: only there can a call that runs past its timeout be abandoned.
INLINE_BELOW = 0.00025


class _Workers:
    """A small pool of daemon threads (a hung learner must not block interpreter exit,
    which ``concurrent.futures`` would, since it joins its threads at exit).

    A batch of jobs is a deque that workers share: each "token" put on the queue lets
    one worker pop jobs from it until it is empty, so a hung job holds up only the
    worker running it (the others drain the rest, and a replacement worker gets a
    token of its own).
    """

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self._queue: queue.SimpleQueue[deque[_Job] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def share(self, jobs: deque[_Job], hands: int) -> None:
        """Let ``hands`` more workers take jobs from ``jobs``."""
        for _ in range(hands):
            if len(self._threads) < self.size:
                with self._lock:
                    if len(self._threads) < self.size:
                        self._spawn()
            self._queue.put(jobs)

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
            jobs = self._queue.get()
            if jobs is None:
                return
            while True:
                try:
                    job = jobs.popleft()
                except IndexError:
                    break
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
            del jobs

    def close(self, timeout: float = 1.0) -> None:
        """Stop the workers; wait up to ``timeout`` seconds for idle ones to exit (a
        worker stuck in an abandoned call is left behind: it is a daemon thread)."""
        threads = list(self._threads)
        for _ in threads:
            self._queue.put(None)
        deadline = time.perf_counter() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.perf_counter()))


def _run_job(job: _Job, here: bool = False) -> bool:
    """Run ``job``; return whether it was abandoned (its result is then dropped).
    ``here``: on the thread that dispatched it (Ctrl-C then stops the call and the
    round, as it would stop the dispatcher's wait)."""
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
                if "torch" in sys.modules:
                    with torch_threads(job.single_thread):
                        job.value = _call(job)
                else:  # nothing to set (and no context to enter: cheap calls stay cheap)
                    job.value = _call(job)
            finally:
                job.lock.release()
    except _CatchUpError as exc:
        job.error = Failure(Reason.RAISED, str(exc))
    except BaseException as exc:
        if here and isinstance(exc, KeyboardInterrupt):
            raise
        job.error = Failure(Reason.RAISED, _describe(exc))
    job.seconds = time.perf_counter() - start
    return job.batch.finish(job)


def _call(job: _Job) -> Any:
    before = job.batch.before
    if before is not None:
        before(job.learner_id)
    return job.fn() if job.arg is _NO_ARG else job.fn(job.arg)


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
        # Deferred adoption: the shared weights with their epoch (one tuple, replaced
        # whole, so readers on other threads see a consistent pair), and the epoch each
        # learner last accepted at (0: the weights it was last given explicitly).
        self._shared: tuple[int, WeightsRef] | None = None
        self._synced = dict.fromkeys(ids, 0)
        # whether most calls of the last batch of each kind were short (INLINE_BELOW)
        self._short: dict[str, bool] = {}

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

        return self._run({lid: call(self.learner(lid)) for lid in learner_ids}, timeout, "propose")

    def test(
        self, learner_ids: Sequence[str], weights: WeightsRef, timeout: float | None
    ) -> dict[str, Outcome[ProposedWeights]]:
        w = weights.weights
        calls = [(lid, self.learner(lid).mli_test_weights, w) for lid in learner_ids]
        return dict(zip(learner_ids, self._run_calls(calls, timeout, "test"), strict=True))

    def test_each(
        self, requests: Sequence[tuple[Sequence[str], WeightsRef]], timeout: float | None
    ) -> list[dict[str, Outcome[ProposedWeights]]]:
        """Several :meth:`test` calls as one batch: ``requests`` holds ``(learner_ids,
        weights)`` pairs, and the answer one ``test`` result for each, in order (a
        screened round's screening: every proposal to every tester, dispatched once).

        A learner's calls still run one at a time, in request order. With a timeout,
        each request is a batch of its own (each call then gets its whole timeout, not
        a share of a wait behind the same learner's previous call)."""
        if timeout is not None:
            return [self.test(ids, ref, timeout) for ids, ref in requests]
        calls: list[tuple[str, Callable[..., Any], Any]] = []
        for ids, ref in requests:
            w = ref.weights
            calls.extend((lid, self.learner(lid).mli_test_weights, w) for lid in ids)
        outcomes = iter(self._run_calls(calls, timeout, "test"))
        return [{lid: next(outcomes) for lid in ids} for ids, _ in requests]

    def accept(
        self, learner_ids: Sequence[str], weights: WeightsRef, timeout: float | None
    ) -> dict[str, Outcome[None]]:
        w = weights.weights
        epoch = 0 if self._shared is None else self._shared[0]

        def call(lid: str) -> Callable[[], None]:
            learner = self.learner(lid)

            def accept() -> None:
                learner.mli_accept_weights(w)
                self._synced[lid] = epoch  # given explicitly: nothing to catch up

            return accept

        return self._run({lid: call(lid) for lid in learner_ids}, timeout, "accept", catch_up=False)

    def adopt(self, weights: WeightsRef, timeout: float | None) -> dict[str, Outcome[None]]:
        """Every learner accepts ``weights`` at the start of its next call (see the
        module docstring); nothing is called now."""
        epoch = 1 if self._shared is None else self._shared[0] + 1
        self._shared = (epoch, weights)
        return {}

    def catch_up(self, timeout: float | None) -> dict[str, Outcome[None]]:
        """Every learner behind the shared weights accepts them now, in parallel."""
        shared = self._shared
        if shared is None:
            return {}
        behind = [lid for lid in self._ids if self._synced[lid] < shared[0]]
        return self._run({lid: _nothing for lid in behind}, timeout, "catch_up")

    def current_weights(self, learner_id: str, timeout: float | None) -> Outcome[Weights]:
        learner = self.learner(learner_id)
        return self._run({learner_id: learner.mli_get_current_weights}, timeout, "current")[
            learner_id
        ]

    def restore_progress(
        self, learner_id: str, proposals_made: int, timeout: float | None
    ) -> Outcome[None]:
        learner = self.learner(learner_id)
        return self._run(
            {learner_id: lambda: learner.mli_restore_progress(proposals_made)},
            timeout,
            "restore",
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
        self,
        calls: Mapping[str, Callable[[], Any]],
        timeout: float | None,
        kind: str,
        *,
        catch_up: bool = True,
    ) -> dict[str, Outcome[Any]]:
        triples = [(lid, fn, _NO_ARG) for lid, fn in calls.items()]
        outcomes = self._run_calls(triples, timeout, kind, catch_up=catch_up)
        return dict(zip(calls, outcomes, strict=True))

    def _run_calls(
        self,
        calls: Sequence[tuple[str, Callable[..., Any], Any]],
        timeout: float | None,
        kind: str,
        *,
        catch_up: bool = True,
    ) -> list[Outcome[Any]]:
        """Run ``(learner_id, fn, arg)`` calls (``fn(arg)``, or ``fn()`` for ``_NO_ARG``)
        as one batch (a learner may appear more than once: its lock keeps its calls
        apart); one outcome per call, in order."""
        check_timeout(timeout)
        shared = self._shared if catch_up else None
        before = None if shared is None else functools.partial(self._catch_up_one, shared)
        # a lone call gains nothing from another thread but the timeout (the proposer
        # training: the calling thread would only wait for it)
        here = timeout is None and (len(calls) == 1 or self._short.get(kind, False))
        if here and len(calls) > 1:
            return self._run_here(calls, shared, kind)
        batch = _Batch(len(calls), timeout, before)
        parallel = len(calls) > 1
        locks = self._locks
        jobs = [_Job(lid, fn, arg, locks[lid], batch, parallel) for lid, fn, arg in calls]
        # BLAS: one thread always; torch: one thread per call of a parallel batch, every
        # core for a lone call (the proposer training). See colearning/runtime/threads.py.
        with one_blas_thread():
            if here:
                for job in jobs:
                    _run_job(job, here=True)
            else:
                pending = deque(jobs)
                hands = min(len(pending), self._workers.size, EAGER_WORKERS)
                self._workers.share(pending, hands)
                self._wait(jobs, batch, pending, hands)
        # whether the next batch of this kind can run here (a call abandoned at its
        # timeout is not short)
        short = 0
        for job in jobs:
            if job.finished and job.seconds <= INLINE_BELOW:
                short += 1
        self._short[kind] = 2 * short > len(jobs)
        return [_outcome(job, timeout) for job in jobs]

    def _run_here(
        self,
        calls: Sequence[tuple[str, Callable[..., Any], Any]],
        shared: tuple[int, WeightsRef] | None,
        kind: str,
    ) -> list[Outcome[Any]]:
        """A batch of short calls without a timeout, one after another on this thread
        (:data:`INLINE_BELOW`): what :func:`_run_job` does for each, without a job, a
        batch or a worker, and with the thread settings of a parallel batch made once
        for all of them. Thousands of learners with committees of a few dozen make
        rounds of such calls."""
        locks, synced = self._locks, self._synced
        clock = time.perf_counter
        outcomes: list[Outcome[Any]] = []
        short = 0
        with one_blas_thread(), torch_threads(True):
            for lid, fn, arg in calls:
                start = clock()
                value: Any = None
                failure: Failure | None = None
                lock = locks[lid]
                lock.acquire()
                try:
                    if shared is not None and synced[lid] < shared[0]:
                        self._catch_up_one(shared, lid)
                    value = fn() if arg is _NO_ARG else fn(arg)
                except _CatchUpError as exc:
                    failure = Failure(Reason.RAISED, str(exc))
                except KeyboardInterrupt:
                    raise
                except BaseException as exc:
                    failure = Failure(Reason.RAISED, _describe(exc))
                finally:
                    lock.release()
                seconds = clock() - start
                if seconds <= INLINE_BELOW:
                    short += 1
                outcomes.append(made_outcome(value, failure, seconds))
        self._short[kind] = 2 * short > len(calls)
        return outcomes

    def _wait(self, jobs: list[_Job], batch: _Batch, pending: deque[_Job], hands: int) -> None:
        timeout = batch.timeout
        limit = self._workers.size
        remaining = batch.remaining
        while True:
            wait = None if timeout is None else _until_next_deadline(jobs, timeout)
            if pending and hands < limit:  # jobs wait: look again soon
                wait = GROW_AFTER if wait is None else min(wait, GROW_AFTER)
            if batch.done.wait(wait):
                return
            finished_some, remaining = batch.remaining < remaining, batch.remaining
            if pending and hands < limit and not finished_some:
                # every worker on it is held up (a long or blocking call): more hands.
                # (While calls keep finishing, more threads would only contend for the
                # interpreter.)
                more = min(len(pending), limit - hands)
                self._workers.share(pending, more)
                hands += more
            if timeout is None:
                continue
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
            if stuck and pending:  # the replacements take over the stuck workers' share
                self._workers.share(pending, len(stuck))
            if resolved:
                return

    def _catch_up_one(self, shared: tuple[int, WeightsRef], lid: str) -> None:
        """Before a call (in its job, under the learner's lock): accept the shared
        weights if this learner has not yet."""
        epoch, ref = shared
        if self._synced[lid] < epoch:
            try:
                self._learners[lid].mli_accept_weights(ref.weights)
            except Exception as exc:
                raise _CatchUpError(
                    f"could not adopt the shared weights before this call: {_describe(exc)}"
                ) from exc
            self._synced[lid] = epoch


def _nothing() -> None:
    return None


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
        return made_outcome(None, job.error, job.seconds)
    return made_outcome(job.value, None, job.seconds)
