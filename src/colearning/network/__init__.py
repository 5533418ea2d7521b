"""Learners on their own machines: gRPC learner servers and the pool that drives them.

- :class:`LearnerServer` hosts one learner (what ``colearn learner serve`` runs).
- :class:`GrpcPool` is the driver's pool over learner servers; the same
  :class:`~colearning.core.experiment.Experiment` loop drives it as in-process learners.
- :mod:`colearning.network.tls`: mutual TLS and a small CA (``colearn certs``).
- :mod:`colearning.network.processes`: learner servers as local subprocesses
  (``colearn run --processes``).

The wire schema is ``_proto/colearning.proto``; its protobuf types never leave this
package. Needs the ``grpc`` extra: ``pip install 'colearning[grpc]'``.
"""

from colearning.core.exceptions import require_extra

require_extra("grpc", "grpc", "colearning.network (learners over gRPC)")
require_extra("google.protobuf", "grpc", "colearning.network (learners over gRPC)")

from colearning.network.convert import PROTOCOL_VERSION, LearnerDescription  # noqa: E402
from colearning.network.pool import GrpcPool, NetworkError, parse_endpoints  # noqa: E402
from colearning.network.server import LearnerServer, LearnerService  # noqa: E402
from colearning.network.transfer import CHUNK, DEFAULT_MAX_BYTES, TransferError  # noqa: E402

__all__ = [
    "CHUNK",
    "DEFAULT_MAX_BYTES",
    "PROTOCOL_VERSION",
    "GrpcPool",
    "LearnerDescription",
    "LearnerServer",
    "LearnerService",
    "NetworkError",
    "TransferError",
    "parse_endpoints",
]
