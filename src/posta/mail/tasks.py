"""Huey tasks of the mail app: CRM auto-linking of new mail and "link existing
mail", and the receivers that wake them.

The rows are the truth (posta.mail.autolink_queue, posta.mail.record_backfill); a
queue item only wakes a worker, and the sweeps, every minute, wake one for any row
that a lost queue item or a killed worker left.
"""

from __future__ import annotations

import logging
from typing import Any

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from posta.mail import autolink_queue, links, record_backfill

log = logging.getLogger(__name__)


@db_task()  # type: ignore[untyped-decorator]  # huey ships no types
def link_new_mail(user_id: int) -> int:
    """Link the user's recorded batches of new mail to existing records."""
    return autolink_queue.process_pending(user_id)


@db_task()  # type: ignore[untyped-decorator]  # huey ships no types
def link_existing_mail(job_id: int) -> str:
    """Run a "link existing mail" job (posta.mail.record_backfill)."""
    return record_backfill.run_job(job_id)


@db_periodic_task(crontab(minute="*"))  # type: ignore[untyped-decorator]  # huey ships no types
def sweep_links() -> None:
    try:
        for user_id in autolink_queue.users_due():
            link_new_mail(user_id)
        for job_id in record_backfill.jobs_due():
            link_existing_mail(job_id)
    except Exception:
        log.exception("auto-linking sweep failed; the next one tries again")


def on_messages_stored(
    sender: Any, *, user_id: int, message_ids: list[int], source: str = "", **_: Any
) -> None:
    """Receiver of posta.mail.signals.messages_stored. Mail sent from Posta joins
    the records chosen in compose at once (one message, in the worker that sent
    it); every batch's linking by address (recorded with the batch) is the
    worker's."""
    if source == "sent":
        links.do_link_sent(user_id, message_ids)
    link_new_mail(user_id)


def on_record_emails_added(
    sender: Any, *, owner_id: int, kind: str, record_id: int, **_: Any
) -> None:
    """Receiver of posta.crm.signals.record_emails_added: the owner's existing
    mail is linked to the record (when their auto-linking is on)."""
    job_id = record_backfill.do_request_automatic(owner_id, f"{kind}:{record_id}")
    if job_id is not None:
        link_existing_mail(job_id)


def start_linking_existing(job_id: int) -> None:
    """Wake a worker for a job started from a record's page."""
    link_existing_mail(job_id)
