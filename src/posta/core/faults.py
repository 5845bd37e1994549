"""Named points where tests kill the process, to prove crash safety.

`point(name)` does nothing unless the environment variable POSTA_KILL_AT names
that point (optionally `name:N` to die at its N-th pass); then the process sends
itself SIGKILL right there, as a power cut would. In-process tests `arm(name)`
instead: the point then raises SimulatedCrash, a BaseException no handler of ours
catches, so nothing after the point runs. Production does neither.
"""

from __future__ import annotations

import os
import signal

_passes: dict[str, int] = {}
_armed: set[str] = set()


class SimulatedCrash(BaseException):
    """The process "died" at a fault point (tests only)."""


def arm(name: str) -> None:
    """Make the next pass through point `name` raise SimulatedCrash (once)."""
    _armed.add(name)


def point(name: str) -> None:
    """Die here when POSTA_KILL_AT asks for it (see the module docstring)."""
    if name in _armed:
        _armed.discard(name)
        raise SimulatedCrash(name)
    wanted = os.environ.get("POSTA_KILL_AT")
    if not wanted:
        return
    target, _, count = wanted.partition(":")
    if target != name:
        return
    _passes[name] = _passes.get(name, 0) + 1
    if _passes[name] >= int(count or "1"):
        os.kill(os.getpid(), signal.SIGKILL)
