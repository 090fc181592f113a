"""TCP proxies in front of Azurite that misbehave on purpose: one cuts a connection in the middle
of a response (the network failing mid-blob), one forwards responses slowly (a download long
enough to interrupt). Real sockets; the SDK and the CLI see a real network."""

from __future__ import annotations

import socket
import threading
import time
from typing import Optional


class Proxy:
    """Forwards 127.0.0.1:`port` to Azurite's `upstream_port`. Responses on each connection are
    cut once `cut_after` bytes went through (`cuts` counts it), and paced to `rate` bytes/s."""

    def __init__(self, upstream_port: int, *, cut_after: Optional[int] = None,
                 rate: Optional[float] = None) -> None:
        self.upstream_port = upstream_port
        self.cut_after = cut_after
        self.rate = rate
        self.cuts = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list = []
        self._threads: list = []
        self._lock = threading.Lock()
        self._spawn(self._accept)

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            self._sockets += [client, upstream]
            self._spawn(self._pump, client, upstream, False)
            self._spawn(self._pump, upstream, client, True)

    def _pump(self, src, dst, response: bool) -> None:
        sent = 0
        limit = self.cut_after if response else None
        block = 16 * 1024 if (response and self.rate) else 64 * 1024
        try:
            while True:
                data = src.recv(block)
                if not data:
                    break
                if limit is not None and sent + len(data) > limit:
                    dst.sendall(data[: limit - sent])
                    with self._lock:
                        self.cuts += 1
                    break
                dst.sendall(data)
                sent += len(data)
                if response and self.rate:
                    time.sleep(len(data) / self.rate)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def close(self) -> None:
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() (Linux)
        except OSError:
            pass
        self._listener.close()
        for s in self._sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)  # wakes a pump blocked in recv(); close() would not
            except OSError:
                pass
            s.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> "Proxy":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class CuttingProxy(Proxy):
    """A proxy that drops a connection once it has forwarded `cut_after` bytes of responses on it."""

    def __init__(self, upstream_port: int, cut_after: int) -> None:
        super().__init__(upstream_port, cut_after=cut_after)


class SlowProxy(Proxy):
    """A proxy that forwards responses at about `rate` bytes per second per connection."""

    def __init__(self, upstream_port: int, rate: float) -> None:
        super().__init__(upstream_port, rate=rate)
