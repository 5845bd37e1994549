"""Login throttling: wrong passwords slow down, per user name and per address.

Each user name (as typed, case-folded) and each client address has a row counting
wrong passwords in a row. Once a count reaches its limit, sign-in for that name or
from that address is refused until ``locked_until``, whatever the password: the
first lock lasts ``POSTA_LOGIN_LOCKOUT_SECONDS`` and every further failure after it
doubles that, up to ``POSTA_LOGIN_LOCKOUT_MAX_SECONDS``. Attempts while locked are
refused without checking the password and do not count, so a locked account
cannot be locked for longer by someone hammering it, and a guesser gets at most
one try per lock. A count is forgotten after ``POSTA_LOGIN_FAILURE_WINDOW_SECONDS``
without failures, measured from the end of the last lock.

A right password clears the user name's count, not the address's: an address may
be shared (an office behind NAT) and one person signing in must not wipe out the
failures another caused. Administrators unlock names and addresses by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from posta.core.errors import PostaError
from posta.users.models import LoginThrottle

Kind = LoginThrottle.Kind


@dataclass(frozen=True)
class Policy:
    account_failures: int
    address_failures: int
    first_lockout: timedelta
    max_lockout: timedelta
    window: timedelta

    def limit(self, kind: str) -> int:
        return self.account_failures if kind == Kind.ACCOUNT else self.address_failures


def policy() -> Policy:
    return Policy(
        account_failures=max(1, settings.POSTA_LOGIN_ACCOUNT_FAILURES),
        address_failures=max(1, settings.POSTA_LOGIN_ADDRESS_FAILURES),
        first_lockout=timedelta(seconds=settings.POSTA_LOGIN_LOCKOUT_SECONDS),
        max_lockout=timedelta(seconds=settings.POSTA_LOGIN_LOCKOUT_MAX_SECONDS),
        window=timedelta(seconds=settings.POSTA_LOGIN_FAILURE_WINDOW_SECONDS),
    )


def account_key(username: str) -> str:
    """The key of a user name: case-folded, so "Anna" and "anna" count together."""
    return username.strip().casefold()[:255]


def _keys(username: str, address: str) -> list[tuple[str, str]]:
    keys = [(Kind.ACCOUNT.value, account_key(username))]
    if address:
        keys.append((Kind.ADDRESS.value, address[:255]))
    return keys


def locked_until(*, username: str, address: str, now: datetime | None = None) -> datetime | None:
    """When sign-in for this name from this address opens again; None if it is open."""
    now = now or timezone.now()
    latest: datetime | None = None
    for kind, key in _keys(username, address):
        row = LoginThrottle.objects.filter(kind=kind, key=key, locked_until__gt=now).first()
        if row and row.locked_until and (latest is None or row.locked_until > latest):
            latest = row.locked_until
    return latest


def throttled_error(until: datetime) -> PostaError:
    local = timezone.localtime(until)
    if local.date() == timezone.localdate():
        when = formats.time_format(local, "TIME_FORMAT")
    else:
        when = formats.date_format(local, "SHORT_DATETIME_FORMAT")
    return PostaError(
        "login_throttled",
        _("Too many failed sign-in attempts. Try again after %(time)s.") % {"time": when},
        status=429,
    )


def check_login_allowed(*, username: str, address: str, now: datetime | None = None) -> None:
    """Raise PostaError (429) while this name or this address is locked."""
    until = locked_until(username=username, address=address, now=now)
    if until is not None:
        raise throttled_error(until)


def _lockout(policy_: Policy, beyond: int) -> timedelta:
    # beyond = failures past the limit: 0 for the first lock, then doubling.
    seconds = policy_.first_lockout.total_seconds() * (2 ** min(beyond, 32))
    return min(timedelta(seconds=seconds), policy_.max_lockout)


def _count_failure(kind: str, key: str, now: datetime, policy_: Policy) -> None:
    row, _created = LoginThrottle.objects.select_for_update().get_or_create(
        kind=kind, key=key, defaults={"last_failure": now}
    )
    quiet_since = max(row.last_failure, row.locked_until or row.last_failure)
    if row.failures and now - quiet_since > policy_.window:
        row.failures = 0
        row.locked_until = None
    row.failures += 1
    row.last_failure = now
    limit = policy_.limit(kind)
    if row.failures >= limit:
        row.locked_until = now + _lockout(policy_, row.failures - limit)
    row.save(update_fields=["failures", "last_failure", "locked_until"])


def do_record_failure(*, username: str, address: str, now: datetime | None = None) -> None:
    """Count a wrong password for this name and this address (atomic per row)."""
    now = now or timezone.now()
    policy_ = policy()
    with transaction.atomic():
        for kind, key in _keys(username, address):
            _count_failure(kind, key, now, policy_)
    _forget_stale(now, policy_)


def _forget_stale(now: datetime, policy_: Policy) -> None:
    # Counts past their quiet window would be reset on their next failure anyway;
    # deleting them keeps names typed once by a guesser from piling up.
    cutoff = now - policy_.window
    LoginThrottle.objects.filter(last_failure__lt=cutoff).exclude(
        locked_until__gte=cutoff
    ).delete()


def do_record_success(*, username: str) -> None:
    """A right password, accepted: the name starts again from zero."""
    LoginThrottle.objects.filter(kind=Kind.ACCOUNT, key=account_key(username)).delete()


def do_unlock(*, kind: str, key: str) -> bool:
    """An administrator's unlock: forget the count. True if there was one."""
    deleted, _rows = LoginThrottle.objects.filter(kind=kind, key=key).delete()
    return deleted > 0


def locks(*, now: datetime | None = None) -> list[LoginThrottle]:
    """Names and addresses locked right now, for the administrator's user list."""
    now = now or timezone.now()
    return list(LoginThrottle.objects.filter(locked_until__gt=now).order_by("kind", "key"))
