"""After a failure: how long a sync connection pauses, and waking the pauses of a
server that is back.

The pause (`reconnect_delay`) is exponential backoff with jitter, at most
MAX_BACKOFF (15 minutes): right for a server that is gone or refuses us. It is far
too long for the common case, a server restarted for a minute or two: the IDLE
connections of every account drop at once, and with plain backoff they come back
up to 15 minutes after the server does. So a connection of a *healthy* account lost
to an *outage* pauses at most POSTA_SYNC_RECONNECT_CAP seconds (60 by default):

- an outage is a server that cannot be reached or a connection that dropped
  (connection refused, no answer in time, reset or closed mid-command, name not
  resolving): `failure_kind` is OUTAGE. Throttling (RFC 5530 [THROTTLED],
  [UNAVAILABLE], ...) keeps the full backoff, since the server asked us to slow
  down; so do a refused login and any error that retrying soon would only repeat;
- healthy is an account that completed a sync within HEALTHY_WINDOW (its
  `last_success_at`; a full pass every RESYNC_SECONDS and every new mail record
  one) and whose thread has no refused login in its current run of failures. An
  outage longer than the window is no blip any more: the full backoff then spares
  a server that may be gone for good, and the wake-up below still brings the
  account back as soon as one connection to the server succeeds.

Waking (`HostWakeups`): the connections of one sync process to one server
("host:port", host case-folded) fail together and should come back together. A
thread that pauses after an outage registers its `resume` Event under its server;
a thread that logs in there after failing (a reconnect on its own timer) wakes all
of them, and each then waits a random moment of up to `Timing.wake_spread` so the
server does not get every login in the same instant. Two rules keep this from
multiplying logins when a server accepts logins but drops every session: a thread
whose pause was ended by a wake does not wake others in turn, and a server is woken
at most once per POSTA_SYNC_RECONNECT_CAP seconds, which is no more often than the
cap itself makes healthy accounts retry. Across processes nothing is shared but the
database: each lease owner's own cap applies.
"""

from __future__ import annotations

import enum
import threading
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from posta.accounts.models import Account
from posta.mailproto import errors, failures

MAX_BACKOFF = 15 * 60
HEALTHY_WINDOW = timedelta(minutes=30)


class Failure(enum.Enum):
    """What a failure says about the server, for the pause that follows it."""

    OUTAGE = "outage"  # unreachable, or the connection dropped
    THROTTLED = "throttled"  # RFC 5530: the server asks us to slow down
    REFUSED = "refused"  # the settings must change: login refused, TLS, secret unreadable
    OTHER = "other"  # anything else: retrying soon would likely fail the same way


def failure_kind(exc: BaseException) -> Failure:
    """The kind of `exc` (see Failure), read from the failure table
    (posta.mailproto.failures): what the server asked to slow down for is
    THROTTLED, anything else retried is OUTAGE, what the account's settings must
    fix is REFUSED, the rest (and anything not a MailError: a fault of ours) OTHER."""
    if not isinstance(exc, errors.MailError):
        return Failure.OTHER
    rule = failures.rule_for_error(exc)
    if rule.slow_down:
        return Failure.THROTTLED
    return _KINDS[rule.verdict]


_KINDS = {
    failures.Verdict.RETRY: Failure.OUTAGE,
    failures.Verdict.ACCOUNT: Failure.REFUSED,
    failures.Verdict.PERMANENT: Failure.OTHER,
}


def is_healthy(last_success_at: datetime | None, *, now: datetime) -> bool:
    """True when the last completed sync is at most HEALTHY_WINDOW old."""
    return last_success_at is not None and now - last_success_at <= HEALTHY_WINDOW


def reconnect_delay(failures: int, *, base: float, cap: float | None, jitter: float) -> float:
    """The pause before the next attempt after `failures` failures in a row.

    `base * 2**failures`, at most `cap` (when given) and MAX_BACKOFF, then scaled by
    0.5 to 1 with `jitter` (0 <= jitter < 1) so that connections dropped together
    do not come back in step.
    """
    limit = MAX_BACKOFF if cap is None else min(cap, MAX_BACKOFF)
    return float(min(base * 2.0 ** min(failures, 20), limit) * (0.5 + jitter / 2))


def cap_for(account_id: int, kind: Failure, *, refused_before: bool) -> float | None:
    """POSTA_SYNC_RECONNECT_CAP when a connection of account `account_id` failed by
    an outage while the account was healthy (module docstring), else None."""
    if kind is not Failure.OUTAGE or refused_before:
        return None
    last_success = (
        Account.objects.filter(pk=account_id).values_list("last_success_at", flat=True).first()
    )
    if not is_healthy(last_success, now=timezone.now()):
        return None
    # Read at run time: the setting may differ per process (and per test).
    return float(settings.POSTA_SYNC_RECONNECT_CAP)


def server_of(account: Account) -> str:
    """The key of the account's IMAP server: the connections that fail together."""
    return f"{account.imap_host.casefold()}:{account.imap_port}"


class HostWakeups:
    """The pauses of the threads of this process waiting to reconnect, by server."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._pausing: dict[str, set[threading.Event]] = {}
        self._wakes: dict[str, int] = {}  # how many wakes each server has had
        self._last_wake: dict[str, float] = {}  # monotonic time of the last one

    def generation(self, server: str) -> int:
        """A mark to pass to `pause`: a wake after it ends that pause at once."""
        with self._guard:
            return self._wakes.get(server, 0)

    def pause(self, server: str, seconds: float, *, resume: threading.Event, since: int) -> bool:
        """Wait up to `seconds` for `resume`, which `wake(server)` sets (as does the
        thread's own stop). True when a wake ended the pause, also one that came
        after `since` (`generation`) but before the pause began."""
        with self._guard:
            if self._wakes.get(server, 0) != since:
                return True
            self._pausing.setdefault(server, set()).add(resume)
        try:
            resume.wait(seconds)
        finally:
            with self._guard:
                waiting = self._pausing.get(server, set())
                waiting.discard(resume)
                if not waiting:
                    self._pausing.pop(server, None)
                woken = self._wakes.get(server, 0) != since
        return woken

    def wake(self, server: str, *, min_interval: float) -> int:
        """End every pause on `server`, unless it was woken less than `min_interval`
        seconds ago; returns how many pauses were ended."""
        now = time.monotonic()
        with self._guard:
            last = self._last_wake.get(server)
            if last is not None and now - last < min_interval:
                return 0
            self._last_wake[server] = now
            self._wakes[server] = self._wakes.get(server, 0) + 1
            # Set under the lock: a pause that already ended (and left) must not
            # find its Event set later, when it pauses again.
            waiting = self._pausing.get(server, set())
            for resume in waiting:
                resume.set()
            return len(waiting)

    def pausing(self, server: str) -> int:
        """How many threads pause before reconnecting to `server` right now."""
        with self._guard:
            return len(self._pausing.get(server, ()))


HOST_WAKEUPS = HostWakeups()
