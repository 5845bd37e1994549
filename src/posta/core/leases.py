"""What every lease in Posta shares: who holds it, and a heartbeat that keeps it.

A lease is a row that a worker takes with one conditional UPDATE and that lasts
a set time unless renewed (the sync's account leases, the remote actions' claims,
POP3 sources, out-of-office replies). While the work runs, a `Heartbeat` renews
it every third of that time from a thread, so a live worker keeps its lease
however long one server command takes, and a killed worker's lease runs out on
its own. A failed renewal is logged and tried again at the next beat: the lease
stays good for a whole lease time, three beats.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable
from types import TracebackType

from django.db import connections

log = logging.getLogger(__name__)


def make_owner() -> str:
    """A holder id unique to this call: host, pid and a random part (two worker
    threads of one process are two holders)."""
    return f"{socket.gethostname()[:50]}:{os.getpid()}:{secrets.token_hex(4)}"


class Heartbeat:
    """Calls `renew` every third of `lease_seconds()` from a thread while the
    `with` block runs.

    `lease_seconds` is read at every beat, so a setting changed meanwhile takes
    effect. The thread has its own database connection (Django's are per thread)
    and closes it when it stops. `name` names the thread and the log lines.
    """

    def __init__(
        self, renew: Callable[[], object], *, lease_seconds: Callable[[], float], name: str
    ) -> None:
        self.name = name
        self._renew = renew
        self._lease_seconds = lease_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{name}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=self._lease_seconds())

    def _run(self) -> None:
        try:
            while not self._stop.wait(self._lease_seconds() / 3):
                try:
                    self._renew()
                except Exception:
                    log.exception("could not renew the lease of %s", self.name)
        finally:
            connections.close_all()
