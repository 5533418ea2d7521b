"""``GrpcPool``: the driver's pool over learner servers on other machines (or processes).

It implements :class:`~colearning.core.pool.LearnerPool`, so the driver and
:class:`~colearning.core.experiment.Experiment` drive remote learners exactly as
in-process ones. What it adds is the network's part:

- **Nobody is sent what it holds.** It tracks which weights ids each learner holds (its
  current weights, its own proposals, what it tested) and sends only the id then: the
  proposer is never sent its own proposal, ``accept`` after ``test`` is an id. A
  learner that answers that it no longer holds them is sent the bytes.
- **One proposal to all validators at once**: each validator's stream runs on its own
  thread over the same bytes, which were received (and verified) once.
- **Failures are typed values**: down or disconnected is ``unreachable``, past the
  deadline ``timed out``, garbage ``bad answer``, a learner's own error ``raised``.
- **Restarts are healed**: every call names the server instance it expects; a
  restarted server refuses it, and the pool re-synchronises that learner to the shared
  weights (by id, bytes only if needed) before it votes again. A learner that was
  unreachable is checked the same way on its next call; gRPC reconnects with backoff.
"""

from __future__ import annotations

import functools
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc

from colearning.core.codec import decode
from colearning.core.exceptions import ColearningError, ConfigError, WeightsError
from colearning.core.interface import (
    ColearnModel,
    LearnerTags,
    ProposedWeights,
    Weights,
)
from colearning.core.pool import Outcome
from colearning.core.protocol import Reason
from colearning.core.weights_ref import WeightsRef
from colearning.network._proto import colearning_pb2 as pb
from colearning.network.convert import (
    PROTOCOL_VERSION,
    LearnerDescription,
    description_from_proto,
    failure_from_proto,
    verdict_from_proto,
)
from colearning.network.server import (
    CHANNEL_OPTIONS,
    META_BATCH,
    META_INSTANCE,
    META_PROTOCOL,
    META_VERSION,
    _library_version,
)
from colearning.network.tls import ClientCredentials
from colearning.network.transfer import (
    DEFAULT_MAX_BYTES,
    LearnerStub,
    RemoteFailureError,
    TransferError,
    by_id_message,
    learner_stub,
    receive_model,
    receive_weights,
    send_weights,
)

T = TypeVar("T")
Blob = bytes | memoryview

#: gRPC's reconnection backoff towards a learner that went away (milliseconds).
RECONNECT_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
    ("grpc.enable_retries", 0),
]


#: Seconds a call to a learner that was unreachable waits for gRPC to reconnect (longer
#: than the largest backoff, jitter included, so a learner that is back is found).
RESYNC_WAIT = 3.0
#: Seconds ``GrpcPool.close`` waits for its channels to close. A Ctrl-C that lands inside
#: a gRPC call on the coordinator's thread can leave ``Channel.close`` waiting forever
#: (seen in a suite run: the interrupted run hung there, not exiting with 130); past
#: this wait the channels are left to the process's exit.
CLOSE_WAIT = 5.0


class NetworkError(ColearningError):
    """A learner server cannot be used: unreachable at start, the wrong identity, an
    incompatible version, or a different model."""


@dataclass
class _Member:
    learner_id: str
    address: str
    channel: grpc.Channel
    stub: LearnerStub
    description: LearnerDescription | None = None
    holds: set[str] = field(default_factory=set)
    suspect: bool = False  # unreachable or restarted: check before the next call
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Restarted(Exception):
    pass


class _Threads:
    """Daemon threads for a pool's parallel calls, kept from call to call (starting
    five threads for each phase of a round cost about 0.3 ms of a 12 ms round). A
    thread is added whenever none is idle, so a call stuck in a learner never holds up
    another; daemon threads, so a hung learner never blocks the interpreter's exit."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._idle = 0
        self._lock = threading.Lock()

    def run(self, job: Callable[[], None]) -> None:
        with self._lock:
            if self._idle:
                self._idle -= 1
            else:
                threading.Thread(target=self._work, name="colearning-grpc", daemon=True).start()
        self._jobs.put(job)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            job()
            del job  # nothing of the call stays referenced while this thread waits
            with self._lock:
                self._idle += 1

    def close(self) -> None:
        """End the idle threads (a busy one goes idle and waits: it is a daemon)."""
        with self._lock:
            idle, self._idle = self._idle, 0
        for _ in range(idle):
            self._jobs.put(None)


class _Deadline:
    def __init__(self, timeout: float | None) -> None:
        self.timeout = timeout
        self.end = None if timeout is None else time.monotonic() + timeout

    def left(self) -> float | None:
        if self.end is None:
            return None
        return max(0.001, self.end - time.monotonic())


def parse_endpoints(text: str | Sequence[str]) -> list[tuple[str, str]]:
    """``"[ID=]HOST:PORT,..."`` as ``[(learner_id, address), ...]``; an entry without
    an id is ``learner-{position}`` (the ids ``colearn run`` gives)."""
    items = [s.strip() for s in (text.split(",") if isinstance(text, str) else text)]
    items = [s for s in items if s]
    if not items:
        raise ConfigError("--remote needs at least one HOST:PORT; got none")
    out: list[tuple[str, str]] = []
    for i, item in enumerate(items):
        lid, sep, address = item.rpartition("=")
        if not sep:
            lid, address = f"learner-{i}", item
        host, colon, port = address.rpartition(":")
        if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(
                f"remote learner {item!r} must be HOST:PORT or ID=HOST:PORT with a port in "
                "1-65535, e.g. 10.0.0.5:7001 or learner-2=10.0.0.5:7001"
            )
        out.append((lid, address))
    ids = [lid for lid, _ in out]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ConfigError(f"learner ids must be unique; {dupes} appear more than once in --remote")
    return out


class GrpcPool:
    """Learners on learner servers, addressed by id.

    Parameters
    ----------
    endpoints
        ``[(learner_id, "host:port"), ...]`` (or a mapping id -> address), in experiment
        order. Each server must say it is that learner, and with TLS its certificate
        must name it.
    credentials
        The coordinator's mutual-TLS credentials; ``None`` for plaintext.
    connect_timeout
        Seconds to wait for every server to answer at the start.
    max_bytes
        Largest weights transfer accepted from a learner.
    """

    def __init__(
        self,
        endpoints: Sequence[tuple[str, str]] | Mapping[str, str],
        *,
        credentials: ClientCredentials | None = None,
        connect_timeout: float = 30.0,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        pairs = list(endpoints.items()) if isinstance(endpoints, Mapping) else list(endpoints)
        if not pairs:
            raise ConfigError("a GrpcPool needs at least one learner endpoint; got none")
        ids = [lid for lid, _ in pairs]
        if len(set(ids)) != len(ids):
            raise ConfigError(f"learner ids must be unique; got {ids}")
        self.credentials = credentials
        self.max_bytes = max_bytes
        self._ids = ids
        self._members = {lid: self._member(lid, addr) for lid, addr in pairs}
        self._shared: WeightsRef | None = None
        self._received: OrderedDict[int, tuple[Weights, str, Blob]] = OrderedDict()
        self._received_lock = threading.Lock()
        self._round = -1
        self._closed = False
        self._threads = _Threads()
        try:
            self._connect(connect_timeout)
        except BaseException:
            self.close()
            raise

    def _member(self, learner_id: str, address: str) -> _Member:
        options = [*CHANNEL_OPTIONS, *RECONNECT_OPTIONS]
        if self.credentials is not None:
            # the learner's certificate must name the id expected at this address
            options.append(("grpc.ssl_target_name_override", learner_id))
            channel = grpc.secure_channel(address, self.credentials.grpc(), options=options)
        else:
            channel = grpc.insecure_channel(address, options=options)
        return _Member(learner_id, address, channel, learner_stub(channel))

    # -- connecting ---------------------------------------------------------------------------

    def _connect(self, timeout: float) -> None:
        errors: dict[str, str] = {}

        def one(m: _Member) -> None:
            try:
                m.description = self._describe(m, timeout, wait=True)
            except NetworkError as exc:
                errors[m.learner_id] = str(exc)

        threads = [
            threading.Thread(target=one, args=(m,), daemon=True) for m in self._members.values()
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise NetworkError("; ".join(errors[lid] for lid in self._ids if lid in errors))
        first = self.description(self._ids[0])
        for lid in self._ids[1:]:
            d = self.description(lid)
            if d.spec != first.spec:
                raise NetworkError(
                    f"{lid} ({d.task}) holds a different model from {self._ids[0]} "
                    f"({first.task}): weights {_spec_text(d)} against {_spec_text(first)}. "
                    "Every learner must serve the same task and model"
                )

    def _metadata(self, m: _Member, batch: int = 1) -> list[tuple[str, str]]:
        meta = [
            (META_PROTOCOL, str(PROTOCOL_VERSION)),
            (META_VERSION, _library_version()),
            (META_BATCH, str(batch)),
        ]
        if m.description is not None:
            meta.append((META_INSTANCE, m.description.instance_id))
        return meta

    def _describe(
        self, m: _Member, timeout: float | None, wait: bool = False
    ) -> LearnerDescription:
        try:
            msg = m.stub.Describe(
                pb.DescribeRequest(),
                timeout=timeout,
                metadata=[
                    (META_PROTOCOL, str(PROTOCOL_VERSION)),
                    (META_VERSION, _library_version()),
                ],
                wait_for_ready=wait,
            )
        except grpc.RpcError as exc:
            raise NetworkError(self._connect_error(m, exc)) from None
        d = description_from_proto(msg)
        if d.protocol_version != PROTOCOL_VERSION:
            raise NetworkError(
                f"{m.learner_id} at {m.address} speaks colearning wire protocol "
                f"{d.protocol_version} (colearning {d.library_version}); this coordinator "
                f"speaks {PROTOCOL_VERSION} (colearning {_library_version()}). Install the "
                "same colearning version on the coordinator and every learner"
            )
        if d.learner_id != m.learner_id:
            raise NetworkError(
                f"the learner at {m.address} says it is {d.learner_id!r}; expected "
                f"{m.learner_id!r} there. Give the ids with --remote ID=HOST:PORT, or "
                "serve it with the expected id"
            )
        return d

    def _connect_error(self, m: _Member, exc: grpc.RpcError) -> str:
        code, details = _status(exc)
        where = f"cannot use {m.learner_id} at {m.address}"
        if code is grpc.StatusCode.UNIMPLEMENTED:
            return (
                f"{where}: it does not speak the colearning.v1 learner protocol (another "
                "program on that port, or an incompatible colearning version)"
            )
        if code is grpc.StatusCode.PERMISSION_DENIED:
            return f"{where}: it refused this coordinator: {details}"
        low = details.lower()
        if self.credentials is not None and any(
            s in low for s in ("handshake", "certificate", "peer name", "ssl", "tls")
        ):
            return (
                f"{where}: the TLS handshake failed ({details}). Its certificate must be "
                f"signed by the CA in --certs and name {m.learner_id!r} "
                f"(colearn certs issue DIR {m.learner_id}), and it must serve with --certs"
            )
        if code is grpc.StatusCode.DEADLINE_EXCEEDED or code is grpc.StatusCode.UNAVAILABLE:
            hint = (
                " (with --certs: it must serve with TLS too, and its certificate name "
                f"{m.learner_id!r})"
                if self.credentials is not None
                else " (if it serves with --certs, pass --certs here too)"
            )
            return (
                f"{where}: no answer ({code.name}: {details}). Is `colearn learner serve` "
                f"running there and reachable{hint}?"
            )
        return f"{where}: {code.name}: {details}"

    # -- the pool's surface ----------------------------------------------------------------

    @property
    def learner_ids(self) -> Sequence[str]:
        return self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def description(self, learner_id: str) -> LearnerDescription:
        d = self._get(learner_id).description
        assert d is not None
        return d

    def address(self, learner_id: str) -> str:
        return self._get(learner_id).address

    def _get(self, learner_id: str) -> _Member:
        try:
            return self._members[learner_id]
        except KeyError:
            raise ConfigError(
                f"no learner {learner_id!r} in this pool; its learners are {self._ids}"
            ) from None

    def tags(self, learner_id: str) -> LearnerTags:
        return self.description(learner_id).tags

    def propose(
        self, learner_ids: Sequence[str], round_index: int, timeout: float | None
    ) -> dict[str, Outcome[Weights]]:
        self._round = round_index
        n = len(learner_ids)
        return self._fan(
            learner_ids, lambda m, dl: self._propose_one(m, round_index, dl, n), timeout
        )

    def test(
        self, learner_ids: Sequence[str], weights: WeightsRef, timeout: float | None
    ) -> dict[str, Outcome[ProposedWeights]]:
        wid, blob = self._resolve(weights)
        n = len(learner_ids)
        return self._fan(learner_ids, lambda m, dl: self._test_one(m, wid, blob, dl, n), timeout)

    def accept(
        self, learner_ids: Sequence[str], weights: WeightsRef, timeout: float | None
    ) -> dict[str, Outcome[None]]:
        wid, blob = self._resolve(weights)
        self._shared = weights
        n = len(learner_ids)
        return self._fan(learner_ids, lambda m, dl: self._accept_one(m, wid, blob, dl, n), timeout)

    def current_weights(self, learner_id: str, timeout: float | None) -> Outcome[Weights]:
        return self._fan([learner_id], self._current_one, timeout)[learner_id]

    def restore_progress(
        self, learner_id: str, proposals_made: int, timeout: float | None
    ) -> Outcome[None]:
        def call(m: _Member, dl: _Deadline) -> None:
            reply = m.stub.RestoreProgress(
                pb.RestoreProgressRequest(proposals_made=proposals_made),
                timeout=dl.left(),
                metadata=self._metadata(m),
            )
            if reply.HasField("failure"):
                raise RemoteFailureError(failure_from_proto(reply.failure))

        return self._fan([learner_id], call, timeout)[learner_id]

    def current_model(self, learner_id: str, timeout: float | None) -> Outcome[ColearnModel]:
        """A learner's current model in its exportable format (ONNX for bundled ones)."""

        def call(m: _Member, dl: _Deadline) -> ColearnModel:
            stream = m.stub.CurrentModel(
                pb.CurrentModelRequest(), timeout=dl.left(), metadata=self._metadata(m)
            )
            return receive_model(stream, self.max_bytes)

        return self._fan([learner_id], call, timeout)[learner_id]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        channels = [m.channel for m in self._members.values()]

        def close_channels() -> None:
            for channel in channels:
                channel.close()

        closer = threading.Thread(target=close_channels, name="colearning-close", daemon=True)
        closer.start()
        closer.join(CLOSE_WAIT)
        self._threads.close()

    def __enter__(self) -> GrpcPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one call to one learner ------------------------------------------------------------

    def _propose_one(self, m: _Member, r: int, dl: _Deadline, batch: int) -> Weights:
        stream = m.stub.Propose(
            pb.ProposeRequest(round_index=r), timeout=dl.left(), metadata=self._metadata(m, batch)
        )
        got = receive_weights(stream, self.max_bytes)
        if got.blob is None:
            raise TransferError("a proposal must carry its bytes; it came by id")
        try:
            weights = decode(got.blob)  # the driver checks names, shapes and NaN
        except WeightsError as exc:
            raise _BadAnswer(f"the proposal is not weights: {exc}") from None
        weights.training_summary = got.training_summary
        with m.lock:
            m.holds.add(got.weights_id)
        self._remember(weights, got.weights_id, got.blob)
        return weights

    def _send_weights(
        self,
        m: _Member,
        wid: str,
        blob: Callable[[], Blob],
        dl: _Deadline,
        batch: int,
        by_id_call: Callable[..., Any],
        bytes_call: Callable[..., Any],
    ) -> Any:
        """Send weights ``wid`` to ``m``: by id alone when it holds them (one message, a
        unary call: see transfer.LearnerStub), else (or when it answers that it no
        longer holds them) the bytes; the reply, after which ``m`` holds ``wid``."""

        def send(by_id: bool) -> Any:
            meta = self._metadata(m, batch)
            if by_id:
                msg = by_id_message(wid, round_index=self._round)
                return by_id_call(msg, timeout=dl.left(), metadata=meta)
            msgs = send_weights(wid, blob(), round_index=self._round)
            return bytes_call(msgs, timeout=dl.left(), metadata=meta)

        reply = send(wid in m.holds)
        if reply.HasField("failure") and reply.failure.need_bytes:
            m.holds.discard(wid)
            reply = send(False)
        if reply.HasField("failure"):
            raise RemoteFailureError(failure_from_proto(reply.failure))
        with m.lock:
            m.holds.add(wid)
        return reply

    def _test_one(
        self, m: _Member, wid: str, blob: Callable[[], Blob], dl: _Deadline, batch: int
    ) -> ProposedWeights:
        reply = self._send_weights(m, wid, blob, dl, batch, m.stub.TestById, m.stub.Test)
        return verdict_from_proto(reply)

    def _accept_one(
        self, m: _Member, wid: str, blob: Callable[[], Blob], dl: _Deadline, batch: int
    ) -> None:
        self._send_weights(m, wid, blob, dl, batch, m.stub.AcceptById, m.stub.Accept)
        with m.lock:
            if m.description is not None:
                m.description = _with_current(m.description, wid)

    def _current_one(self, m: _Member, dl: _Deadline) -> Weights:
        stream = m.stub.CurrentWeights(
            pb.CurrentWeightsRequest(), timeout=dl.left(), metadata=self._metadata(m)
        )
        got = receive_weights(stream, self.max_bytes)
        if got.blob is None:
            raise TransferError("current weights must carry their bytes; they came by id")
        try:
            weights = decode(got.blob)
        except WeightsError as exc:
            raise _BadAnswer(f"the current weights are not weights: {exc}") from None
        with m.lock:
            m.holds.add(got.weights_id)
        self._remember(weights, got.weights_id, got.blob)
        return weights

    # -- machinery ----------------------------------------------------------------------------

    def _remember(self, weights: Weights, wid: str, blob: Blob) -> None:
        """Keep the bytes of weights received from a learner, so that when the driver
        hands the same object back (to test or accept) it is not encoded again."""
        with self._received_lock:
            self._received[id(weights)] = (weights, wid, blob)
            while len(self._received) > 4:
                self._received.popitem(last=False)

    def _resolve(self, ref: WeightsRef) -> tuple[str, Callable[[], Blob]]:
        """The id of ``ref`` and a way to get its bytes (only asked for when a learner
        does not hold them)."""
        with self._received_lock:
            known = self._received.get(id(ref.weights)) if not ref.has_blob else None
        if known is not None and known[0] is ref.weights:
            _, wid, blob = known
            return wid, lambda: blob
        return ref.weights_id, ref.blob

    def _fan(
        self,
        learner_ids: Sequence[str],
        call: Callable[[_Member, _Deadline], T],
        timeout: float | None,
    ) -> dict[str, Outcome[T]]:
        if timeout is not None and not timeout > 0:
            raise ConfigError(f"timeout must be > 0 seconds or None; got {timeout}")
        members = [self._get(lid) for lid in learner_ids]
        results: dict[str, Outcome[T]] = {}

        def run(m: _Member) -> None:
            results[m.learner_id] = self._call(m, call, timeout)

        # the others on the pool's threads, the first on this one
        done = threading.Semaphore(0)

        def other(m: _Member) -> None:
            try:
                run(m)
            finally:
                done.release()

        for m in members[1:]:
            self._threads.run(functools.partial(other, m))
        if members:
            run(members[0])
        for _ in members[1:]:
            done.acquire()
        return {lid: results[lid] for lid in learner_ids}

    def _call(
        self, m: _Member, call: Callable[[_Member, _Deadline], T], timeout: float | None
    ) -> Outcome[T]:
        start = time.perf_counter()
        dl = _Deadline(timeout)

        def failed(reason: Reason, message: str) -> Outcome[T]:
            return Outcome(None, _failure(reason, message), time.perf_counter() - start)

        for attempt in (0, 1):
            try:
                if m.suspect:
                    self._resync(m, dl)
                return Outcome(call(m, dl), None, time.perf_counter() - start)
            except _Restarted:
                return failed(
                    Reason.UNREACHABLE, f"{m.learner_id} restarted and cannot be re-synchronised"
                )
            except grpc.RpcError as exc:
                code, details = _status(exc)
                if code is grpc.StatusCode.ABORTED and attempt == 0:
                    m.suspect = True  # restarted: re-synchronise, then call again
                    continue
                if code is grpc.StatusCode.DEADLINE_EXCEEDED:
                    return Outcome(
                        None,
                        _failure(Reason.TIMED_OUT, f"timed out after {timeout:g} s"),
                        timeout or time.perf_counter() - start,
                    )
                if code is grpc.StatusCode.FAILED_PRECONDITION:
                    return failed(Reason.BAD_ANSWER, f"incompatible learner: {details}")
                if code is grpc.StatusCode.UNIMPLEMENTED:
                    return failed(
                        Reason.BAD_ANSWER,
                        f"{m.learner_id} at {m.address} does not speak the colearning.v1 "
                        "learner protocol",
                    )
                m.suspect = True
                return failed(
                    Reason.UNREACHABLE,
                    f"{m.learner_id} at {m.address} ({code.name}: {details})",
                )
            except RemoteFailureError as exc:
                return Outcome(None, exc.failure.as_failure(), time.perf_counter() - start)
            except (TransferError, _BadAnswer) as exc:
                return failed(Reason.BAD_ANSWER, f"bad answer: {exc}")
            except NetworkError as exc:
                return failed(Reason.UNREACHABLE, str(exc))
        return failed(Reason.UNREACHABLE, f"{m.learner_id} restarted twice during one call")

    def _resync(self, m: _Member, dl: _Deadline) -> None:
        """After a restart or an outage: learn the server's new instance and bring it to
        the shared weights if it does not hold them."""
        left = dl.left()
        d = self._describe(m, RESYNC_WAIT if left is None else min(left, RESYNC_WAIT), wait=True)
        with m.lock:
            restarted = m.description is None or d.instance_id != m.description.instance_id
            m.description = d
            if restarted:
                m.holds = {d.current_weights_id}
        shared = self._shared
        if shared is not None and d.current_weights_id != shared.weights_id:
            wid, blob = self._resolve(shared)
            self._accept_one(m, wid, blob, dl, 1)
        m.suspect = False


class _BadAnswer(Exception):
    pass


def _failure(reason: Reason, message: str) -> Any:
    from colearning.core.protocol import Failure

    return Failure(reason, message)


def _status(exc: grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    details = exc.details() if hasattr(exc, "details") else str(exc)
    return code, str(details or "")


def _with_current(d: LearnerDescription, wid: str) -> LearnerDescription:
    import dataclasses

    return dataclasses.replace(d, current_weights_id=wid)


def _spec_text(d: LearnerDescription) -> str:
    return ", ".join(f"{n}:{dt}{list(s)}" for n, dt, s in d.spec.entries[:4]) + (
        ", ..." if len(d.spec.entries) > 4 else ""
    )
