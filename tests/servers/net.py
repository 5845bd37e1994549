"""Loopback port helpers shared by the test servers, and a proxy that fakes an outage."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago.

    The kernel picks it (bind to port 0); the socket is closed before returning, so
    another process may take it before the caller binds: callers retry on a collision.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports (see ``free_port`` for the race they still have)."""
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)


def is_listening(port: int, host: str = HOST) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


def wait_closed(ports: list[int], *, timeout: float = 10) -> bool:
    """Wait until none of ``ports`` accepts connections; False if some still do."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(is_listening(port) for port in ports):
            return True
        time.sleep(0.05)
    return False


class OutageProxy:
    """A loopback TCP proxy in front of a server, which a test takes down and up.

    Down, it drops every connection it carries and closes each new one at once,
    before the server's greeting: to a client, the server went away. Up, it passes
    traffic again. ``refused`` counts the connections closed while down, so a test
    can wait until a client has tried (and failed) a number of times.
    """

    def __init__(self, target_port: int, *, host: str = HOST) -> None:
        self.target = (host, target_port)
        self.listener = socket.create_server((HOST, 0))
        self.port = int(self.listener.getsockname()[1])
        self.refused = 0
        self._down = False
        self._lock = threading.Lock()
        self._live: set[socket.socket] = set()
        threading.Thread(target=self._accept, daemon=True).start()

    def down(self) -> None:
        """Drop every connection, and close new ones until ``up()``."""
        with self._lock:
            self._down = True
            live, self._live = self._live, set()
        for sock in live:
            _close(sock)

    def up(self) -> None:
        with self._lock:
            self._down = False

    def close(self) -> None:
        self.listener.close()
        self.down()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                down = self._down
                if down:
                    self.refused += 1
            if down:
                _close(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self._live.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        with self._lock:
            self._live.discard(src)
            self._live.discard(dst)
        _close(src)
        _close(dst)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
