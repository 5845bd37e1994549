"""The follow-ups of a sent message: its copy in Sent, the \\Answered or
$Forwarded flag on the original, the removal of the draft's server copies.

Each is a step of its own on the row (`sent_copy`, `mark_original`,
`draft_cleanup`), done or retried alone with a growing delay: nothing here can
send the message again. Failures are judged by the failure table
(posta.mailproto.failures): a step the server refuses (PERMANENT) fails at once;
an unreachable or busy server (RETRY) is retried until the table's deadline after
sending; wrong account settings (ACCOUNT) wait until they are fixed. An unexpected
error is given up after MAX_FOLLOW_UP_ATTEMPTS.
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
from posta.mailproto import errors, failures
from posta.mailproto.failures import Verdict
from posta.mailproto.imap.session import Session
from posta.remote.account_errors import record_account_error
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
    verdicts: set[Verdict | None] = set()  # None: an unexpected error
    try:
        session = open_imap(row.account)
        for name, step in pending:
            try:
                step(session, row)
            except errors.MailError as exc:
                log.warning("outgoing %s: %s failed: %s", row.pk, name, exc)
                verdict = failures.verdict_for_error(exc)
                if verdict is Verdict.PERMANENT:
                    OutgoingMessage.objects.filter(pk=row.pk).update(**{name: FollowUp.FAILED})
                else:
                    verdicts.add(verdict)
                continue
            OutgoingMessage.objects.filter(pk=row.pk).update(**{name: FollowUp.DONE})
    except errors.MailError as exc:
        log.warning("outgoing %s: follow-ups cannot connect: %s", row.pk, exc)
        verdict = failures.verdict_for_error(exc)
        if session is None and verdict is Verdict.ACCOUNT:
            record_account_error(row.account_id, exc)  # the account's page says what to fix
        verdicts.add(verdict)
    except Exception:
        log.exception("outgoing %s: follow-ups failed", row.pk)
        verdicts.add(None)
    finally:
        if session is not None:
            close(session)
    if verdicts:
        row.refresh_from_db()
        _schedule_follow_up_retry(row, verdicts=verdicts)


def _gives_up(row: OutgoingMessage, attempts: int, verdicts: set[Verdict | None]) -> bool:
    """Whether the pending steps stop now (module docstring)."""
    if None in verdicts:
        return attempts >= MAX_FOLLOW_UP_ATTEMPTS
    if Verdict.ACCOUNT in verdicts:
        return False  # waits for the user to fix the settings
    since = row.sent_at or timezone.now()
    return timezone.now() >= since + failures.SERVER_RETRY_FOR


def _schedule_follow_up_retry(row: OutgoingMessage, *, verdicts: set[Verdict | None]) -> None:
    attempts = row.follow_up_attempts + 1
    if _gives_up(row, attempts, verdicts):
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
