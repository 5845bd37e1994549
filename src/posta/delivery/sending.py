"""Sending one outgoing message: claim, SMTP, record, crash recovery.

The row (posta.mail.outbox_models.OutgoingMessage) is the source of truth; the queue only
wakes a worker. The contract, in the order things happen:

1. `claim`: one conditional UPDATE moves a due row from queued/scheduled to
   sending with a fresh claim token. Whoever's UPDATE changed the row owns it; every
   later write of this attempt is conditioned on that token, so a worker that lost
   its lease cannot overwrite what another decided.
2. The message bytes are built once (first attempt) and kept in the blob store:
   retries send the very same bytes.
3. MAIL FROM, RCPT TO each recipient (refusals recorded one by one), then
   `data_started_at` is committed, then DATA. From this point a crash or a dropped
   connection leaves the outcome unknown: recovery never resends blindly.
4. After 250 (kill point `delivery.after_accept`, see posta.core.faults) the row
   becomes sent; the follow-ups (Sent copy, flag on the original, draft removal)
   are separate steps, each retried alone (posta.delivery.followups).

Every failure is decided by the failure table (posta.mailproto.failures), and
written onto the row in words the outbox page can show (STYLE 7: the worker
defends the boundary). A message that cannot be built (compose refuses a header
field) fails at once, since the row builds the same way every time; an unexpected
error is retried until the retry deadline, then the row fails too: nothing loops
forever. An account error (login refused, stored secret unreadable) waits for the
settings with no deadline, tried again every ACCOUNT_RETRY_DELAY.
"""

from __future__ import annotations

import email.message
import email.policy
import logging
import smtplib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.parser import BytesHeaderParser

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from posta.accounts.models import Folder
from posta.accounts.presets import PRESETS
from posta.core import faults
from posta.delivery.compose import build_message, mailboxes, sender_mailbox
from posta.delivery.followups import run_follow_ups
from posta.mail import blobs, ingest
from posta.mail.models import OutgoingMessage
from posta.mail.outbox_models import BLOCKED_ACCOUNT_STATES, new_claim_token
from posta.mailproto import errors
from posta.mailproto.common import reply_text
from posta.mailproto.failures import SEND_RETRY_FOR, Verdict, verdict_for_error, verdict_for_reply
from posta.mailproto.mime import compose
from posta.mailproto.smtp.client import close_quietly as smtp_close
from posta.mailproto.smtp.client import smtp_errors
from posta.remote.connect import close, open_imap, open_smtp
from posta.remote.copies import find_message_id, folder_with_role

log = logging.getLogger(__name__)

State = OutgoingMessage.State
FollowUp = OutgoingMessage.FollowUp

KILL_AFTER_ACCEPT = "delivery.after_accept"
# How long a row may stay "sending" before recovery looks at it: longer than any
# SMTP conversation can last (connect + DATA of the largest message with timeouts).
SENDING_LEASE = timedelta(minutes=15)
# How long temporary failures are retried, counted from the first queueing.
RETRY_DEADLINE = SEND_RETRY_FOR
RETRY_DELAYS = (30, 60, 120, 300, 600, 1800, 3600)  # seconds, then the last one again
ACCOUNT_RETRY_DELAY = timedelta(minutes=30)


class SmtpUtf8Missing(errors.CapabilityMissing):
    """An address needs SMTPUTF8 (RFC 6531) and the server does not offer it."""

    code = "smtputf8_missing"


@dataclass
class Refusal:
    address: str
    code: int
    text: str

    def as_json(self) -> dict[str, object]:
        return {"address": self.address, "code": self.code, "text": self.text}


@dataclass
class SmtpOutcome:
    """What the server said: accepted (with refused recipients), or a failure."""

    accepted: bool
    refused: list[Refusal] = field(default_factory=list)
    verdict: Verdict | None = None
    error_code: str = ""
    error_detail: str = ""
    unknown: bool = False  # the connection broke after DATA began


# ------------------------------------------------------------------------- claiming


def claim(outgoing_id: int, *, now: datetime | None = None) -> str | None:
    """Take a due row for sending; the claim token, or None if it was not ours."""
    now = now or timezone.now()
    token = new_claim_token()
    changed = OutgoingMessage.objects.filter(
        pk=outgoing_id,
        state__in=[State.QUEUED, State.SCHEDULED],
        send_at__lte=now,
    ).update(
        state=State.SENDING,
        claim_token=token,
        claimed_at=timezone.now(),
        data_started_at=None,
        attempts=F("attempts") + 1,
    )
    return token if changed == 1 else None


def _account_blocked(outgoing_id: int) -> bool:
    """Scheduled work re-checks at run time that it may go (STYLE 7): not from an
    account that is paused or in error."""
    return OutgoingMessage.objects.filter(
        pk=outgoing_id, account__sync_state__in=BLOCKED_ACCOUNT_STATES
    ).exists()


def _owned(outgoing_id: int, token: str) -> Q:
    return Q(pk=outgoing_id, claim_token=token, state=State.SENDING)


def due_ids(*, now: datetime | None = None, limit: int = 50) -> list[int]:
    """Rows whose time has come, except those of a paused account or one in error:
    they wait (the Scheduled and Outbox pages say why) and leave with the first
    sweep after the account works again."""
    now = now or timezone.now()
    return list(
        OutgoingMessage.objects.filter(
            state__in=[State.QUEUED, State.SCHEDULED], send_at__lte=now
        )
        .exclude(account__sync_state__in=BLOCKED_ACCOUNT_STATES)
        .order_by("send_at", "id")
        .values_list("id", flat=True)[:limit]
    )


def deliver_due(*, now: datetime | None = None, limit: int = 50) -> int:
    """Send every due row this worker manages to claim; how many it sent."""
    sent = 0
    for outgoing_id in due_ids(now=now, limit=limit):
        if deliver(outgoing_id, now=now):
            sent += 1
    return sent


def deliver(outgoing_id: int, *, now: datetime | None = None) -> bool:
    """Claim and send one row if it is due and its account may send; True if this
    call attempted it."""
    if _account_blocked(outgoing_id):
        return False
    token = claim(outgoing_id, now=now)
    if token is None:
        return False
    try:
        _attempt(outgoing_id, token)
    except Exception:
        # The boundary: whatever went wrong is written onto the row, never lost.
        log.exception("outgoing %s: unexpected failure while sending", outgoing_id)
        _record_unexpected(outgoing_id, token)
    run_follow_ups(outgoing_id)
    return True


# -------------------------------------------------------------------------- sending


def _attempt(outgoing_id: int, token: str) -> None:
    row = OutgoingMessage.objects.select_related("account", "user").get(pk=outgoing_id)
    if not _still_allowed(row):
        return
    try:
        raw, utf8 = _raw_message(row, token)
    except compose.ComposeError as exc:
        # The same row builds the same way every time: retrying cannot help.
        log.warning("outgoing %s: message cannot be built: %s", outgoing_id, exc.detail)
        OutgoingMessage.objects.filter(_owned(outgoing_id, token)).update(
            state=State.FAILED, send_at=None, claim_token="",
            error_code="message_unbuildable", error_detail=exc.detail[:500],
        )
        return
    outcome = _smtp_send(row, token, raw, utf8=utf8)
    _record(row, token, outcome, raw)


def _still_allowed(row: OutgoingMessage) -> bool:
    """Scheduled work re-checks at run time that it may still go (STYLE 7)."""
    account = row.account
    if account.is_shared_sender or account.user_id == row.user_id:
        return True
    OutgoingMessage.objects.filter(_owned(row.pk, row.claim_token)).update(
        state=State.FAILED,
        error_code="sender_not_allowed",
        error_detail="",
    )
    return False


def _raw_message(row: OutgoingMessage, token: str) -> tuple[bytes, bool]:
    everyone = [sender_mailbox(row), *mailboxes(row.to + row.cc + row.bcc)]
    utf8 = compose.needs_smtputf8(everyone)
    if row.raw_blob_key and blobs.exists(row.raw_blob_key):
        return blobs.get(row.raw_blob_key), utf8
    raw = compose.serialize(build_message(row, date=timezone.now()), utf8=utf8)
    key = blobs.put(raw)
    OutgoingMessage.objects.filter(_owned(row.pk, token)).update(raw_blob_key=key)
    return raw, utf8


def _failure(code: int, message: bytes | str, *, what: str) -> SmtpOutcome:
    return SmtpOutcome(
        accepted=False,
        verdict=verdict_for_reply(code),
        error_code=f"smtp_{code}",
        error_detail=f"{what}: {code} {reply_text(message)[:300]}"[:500],
    )


def _smtp_send(row: OutgoingMessage, token: str, raw: bytes, *, utf8: bool) -> SmtpOutcome:
    try:
        smtp, config = open_smtp(row.account)
    except errors.MailError as exc:
        return SmtpOutcome(
            accepted=False, verdict=verdict_for_error(exc), error_code=exc.code,
            error_detail=exc.detail[:500],
        )
    try:
        return _dialogue(smtp, row, token, raw, utf8=utf8, host=config.host)
    finally:
        smtp_close(smtp)


def _dialogue(
    smtp: smtplib.SMTP, row: OutgoingMessage, token: str, raw: bytes, *, utf8: bool, host: str
) -> SmtpOutcome:
    sender = sender_mailbox(row).address
    options: list[str] = []
    try:
        with smtp_errors(host=host):
            if utf8:
                if not smtp.has_extn("smtputf8"):
                    raise SmtpUtf8Missing(f"{host}: SMTPUTF8 not offered")
                options.append("SMTPUTF8")
            if smtp.has_extn("8bitmime"):
                options.append("BODY=8BITMIME")
            code, message = smtp.mail(sender, options)
            if code != 250:
                smtp.rset()
                return _failure(code, message, what="MAIL FROM")
            accepted: list[str] = []
            refused: list[Refusal] = []
            for address in _envelope_recipients(row):
                code, message = smtp.rcpt(address)
                if code in (250, 251):
                    accepted.append(address)
                else:
                    refused.append(Refusal(address, code, reply_text(message)[:300]))
            if not accepted:
                smtp.rset()
                return _all_refused(refused)
    except errors.MailError as exc:
        return SmtpOutcome(
            accepted=False, verdict=verdict_for_error(exc), error_code=exc.code,
            error_detail=exc.detail[:500],
        )
    # From here on the server may accept the message: say so in the database first.
    marked = OutgoingMessage.objects.filter(_owned(row.pk, token)).update(
        data_started_at=timezone.now()
    )
    if marked != 1:
        smtp.rset()
        return SmtpOutcome(accepted=False, error_code="lost_claim")
    reply: bytes | str
    try:
        code, reply = smtp.data(raw)
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        return SmtpOutcome(
            accepted=False, unknown=True, error_code="outcome_unknown",
            error_detail=f"{host}: {type(exc).__name__} during DATA"[:500],
        )
    except smtplib.SMTPResponseException as exc:
        code, reply = exc.smtp_code, exc.smtp_error
    if code != 250:
        outcome = _failure(code, reply, what="DATA")
        outcome.refused = refused
        return outcome
    faults.point(KILL_AFTER_ACCEPT)
    return SmtpOutcome(accepted=True, refused=refused)


def _envelope_recipients(row: OutgoingMessage) -> list[str]:
    return [compose.check_addr_spec(address) for address in row.recipients()]


def _all_refused(refused: list[Refusal]) -> SmtpOutcome:
    verdicts = {verdict_for_reply(r.code) for r in refused}
    verdict = Verdict.RETRY if Verdict.RETRY in verdicts else Verdict.PERMANENT
    first = refused[0] if refused else Refusal("", 0, "")
    return SmtpOutcome(
        accepted=False,
        refused=refused,
        verdict=verdict,
        error_code="recipients_refused",
        error_detail=f"RCPT TO: {first.code} {first.text}"[:500],
    )


# ------------------------------------------------------------------------ recording


def _retry_delay(attempts: int) -> timedelta:
    index = max(0, min(attempts - 1, len(RETRY_DELAYS) - 1))
    return timedelta(seconds=RETRY_DELAYS[index])


def _record(row: OutgoingMessage, token: str, outcome: SmtpOutcome, raw: bytes) -> None:
    now = timezone.now()
    owned = OutgoingMessage.objects.filter(_owned(row.pk, token))
    refused = [r.as_json() for r in outcome.refused]
    if outcome.accepted:
        with transaction.atomic():
            changed = owned.update(
                state=State.SENT,
                sent_at=now,
                failed_recipients=refused,
                error_code="some_recipients_refused" if refused else "",
                error_detail="",
                sent_copy=FollowUp.PENDING if _wants_sent_copy(row) else FollowUp.NONE,
                mark_original=FollowUp.PENDING if _marks_original(row) else FollowUp.NONE,
                draft_cleanup=FollowUp.PENDING if _may_have_draft(row) else FollowUp.NONE,
                follow_up_at=now,
            )
            if changed:
                _link_sent_message(row, raw, now)
        return
    if outcome.error_code == "lost_claim":
        return
    if outcome.unknown:
        owned.update(
            state=State.NEEDS_REVIEW, error_code=outcome.error_code,
            error_detail=outcome.error_detail, failed_recipients=refused,
        )
        return
    give_up_at = row.give_up_at or (row.queued_at or now) + RETRY_DEADLINE
    common = {
        "error_code": outcome.error_code,
        "error_detail": outcome.error_detail,
        "failed_recipients": refused,
        "claim_token": "",
        "data_started_at": None,
        "give_up_at": give_up_at,
    }
    if outcome.verdict == Verdict.RETRY and now < give_up_at:
        owned.update(state=State.QUEUED, send_at=now + _retry_delay(row.attempts + 1), **common)
    elif outcome.verdict == Verdict.ACCOUNT:
        owned.update(state=State.QUEUED, send_at=now + ACCOUNT_RETRY_DELAY, **common)
    else:
        owned.update(state=State.FAILED, send_at=None, **common)


def _record_unexpected(outgoing_id: int, token: str) -> None:
    """A bug or a broken blob: before DATA nothing left (retry), after it unknown."""
    owned = OutgoingMessage.objects.filter(_owned(outgoing_id, token))
    row = owned.first()
    if row is None:
        return
    if row.data_started_at is not None:
        owned.update(state=State.NEEDS_REVIEW, error_code="outcome_unknown")
        return
    if timezone.now() >= (row.give_up_at or (row.queued_at or timezone.now()) + RETRY_DEADLINE):
        # A failure that outlives the retry deadline is not passing: stop, and say so.
        owned.update(state=State.FAILED, claim_token="", send_at=None,
                     error_code="internal_error_gave_up", error_detail="")
        return
    owned.update(
        state=State.QUEUED,
        claim_token="",
        send_at=timezone.now() + _retry_delay(row.attempts),
        error_code="internal_error",
        error_detail="",
    )


def _wants_sent_copy(row: OutgoingMessage) -> bool:
    preset = PRESETS.get(row.account.preset)
    return not (preset is not None and preset.stores_sent_copy)


def _may_have_draft(row: OutgoingMessage) -> bool:
    """Whether a copy of the draft can be on the server: it was saved at least once
    (a save in flight may have appended one) or it was opened from one."""
    return row.draft_revision > 0 or row.draft_uid is not None


def _marks_original(row: OutgoingMessage) -> bool:
    return row.original_id is not None and row.kind != OutgoingMessage.Kind.NEW


def _link_sent_message(row: OutgoingMessage, raw: bytes, now: datetime) -> None:
    """Store the sent message for the sender at once, in its thread (issue 5:
    "Sent mail is linked to its thread at once"). The sync finds the same identity
    when the Sent copy arrives and adds its location to this row."""
    ingest.do_store_sent(
        user_id=row.user_id, raw=raw, blob_key=row.raw_blob_key or blobs.put(raw), now=now
    )


# ------------------------------------------------------------------------- recovery


def recover_stalled(*, stale_after: timedelta = SENDING_LEASE) -> int:
    """Settle rows left "sending" by a worker that died; how many were settled.

    Before DATA began nothing can have left: the row is queued again. After, the
    Sent folder is searched for the Message-ID (a provider that files sent mail
    itself, or our own append, may show it); found means sent, anything else means
    the user decides (needs_review). Never a blind resend.
    """
    limit = timezone.now() - stale_after
    settled = 0
    stalled = OutgoingMessage.objects.filter(state=State.SENDING, claimed_at__lte=limit)
    for row in stalled.select_related("account"):
        owned = OutgoingMessage.objects.filter(_owned(row.pk, row.claim_token))
        if row.data_started_at is None:
            settled += owned.update(state=State.QUEUED, claim_token="", send_at=timezone.now())
            continue
        if _found_in_sent(row):
            settled += owned.update(
                state=State.SENT,
                sent_at=row.data_started_at,
                sent_copy=FollowUp.DONE,
                mark_original=FollowUp.PENDING if _marks_original(row) else FollowUp.NONE,
                draft_cleanup=FollowUp.PENDING if _may_have_draft(row) else FollowUp.NONE,
                follow_up_at=timezone.now(),
            )
            continue
        settled += owned.update(
            state=State.NEEDS_REVIEW,
            error_code="outcome_unknown",
            error_detail="",
        )
    return settled


def _found_in_sent(row: OutgoingMessage) -> bool:
    folder = folder_with_role(row.account, Folder.Role.SENT)
    if folder is None or not row.message_id:
        return False
    try:
        session = open_imap(row.account)
    except errors.MailError:
        return False
    try:
        return bool(find_message_id(session, folder, row.message_id))
    except errors.MailError:
        return False
    finally:
        close(session)


def header_message_id(raw: bytes) -> str:
    """The Message-ID header of raw message bytes (for tests and recovery logs)."""
    parsed = BytesHeaderParser(policy=email.policy.default).parsebytes(raw)
    return str(parsed.get("Message-ID", "")).strip().strip("<>")
