"""Weights transfer coordinator -> learner over loopback, against a raw TCP copy.

Like for like: both receivers run in a fresh subprocess, hash every byte with SHA-256
as it arrives and check the id; gRPC streams the codec's bytes in 1 MiB chunks
(``colearning.network.transfer``), raw TCP ``sendall``s them into a preallocated
buffer. Sizes and methods are interleaved, repetition by repetition; the medians are
printed with their ratio (gRPC MB/s over TCP MB/s), the receiver's peak memory growth
(peak RSS minus RSS before the transfer) and, last, the fan-out of one 100 MB proposal
to 4 learners at once (aggregate MB/s).

    .venv/bin/python bench/network_transfer.py                 # 10 MB, 100 MB, 1 GB; 5 reps
    .venv/bin/python bench/network_transfer.py --sizes 10 100 --reps 7
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time

MB = 1_000_000


def rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# -- receivers (run in a subprocess: python bench/network_transfer.py --serve KIND) ----------


def serve_grpc() -> None:
    from concurrent.futures import ThreadPoolExecutor

    import grpc

    from colearning.network._proto import colearning_pb2 as pb
    from colearning.network._proto import colearning_pb2_grpc as pb_grpc
    from colearning.network.server import SERVER_OPTIONS
    from colearning.network.transfer import receive_weights

    class Sink(pb_grpc.LearnerServicer):  # type: ignore[misc]
        def Accept(self, request_iterator, context):
            before = rss()
            got = receive_weights(request_iterator, 8 << 30)  # checks size, hash
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            print(f"growth {max(0, peak - before)}", flush=True)
            del got
            return pb.AcceptReply()

    server = grpc.server(ThreadPoolExecutor(4), options=SERVER_OPTIONS)
    pb_grpc.add_LearnerServicer_to_server(Sink(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    server.wait_for_termination()


def serve_tcp() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    print(listener.getsockname()[1], flush=True)
    while True:
        conn, _ = listener.accept()
        with conn:
            head = conn.recv(72, socket.MSG_WAITALL)
            size, wid = int(head[:8].hex(), 16), head[8:].decode()
            buf = bytearray(size)
            view = memoryview(buf)
            digest = hashlib.sha256()
            got = 0
            while got < size:
                n = conn.recv_into(view[got:], min(size - got, 1 << 20))
                if n == 0:
                    raise SystemExit("truncated")
                digest.update(view[got : got + n])
                got += n
            assert digest.hexdigest() == wid
            conn.sendall(b"k")


# -- senders ------------------------------------------------------------------------------------


def start(kind: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def grpc_channel(port: int) -> object:
    """A connected channel, as the coordinator's are after the first round."""
    import grpc

    from colearning.network.server import CHANNEL_OPTIONS

    channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=CHANNEL_OPTIONS)
    grpc.channel_ready_future(channel).result(timeout=60)
    return channel


def grpc_send(channel: object, blob: bytes, wid: str) -> None:
    from colearning.network._proto import colearning_pb2_grpc as pb_grpc
    from colearning.network.transfer import send_weights

    pb_grpc.LearnerStub(channel).Accept(send_weights(wid, blob), timeout=600)


def tcp_send(port: int, blob: bytes, wid: str) -> None:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(len(blob).to_bytes(8, "big") + wid.encode())
        s.sendall(blob)
        s.recv(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", choices=["grpc", "tcp"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000], help="MB")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    if args.serve == "grpc":
        return serve_grpc()
    if args.serve == "tcp":
        return serve_tcp()

    rows = []
    for size in args.sizes:
        blob = os.urandom(size * MB)
        wid = hashlib.sha256(blob).hexdigest()
        times: dict[str, list[float]] = {"grpc": [], "tcp": []}
        growth: list[int] = []
        for _ in range(args.reps):
            for kind, send in (("grpc", grpc_send), ("tcp", tcp_send)):
                proc, port = start(kind)  # a fresh receiver each time
                target = grpc_channel(port) if kind == "grpc" else port
                t0 = time.perf_counter()
                send(target, blob, wid)  # type: ignore[operator]
                times[kind].append(time.perf_counter() - t0)
                if kind == "grpc":
                    target.close()  # type: ignore[attr-defined]
                if kind == "grpc":
                    assert proc.stdout is not None
                    growth.append(int(proc.stdout.readline().split()[1]))
                proc.kill()
                proc.wait()
        g, t = statistics.median(times["grpc"]), statistics.median(times["tcp"])
        rows.append((size, g, t, size / g, size / t, statistics.median(growth)))
        del blob
    print(
        f"{'size':>8} {'grpc s':>8} {'tcp s':>8} {'grpc MB/s':>10} {'tcp MB/s':>9} "
        f"{'ratio':>6} {'rx growth':>10}"
    )
    for size, g, t, gm, tm, grow in rows:
        print(
            f"{size:>5} MB {g:>8.3f} {t:>8.3f} {gm:>10.0f} {tm:>9.0f} {gm / tm:>6.2f} "
            f"{grow / MB:>7.0f} MB"
        )

    # fan-out: one 100 MB proposal to 4 learners at once, each on its own stream
    blob = os.urandom(100 * MB)
    wid = hashlib.sha256(blob).hexdigest()
    rates = []
    for _ in range(args.reps):
        receivers = [start("grpc") for _ in range(4)]
        channels = [grpc_channel(p) for _, p in receivers]
        threads = [threading.Thread(target=grpc_send, args=(c, blob, wid)) for c in channels]
        t0 = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        rates.append(4 * 100 / (time.perf_counter() - t0))
        for c in channels:
            c.close()  # type: ignore[attr-defined]
        for proc, _ in receivers:
            proc.kill()
            proc.wait()
    print(
        f"fan-out of 100 MB to 4 learners: {statistics.median(rates):.0f} MB/s aggregate "
        f"(median of {args.reps})"
    )


if __name__ == "__main__":
    main()
