"""A learner server: one learner hosted over gRPC (what ``colearn learner serve`` runs).

The server holds one :class:`~colearning.core.interface.MachineLearningInterface` and
answers the calls of ``colearning.proto``; it never trusts what arrives: weights are
checked against their id, the byte limit and the learner's own names, shapes and
dtypes before the learner sees them, and a request that fails any check leaves the
learner's model as it was. Calls to the learner never overlap (one lock), as in
:class:`~colearning.core.pool.LocalPool`, and run with the same thread tuning
(:mod:`colearning.runtime`).

It keeps the last few weights it saw by id (its current weights, its own proposals,
what it last tested), so the coordinator can send an id instead of bytes; a by-id
request for weights it does not hold is answered ``need_bytes`` and the coordinator
sends them.

Every call is logged (logger ``colearning.network.server``): who connected, each
proposal, vote and adoption with its weights id and time, and every refusal with its
reason.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import grpc

from colearning.core.codec import WeightsSpec, decode, encode, weights_id
from colearning.core.exceptions import ConfigError, WeightsError
from colearning.core.interface import LearnerTags, MachineLearningInterface, Weights
from colearning.core.protocol import Reason
from colearning.network._proto import colearning_pb2 as pb
from colearning.network._proto import colearning_pb2_grpc as pb_grpc
from colearning.network.convert import (
    PROTOCOL_VERSION,
    LearnerDescription,
    RemoteFailure,
    description_to_proto,
    failure_to_proto,
    read_verdict,
    verdict_to_proto,
)
from colearning.network.tls import ServerCredentials, peer_identity, peer_names
from colearning.network.transfer import (
    CHUNK,
    DEFAULT_MAX_BYTES,
    Received,
    RemoteFailureError,
    TransferError,
    add_learner_service,
    receive_weights,
    send_weights,
)
from colearning.runtime.allocator import share_malloc_arena
from colearning.runtime.threads import one_blas_thread, torch_threads

log = logging.getLogger("colearning.network.server")

SERVICE = "colearning.v1.Learner"
META_PROTOCOL = "x-colearning-protocol"
META_VERSION = "x-colearning-version"
META_INSTANCE = "x-colearning-instance"
META_BATCH = "x-colearning-batch"

#: gRPC options of both ends: room for a chunk and its framing; no port sharing (a
#: second server on a taken port must fail, not split the traffic).
CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_receive_message_length", 4 * CHUNK),
    ("grpc.max_send_message_length", 4 * CHUNK),
]
SERVER_OPTIONS: list[tuple[str, Any]] = [*CHANNEL_OPTIONS, ("grpc.so_reuseport", 0)]


def _library_version() -> str:
    from colearning import __version__

    return __version__


def _short(wid: str) -> str:
    return wid[:12]


def _describe_exc(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


class _Refused(Exception):
    def __init__(self, failure: RemoteFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


class LearnerService(pb_grpc.LearnerServicer):  # type: ignore[misc]
    """The ``colearning.v1.Learner`` service over one learner."""

    def __init__(
        self,
        learner: MachineLearningInterface,
        learner_id: str,
        *,
        task: str = "custom",
        metric: str = "score",
        higher_is_better: bool = True,
        max_bytes: int = DEFAULT_MAX_BYTES,
        share_cores: bool = False,
        cache_size: int = 4,
        coordinators: Sequence[str] | None = None,
    ) -> None:
        if not isinstance(learner, MachineLearningInterface):
            raise ConfigError(
                f"a learner server hosts a MachineLearningInterface; got {type(learner).__name__}"
            )
        if max_bytes < 1:
            raise ConfigError(f"max_bytes must be >= 1; got {max_bytes}")
        self.learner = learner
        self.learner_id = learner_id
        self.task = task
        self.metric = metric
        self.higher_is_better = higher_is_better
        self.max_bytes = max_bytes
        self.share_cores = share_cores
        # who may call (certificate names); None: nobody is checked (plaintext)
        self.coordinators = tuple(coordinators) if coordinators is not None else None
        self.instance_id = uuid.uuid4().hex
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, Weights] = OrderedDict()
        self._cache_size = max(2, cache_size)
        current = learner.mli_get_current_weights()
        if not isinstance(current, Weights):
            raise ConfigError(
                f"{learner_id}: mli_get_current_weights returned {type(current).__name__}; "
                "it must return colearning.Weights"
            )
        self.spec = WeightsSpec.of(current)
        self.current_id = weights_id(encode(current))
        self._remember(self.current_id, current)
        self._tags = _tags_of(learner)
        self.calls = 0

    # -- bookkeeping ----------------------------------------------------------------------

    def _remember(self, wid: str, weights: Weights) -> None:
        self._cache[wid] = weights
        self._cache.move_to_end(wid)
        while len(self._cache) > self._cache_size:
            oldest = next(iter(self._cache))
            if oldest == self.current_id:  # the current weights stay
                self._cache.move_to_end(oldest)
                oldest = next(iter(self._cache))
            del self._cache[oldest]

    def description(self) -> LearnerDescription:
        return LearnerDescription(
            learner_id=self.learner_id,
            task=self.task,
            spec=self.spec,
            library_version=_library_version(),
            protocol_version=PROTOCOL_VERSION,
            tags=self._tags,
            instance_id=self.instance_id,
            current_weights_id=self.current_id,
            metric=self.metric,
            higher_is_better=self.higher_is_better,
            max_bytes=self.max_bytes,
        )

    def _check_caller(self, context: grpc.ServicerContext, call: str) -> None:
        """Refuse a client whose certificate names none of the allowed coordinators
        (another party with a certificate from the same CA, say)."""
        if self.coordinators is None:
            return
        names = peer_names(context)
        if any(n in self.coordinators for n in names):
            return
        allowed = ", ".join(repr(c) for c in self.coordinators)
        log.warning(
            "refused %s from %s: its certificate names %s, not %s",
            call,
            context.peer(),
            names or "nobody",
            allowed,
        )
        context.abort(
            grpc.StatusCode.PERMISSION_DENIED,
            f"{self.learner_id} takes calls only from {allowed}; this client's certificate "
            f"names {', '.join(repr(n) for n in names) or 'nobody'}. Connect with the "
            "certificate the learner expects (colearn run --cert-name NAME), or the learner "
            "allows it with colearn learner serve --coordinator-name NAME",
        )

    def _check_peer(self, context: grpc.ServicerContext, call: str) -> dict[str, str]:
        """Refuse calls from another protocol version or meant for a previous instance."""
        self._check_caller(context, call)
        meta = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        theirs = meta.get(META_PROTOCOL)
        if theirs != str(PROTOCOL_VERSION):
            version = meta.get(META_VERSION, "an unknown version")
            log.warning("refused %s from %s: protocol %s", call, context.peer(), theirs)
            context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"{self.learner_id} speaks colearning wire protocol {PROTOCOL_VERSION} "
                f"(colearning {_library_version()}); the caller speaks "
                f"{theirs or 'none'} (colearning {version}). Install the same colearning "
                "version on the coordinator and every learner",
            )
        instance = meta.get(META_INSTANCE)
        if instance and instance != self.instance_id:
            context.abort(
                grpc.StatusCode.ABORTED,
                f"{self.learner_id} restarted since the caller last spoke to it; it must be "
                "re-synchronised to the shared weights first",
            )
        return meta

    @contextmanager
    def _locked(self, context: grpc.ServicerContext, meta: dict[str, str]) -> Iterator[None]:
        remaining = context.time_remaining()  # huge when the caller set no deadline
        wait = -1 if remaining is None or remaining > 1e6 else max(0.0, remaining)
        got = self._lock.acquire(timeout=wait)
        if not got:
            context.abort(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                "timed out waiting for the learner's previous call to end",
            )
        try:
            batch = int(meta.get(META_BATCH, "1") or 1)
            # as LocalPool: one BLAS thread always; one torch thread per call when the
            # learners of a batch share this machine's cores, every core otherwise
            with one_blas_thread(), torch_threads(self.share_cores and batch > 1):
                self.calls += 1
                yield
        finally:
            self._lock.release()

    def _receive(self, request_iterator: Iterable[pb.WeightsMessage]) -> tuple[Received, Weights]:
        """Read and check incoming weights (nothing of the learner changes here)."""
        try:
            got = receive_weights(request_iterator, self.max_bytes)
        except TransferError as exc:
            raise _Refused(RemoteFailure(Reason.RAISED, f"refused the weights: {exc}")) from None
        except RemoteFailureError as exc:
            raise _Refused(RemoteFailure(Reason.RAISED, str(exc))) from None
        if got.blob is None:
            held = self._cache.get(got.weights_id)
            if held is None:
                raise _Refused(
                    RemoteFailure(
                        Reason.RAISED,
                        f"does not hold weights {_short(got.weights_id)}...; send the bytes",
                        need_bytes=True,
                    )
                )
            return got, held
        try:
            weights = decode(got.blob, self.spec)
        except WeightsError as exc:
            raise _Refused(RemoteFailure(Reason.RAISED, f"refused the weights: {exc}")) from None
        return got, weights

    # -- the calls ------------------------------------------------------------------------

    def Describe(
        self, request: pb.DescribeRequest, context: grpc.ServicerContext
    ) -> pb.Description:
        self._check_caller(context, "describe")
        meta = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        who = peer_identity(context)
        log.info(
            "describe from %s%s (protocol %s, colearning %s)",
            context.peer(),
            f" as {who!r}" if who else "",
            meta.get(META_PROTOCOL, "?"),
            meta.get(META_VERSION, "?"),
        )
        return description_to_proto(self.description())

    def Propose(
        self, request: pb.ProposeRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.WeightsMessage | bytes]:
        meta = self._check_peer(context, "propose")
        r = int(request.round_index)
        start = time.perf_counter()
        try:
            with self._locked(context, meta):
                self.learner.mli_set_round(r)
                proposal = self.learner.mli_propose_weights()
            if not isinstance(proposal, Weights):
                raise _Refused(
                    RemoteFailure(
                        Reason.BAD_ANSWER,
                        f"learner returned {type(proposal).__name__}; mli_propose_weights must "
                        "return colearning.Weights",
                    )
                )
            try:
                blob = encode(proposal)
            except WeightsError as exc:
                raise _Refused(
                    RemoteFailure(Reason.BAD_ANSWER, f"the proposal cannot be encoded: {exc}")
                ) from None
        except _Refused as refused:
            log.warning("round %d: propose failed: %s", r, refused.failure.message)
            yield pb.WeightsMessage(failure=failure_to_proto(refused.failure))
            return
        except Exception as exc:
            log.warning("round %d: propose raised %s", r, _describe_exc(exc))
            yield pb.WeightsMessage(
                failure=failure_to_proto(RemoteFailure(Reason.RAISED, _describe_exc(exc)))
            )
            return
        wid = weights_id(blob)
        self._remember(wid, proposal)
        log.info(
            "round %d: proposed %s (%.2f s, %d bytes)",
            r,
            _short(wid),
            time.perf_counter() - start,
            len(blob),
        )
        yield from send_weights(
            wid, blob, training_summary=proposal.training_summary, round_index=r
        )

    def Test(
        self, request_iterator: Iterator[pb.WeightsMessage], context: grpc.ServicerContext
    ) -> pb.TestReply:
        meta = self._check_peer(context, "test")
        start = time.perf_counter()
        try:
            got, weights = self._receive(request_iterator)
            with self._locked(context, meta):
                answer = self.learner.mli_test_weights(weights)
            self._remember(got.weights_id, weights)
            problem, vote_score, _ = read_verdict(answer)
            if problem:
                raise _Refused(RemoteFailure(Reason.BAD_ANSWER, f"bad answer: {problem}"))
            reply = verdict_to_proto(answer)
        except _Refused as refused:
            log.warning("test failed: %s", refused.failure.message)
            return pb.TestReply(failure=failure_to_proto(refused.failure))
        except Exception as exc:
            log.warning("test raised %s", _describe_exc(exc))
            return pb.TestReply(
                failure=failure_to_proto(RemoteFailure(Reason.RAISED, _describe_exc(exc)))
            )
        log.info(
            "%stested %s: %s (vote score %s, %.2f s%s)",
            f"round {got.round_index}: " if got.round_index >= 0 else "",
            _short(got.weights_id),
            "approve" if reply.vote else "reject",
            "-" if vote_score is None else f"{vote_score:.4f}",
            time.perf_counter() - start,
            ", sent by id" if got.blob is None else "",
        )
        return reply

    def Accept(
        self, request_iterator: Iterator[pb.WeightsMessage], context: grpc.ServicerContext
    ) -> pb.AcceptReply:
        meta = self._check_peer(context, "accept")
        start = time.perf_counter()
        try:
            got, weights = self._receive(request_iterator)
            with self._locked(context, meta):
                self.learner.mli_accept_weights(weights)
                self.current_id = got.weights_id
                self._remember(got.weights_id, weights)
        except _Refused as refused:
            log.warning("accept failed: %s", refused.failure.message)
            return pb.AcceptReply(failure=failure_to_proto(refused.failure))
        except Exception as exc:
            log.warning("accept raised %s", _describe_exc(exc))
            return pb.AcceptReply(
                failure=failure_to_proto(RemoteFailure(Reason.RAISED, _describe_exc(exc)))
            )
        log.info(
            "%saccepted %s (%.2f s%s)",
            f"round {got.round_index}: " if got.round_index >= 0 else "",
            _short(got.weights_id),
            time.perf_counter() - start,
            ", sent by id" if got.blob is None else "",
        )
        return pb.AcceptReply()

    def CurrentWeights(
        self, request: pb.CurrentWeightsRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.WeightsMessage | bytes]:
        meta = self._check_peer(context, "current weights")
        try:
            with self._locked(context, meta):
                current = self.learner.mli_get_current_weights()
            if not isinstance(current, Weights):
                raise _Refused(
                    RemoteFailure(
                        Reason.BAD_ANSWER,
                        f"learner returned {type(current).__name__}; mli_get_current_weights "
                        "must return colearning.Weights",
                    )
                )
            blob = encode(current)
        except _Refused as refused:
            yield pb.WeightsMessage(failure=failure_to_proto(refused.failure))
            return
        except Exception as exc:
            yield pb.WeightsMessage(
                failure=failure_to_proto(RemoteFailure(Reason.RAISED, _describe_exc(exc)))
            )
            return
        wid = weights_id(blob)
        self._remember(wid, current)
        log.info("sent current weights %s (%d bytes)", _short(wid), len(blob))
        yield from send_weights(wid, blob)

    def CurrentModel(
        self, request: pb.CurrentModelRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.ModelMessage]:
        meta = self._check_peer(context, "current model")
        try:
            with self._locked(context, meta):
                model = self.learner.mli_get_current_model()
            data = model.model
            if hasattr(data, "SerializeToString"):  # an onnx.ModelProto
                data = data.SerializeToString()
            if not isinstance(data, bytes | bytearray):
                raise _Refused(
                    RemoteFailure(
                        Reason.BAD_ANSWER,
                        f"the model is a {type(data).__name__}, which cannot be sent; return "
                        "its bytes in ColearnModel.model",
                    )
                )
            blob = bytes(data)
        except _Refused as refused:
            yield pb.ModelMessage(failure=failure_to_proto(refused.failure))
            return
        except Exception as exc:
            yield pb.ModelMessage(
                failure=failure_to_proto(RemoteFailure(Reason.RAISED, _describe_exc(exc)))
            )
            return
        fmt = getattr(model.model_format, "value", "") or ""
        yield pb.ModelMessage(
            header=pb.ModelHeader(model_format=fmt, model_file=model.model_file, size=len(blob))
        )
        for start in range(0, len(blob), CHUNK):
            yield pb.ModelMessage(chunk=blob[start : start + CHUNK])

    def RestoreProgress(
        self, request: pb.RestoreProgressRequest, context: grpc.ServicerContext
    ) -> pb.RestoreProgressReply:
        meta = self._check_peer(context, "restore progress")
        try:
            with self._locked(context, meta):
                self.learner.mli_restore_progress(int(request.proposals_made))
        except Exception as exc:
            return pb.RestoreProgressReply(
                failure=failure_to_proto(RemoteFailure(Reason.RAISED, _describe_exc(exc)))
            )
        log.info("restored progress: %d proposals made before", request.proposals_made)
        return pb.RestoreProgressReply()


def _tags_of(learner: MachineLearningInterface) -> LearnerTags:
    try:
        tags = learner.mli_tags()
    except Exception:  # a learner that cannot say declares nothing
        return LearnerTags()
    return tags if isinstance(tags, LearnerTags) else LearnerTags()


def listen(
    server: grpc.Server,
    host: str,
    port: int,
    credentials: ServerCredentials | None,
    what: str,
    fix: str,
) -> int:
    """Bind ``server`` to ``host:port`` (mutual TLS with ``credentials``, else
    plaintext) and return the port bound; a refusal is one :class:`ConfigError` that
    starts with ``what`` and ends with ``fix``."""
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        if credentials is None:
            bound = server.add_insecure_port(target)
        else:
            bound = server.add_secure_port(target, credentials.grpc())
    except RuntimeError as exc:
        raise ConfigError(f"{what} {target} ({exc}); {fix}") from None
    if bound == 0:
        raise ConfigError(
            f"{what} {target}: the port is taken or the host is not an address of this "
            f"machine; {fix}"
        )
    return int(bound)


class LearnerServer:
    """A gRPC server hosting one learner on ``host:port`` (``port=0``: a free one).

    With ``credentials`` (see :mod:`colearning.network.tls`) it speaks mutual TLS only
    and refuses clients its CA did not sign; without, it is plaintext, which
    ``colearn learner serve`` allows only with ``--insecure``.

    Examples
    --------
    >>> from colearning.testing import QuadraticLearner
    >>> server = LearnerServer(QuadraticLearner(target=[1.0]), "learner-0").start()
    >>> server.port > 0
    True
    >>> server.stop()
    """

    def __init__(
        self,
        learner: MachineLearningInterface,
        learner_id: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        credentials: ServerCredentials | None = None,
        max_workers: int = 8,
        **service_options: Any,
    ) -> None:
        share_malloc_arena()
        if credentials is None and service_options.get("coordinators") is not None:
            raise ConfigError(
                "a learner server checks its coordinator's certificate only with TLS "
                "credentials; plaintext clients have no identity"
            )
        self.service = LearnerService(learner, learner_id, **service_options)
        self.host = host
        self._requested_port = port
        self._credentials = credentials
        self._server = grpc.server(
            ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="colearning-serve"),
            options=SERVER_OPTIONS,
        )
        add_learner_service(self.service, self._server)
        from grpc_health.v1 import health, health_pb2, health_pb2_grpc

        self._health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        self._serving = health_pb2.HealthCheckResponse.SERVING
        self.port = 0

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def start(self) -> LearnerServer:
        port = listen(
            self._server,
            self.host,
            self._requested_port,
            self._credentials,
            "cannot listen on",
            "choose another --port or --host",
        )
        self.port = port
        self._server.start()
        for service in ("", SERVICE):
            self._health.set(service, self._serving)
        log.info(
            "serving %s (task %s) on %s with %s; weights %d arrays, id %s; accepts up to %d bytes",
            self.service.learner_id,
            self.service.task,
            self.address,
            "mutual TLS" if self._credentials is not None else "PLAINTEXT (--insecure)",
            len(self.service.spec.entries),
            _short(self.service.current_id),
            self.service.max_bytes,
        )
        return self

    def stop(self, grace: float | None = 0.5) -> None:
        self._health.enter_graceful_shutdown()
        self._server.stop(grace).wait()

    def wait(self) -> None:
        self._server.wait_for_termination()

    def __enter__(self) -> LearnerServer:
        return self.start() if self.port == 0 else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
