"""Learners on their own machines: gRPC learner servers and the pool that drives them.

- :class:`LearnerServer` hosts one learner (what ``colearn learner serve`` runs).
- :class:`GrpcPool` is the driver's pool over learner servers; the same
  :class:`~colearning.core.experiment.Experiment` loop drives it as in-process learners.
- :mod:`colearning.network.tls`: mutual TLS and a small CA (``colearn certs``).
- :mod:`colearning.network.launcher`: learner servers forked from one warm process
  (``colearn run --processes``); :mod:`colearning.network.processes`: servers as
  ``colearn learner serve`` subprocesses.

The wire schema is ``_proto/colearning.proto``; its protobuf types never leave this
package. Needs the ``grpc`` extra: ``pip install 'colearning[grpc]'``.

The names below are imported when first used, so that ``colearn run --processes`` can
start its learner servers before the coordinator pays for importing gRPC.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from colearning.core.exceptions import require_extra

require_extra("grpc", "grpc", "colearning.network (learners over gRPC)")
require_extra("google.protobuf", "grpc", "colearning.network (learners over gRPC)")

if TYPE_CHECKING:
    from colearning.network.convert import PROTOCOL_VERSION, LearnerDescription
    from colearning.network.pool import GrpcPool, NetworkError, parse_endpoints
    from colearning.network.server import LearnerServer, LearnerService
    from colearning.network.transfer import CHUNK, DEFAULT_MAX_BYTES, TransferError

_WHERE = {
    "PROTOCOL_VERSION": "convert",
    "LearnerDescription": "convert",
    "GrpcPool": "pool",
    "NetworkError": "pool",
    "parse_endpoints": "pool",
    "LearnerServer": "server",
    "LearnerService": "server",
    "CHUNK": "transfer",
    "DEFAULT_MAX_BYTES": "transfer",
    "TransferError": "transfer",
}

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


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'colearning.network' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"colearning.network.{module}"), name)
    globals()[name] = value
    return value
