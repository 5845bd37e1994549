"""Huey tasks of the POP3 import: one batch per task, and the sweep.

The Pop3Source row is the truth (DESIGN §2); a queue item only wakes a worker.
`fetch_pop3_source` imports one batch and queues the next while more waits, so
a 10,000-message mailbox never holds a worker thread for long and other jobs run
between its batches. `sweep_pop3_sources` runs every minute and queues every
active source that is due (its interval passed, "Fetch now" asked, or a run cut
short by a kill), so a lost queue item delays an import, never loses it.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from posta.rules import pop3_lease
from posta.rules.pop3_job import fetch_source
from posta.rules.pop3_models import Pop3Source


@db_task()  # type: ignore[untyped-decorator]  # huey ships no types
def fetch_pop3_source(source_id: int) -> bool:
    """Import one batch of the source; queue the next one if more is waiting.
    When another worker holds the source, look again as its lease runs out, in
    case that worker died (a live one renews it, and this finds nothing to do)."""
    more = fetch_source(source_id)
    if more is None:
        until = pop3_lease.held_until(source_id)
        if until is not None:
            wait = max((until - timezone.now()).total_seconds(), 0.0)
            fetch_pop3_source.schedule((source_id,), delay=wait + 0.5)
        return False
    if more:
        fetch_pop3_source(source_id)
    return more


def due_sources() -> list[int]:
    """Active sources to fetch now, whose lease (if any) has run out."""
    now = timezone.now()
    due = Q(next_fetch_at__isnull=True) | Q(next_fetch_at__lte=now) | Q(
        fetch_requested_at__isnull=False
    )
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    return list(
        Pop3Source.objects.filter(due, free, active=True).order_by("id").values_list(
            "id", flat=True
        )
    )


@db_periodic_task(crontab(minute="*"))  # type: ignore[untyped-decorator]  # huey ships no types
def sweep_pop3_sources() -> None:
    for source_id in due_sources():
        fetch_pop3_source(source_id)


def on_fetch_requested(sender: Any, *, source_id: int, **_: Any) -> None:
    """Receiver of posta.rules.pop3_services.fetch_requested."""
    fetch_pop3_source(source_id)
