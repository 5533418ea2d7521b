"""A receiver in a fresh process, for test_transfer's memory check: serves Accept over
gRPC, receives and decodes each transfer, and prints how far its resident memory rose
above what it was when the transfer began (the peak, reset first: /proc clear_refs)."""

import sys
from concurrent.futures import ThreadPoolExecutor

import grpc

from colearning.core.codec import decode
from colearning.network._proto import colearning_pb2 as pb
from colearning.network._proto import colearning_pb2_grpc as pb_grpc
from colearning.network.server import SERVER_OPTIONS
from colearning.network.transfer import TransferError, add_learner_service, receive_weights


def rss() -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmRSS:"))


def peak() -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmHWM:"))


class Receiver(pb_grpc.LearnerServicer):
    def Accept(self, request_iterator, context):
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # the peak restarts from here
        before = rss()
        try:
            got = receive_weights(request_iterator, 8 << 30)
            weights = decode(got.blob)
            outcome = f"decoded {len(weights.arrays)} arrays"
        except TransferError as exc:
            outcome = f"refused: {exc}"
        print(f"{peak() - before} {outcome}", flush=True)
        return pb.AcceptReply()


def main() -> None:
    server = grpc.server(ThreadPoolExecutor(2), options=SERVER_OPTIONS)
    add_learner_service(Receiver(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    sys.stdin.read()  # until the test closes our stdin
    server.stop(None)


if __name__ == "__main__":
    main()
