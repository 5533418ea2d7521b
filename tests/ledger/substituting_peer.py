"""``colearn peer`` as a party that cheats on the exchange: a real peer process with the
real gRPC exchange, except that it serves a changed copy of each weights it publishes
under the original's id (an attacker substituting bytes, or a disk that damaged them).

    python tests/ledger/substituting_peer.py peer ARGS...   # the arguments of colearn peer
"""

from __future__ import annotations

import sys

from colearning.cli.main import main
from colearning.ledger import peer


class SubstitutingExchange(peer.GrpcExchange):
    def publish(self, wid: str, blob: bytes) -> None:
        changed = bytearray(blob)
        changed[-1] ^= 0xFF  # the last byte of the last array: still decodes, hashes otherwise
        self.server.publish(wid, bytes(changed))


if __name__ == "__main__":
    # only when run as the peer process: the suite's --doctest-modules imports this file
    # in the test process too, where replacing the class would make every later test's
    # exchange substitute its bytes
    peer.GrpcExchange = SubstitutingExchange  # type: ignore[misc]
    sys.exit(main(sys.argv[1:]))
