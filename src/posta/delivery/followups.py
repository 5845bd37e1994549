"""The follow-ups of a sent message: its copy in Sent, the \\Answered or
$Forwarded flag on the original, the removal of the draft's server copies.

Each is a step of its own on the row (`sent_copy`, `mark_original`,
`draft_cleanup`), done or retried alone with a growing delay, and given up after
MAX_FOLLOW_UP_ATTEMPTS: nothing here can send the message again.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from posta.accounts.models import Folder
from posta.delivery import drafts
from posta.mail import blobs
from posta.mail.models import Location, OutgoingMessage
from posta.mailproto import errors
from posta.mailproto.imap.session import Session
from posta.remote.connect import close, open_imap
from posta.remote.copies import find_message_id, folder_with_role
from posta.remote.pool import Connections

log = logging.getLogger(__name__)

State = OutgoingMessage.State
FollowUp = OutgoingMessage.FollowUp

FOLLOW_UP_DELAYS = (10, 60, 300, 1800, 3600)
MAX_FOLLOW_UP_ATTEMPTS = 20


def _append_sent_copy(session: Session, row: OutgoingMessage) -> None:
    folder = folder_with_role(row.account, Folder.Role.SENT)
    if folder is None:
        return  # no Sent folder mapped: nowhere to file it
    if find_message_id(session, folder, row.message_id):
        return  # an earlier attempt appended it and died before recording so
    raw = blobs.get(row.raw_blob_key)
    session.append(folder.name, raw, flags=["\\Seen"], date=row.sent_at)


def _mark_original(session: Session, row: OutgoingMessage) -> None:
    forward = row.kind in (OutgoingMessage.Kind.FORWARD, OutgoingMessage.Kind.FORWARD_ATTACHED)
    flag = "$Forwarded" if forward else "\\Answered"
    if row.original_id is None:
        return
    locations = Location.objects.filter(
        message_id=row.original_id, folder__account=row.account, uid__gt=0
    ).select_related("folder")
    for loc in locations:
        assert loc.uid is not None  # noqa: S101 - filtered above
        session.select(loc.folder.name)
        session.set_flags([loc.uid], [flag], on=True)
        if forward:
            if flag not in loc.keywords:
                loc.keywords = [*loc.keywords, flag]
                loc.save(update_fields=["keywords"])
        elif not loc.answered:
            loc.answered = True
            loc.save(update_fields=["answered"])


def _remove_draft(session: Session, row: OutgoingMessage) -> None:
    """Every server copy of the draft goes once the message has left."""
    pool = Connections()
    pool.lend(row.account, session)
    try:
        drafts.discard_copies(row, pool)
    finally:
        pool.close()


_STEPS = (
    ("sent_copy", _append_sent_copy),
    ("mark_original", _mark_original),
    ("draft_cleanup", _remove_draft),
)


def run_follow_ups(outgoing_id: int) -> None:
    """Do the pending follow-ups of a sent row; each one succeeds or is retried
    alone later. Nothing here can send the message again."""
    row = (
        OutgoingMessage.objects.select_related("account", "draft_folder")
        .filter(pk=outgoing_id, state=State.SENT)
        .first()
    )
    if row is None:
        return
    pending = [(name, step) for name, step in _STEPS if getattr(row, name) == FollowUp.PENDING]
    if not pending:
        return
    session: Session | None = None
    failed = False
    try:
        session = open_imap(row.account)
        for name, step in pending:
            try:
                step(session, row)
            except errors.MailError as exc:
                log.warning("outgoing %s: %s failed: %s", row.pk, name, exc)
                failed = True
                continue
            OutgoingMessage.objects.filter(pk=row.pk).update(**{name: FollowUp.DONE})
    except errors.MailError as exc:
        log.warning("outgoing %s: follow-ups cannot connect: %s", row.pk, exc)
        failed = True
    except Exception:
        log.exception("outgoing %s: follow-ups failed", row.pk)
        failed = True
    finally:
        if session is not None:
            close(session)
    if failed:
        _schedule_follow_up_retry(row)


def _schedule_follow_up_retry(row: OutgoingMessage) -> None:
    attempts = row.follow_up_attempts + 1
    if attempts >= MAX_FOLLOW_UP_ATTEMPTS:
        fields = {
            name: FollowUp.FAILED
            for name, _step in _STEPS
            if getattr(row, name) == FollowUp.PENDING
        }
        OutgoingMessage.objects.filter(pk=row.pk).update(follow_up_attempts=attempts, **fields)
        return
    delay = FOLLOW_UP_DELAYS[min(attempts - 1, len(FOLLOW_UP_DELAYS) - 1)]
    OutgoingMessage.objects.filter(pk=row.pk).update(
        follow_up_attempts=attempts, follow_up_at=timezone.now() + timedelta(seconds=delay)
    )


def follow_ups_due(*, now: datetime | None = None) -> list[int]:
    now = now or timezone.now()
    pending = Q(sent_copy=FollowUp.PENDING) | Q(mark_original=FollowUp.PENDING) | Q(
        draft_cleanup=FollowUp.PENDING
    )
    return list(
        OutgoingMessage.objects.filter(pending, state=State.SENT, follow_up_at__lte=now)
        .order_by("follow_up_at")
        .values_list("id", flat=True)[:50]
    )
