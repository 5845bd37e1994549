"""Huey tasks of the rules app, and the receiver that turns new mail into them.

The database rows are the truth (DESIGN §2); a queue item only wakes a worker.
`sweep_arrivals` runs every minute: it records inbox messages whose announcement
was lost (posta.rules.arrivals.recover_unrecorded) and wakes a worker for every
user with pending arrivals that no live worker holds, so a lost queue item or a
killed worker delays new mail's filters by a minute at most, never skips them.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from posta.rules import arrivals, autoreply_sieve, scan, sieve_upload
from posta.rules.filter_models import FilterServer

log = logging.getLogger(__name__)


@db_task()  # type: ignore[untyped-decorator]  # huey ships no types
def process_arrivals(user_id: int) -> None:
    """Run the user's pending arrivals through the pipeline; come back when the
    deferred ones are due."""
    due = arrivals.process_pending(user_id)
    if due is not None:
        wait = max((due - timezone.now()).total_seconds(), 0.0)
        process_arrivals.schedule((user_id,), delay=wait + 0.5)


@db_periodic_task(crontab(minute="*"))  # type: ignore[untyped-decorator]  # huey ships no types
def sweep_arrivals() -> None:
    try:
        arrivals.recover_unrecorded()
        for user_id in arrivals.users_due():
            process_arrivals(user_id)
    except Exception:
        log.exception("arrivals sweep failed; the next one tries again")


def enqueue_arrivals(user_id: int) -> None:
    process_arrivals(user_id)


def on_messages_stored(
    sender: Any,
    *,
    user_id: int,
    message_ids: list[int],
    folder_id: int | None,
    source: str,
    **_: Any,
) -> None:
    """Receiver of posta.mail.signals.messages_stored: record the inbox arrivals
    and wake a worker for them."""
    if arrivals.do_record_arrivals(
        user_id=user_id, message_ids=message_ids, folder_id=folder_id, source=source
    ):
        enqueue_arrivals(user_id)


@db_task()  # type: ignore[untyped-decorator]  # huey ships no types
def sync_filter_server(account_id: int) -> None:
    """Detect ManageSieve and upload the account's filters (posta.rules.sieve_upload)."""
    try:
        sieve_upload.do_sync_server(account_id)
    except Exception:
        log.exception("filters upload of account %s failed; the sweep tries again", account_id)


@db_periodic_task(crontab(minute="*/5"))  # type: ignore[untyped-decorator]  # huey ships no types
def sweep_filter_servers() -> None:
    """Uploads a lost queue item or a failure left behind, and those due at the
    start or end of an out-of-office period (servers without `date`)."""
    due = autoreply_sieve.uploads_due()
    if due:
        FilterServer.objects.filter(account_id__in=due).update(
            wanted_revision=F("wanted_revision") + 1
        )
    for account_id in sorted(set(sieve_upload.accounts_behind()) | set(due)):
        sync_filter_server(account_id)


def enqueue_filter_servers(account_ids: list[int]) -> None:
    for account_id in sorted(set(account_ids)):
        sync_filter_server(account_id)


def on_filters_changed(sender: Any, *, account_ids: list[int], **_: Any) -> None:
    """Receiver of posta.rules.signals.filters_changed."""
    enqueue_filter_servers(account_ids)


_CONNECTION_FIELDS = frozenset(
    {"imap_host", "imap_port", "imap_security", "username", "password_secret"}
)


def on_account_saved(
    sender: Any, *, instance: Any, created: bool, update_fields: Any = None, **_: Any
) -> None:
    """post_save of Account: a new account, or new connection settings, is checked
    for ManageSieve once the save commits."""
    if created or update_fields is None or _CONNECTION_FIELDS & set(update_fields):
        account_id = instance.pk
        transaction.on_commit(lambda: enqueue_filter_servers([account_id]))


@db_task()  # type: ignore[untyped-decorator]  # huey ships no types
def run_scan(job_id: int) -> None:
    """"Apply to existing mail" (posta.rules.scan)."""
    scan.run_scan(job_id)


@db_periodic_task(crontab(minute="*"))  # type: ignore[untyped-decorator]  # huey ships no types
def sweep_scans() -> None:
    """Scans whose worker died (their lease ran out) or whose wake-up was lost."""
    for job_id in scan.jobs_due():
        run_scan(job_id)


def on_scan_requested(sender: Any, *, job_id: int, **_: Any) -> None:
    """Receiver of posta.rules.signals.scan_requested."""
    run_scan(job_id)
