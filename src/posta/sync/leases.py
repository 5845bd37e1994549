"""Account leases: which sync process keeps which account (DESIGN §2).

A process claims an account with a conditional UPDATE of its SyncLease row (or
the INSERT of a new one), renews what it holds while it runs, and gives leases up
on a clean stop; a dead process's leases run out after LEASE_SECONDS and any other
process takes them over. Both statements are atomic on SQLite and PostgreSQL, so
two processes never sync one account.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from posta.accounts.models import Account
from posta.sync.models import SyncLease

LEASE_SECONDS = 45


def try_claim(account_id: int, owner: str, *, now: datetime | None = None) -> bool:
    """Take (or keep) the lease on an account; True when `owner` holds it now."""
    now = now or timezone.now()
    expires = now + timedelta(seconds=LEASE_SECONDS)
    taken = (
        SyncLease.objects.filter(account_id=account_id)
        .filter(Q(expires_at__lt=now) | Q(owner=owner))
        .update(owner=owner, expires_at=expires, acquired_at=now)
    )
    if taken:
        return True
    if SyncLease.objects.filter(account_id=account_id).exists():
        return False
    try:
        with transaction.atomic():
            SyncLease.objects.create(
                account_id=account_id, owner=owner, expires_at=expires, acquired_at=now
            )
    except IntegrityError:
        return False  # another process inserted it first
    return True


def renew(owner: str, account_ids: list[int]) -> set[int]:
    """Extend the leases `owner` still holds; returns the account ids it holds."""
    if not account_ids:
        return set()
    expires = timezone.now() + timedelta(seconds=LEASE_SECONDS)
    held = SyncLease.objects.filter(owner=owner, account_id__in=account_ids)
    held.update(expires_at=expires)
    return set(held.values_list("account_id", flat=True))


def release(owner: str, account_ids: list[int]) -> None:
    """Give leases up at once (clean shutdown), so another process need not wait."""
    SyncLease.objects.filter(owner=owner, account_id__in=account_ids).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )


def candidate_accounts() -> list[int]:
    """Accounts to sync: all but shared senders (sent from, never read) and accounts
    paused since before the user's last "sync now"."""
    paused_waiting = Q(sync_state=Account.SyncState.PAUSED) & (
        Q(sync_requested_at__isnull=True) | Q(sync_requested_at__lt=F("last_error_at"))
    )
    return list(
        Account.objects.exclude(paused_waiting)
        .exclude(is_shared_sender=True)
        .order_by("id")
        .values_list("id", flat=True)
    )
