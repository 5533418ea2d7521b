"""``RayPool``: many learners packed into Ray actors, on one machine or a cluster.

It implements :class:`~colearning.core.pool.LearnerPool`, so the driver and
:class:`~colearning.core.experiment.Experiment` drive it as they drive in-process
learners, and with the same seeds it ends with the same final weights id. How:

- **Learners are packed**: by default one actor per CPU of the cluster, each holding a
  contiguous block of learners in a :class:`~colearning.core.pool.LocalPool` (threads,
  timeouts, per-learner locks), never one process per learner; 10,000 learners fit in
  a few processes.
- **Data goes through the object store once**: built learners travel pickled to their
  actor; for a task, each actor builds its own learners from the shared data set
  (:class:`~colearning.data.types.Shares`, put once, read zero-copy by every actor of a
  node; in a cluster, copied once per node).
- **One wave of calls per actor per round**: a round's calls are grouped by actor, so an
  actor gets one call per step (propose, test) however many of its learners take part;
  adoption of accepted weights is deferred (:func:`~colearning.core.pool.adopt`) and
  travels with each actor's next call; weights below ``inline_bytes`` go with the call,
  larger ones are put in the object store once and every actor reads them there.
- **A dead actor is a failure like any other**: its learners' calls in that wave are
  ``unreachable`` (recorded; the round goes on); Ray restarts the actor, which rebuilds
  its learners, and before it is called again the pool restores what they had (the
  shared weights, and how many proposals each made) so they vote as before.

Ray pickles what it carries. Inside one operator's Ray cluster that is pickling between
processes of one party; weights themselves travel as named arrays (their layout and
training summary beside them), never as pickled objects. Parties that do not trust each
other run learner servers instead (:mod:`colearning.network`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, TypeVar

import numpy as np

from colearning.core.exceptions import ColearningError, ConfigError, require_extra
from colearning.core.interface import (
    ErrorCodes,
    LearnerTags,
    MachineLearningInterface,
    ProposedWeights,
    Weights,
)
from colearning.core.pool import Outcome, check_timeout, made_outcome
from colearning.core.protocol import Reason
from colearning.core.weights_ref import WeightsRef
from colearning.scale._host import (
    NO_PROPOSAL,
    GivenLearners,
    LearnerBuilder,
    LearnerHost,
    register_serializers,
    unpack,
)

T = TypeVar("T")

#: Weights at most this large (bytes) travel inside each call; larger ones are put in
#: the object store once per round and read there by every actor.
INLINE_BYTES = 100_000
#: Seconds past a call's own timeout to wait for an actor's answer (the actor enforces
#: the timeout itself; this covers the transport).
GRACE = 10.0
#: Seconds (at most; never more than the call's timeout) to wait for an actor that is
#: restarting before its learners count as unreachable for the call at hand.
RESTART_WAIT = 120.0


class RayPoolError(ColearningError):
    """The Ray pool cannot start: Ray cannot be reached, or an actor cannot build its
    learners."""


def _ray() -> Any:
    require_extra("ray", "ray", "the Ray pool (colearn run --pool ray)")
    import ray

    return ray


class RayPool:
    """Learners in Ray actors, addressed by id.

    Give the learners themselves (each is pickled to its actor), or a ``builder`` that
    builds them inside the actors from ``shared`` data (put in the object store once).

    Parameters
    ----------
    learners
        Built learners, in order (or a mapping ``learner_id -> learner``).
    builder, shared, n_learners
        Instead of ``learners``: ``builder.build(indices, shared)`` makes the learners at
        ``indices`` inside each actor (see :meth:`for_setup`).
    learner_ids
        Their ids; default ``learner-0``, ``learner-1``, ...
    actors
        How many actors (default: one per CPU of the cluster, at most one per learner).
    address
        The Ray cluster to join (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``);
        default: the Ray this process is connected to, else a new local one, which
        :meth:`close` shuts down.
    cpus_per_actor
        CPUs Ray reserves for each actor (how actors spread over a cluster's nodes).
    workers_per_actor
        Threads each actor runs its learners' calls on.
    inline_bytes
        Weights up to this size travel in the calls; larger go through the object store.
    """

    def __init__(
        self,
        learners: Sequence[MachineLearningInterface]
        | Mapping[str, MachineLearningInterface]
        | None = None,
        *,
        builder: LearnerBuilder | None = None,
        shared: Any = None,
        n_learners: int | None = None,
        learner_ids: Sequence[str] | None = None,
        actors: int | None = None,
        address: str | None = None,
        cpus_per_actor: float = 1.0,
        workers_per_actor: int = 8,
        inline_bytes: int = INLINE_BYTES,
    ) -> None:
        ray = _ray()
        given: list[MachineLearningInterface] | None = None
        if learners is not None:
            if builder is not None:
                raise ConfigError("give RayPool the learners or a builder, not both")
            if isinstance(learners, Mapping):
                if learner_ids is not None:
                    raise ConfigError("give learner_ids or a mapping of id -> learner, not both")
                learner_ids = [str(k) for k in learners]
                given = list(learners.values())
            else:
                given = list(learners)
            n_learners = len(given)
        elif builder is None or n_learners is None:
            raise ConfigError("RayPool needs the learners, or a builder and n_learners")
        if n_learners < 1:
            raise ConfigError("a RayPool needs at least 1 learner; got 0")
        ids = list(learner_ids or [f"learner-{i}" for i in range(n_learners)])
        if len(ids) != n_learners or len(set(ids)) != len(ids):
            raise ConfigError(f"learner ids must be {n_learners} unique names; got {ids[:5]}...")
        if actors is not None and (isinstance(actors, bool) or actors < 1):
            raise ConfigError(f"actors must be a whole number >= 1; got {actors!r}")
        self._ids = ids
        self.inline_bytes = int(inline_bytes)
        self._started_ray = False
        if not ray.is_initialized():
            _init_ray(ray, address)
            self._started_ray = True
        register_serializers()
        try:
            self._start_actors(
                ray, given, builder, shared, actors, cpus_per_actor, workers_per_actor
            )
        except BaseException:
            self.close()
            raise

    @classmethod
    def for_setup(cls, setup: Any, **options: Any) -> RayPool:
        """A pool of a task run's learners (a :class:`~colearning.tasks.runner.Setup`),
        each actor building its own from the shared data set. ``options`` as for
        :class:`RayPool`."""
        return cls(
            builder=setup.learner_builder(),
            shared=(setup.dataset, setup.shares),
            n_learners=len(setup.parts),
            learner_ids=setup.learner_ids,
            **options,
        )

    def _start_actors(
        self,
        ray: Any,
        given: list[MachineLearningInterface] | None,
        builder: LearnerBuilder | None,
        shared: Any,
        actors: int | None,
        cpus_per_actor: float,
        workers_per_actor: int,
    ) -> None:
        n = len(self._ids)
        if actors is None:
            actors = max(1, int(ray.cluster_resources().get("CPU", 1) // max(cpus_per_actor, 1)))
        blocks = [b for b in np.array_split(np.arange(n), min(actors, n)) if len(b)]
        host = ray.remote(LearnerHost).options(
            num_cpus=cpus_per_actor,
            max_restarts=-1,
            max_task_retries=0,
            max_concurrency=max(4, workers_per_actor),
        )
        # Held here for the pool's life: a restarted actor is built again from it. (The
        # data reach the actors by a call, not as constructor arguments: Ray cannot
        # restart an actor whose constructor arguments went out of scope.)
        self._data: list[Any] = [] if given is not None else [ray.put(shared)]
        self._builds: list[tuple[Any, ...]] = []
        self._actors: list[Any] = []
        self._members: list[list[str]] = []
        self._where: dict[str, int] = {}
        for a, block in enumerate(blocks):
            indices = [int(i) for i in block]
            lids = [self._ids[i] for i in indices]
            if given is not None:
                self._data.append(ray.put([given[i] for i in indices]))
                build: tuple[Any, ...] = (GivenLearners(), indices, lids, self._data[-1])
            else:
                build = (builder, indices, lids, self._data[0])
            self._builds.append((*build, workers_per_actor))
            self._actors.append(host.remote())
            self._members.append(lids)
            self._where.update(dict.fromkeys(lids, a))
        self._lock = threading.Lock()
        self._instances: list[str] = [_LOST] * len(self._actors)
        self._versions = [0] * len(self._actors)
        self._restores: list[dict[str, int]] = [{} for _ in self._actors]
        self._made: dict[str, int] = {}
        self._shared: WeightsRef | None = None
        self._version = 0
        self._tags: dict[str, LearnerTags] | None = None
        self._puts: OrderedDict[int, tuple[WeightsRef, Any]] = OrderedDict()
        try:
            built = ray.get([self._build(a) for a in range(len(self._actors))])
        except Exception as exc:
            raise RayPoolError(f"the Ray actors could not build their learners: {exc}") from exc
        self._instances = list(built)

    def _build(self, a: int) -> Any:
        """Have actor ``a`` build its learners (a call: Ray resolves the data reference)."""
        return self._actors[a].build.remote(*self._builds[a])

    # -- the protocol's surface -------------------------------------------------------------

    @property
    def learner_ids(self) -> Sequence[str]:
        return self._ids

    @property
    def actors(self) -> int:
        """How many actors hold the learners."""
        return len(self._actors)

    def __len__(self) -> int:
        return len(self._ids)

    def propose(
        self, learner_ids: Sequence[str], round_index: int, timeout: float | None
    ) -> dict[str, Outcome[Weights]]:
        got = self._wave("propose", learner_ids, int(round_index), timeout)
        for lid, outcome in got.items():
            self._count_proposal(lid, outcome)
        return got

    def test(
        self, learner_ids: Sequence[str], weights: WeightsRef, timeout: float | None
    ) -> dict[str, Outcome[ProposedWeights]]:
        got = self._wave("test", learner_ids, self._payload(weights), timeout)
        return _verdicts(got, weights.weights)

    def propose_and_test(
        self,
        proposer_id: str,
        round_index: int,
        tester_ids: Sequence[str],
        timeout: float | None,
    ) -> tuple[Outcome[Weights], dict[str, Outcome[ProposedWeights]]]:
        """A single-proposer round's two steps as one wave: the proposer's call, and
        beside it each tester actor's call, which Ray starts with the proposal as soon
        as it exists (it goes from the proposer's actor to the others through the
        object store, and to this process). ``(the proposal's outcome, the test
        outcomes)``, as :meth:`propose` then :meth:`test` would give them, the tests
        having scored exactly the proposal returned.

        The caller checks the proposal after it has been tested: where it is unusable
        (a failure, or not the expected weights) the test answers are to be ignored. A
        call an actor refused (restarted, or behind) is made again as its own wave."""
        check_timeout(timeout)
        a = self._actor_of(proposer_id)
        groups = self._groups(tester_ids)
        calls = [_Call(a, "propose", [proposer_id], int(round_index))] + [
            _Call(b, "test_proposal", lids, _PROPOSAL) for b, lids in groups.items()
        ]
        answers = self._send(calls, timeout, force_sync=False)
        if answers[0] is None:  # the proposer's actor refused: nothing ran; step by step
            proposal = self.propose([proposer_id], round_index, timeout)[proposer_id]
            weights = _proposal(proposal)
            if weights is None:
                return proposal, {}
            return proposal, self.test(tester_ids, WeightsRef.of(weights), timeout)
        proposal = answers[0][0]
        self._count_proposal(proposer_id, proposal)
        weights = _proposal(proposal)
        if weights is None:
            return proposal, {}
        out: dict[str, Outcome[Any]] = {}
        again: list[str] = []
        for call, got in zip(calls[1:], answers[1:], strict=True):
            if got is None:
                again.extend(call.lids)
            else:
                out.update(zip(call.lids, got, strict=True))
        if again:
            out.update(self._wave("test", again, self._payload(WeightsRef.of(weights)), timeout))
        return proposal, _verdicts({lid: out[lid] for lid in tester_ids}, weights)

    def accept(
        self, learner_ids: Sequence[str], weights: WeightsRef, timeout: float | None
    ) -> dict[str, Outcome[None]]:
        if set(learner_ids) >= set(self._ids):
            # everyone: these become the shared weights a restarted actor is given
            with self._lock:
                self._shared = weights
                self._version += 1
        return self._wave("accept", learner_ids, self._payload(weights), timeout)

    def adopt(self, weights: WeightsRef, timeout: float | None) -> dict[str, Outcome[None]]:
        """Every learner adopts ``weights`` at its next call: they travel with the next
        call to each actor."""
        with self._lock:
            self._shared = weights
            self._version += 1
        return {}

    def catch_up(self, timeout: float | None) -> dict[str, Outcome[None]]:
        return self._wave("catch_up", self._ids, None, timeout)

    def current_weights(self, learner_id: str, timeout: float | None) -> Outcome[Weights]:
        return self._wave("current", [learner_id], None, timeout)[learner_id]

    def restore_progress(
        self, learner_id: str, proposals_made: int, timeout: float | None
    ) -> Outcome[None]:
        """Recorded now, told to the learner with its actor's next call (a learner that
        cannot restore fails that call, with the reason)."""
        a = self._actor_of(learner_id)
        with self._lock:
            self._made[learner_id] = int(proposals_made)
            self._restores[a][learner_id] = int(proposals_made)
        return Outcome(None, None, 0.0)

    def tags(self, learner_id: str) -> LearnerTags:
        self._actor_of(learner_id)
        if self._tags is None:
            ray = _ray()
            tags: dict[str, LearnerTags] = {}
            for got in ray.get([actor.tags.remote() for actor in self._actors]):
                tags.update(got)
            self._tags = tags
        return self._tags.get(learner_id, LearnerTags())

    def learner(self, learner_id: str) -> MachineLearningInterface:
        """A copy of one learner as its actor holds it now (for inspection; changing
        the copy changes nothing in the actor)."""
        ray = _ray()
        return ray.get(self._actors[self._actor_of(learner_id)].learner.remote(learner_id))  # type: ignore[no-any-return]

    def close(self) -> None:
        """Stop the actors (and the local Ray this pool started, if it did)."""
        ray = _ray()
        for actor in getattr(self, "_actors", []):
            with contextlib.suppress(Exception):  # already gone
                ray.kill(actor, no_restart=True)
        self._actors = []
        self._puts = OrderedDict()
        self._data = []
        if self._started_ray and ray.is_initialized():
            ray.shutdown(wait_for_processes=True)  # nothing of it is left running
        self._started_ray = False

    def __enter__(self) -> RayPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- machinery ----------------------------------------------------------------------------

    def _count_proposal(self, learner_id: str, outcome: Outcome[Any]) -> None:
        """Count a proposal made, as the experiment counts them (for restores)."""
        if _proposal(outcome) is not None:
            with self._lock:
                self._made[learner_id] = self._made.get(learner_id, 0) + 1

    def _actor_of(self, learner_id: str) -> int:
        if not self._actors:
            raise ConfigError("this RayPool is closed; make a new one")
        try:
            return self._where[learner_id]
        except KeyError:
            raise ConfigError(
                f"no learner {learner_id!r} in this pool; its learners are "
                f"{self._ids[:5]}{'...' if len(self._ids) > 5 else ''}"
            ) from None

    def _payload(self, weights: WeightsRef) -> Any:
        """What a call carries for ``weights``: the weights themselves when small, else
        an object-store reference, put once (Ray hands the actor the weights)."""
        value = weights.weights
        if value.nbytes <= self.inline_bytes:
            return value
        with self._lock:
            key = id(weights)
            cached = self._puts.get(key)
            if cached is not None and cached[0] is weights:
                return cached[1]
            ref = _ray().put(value)
            self._puts[key] = (weights, ref)
            while len(self._puts) > 2:  # the round's candidate and the shared weights
                self._puts.popitem(last=False)
            return ref

    def _wave(
        self, kind: str, learner_ids: Sequence[str], arg: Any, timeout: float | None
    ) -> dict[str, Outcome[Any]]:
        """One call per actor holding any of ``learner_ids``; outcomes in the order asked."""
        check_timeout(timeout)
        groups = self._groups(learner_ids)
        out: dict[str, Outcome[Any]] = {}
        pending = dict(groups)
        for attempt in range(3):  # a refused call (restarted or behind) is made again
            if not pending:
                break
            calls = [_Call(a, kind, lids, arg) for a, lids in pending.items()]
            answers = self._send(calls, timeout, force_sync=attempt > 0)
            refused = {}
            for call, got in zip(calls, answers, strict=True):
                if got is None:
                    refused[call.actor] = call.lids
                else:
                    out.update(zip(call.lids, got, strict=True))
            pending = refused
        for lids in pending.values():  # still refused: a restart that keeps failing
            for lid in lids:
                out[lid] = Outcome.failed(
                    Reason.UNREACHABLE, "its Ray actor could not be brought up to date"
                )
        if kind == "catch_up":
            return {lid: o for lid, o in out.items() if o is not _UP_TO_DATE}
        return {lid: out[lid] for lid in learner_ids}

    def _groups(self, learner_ids: Sequence[str]) -> dict[int, list[str]]:
        """``learner_ids`` by the actor that holds them, in the order asked."""
        groups: dict[int, list[str]] = {}
        for lid in learner_ids:
            groups.setdefault(self._actor_of(lid), []).append(lid)
        return groups

    def _send(
        self, calls: Sequence[_Call], timeout: float | None, force_sync: bool
    ) -> list[list[Outcome[Any]] | None]:
        """Send ``calls`` at once, as one wave, and wait for every answer: for each call
        its outcomes (one per learner, in its order), or ``None`` where the actor
        refused it (restarted, or behind the shared weights: made again by the caller).

        A call whose ``arg`` is :data:`_PROPOSAL` is given the answer of the first call
        (a proposal), which Ray hands it when that call is done: such a call can only
        start after it, so the wait allows for two timeouts. If the first call did not
        yield a proposal, what its dependants answered or raised is not theirs to
        answer for (an actor is not marked dead for its proposer's death): their
        outcomes say only that there was no proposal to test."""
        ray = _ray()
        refs: list[Any] = []
        sent: list[list[tuple[str, int]]] = []
        sent_to: list[str] = []
        for call in calls:
            a = call.actor
            with self._lock:
                version, shared = self._version, self._shared
                behind = force_sync or self._versions[a] < version
                restores = list(self._restores[a].items())
                instance = self._instances[a]
            sent.append(restores)
            sent_to.append(instance)
            sync = self._payload(shared) if behind and shared is not None else None
            header = (call.kind, call.lids, timeout, instance, version, restores)
            arg = refs[0] if call.arg is _PROPOSAL else call.arg
            refs.append(self._actors[a].call.remote(header, arg, sync))
        chained = any(call.arg is _PROPOSAL for call in calls)
        if timeout is None:  # no deadline: the get below waits for every answer
            wait = None
            ready = list(refs)
        else:
            wait = timeout * (2 if chained else 1) + GRACE
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=wait)
        done = set(ready)
        try:  # every answer in one get; if any failed, each is fetched alone below
            answers = dict(zip(ready, ray.get(ready), strict=True))
        except Exception:
            answers = {}
        results: list[list[Outcome[Any]] | None] = []
        for i, (call, ref) in enumerate(zip(calls, refs, strict=True)):
            a, lids = call.actor, call.lids
            first = results[0] if results else None
            orphan = call.arg is _PROPOSAL and (first is None or _proposal(first[0]) is None)
            if orphan:
                results.append([NO_PROPOSAL] * len(lids))
                if ref in answers:  # it answered: what it says of its actor still holds
                    self._note_answer(a, answers[ref], sent[i])
                elif ref in done:  # its error is its proposer's: fetched, so Ray is quiet
                    with contextlib.suppress(Exception):
                        ray.get(ref)
                continue
            if ref not in done:
                results.append(
                    [
                        Outcome.failed(
                            Reason.TIMED_OUT,
                            f"timed out after {timeout:g} s: its Ray actor did not answer in time",
                            float(wait or 0.0),
                        )
                    ]
                    * len(lids)
                )
                continue
            try:
                answer = answers.get(ref)
                instance, version, packed = ray.get(ref) if answer is None else answer
            except ray.exceptions.ActorUnavailableError as exc:
                if sent_to[i] == _LOST:
                    # restarting since it died in an earlier call: wait, then call again
                    if self._await_restart(a, timeout):
                        results.append(None)
                        continue
                    reason = f"its Ray actor is restarting: {_short(exc)}"
                else:  # it died during this very call: the call is lost
                    with self._lock:
                        self._instances[a] = _LOST
                    reason = f"its Ray actor died during the call: {_short(exc)}"
                results.append([Outcome.failed(Reason.UNREACHABLE, reason)] * len(lids))
                continue
            except ray.exceptions.RayActorError as exc:  # died, or cannot be reached
                with self._lock:
                    # whatever answers next is a new instance: it is brought up to date
                    self._instances[a] = _LOST
                reason = f"its Ray actor died or cannot be reached: {_short(exc)}"
                results.append([Outcome.failed(Reason.UNREACHABLE, reason)] * len(lids))
                continue
            except Exception as exc:  # the call itself failed in the actor
                reason = f"its Ray actor failed the call: {_short(exc)}"
                results.append([Outcome.failed(Reason.RAISED, reason)] * len(lids))
                continue
            if packed is None:
                self._resync(a, instance, version)
                results.append(None)
                continue
            self._note_answer(a, (instance, version, packed), sent[i])
            results.append([_UP_TO_DATE if item is None else unpack(item) for item in packed])
        return results

    def _note_answer(
        self, a: int, answer: tuple[str, int, Any], restores: Sequence[tuple[str, int]]
    ) -> None:
        """Actor ``a`` answered a call (not refusing it): its version, and the progress
        it was sent is delivered (a newer value may wait its turn)."""
        _, version, packed = answer
        if packed is None:
            return
        with self._lock:
            self._versions[a] = version
            for lid, made in restores:
                if self._restores[a].get(lid) == made:
                    del self._restores[a][lid]

    def _await_restart(self, a: int, timeout: float | None) -> bool:
        """Wait (up to ``timeout``, or :data:`RESTART_WAIT`) for actor ``a`` to be back
        after a restart, and rebuild it; whether it is back."""
        ray = _ray()
        wait = RESTART_WAIT if timeout is None else min(timeout, RESTART_WAIT)
        deadline = time.monotonic() + wait
        while True:
            left = deadline - time.monotonic()
            try:
                instance, version = ray.get(self._actors[a].hello.remote(), timeout=max(left, 0.01))
                break
            except ray.exceptions.ActorUnavailableError:
                # still restarting: Ray answers at once rather than waiting; ask again
                if left <= 0:
                    return False
                time.sleep(min(0.1, max(left, 0.0)))
            except Exception:
                return False
        self._resync(a, instance, version)
        with self._lock:
            return bool(self._instances[a] == instance)

    def _resync(self, a: int, instance: str, version: int) -> None:
        """Actor ``a`` answered as ``instance`` at ``version``. A new instance is a
        restarted actor, empty: build its learners again and give them back their
        progress (the shared weights go with the next call)."""
        with self._lock:
            known = self._instances[a]
        if instance != known:
            try:
                instance = _ray().get(self._build(a))
            except Exception:  # not back (yet): its learners stay unreachable this time
                return
            with self._lock:
                self._instances[a] = instance
                self._restores[a] = {
                    lid: self._made[lid] for lid in self._members[a] if self._made.get(lid)
                }
                self._versions[a] = 0
            return
        with self._lock:
            self._versions[a] = version


_UP_TO_DATE: Outcome[Any] = Outcome(None, None, 0.0)
#: The instance of an actor that died: no instance has it, so the next call is refused
#: by whatever instance answers, which is then brought up to date.
_LOST = "lost"


class _Call(NamedTuple):
    """One call of a wave: to actor ``actor``, ``kind`` on ``lids``, with ``arg``."""

    actor: int
    kind: str
    lids: list[str]
    arg: Any


#: The ``arg`` of a call that tests the proposal the wave's first call returns.
_PROPOSAL = object()


def _proposal(outcome: Outcome[Any]) -> Weights | None:
    """The proposal a propose call's outcome holds, if it holds one to test."""
    value = outcome.value
    if outcome.ok and isinstance(value, Weights) and not _refused(value):
        return value
    return None


def _verdicts(
    got: Mapping[str, Outcome[Any]], tested: Weights
) -> dict[str, Outcome[ProposedWeights]]:
    """Test outcomes with their answers as :class:`ProposedWeights` of ``tested`` (the
    scores travel back as plain tuples: see :data:`._host.Packed`)."""
    out: dict[str, Outcome[ProposedWeights]] = {}
    for lid, outcome in got.items():
        value = outcome.value
        if isinstance(value, tuple):
            vote_score, test_score, vote, error, criterion = value
            outcome = made_outcome(
                ProposedWeights(tested, vote_score, test_score, vote, error, criterion),
                None,
                outcome.seconds,
            )
        out[lid] = outcome
    return out


def _refused(weights: Weights) -> bool:
    summary = weights.training_summary
    return summary is not None and summary.error_code is ErrorCodes.DP_BUDGET_EXCEEDED


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def _init_ray(ray: Any, address: str | None) -> None:
    try:
        ray.init(
            address=address or "local",
            include_dashboard=False,
            logging_level=logging.WARNING,
            # learners' own output stays in the workers' logs, not on the driver's terminal
            log_to_driver=os.environ.get("COLEARNING_RAY_LOGS") == "1",
        )
    except Exception as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise RayPoolError(f"could not start {where}: {_short(exc)}") from exc


def ray_pool_factory(address: str | None = None, actors: int | None = None) -> Any:
    """A ``pool_factory`` for :func:`~colearning.tasks.run_task`: the run's learners in
    Ray actors (``colearn run --pool ray``). Fails at once, naming the ``pip install``,
    if Ray is missing (before any experiment directory is made)."""
    _ray()

    def factory(setup: Any) -> RayPool:
        return RayPool.for_setup(setup, address=address, actors=actors)

    return factory
