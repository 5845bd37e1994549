"""Leases on POP3 sources: a source is fetched by one worker at a time.

A worker takes a source with one conditional UPDATE (no holder, or a holder whose
lease ran out: its worker died), and a heartbeat (posta.core.leases) renews the lease while
the fetch runs, so a live worker keeps it however long one RETR takes and a killed
worker's source is free again within POSTA_POP3_LEASE_SECONDS. The UPDATE is atomic
on SQLite and PostgreSQL (PostgreSQL re-checks the row after a lock wait), so two
workers never hold one source, as with the sync's account leases
(posta.sync.leases) and the remote actions' claims (posta.sync.claims).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from posta.core.leases import Heartbeat
from posta.rules.pop3_models import Pop3Source


def lease_seconds() -> float:
    return max(float(getattr(settings, "POSTA_POP3_LEASE_SECONDS", 60.0)), 1.0)


def claim(source_id: int, owner: str) -> bool:
    """Take the source for `owner`; False when another live worker holds it."""
    now = timezone.now()
    free = Q(lease_owner="") | Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    taken = Pop3Source.objects.filter(free | Q(lease_owner=owner), pk=source_id).update(
        lease_owner=owner, lease_until=now + timedelta(seconds=lease_seconds())
    )
    return bool(taken)


def renew(source_id: int, owner: str) -> bool:
    """Extend the lease; False when `owner` no longer holds it."""
    until = timezone.now() + timedelta(seconds=lease_seconds())
    held = Pop3Source.objects.filter(pk=source_id, lease_owner=owner).update(lease_until=until)
    return bool(held)


def holds(source_id: int, owner: str) -> bool:
    """Whether `owner` holds a lease on the source that has not run out."""
    return Pop3Source.objects.filter(
        pk=source_id, lease_owner=owner, lease_until__gte=timezone.now()
    ).exists()


def held_until(source_id: int) -> datetime | None:
    """When the current lease on the source runs out, if one is held."""
    until: datetime | None = (
        Pop3Source.objects.filter(pk=source_id).exclude(lease_owner="")
        .values_list("lease_until", flat=True).first()
    )
    return until


def release(source_id: int, owner: str) -> None:
    """Give the source up at once, so the next fetch need not wait."""
    Pop3Source.objects.filter(pk=source_id, lease_owner=owner).update(
        lease_owner="", lease_until=None
    )


def heartbeat(source_id: int, owner: str) -> Heartbeat:
    """Renews the lease while the `with` block runs (posta.core.leases)."""
    return Heartbeat(
        lambda: renew(source_id, owner), lease_seconds=lease_seconds, name=f"pop3-{source_id}"
    )
