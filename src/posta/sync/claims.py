"""Claims on RemoteActions: a lease with a heartbeat.

A worker takes an action with one conditional UPDATE: pending -> running, or a
running action whose lease has run out (its worker died). The claim names the
worker (`claimed_by`) and lasts `lease_seconds()` (30 s unless
POSTA_ACTION_LEASE_SECONDS says otherwise). While the worker runs an account's
actions, a heartbeat (posta.core.leases) renews the leases it holds every third of that
time, so a live worker keeps its claims however long one server command takes,
and a killed worker's claims are free again well within a minute:

    pending --claim--> running --finish--> done | failed
       ^                  |
       +----lease out-----+   (sweep, or the next claim of any worker)

Both UPDATEs are atomic on SQLite and PostgreSQL (a row is re-checked after the
lock wait on PostgreSQL's READ COMMITTED), so two workers never hold one action.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, F, Min, OuterRef, Q
from django.utils import timezone

from posta.core.leases import Heartbeat
from posta.mail.models import RemoteAction

State = RemoteAction.State
OPEN_STATES = (State.PENDING, State.RUNNING)
DEFAULT_LEASE_SECONDS = 30.0


def lease_seconds() -> float:
    """How long a claim lasts without a heartbeat."""
    value = getattr(settings, "POSTA_ACTION_LEASE_SECONDS", DEFAULT_LEASE_SECONDS)
    return max(float(value), 1.0)


def lease() -> timedelta:
    return timedelta(seconds=lease_seconds())


def claimable(now: datetime) -> Q:
    """Pending, or running under a claim that ran out at `now`."""
    return Q(state=State.PENDING) | Q(state=State.RUNNING, lease_until__lt=now)


def claim(action_id: int, owner: str) -> bool:
    """Take the action for `owner`; False when another worker holds it, it is
    over, or it waits for an earlier open action on the same copy. Each claim
    counts as an attempt (a kill mid-action is one)."""
    now = timezone.now()
    # NOT EXISTS, not a join: Django turns an UPDATE with a join into
    # `WHERE id IN (SELECT ...)`, and PostgreSQL re-checks only that list, not
    # the state, after waiting for another worker's claim of the same row; both
    # would then hold it.
    earlier_open = RemoteAction.objects.filter(pk=OuterRef("after_id"), state__in=OPEN_STATES)
    taken = (
        RemoteAction.objects.filter(claimable(now), ~Exists(earlier_open), pk=action_id)
        .update(
            state=State.RUNNING,
            attempts=F("attempts") + 1,
            claimed_by=owner,
            lease_until=now + lease(),
            updated_at=now,
        )
    )
    return bool(taken)


def renew(owner: str) -> int:
    """Extend the leases `owner` holds; returns how many."""
    return RemoteAction.objects.filter(state=State.RUNNING, claimed_by=owner).update(
        lease_until=timezone.now() + lease()
    )


def release_expired() -> int:
    """Put actions whose worker died (lease run out) back to pending. Rows from
    before leases existed have none: their last update stands in for it."""
    now = timezone.now()
    return (
        RemoteAction.objects.filter(state=State.RUNNING)
        .filter(
            Q(lease_until__lt=now) | Q(lease_until__isnull=True, updated_at__lt=now - lease())
        )
        .update(state=State.PENDING, claimed_by="", lease_until=None)
    )


def held_until(account_id: int) -> datetime | None:
    """When the first running claim on the account runs out, if any: the moment
    to look again, in case its worker died (a live one renews or finishes it)."""
    found = RemoteAction.objects.filter(
        account_id=account_id, state=State.RUNNING, lease_until__isnull=False
    ).aggregate(until=Min("lease_until"))
    until: datetime | None = found["until"]
    return until


def heartbeat(owner: str) -> Heartbeat:
    """Renews `owner`'s claims while the `with` block runs (posta.core.leases)."""
    return Heartbeat(lambda: renew(owner), lease_seconds=lease_seconds, name=f"actions-{owner}")
