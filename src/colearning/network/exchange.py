"""Weights by id between peer-mode parties: the ``colearning.v1.Weights`` service.

In peer mode (``colearn peer --serve HOST:PORT``) each party hosts a
:class:`WeightsServer` holding the weights it published (its proposals, and the
initial weights if its model starts the experiment); the others fetch them by id with
:func:`fetch_weights` from the endpoint the party announced on chain. It is the
learner server's transport, not a second one: the same header-and-chunks stream
(:func:`~colearning.network.transfer.send_weights`, verified on arrival by
:func:`~colearning.network.transfer.receive_weights`: the size limit before any
allocation, truncation, and the SHA-256 against the id), the same protocol metadata,
and the same mutual TLS (:mod:`colearning.network.tls`). The service has one call,
``Fetch``: a party's server never lets another drive its learner.

Endpoints are ``grpcs://HOST:PORT`` (mutual TLS: the server's certificate must name
the party's learner id, ``learner-I`` for the I-th registered address) or
``grpc://HOST:PORT`` (plaintext, only where both sides chose it).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc

from colearning.core.exceptions import LedgerError
from colearning.core.protocol import Reason
from colearning.network._proto import colearning_pb2 as pb
from colearning.network.convert import PROTOCOL_VERSION, RemoteFailure, failure_to_proto
from colearning.network.server import (
    CHANNEL_OPTIONS,
    META_PROTOCOL,
    META_VERSION,
    SERVER_OPTIONS,
    _library_version,
    listen,
)
from colearning.network.tls import ClientCredentials, ServerCredentials, peer_identity
from colearning.network.transfer import (
    DEFAULT_MAX_BYTES,
    RemoteFailureError,
    TransferError,
    parse_message,
    receive_weights,
    send_weights,
    serialize_message,
)

log = logging.getLogger("colearning.network.exchange")

SERVICE = "colearning.v1.Weights"
SCHEMES = ("grpc://", "grpcs://")


def parse_endpoint(endpoint: str) -> tuple[bool, str]:
    """``(tls, "HOST:PORT")`` of a ``grpc://`` or ``grpcs://`` endpoint."""
    for scheme in SCHEMES:
        if endpoint.startswith(scheme):
            address = endpoint[len(scheme) :]
            host, sep, port = address.rpartition(":")
            if sep and host and port.isdigit() and 0 < int(port) < 65536:
                return scheme == "grpcs://", address
    raise LedgerError(
        f"the endpoint {endpoint!r} is not grpc://HOST:PORT or grpcs://HOST:PORT (that party "
        "serves its weights another way, e.g. from a shared directory: --exchange-dir)"
    )


class WeightsService:
    """``colearning.v1.Weights`` over a mapping of weights id to blob."""

    def __init__(self, blobs: dict[str, bytes], name: str) -> None:
        self.blobs = blobs
        self.name = name

    def Fetch(
        self, request: pb.FetchRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.WeightsMessage | bytes]:
        meta = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        theirs = meta.get(META_PROTOCOL)
        who = peer_identity(context) or context.peer()
        if theirs != str(PROTOCOL_VERSION):
            log.warning("refused fetch from %s: protocol %s", who, theirs)
            context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"{self.name} speaks colearning wire protocol {PROTOCOL_VERSION} (colearning "
                f"{_library_version()}); the caller speaks {theirs or 'none'} (colearning "
                f"{meta.get(META_VERSION, 'an unknown version')}). Every party must install "
                "the same colearning version",
            )
        wid = request.weights_id
        blob = self.blobs.get(wid)
        if blob is None:
            log.info("fetch of %s... from %s: not held", wid[:12], who)
            message = f"{self.name} does not hold weights {wid[:12]}..."
            yield pb.WeightsMessage(failure=failure_to_proto(RemoteFailure(Reason.RAISED, message)))
            return
        log.info("sent %s... (%d bytes) to %s", wid[:12], len(blob), who)
        yield from send_weights(wid, blob)


class WeightsServer:
    """A gRPC server of a party's published weights on ``host:port`` (``0``: a free one).

    With ``credentials`` it speaks mutual TLS only: a client must present a
    certificate the CA signed (another party's). :meth:`publish` adds a blob.

    Examples
    --------
    >>> from colearning.core.codec import encode, weights_id
    >>> from colearning.testing import QuadraticLearner
    >>> blob = encode(QuadraticLearner(target=[1.0]).mli_get_current_weights())
    >>> server = WeightsServer("learner-0").start()
    >>> server.publish(weights_id(blob), blob)
    >>> fetch_weights(server.endpoint, weights_id(blob)) == blob
    True
    >>> server.stop()
    """

    def __init__(
        self,
        name: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        credentials: ServerCredentials | None = None,
        max_workers: int = 8,
    ) -> None:
        self.name = name
        self.host = host
        self._requested_port = port
        self._credentials = credentials
        self._blobs: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._server = grpc.server(
            ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="colearning-weights"),
            options=SERVER_OPTIONS,
        )
        service = WeightsService(self._blobs, name)
        handlers = {
            "Fetch": grpc.unary_stream_rpc_method_handler(
                service.Fetch,
                request_deserializer=pb.FetchRequest.FromString,
                response_serializer=serialize_message,
            )
        }
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, handlers),)
        )
        self.port = 0

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def endpoint(self) -> str:
        return f"{'grpcs' if self._credentials is not None else 'grpc'}://{self.address}"

    def publish(self, wid: str, blob: bytes) -> None:
        with self._lock:
            self._blobs[wid] = blob

    def start(self) -> WeightsServer:
        port = listen(
            self._server,
            self.host,
            self._requested_port,
            self._credentials,
            "--serve",
            "choose another HOST:PORT (port 0 takes a free one)",
        )
        self.port = port
        self._server.start()
        log.info(
            "%s: serving weights by id on %s with %s",
            self.name,
            self.address,
            "mutual TLS" if self._credentials is not None else "PLAINTEXT (--insecure)",
        )
        return self

    def stop(self, grace: float | None = 0.5) -> None:
        self._server.stop(grace).wait()


def fetch_weights(
    endpoint: str,
    wid: str,
    *,
    credentials: ClientCredentials | None = None,
    server_name: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: float = 60.0,
) -> bytes:
    """The bytes of weights ``wid`` from the party at ``endpoint``, verified against
    the id as they arrive (a :class:`TransferError` otherwise).

    A ``grpcs://`` endpoint needs ``credentials``, and the server's certificate must
    name ``server_name``; a ``grpc://`` one is refused when ``credentials`` are given
    (no fallback from TLS to plaintext).
    """
    tls, address = parse_endpoint(endpoint)
    if tls and credentials is None:
        raise LedgerError(
            f"{endpoint} serves over mutual TLS; this party has no certificate: pass --certs DIR"
        )
    if not tls and credentials is not None:
        raise LedgerError(
            f"{endpoint} serves plaintext; this party speaks mutual TLS only (--certs), and "
            "there is no fallback to plaintext: that party must serve with --certs too"
        )
    options = list(CHANNEL_OPTIONS)
    if credentials is not None:
        if server_name is not None:
            options.append(("grpc.ssl_target_name_override", server_name))
        channel = grpc.secure_channel(address, credentials.grpc(), options=options)
    else:
        channel = grpc.insecure_channel(address, options=options)
    try:
        call = channel.unary_stream(
            f"/{SERVICE}/Fetch",
            request_serializer=pb.FetchRequest.SerializeToString,
            response_deserializer=parse_message,
        )
        metadata = [(META_PROTOCOL, str(PROTOCOL_VERSION)), (META_VERSION, _library_version())]
        stream = call(pb.FetchRequest(weights_id=wid), timeout=timeout, metadata=metadata)
        try:
            got = receive_weights(stream, max_bytes)
        except RemoteFailureError as exc:
            raise LedgerError(f"{endpoint}: {exc}") from None
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            details = exc.details() if hasattr(exc, "details") else str(exc)
            hint = ""
            if credentials is not None and code == grpc.StatusCode.UNAVAILABLE:
                hint = (
                    f" (if it is up, the TLS handshake may have failed: its certificate must "
                    f"be signed by the CA in --certs and name {server_name!r})"
                )
            raise LedgerError(
                f"fetching {wid[:12]}... from {endpoint} failed: "
                f"{getattr(code, 'name', code)}: {details}{hint}"
            ) from None
        if got.weights_id != wid:
            raise TransferError(
                f"{endpoint} sent weights {got.weights_id[:12]}... when asked for {wid[:12]}..."
            )
        if got.blob is None:
            raise TransferError(f"{endpoint} sent no bytes for {wid[:12]}... (only its id)")
        return bytes(got.blob)
    finally:
        channel.close()


__all__ = ["WeightsServer", "WeightsService", "fetch_weights", "parse_endpoint"]
