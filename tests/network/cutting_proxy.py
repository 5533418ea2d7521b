"""A TCP relay between the coordinator and one learner server that can cut a weights
stream off part way, or hold it there while the test kills the server.

It counts the bytes relayed towards the server once armed; when ``after`` of them have
passed it either closes both sides of that connection (``cut``) or stops relaying and
sets ``held`` (``hold``), so the fault happens mid-stream by construction, not by
timing. Later connections (gRPC reconnecting) are relayed whole.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class CuttingProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._lock = threading.Lock()
        self._armed: tuple[str, int] | None = None
        self.held = threading.Event()  # a stream is held part way (``hold``)
        self.release = threading.Event()  # let a held stream go: its connection closes
        self.cuts = 0
        self.relayed_at_cut = 0
        self._closed = False
        threading.Thread(target=self._accept, daemon=True, name="proxy-accept").start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def arm(self, action: str, after: int) -> None:
        """The next ``after`` bytes towards the server pass; then ``action`` ('cut' or
        'hold') happens to the connection carrying them."""
        assert action in ("cut", "hold")
        with self._lock:
            self._armed = (action, after)
            self._counted = 0

    def close(self) -> None:
        self._closed = True
        self.release.set()
        self.listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, towards_server: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if towards_server:
                    action = self._count(len(data))
                    if action is not None:
                        dst.sendall(data[: self.relayed_at_cut])
                        if action == "hold":
                            self.held.set()
                            self.release.wait()
                        break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def _count(self, n: int) -> str | None:
        """The action due once these ``n`` bytes pass, if any (``relayed_at_cut`` then
        holds how many of them still go through)."""
        with self._lock:
            if self._armed is None:
                return None
            action, after = self._armed
            if self._counted + n < after:
                self._counted += n
                return None
            self.relayed_at_cut = after - self._counted
            self._armed = None
            self.cuts += 1
            return action
