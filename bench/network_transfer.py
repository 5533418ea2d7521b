"""Weights transfer coordinator -> learner over loopback, against a raw TCP copy.

Like for like: both receivers run in a fresh subprocess, write every byte into one
buffer of the announced size (an anonymous memory map, as
``colearning.network.transfer`` does), hash it with SHA-256 as it arrives and check the
id; gRPC streams the codec's bytes in chunks (``colearning.network.transfer``, through
the same stub and service registration as ``GrpcPool`` and ``LearnerServer``), raw TCP
``sendall``s them. Sizes and methods are interleaved, repetition by repetition; the
medians are printed with their ratio (gRPC MB/s over TCP MB/s), the CPU seconds both
ends spent (a figure the machine's load changes less than the wall clock), the
receiver's peak memory growth (the peak, reset when the transfer starts, minus the
resident memory then) and, last, the fan-out of one 100 MB proposal to 4 learners at
once (aggregate MB/s). ``--chunks`` compares chunk sizes side by side instead.

    .venv/bin/python bench/network_transfer.py                 # 10 MB, 100 MB, 1 GB; 5 reps
    .venv/bin/python bench/network_transfer.py --sizes 10 100 --reps 7
    .venv/bin/python bench/network_transfer.py --chunks 256 512 1024 2048 4096 --sizes 10 100
"""

from __future__ import annotations

import argparse
import hashlib
import mmap
import os
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time

MB = 1_000_000


def _status(key: str) -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith(key))


def start_measuring() -> tuple[int, float]:
    """Reset the peak resident memory to the current (Linux clear_refs), and note it
    and the CPU time so far."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    return _status("VmRSS:"), cpu()


def report(before: tuple[int, float]) -> None:
    print(f"growth {max(0, _status('VmHWM:') - before[0])} {cpu() - before[1]}", flush=True)


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


#: Room for the largest chunk --chunks may try.
BIG_MESSAGES = [
    ("grpc.max_receive_message_length", 64 << 20),
    ("grpc.max_send_message_length", 64 << 20),
]


# -- receivers (run in a subprocess: python bench/network_transfer.py --serve KIND) ----------


def serve_grpc() -> None:
    from concurrent.futures import ThreadPoolExecutor

    import grpc

    from colearning.network._proto import colearning_pb2 as pb
    from colearning.network._proto import colearning_pb2_grpc as pb_grpc
    from colearning.network.server import SERVER_OPTIONS
    from colearning.network.transfer import add_learner_service, receive_weights

    class Sink(pb_grpc.LearnerServicer):  # type: ignore[misc]
        def Accept(self, request_iterator, context):
            before = start_measuring()
            got = receive_weights(request_iterator, 8 << 30)  # checks size, hash
            report(before)
            del got
            return pb.AcceptReply()

    options = [o for o in SERVER_OPTIONS if "message_length" not in o[0]] + BIG_MESSAGES
    server = grpc.server(ThreadPoolExecutor(4), options=options)
    add_learner_service(Sink(), server)
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
            before = start_measuring()
            size, wid = int(head[:8].hex(), 16), head[8:].decode()
            view = memoryview(mmap.mmap(-1, size))
            digest = hashlib.sha256()
            got = 0
            while got < size:
                n = conn.recv_into(view[got:], min(size - got, 1 << 20))
                if n == 0:
                    raise SystemExit("truncated")
                digest.update(view[got : got + n])
                got += n
            assert digest.hexdigest() == wid
            report(before)
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

    options = [o for o in CHANNEL_OPTIONS if "message_length" not in o[0]] + BIG_MESSAGES
    channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=options)
    grpc.channel_ready_future(channel).result(timeout=60)
    return channel


def grpc_send(channel: object, blob: bytes, wid: str, chunk: int | None = None) -> None:
    from colearning.network.transfer import CHUNK, learner_stub, send_weights

    learner_stub(channel).Accept(send_weights(wid, blob, chunk=chunk or CHUNK), timeout=600)


def tcp_send(port: int, blob: bytes, wid: str, chunk: int | None = None) -> None:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(len(blob).to_bytes(8, "big") + wid.encode())
        s.sendall(blob)
        s.recv(1)


def one(kind: str, blob: bytes, wid: str, chunk: int | None = None) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds of both ends, receiver's memory growth: one transfer to
    a fresh receiver."""
    proc, port = start(kind)
    target = grpc_channel(port) if kind == "grpc" else port
    c0 = cpu()
    t0 = time.perf_counter()
    (grpc_send if kind == "grpc" else tcp_send)(target, blob, wid, chunk)  # type: ignore[arg-type]
    wall = time.perf_counter() - t0
    sender_cpu = cpu() - c0  # this process sends only, on its own threads
    if kind == "grpc":
        target.close()  # type: ignore[attr-defined]
    assert proc.stdout is not None
    _, growth, receiver_cpu = proc.stdout.readline().split()
    proc.kill()
    proc.wait()
    return wall, sender_cpu + float(receiver_cpu), int(growth)


def chunk_sweep(sizes: list[int], chunks_kib: list[int], reps: int) -> None:
    print(f"chunk sizes side by side (median of {reps} interleaved repetitions)")
    print(f"{'size':>8} {'chunk':>9} {'wall ms':>8} {'cpu ms':>7} {'MB/s':>6} {'x tcp':>6}")
    for size in sizes:
        blob = os.urandom(size * MB)
        wid = hashlib.sha256(blob).hexdigest()
        kinds = [("tcp", None)] + [("grpc", c << 10) for c in chunks_kib]
        got: dict[tuple[str, int | None], list[tuple[float, float, int]]] = {k: [] for k in kinds}
        for _ in range(reps):
            for kind, chunk in kinds:
                got[(kind, chunk)].append(one(kind, blob, wid, chunk))
        tcp = statistics.median(w for w, _, _ in got[("tcp", None)])
        for kind, chunk in kinds:
            wall = statistics.median(w for w, _, _ in got[(kind, chunk)])
            c = statistics.median(c for _, c, _ in got[(kind, chunk)])
            label = "raw tcp" if chunk is None else f"{chunk >> 10} KiB"
            print(
                f"{size:>5} MB {label:>9} {1000 * wall:>8.0f} {1000 * c:>7.0f} "
                f"{size / wall:>6.0f} {tcp / wall:>6.2f}"
            )
        del blob


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", choices=["grpc", "tcp"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000], help="MB")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument(
        "--chunks", type=int, nargs="+", metavar="KIB", help="compare these chunk sizes"
    )
    parser.add_argument("--no-fan-out", action="store_true")
    args = parser.parse_args()
    if args.serve == "grpc":
        return serve_grpc()
    if args.serve == "tcp":
        return serve_tcp()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    if args.chunks:
        chunk_sweep(args.sizes, args.chunks, args.reps)
        return None

    rows = []
    for size in args.sizes:
        blob = os.urandom(size * MB)
        wid = hashlib.sha256(blob).hexdigest()
        got: dict[str, list[tuple[float, float, int]]] = {"grpc": [], "tcp": []}
        for _ in range(args.reps):
            for kind in ("grpc", "tcp"):
                got[kind].append(one(kind, blob, wid))
        med = {k: [statistics.median(x[i] for x in v) for i in range(3)] for k, v in got.items()}
        rows.append((size, med["grpc"], med["tcp"]))
        del blob
    print(
        f"{'size':>8} {'grpc s':>8} {'tcp s':>8} {'grpc MB/s':>10} {'tcp MB/s':>9} "
        f"{'ratio':>6} {'grpc cpu':>9} {'tcp cpu':>8} {'rx growth':>10} {'x payload':>9}"
    )
    for size, (g, gc, grow), (t, tc, _) in rows:
        print(
            f"{size:>5} MB {g:>8.3f} {t:>8.3f} {size / g:>10.0f} {size / t:>9.0f} "
            f"{t / g:>6.2f} {gc:>8.3f}s {tc:>7.3f}s {grow / MB:>7.0f} MB {grow / (size * MB):>9.2f}"
        )
    if args.no_fan_out:
        return None

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
