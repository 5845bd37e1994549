"""New mail's CRM auto-linking, off the sync path: batches recorded in the store's
transaction, linked by a worker.

Recording. posta.mail.ingest calls `do_record_batch` for every batch of messages it
creates, inside the transaction that stores them: one INSERT of a `LinkBatch` row
naming the batch's message ids, so the syncing process pays one statement per
batch and a kill leaves the messages and their row together or neither (no batch
is lost, whatever the kills). After the commit, the `messages_stored` receiver
(posta.mail.tasks) wakes a worker.

Linking. `process_pending(user_id)` claims the user's rows with a lease (a killed
worker's claim runs out after LEASE and another takes the rows over), and links
each batch in one transaction that also deletes its row: a batch is linked
completely once, or not at all and again later. Links are unique per identity and
record and written with ON CONFLICT DO NOTHING, so even a batch linked twice (a
worker whose lease ran out mid-batch while another took the row) adds nothing
twice. When the user turned auto-linking off, or there is no CRM record yet, the
rows are simply deleted.

A batch that fails is tried again after a growing pause, MAX_ATTEMPTS times, then
dropped with a log line (its messages can still be linked by hand or by "link
existing mail"). The periodic sweep (`users_due`) wakes a worker for rows that a
lost queue item or a dead worker left.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from posta.crm.models import RecordEmail
from posta.mail import autolink
from posta.mail.autolink_models import LinkBatch
from posta.mail.models import Message
from posta.users.models import User

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=120)
RETRY_DELAY = timedelta(seconds=10)
MAX_ATTEMPTS = 5
CLAIM = 20  # rows claimed at a time


def do_record_batch(user_id: int, message_ids: Sequence[int]) -> None:
    """Record a stored batch for linking (inside the transaction storing it)."""
    if message_ids:
        LinkBatch.objects.create(user_id=user_id, message_ids=sorted(message_ids))


def owner_name() -> str:
    return f"{socket.gethostname()[:50]}:{os.getpid()}:{secrets.token_hex(4)}"


def _claimable(now: datetime) -> Q:
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    return free & due


def _claim(user_id: int, owner: str) -> list[LinkBatch]:
    now = timezone.now()
    ids = list(
        LinkBatch.objects.filter(_claimable(now), user_id=user_id)
        .order_by("id")
        .values_list("id", flat=True)[:CLAIM]
    )
    if not ids:
        return []
    LinkBatch.objects.filter(_claimable(now), pk__in=ids).update(
        claimed_by=owner, lease_until=now + LEASE
    )
    return list(LinkBatch.objects.filter(pk__in=ids, claimed_by=owner).order_by("id"))


def process_pending(user_id: int) -> int:
    """Link the user's recorded batches; returns the links offered. Returns when
    no claimable row is left (those retried later are the sweep's)."""
    owner = owner_name()
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        return 0
    linker: autolink.Linker | None = None
    total = 0
    while batch := _claim(user_id, owner):
        # Read once per claim: a user turning linking off stops it at the next one.
        if not autolink.auto_link_enabled(user) or not RecordEmail.objects.exists():
            LinkBatch.objects.filter(pk__in=[b.pk for b in batch], claimed_by=owner).delete()
            continue
        linker = linker or autolink.linker_for(user)
        for row in batch:
            try:
                total += _link_one(linker, row, owner)
            except Exception as exc:  # a worker defends its boundary (STYLE 7)
                log.exception("auto-linking batch %s of user %s failed", row.pk, user_id)
                _record_failure(row, exc)
    return total


def _link_one(linker: autolink.Linker, row: LinkBatch, owner: str) -> int:
    with transaction.atomic():
        mine = LinkBatch.objects.select_for_update().filter(pk=row.pk, claimed_by=owner)
        if not mine.exists():
            return 0  # the lease ran out and another worker has it
        linked = 0
        ids = list(row.message_ids)
        for start in range(0, len(ids), autolink.CHUNK):
            rows = Message.objects.filter(
                user_id=row.user_id, pk__in=ids[start : start + autolink.CHUNK]
            ).values_list("identity", "from_email", "to", "cc")
            linked += autolink.link_rows(linker, rows)
        mine.delete()
    return linked


def _record_failure(row: LinkBatch, exc: Exception) -> None:
    attempts = row.attempts + 1
    if attempts >= MAX_ATTEMPTS:
        log.error(
            "auto-linking gave up %d messages of user %s: %s",
            len(row.message_ids), row.user_id, exc,
        )  # fmt: skip
        LinkBatch.objects.filter(pk=row.pk).delete()
        return
    LinkBatch.objects.filter(pk=row.pk).update(
        attempts=attempts,
        next_attempt_at=timezone.now() + RETRY_DELAY * (2**attempts),
        claimed_by="",
        lease_until=None,
    )


def users_due(*, now: datetime | None = None) -> list[int]:
    """Users with batches no live worker holds (for the sweep)."""
    now = now or timezone.now()
    return sorted(set(LinkBatch.objects.filter(_claimable(now)).values_list("user_id", flat=True)))
