"""Posta's own out-of-office responder: one AutoReply row per new inbox message.

The row is the intent and, once `sent`, the "answered" record. In the order
things happen:

    pending --claim (lease)--> sending --decide: no--> skipped (reason kept)
                                  |
                                  +--data_started_at committed, DATA, 250-->  sent
                                  |
       lease out, no DATA yet:  pending again (nothing reached the server)
       lease out after DATA:    uncertain (the server may hold the reply:
                                counted as answered, never sent a second time)

1. The arrival step (posta.rules.autoreply_step, after the filters) writes a
   pending row per new inbox message of a covered account while out-of-office
   is on; the unique (user, message) makes a second announcement a no-op.
2. `respond` claims a row with one conditional UPDATE (a token and a lease
   that a heartbeat renews while the attempt runs),
   reads the message's header block (the stored blob, or BODY.PEEK[HEADER]
   through the account's IMAP session), and asks the one decision
   (posta.rules.autoreply_decision) with the user's history.
3. A reply goes through the account's SMTP with the null reverse path
   (RFC 3834 §3.3 `MAIL FROM:<>`) to the envelope sender only.
   `data_started_at` is committed before DATA; `sent` is written only after the
   250 (kill point `autoreply.after_accept`), so a kill between the two leaves
   `uncertain`, never a second reply; a kill before DATA sends it later.
"""

from __future__ import annotations

import logging
import secrets
import smtplib
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from posta.accounts.models import Account, Folder
from posta.core import faults
from posta.core.leases import Heartbeat
from posta.mail import blobs
from posta.mail.models import Location, Message
from posta.mailproto import errors
from posta.mailproto.common import reply_text
from posta.mailproto.failures import Verdict, verdict_for_error, verdict_for_reply
from posta.mailproto.smtp.client import close_quietly as smtp_close
from posta.mailproto.smtp.client import connect, smtp_errors
from posta.remote.connect import close, open_imap, smtp_settings
from posta.rules.autoreply_decision import (
    Decision,
    Envelope,
    History,
    decide,
    delivered_at,
    envelope_address,
    headers_of,
    normalized,
)
from posta.rules.autoreply_handover import server_answered
from posta.rules.autoreply_message import build_reply
from posta.rules.autoreply_models import AutoReply, AutoReplySettings
from posta.rules.autoreply_settings import (
    answered_before,
    covers,
    known_correspondents,
    policy_of,
)

log = logging.getLogger(__name__)

State = AutoReply.State
KILL_BEFORE_DATA = "autoreply.before_data"
KILL_AFTER_ACCEPT = "autoreply.after_accept"
DEFAULT_LEASE_SECONDS = 300.0  # longer than one SMTP conversation can last
RETRY_DELAYS = (60, 300, 1800, 3600)
MAX_ATTEMPTS = 8


def lease_seconds() -> float:
    seconds = getattr(settings, "POSTA_AUTOREPLY_LEASE_SECONDS", DEFAULT_LEASE_SECONDS)
    return max(float(seconds), 1.0)


def lease() -> timedelta:
    return timedelta(seconds=lease_seconds())


# ----------------------------------------------------------------------- claims


def _claimable(now: datetime) -> Q:
    return Q(state=State.PENDING) & (Q(retry_at__isnull=True) | Q(retry_at__lte=now))


def claim(reply_id: int) -> str | None:
    """Take the row for this attempt: its claim token, or None when another
    worker holds it, it is done, or another row of the same user is being sent.

    One user's replies go one at a time, so two messages from one sender that
    arrive together never both pass the "answered within the days" check. The
    user's settings row is locked for the claim (PostgreSQL's READ COMMITTED
    would let two claims of two rows both see no other row sending)."""
    user_id = AutoReply.objects.filter(pk=reply_id).values_list("user_id", flat=True).first()
    if user_id is None:
        return None
    token = secrets.token_hex(16)
    with transaction.atomic():
        list(AutoReplySettings.objects.select_for_update().filter(user_id=user_id))
        now = timezone.now()
        busy = AutoReply.objects.filter(
            user_id=OuterRef("user_id"), state=State.SENDING, lease_until__gte=now
        )
        taken = AutoReply.objects.filter(_claimable(now), ~Exists(busy), pk=reply_id).update(
            state=State.SENDING, claim_token=token, lease_until=now + lease(), updated_at=now,
            attempts=F("attempts") + 1,
        )
    return token if taken else None


def _owned(reply_id: int, token: str) -> Q:
    return Q(pk=reply_id, state=State.SENDING, claim_token=token)


def renew(reply_id: int, token: str) -> bool:
    """Extend the claim; False when this attempt no longer holds it."""
    held = AutoReply.objects.filter(_owned(reply_id, token)).update(
        lease_until=timezone.now() + lease()
    )
    return bool(held)


def heartbeat(reply_id: int, token: str) -> Heartbeat:
    """Renews the claim while the `with` block runs (posta.core.leases), so a slow
    server never lets another worker take a row whose reply may be under way."""
    return Heartbeat(
        lambda: renew(reply_id, token), lease_seconds=lease_seconds, name=f"autoreply-{reply_id}"
    )


def recover_stalled(*, now: datetime | None = None) -> int:
    """Rows whose worker died: back to pending when nothing reached the server,
    `uncertain` (answered, never resent) when DATA had begun."""
    now = now or timezone.now()
    stale = Q(state=State.SENDING, lease_until__lt=now)
    resent = AutoReply.objects.filter(stale, data_started_at__isnull=True).update(
        state=State.PENDING, claim_token="", lease_until=None, updated_at=now,
    )
    kept = AutoReply.objects.filter(stale, data_started_at__isnull=False).update(
        state=State.UNCERTAIN, claim_token="", lease_until=None, updated_at=now,
        reason="the worker stopped after handing the reply to the server",
    )
    return resent + kept


def due_ids(*, limit: int = 50) -> list[int]:
    now = timezone.now()
    return list(
        AutoReply.objects.filter(_claimable(now)).order_by("pk").values_list("pk", flat=True)[
            :limit
        ]
    )


def respond_due(*, limit: int = 50) -> int:
    """Recover stalled rows, then try every due one; returns how many were tried."""
    recover_stalled()
    tried = 0
    for reply_id in due_ids(limit=limit):
        tried += 1
        try:
            respond(reply_id)
        except Exception:
            log.exception("auto-reply %s failed; it is retried", reply_id)
    return tried


# ---------------------------------------------------------------------- respond


def respond(reply_id: int) -> str:
    """Claim, decide and (maybe) send one row; returns its final state."""
    token = claim(reply_id)
    if token is None:
        return AutoReply.objects.filter(pk=reply_id).values_list("state", flat=True).first() or ""
    row = AutoReply.objects.select_related("account", "message", "user").get(pk=reply_id)
    try:
        with heartbeat(reply_id, token):
            return _attempt(row, token)
    except faults.SimulatedCrash:
        raise
    except errors.MailError as exc:
        return _retry_or_fail(row, token, verdict_for_error(exc), f"{exc.code}: {exc.detail}")
    except Exception as exc:
        log.exception("auto-reply %s: unexpected failure", reply_id)
        return _retry_or_fail(row, token, Verdict.RETRY, type(exc).__name__)


def _finish(row: AutoReply, token: str, state: str, **values: object) -> str:
    AutoReply.objects.filter(_owned(row.pk, token)).update(
        state=state, claim_token="", lease_until=None, updated_at=timezone.now(), **values
    )
    return state


def _skip(row: AutoReply, token: str, decision: Decision, sender: str = "") -> str:
    return _finish(
        row, token, State.SKIPPED, reason_code=decision.code, reason=decision.reason[:500],
        reason_params=decision.params, sender=sender,
    )


def _retry_or_fail(row: AutoReply, token: str, verdict: Verdict, detail: str) -> str:
    if verdict == Verdict.PERMANENT or row.attempts >= MAX_ATTEMPTS:
        return _finish(row, token, State.FAILED, reason_code="failed", reason=detail[:500])
    delay = RETRY_DELAYS[min(row.attempts, len(RETRY_DELAYS) - 1)]
    return _finish(
        row, token, State.PENDING, reason=detail[:500],
        retry_at=timezone.now() + timedelta(seconds=delay),
    )


def _still_on(row: AutoReply) -> AutoReplySettings | None:
    """The settings, re-read at run time (STYLE 7): turned off or narrowed to
    other accounts since the row was queued means no reply."""
    found = AutoReplySettings.objects.filter(user_id=row.user_id).first()
    if found is None or not found.enabled or not covers(found, row.account_id):
        return None
    return found


def _attempt(row: AutoReply, token: str) -> str:
    found = _still_on(row)
    if found is None:
        return _skip(row, token, Decision(reply=False, code="turned_off"))
    raw_headers = _header_block(row.account, row.message)
    if raw_headers is None:
        return _skip(row, token, Decision(reply=False, code="message_gone"))
    headers = headers_of(raw_headers)
    paths = [value for name, value in headers if name.lower() == "return-path"]
    sender_path = envelope_address(paths[0]) if paths else ""
    sender = normalized(sender_path)
    arrived = delivered_at(headers) or row.created_at
    if server_answered(row.account_id, arrived):
        return _skip(row, token, Decision(reply=False, code="server_answers"), sender)
    text_key = found.text_key()
    policy = policy_of(found, known=known_correspondents(row.user_id, sender))
    history = History(
        last_replied_at=answered_before(row.user_id, sender, text_key, exclude=row.pk),
        arrived_at=arrived,
        now=timezone.now(),
        filter_outcome=row.filter_outcome,
    )
    decision = decide(
        headers, Envelope(sender=sender_path, recipient=row.account.email), policy, history
    )
    AutoReply.objects.filter(_owned(row.pk, token)).update(sender=sender, text_key=text_key)
    if not decision.reply:
        return _skip(row, token, decision, sender)
    return _send(row, token, found, headers, decision)


def _header_block(account: Account, message: Message) -> bytes | None:
    """The message's raw header block: from the blob store when the body is
    stored, else fetched from the inbox copy (BODY.PEEK, the \\Seen flag stays)."""
    if message.blob_key:
        raw = blobs.get(message.blob_key)
        end = raw.find(b"\r\n\r\n")
        end = end if end >= 0 else raw.find(b"\n\n")
        return raw if end < 0 else raw[: end + 2]
    copy = (
        Location.objects.filter(
            message=message, folder__account=account, folder__role=Folder.Role.INBOX,
            uid__isnull=False,
        ).select_related("folder").first()
    )
    if copy is None or copy.uid is None:
        return None
    session = open_imap(account)
    try:
        session.select(copy.folder.name)
        return session.header_block(copy.uid)
    finally:
        close(session)


def _send(
    row: AutoReply, token: str, found: AutoReplySettings,
    headers: list[tuple[str, str]], decision: Decision,
) -> str:
    domain = row.account.email.rpartition("@")[2] or "posta.invalid"
    message_id = f"autoreply.{row.pk}.{secrets.token_hex(8)}@{domain}"
    raw = build_reply(
        found, headers, from_address=row.account.email, from_name=row.user.get_full_name(),
        to_address=decision.reply_to, message_id=message_id,
        date=timezone.now(),
    )
    config = smtp_settings(row.account)
    smtp = connect(config)
    try:
        return _dialogue(smtp, row, token, raw, decision.reply_to, message_id, host=config.host)
    finally:
        smtp_close(smtp)


def _dialogue(
    smtp: smtplib.SMTP, row: AutoReply, token: str, raw: bytes, recipient: str,
    message_id: str, *, host: str,
) -> str:
    with smtp_errors(host=host):
        # RFC 3834 §3.3: an automatic response goes out with the null reverse
        # path, so that nothing can bounce back to it and loop.
        code, message = smtp.mail("")
        if code != 250:
            smtp.rset()
            return _refused(row, token, code, message, what="MAIL FROM")
        code, message = smtp.rcpt(recipient)
        if code not in (250, 251):
            smtp.rset()
            return _refused(row, token, code, message, what="RCPT TO")
    faults.point(KILL_BEFORE_DATA)
    marked = AutoReply.objects.filter(_owned(row.pk, token)).update(
        data_started_at=timezone.now(), reply_message_id=message_id
    )
    if marked != 1:  # the claim ran out meanwhile: another attempt decides
        smtp.rset()
        return AutoReply.objects.filter(pk=row.pk).values_list("state", flat=True).first() or ""
    reply: bytes | str
    try:
        code, reply = smtp.data(raw)
    except smtplib.SMTPResponseException as exc:
        code, reply = exc.smtp_code, exc.smtp_error
    except (smtplib.SMTPServerDisconnected, OSError):
        return _finish(
            row, token, State.UNCERTAIN,
            reason=f"{host}: the connection dropped while the reply was handed over"[:500],
        )
    if code != 250:
        # Refused after DATA: the server took nothing, the reply may be tried again.
        AutoReply.objects.filter(_owned(row.pk, token)).update(data_started_at=None)
        return _refused(row, token, code, reply, what="DATA")
    faults.point(KILL_AFTER_ACCEPT)
    return _finish(row, token, State.SENT, sent_at=timezone.now(), reason_code="reply",
                   reason="")


def _refused(row: AutoReply, token: str, code: int, message: bytes | str, *, what: str) -> str:
    verdict = verdict_for_reply(code)
    return _retry_or_fail(row, token, verdict, f"{what}: {code} {reply_text(message)}")
