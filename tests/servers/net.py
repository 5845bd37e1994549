"""Loopback port helpers shared by the test servers."""

from __future__ import annotations

import socket
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
