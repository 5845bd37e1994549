"""The outbox's services for the web layer (STYLE 1): `do_` / `check_` / `access_`.

The rows and their state machine are in posta.mail.outbox_models. Validation
happens here, in the reader's language; the worker checks again when it builds the
message (posta.mailproto.mime.compose). Every change that gives a worker something
to do sends a signal of posta.mail.signals after its transaction commits; the
delivery app connects the worker to them (this module never imports it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from posta.accounts.models import Account, CompanySettings
from posta.accounts.services import sender_accounts
from posta.accounts.signatures import render_company_signature
from posta.core.errors import PostaError, not_found
from posta.mail import blobs, headers_check, signals
from posta.mail.addresses import check_address_list, format_addresses, lenient_address_list
from posta.mail.models import Location, Message, OutgoingAttachment, OutgoingMessage
from posta.mail.outbox_models import new_message_id
from posta.mailproto.mime import compose, fields
from posta.users.models import User

MORNING_HOUR = 8


@dataclass
class Draft:
    """What the compose form submits (already shaped by the form)."""

    account_id: int
    to: str = ""
    cc: str = ""
    bcc: str = ""
    subject: str = ""
    body_html: str = ""
    body_text: str = ""
    plain_text: bool = False


def undo_seconds(user: User) -> int:
    return max(0, user.undo_send_seconds)


def user_timezone(user: User) -> ZoneInfo:
    try:
        return ZoneInfo(user.time_zone or settings.TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(settings.TIME_ZONE)


# --- senders and signatures


def access_sender(user: User, account_id: int) -> Account:
    """An account the user may send from (their own or a shared sender); PostaError
    404 for any other."""
    for account in sender_accounts(user):
        if account.pk == account_id:
            return account
    raise not_found(_("You cannot send from this account."))


def default_sender(user: User, original: Message | None = None) -> Account | None:
    """The From of a new message: for a reply, the account that received the
    original; otherwise the main account; otherwise the first one."""
    if original is not None:
        loc = (
            Location.objects.filter(message=original, folder__account__user=user)
            .select_related("folder__account")
            .first()
        )
        if loc is not None:
            return loc.folder.account
    senders = sender_accounts(user)
    main = next((a for a in senders if a.is_main and a.user_id == user.pk), None)
    return main or (senders[0] if senders else None)


def signature_for(account: Account, user: User) -> str:
    """The signature HTML for mail `user` sends from `account` (merge fields are the
    sender's, also for a shared sender)."""
    if account.signature_kind == Account.Signature.CUSTOM:
        return account.signature_html
    if account.signature_kind == Account.Signature.COMPANY:
        return render_company_signature(CompanySettings.load().company_signature, user)
    return ""


def signatures_by_account(user: User) -> dict[str, str]:
    return {str(a.pk): signature_for(a, user) for a in sender_accounts(user)}


# --- drafts


def access_outgoing(user: User, outgoing_id: int) -> OutgoingMessage:
    """The user's outgoing message; PostaError 404 for anyone else's."""
    outgoing = (
        OutgoingMessage.objects.select_related("account").filter(pk=outgoing_id, user=user).first()
    )
    if outgoing is None:
        raise not_found(_("This message does not exist, or it was deleted."))
    return outgoing


def do_new_draft(user: User, *, account: Account | None = None) -> OutgoingMessage:
    sender = account or default_sender(user)
    if sender is None:
        raise PostaError("no_account", _("Add a mail account before writing mail."))
    return OutgoingMessage.objects.create(user=user, account=sender)


def check_save_draft(user: User, outgoing: OutgoingMessage, draft: Draft) -> OutgoingMessage:
    """Store what the editor holds; addresses are kept as typed until Send."""
    if outgoing.state != OutgoingMessage.State.DRAFT:
        raise PostaError(
            "not_editable", _("This message is no longer a draft: it was sent or queued.")
        )
    fields = {
        "account": access_sender(user, draft.account_id),
        "to": lenient_address_list(draft.to),
        "cc": lenient_address_list(draft.cc),
        "bcc": lenient_address_list(draft.bcc),
        "subject": headers_check.check_header_text(
            draft.subject, _("the subject"), field="subject"
        )[:998],
        "body_html": draft.body_html,
        "body_text": draft.body_text,
        "plain_text": draft.plain_text,
    }
    # One conditional UPDATE of the editor's fields only: a Send from another tab
    # wins, and what the draft worker recorded about the server copy (draft_uid,
    # draft_saved_revision) is never overwritten by a stale copy of the row.
    changed = OutgoingMessage.objects.filter(
        pk=outgoing.pk, user=user, state=OutgoingMessage.State.DRAFT
    ).update(draft_revision=F("draft_revision") + 1, updated_at=timezone.now(), **fields)
    if changed != 1:
        raise PostaError(
            "not_editable", _("This message is no longer a draft: it was sent or queued.")
        )
    outgoing.refresh_from_db()
    _notify_draft_changed(outgoing.pk)
    return outgoing


def _check_sendable(outgoing: OutgoingMessage) -> None:
    """Everything the worker will need to build the message, checked now: a row
    is never queued with a message that cannot be built (headers_check)."""
    for field_name in ("to", "cc", "bcc"):
        pairs = getattr(outgoing, field_name)
        headers_check.check_recipients(pairs, field=field_name)
        checked = check_address_list(format_addresses(pairs)) if pairs else []
        setattr(outgoing, field_name, checked)
    if not outgoing.recipients():
        raise PostaError("no_recipients", _("Add at least one recipient."), field="to")
    headers_check.check_header_text(outgoing.subject, _("the subject"), field="subject")
    headers_check.check_sender_name(outgoing.account, outgoing.user)
    for pk, name, content_id in outgoing.attachments.values_list("pk", "filename", "content_id"):
        headers_check.check_filename(name)
        if content_id and not headers_check.usable_ids([content_id]):
            # Copied from stored mail: shown as an attachment rather than inline.
            OutgoingAttachment.objects.filter(pk=pk).update(content_id="")
    # From stored mail, not typed: an id that cannot be written is left out.
    outgoing.in_reply_to = "".join(headers_check.usable_ids([outgoing.in_reply_to]))
    outgoing.references = headers_check.usable_ids(str(r) for r in outgoing.references)
    check_attachment_total(outgoing, 0)


def _enqueue(
    outgoing: OutgoingMessage, *, send_at: datetime, scheduled: bool, wake_at: datetime | None
) -> None:
    """Into queued/scheduled for `send_at`; the worker is woken at `wake_at` (now
    when None) once the transaction commits."""
    now = timezone.now()
    if not outgoing.message_id:
        domain = outgoing.account.email.rpartition("@")[2] or "localhost"
        outgoing.message_id = new_message_id(compose.ascii_domain(domain) or "localhost")
    outgoing.signature_html = signature_for(outgoing.account, outgoing.user)
    outgoing.state = OutgoingMessage.State.SCHEDULED if scheduled else OutgoingMessage.State.QUEUED
    outgoing.scheduled_for = send_at if scheduled else None
    outgoing.send_at = send_at
    outgoing.queued_at = outgoing.queued_at or now
    outgoing.error_code = ""
    outgoing.error_detail = ""
    outgoing.failed_recipients = []
    outgoing.raw_blob_key = ""  # the content may have changed since the last queueing
    outgoing.save()
    _notify_queued(outgoing.pk, wake_at)


def _notify_draft_changed(outgoing_id: int) -> None:
    """The server copy of the draft is to be brought up to date (or removed); the
    worker's sweep finds the row anyway if the wake-up is lost."""
    signals.notify_after_commit(
        signals.draft_changed, sender=OutgoingMessage, outgoing_id=outgoing_id
    )


def _notify_queued(outgoing_id: int, send_at: datetime | None) -> None:
    """The row may leave at `send_at` (now when None)."""
    signals.notify_after_commit(
        signals.outgoing_queued, sender=OutgoingMessage, outgoing_id=outgoing_id,
        send_at=send_at,
    )


@transaction.atomic
def check_send(user: User, outgoing: OutgoingMessage) -> OutgoingMessage:
    """Queue a draft to leave after the undo delay; PostaError if it cannot go."""
    outgoing = OutgoingMessage.objects.select_for_update().get(pk=outgoing.pk, user=user)
    if outgoing.state != OutgoingMessage.State.DRAFT:
        raise PostaError("not_editable", _("This message was already sent or queued."))
    access_sender(user, outgoing.account_id)
    _check_sendable(outgoing)
    delay = undo_seconds(user)
    send_at = timezone.now() + timedelta(seconds=delay)
    # No undo window: the worker is woken now rather than at a time already passed.
    _enqueue(outgoing, send_at=send_at, scheduled=False, wake_at=send_at if delay else None)
    return outgoing


@transaction.atomic
def check_schedule(user: User, outgoing: OutgoingMessage, when: datetime) -> OutgoingMessage:
    """Put a draft (or a waiting message) in Scheduled for `when`."""
    if timezone.is_naive(when):
        raise PostaError("naive_time", _("Choose a date and time."))
    outgoing = OutgoingMessage.objects.select_for_update().get(pk=outgoing.pk, user=user)
    if outgoing.state not in OutgoingMessage.EDITABLE_STATES:
        raise PostaError("not_editable", _("This message was already sent."))
    if when <= timezone.now():
        raise PostaError("time_in_past", _("Choose a time in the future."), field="send_at")
    access_sender(user, outgoing.account_id)
    _check_sendable(outgoing)
    _enqueue(outgoing, send_at=when, scheduled=True, wake_at=when)
    return outgoing


def _transition(
    user: User, outgoing_id: int, from_states: tuple[str, ...], **changes: object
) -> bool:
    """One conditional UPDATE: the change happens only from `from_states`, so a
    worker's claim and a user's click can never both win."""
    changed = OutgoingMessage.objects.filter(
        pk=outgoing_id, user=user, state__in=from_states
    ).update(**changes)
    return changed == 1


def do_undo_send(user: User, outgoing: OutgoingMessage) -> bool:
    """Back to the editor if the message has not been taken for sending yet."""
    return _transition(
        user, outgoing.pk, (OutgoingMessage.State.QUEUED,),
        state=OutgoingMessage.State.DRAFT, send_at=None, scheduled_for=None,
    )


def do_edit(user: User, outgoing: OutgoingMessage) -> bool:
    """A waiting message returns to the editor and leaves its schedule."""
    return _transition(
        user, outgoing.pk, OutgoingMessage.WAITING_STATES + (OutgoingMessage.State.FAILED,),
        state=OutgoingMessage.State.DRAFT, send_at=None, scheduled_for=None,
    )


def do_cancel(user: User, outgoing: OutgoingMessage) -> bool:
    """Cancelled for good; the draft's copy on the server goes too."""
    done = _transition(
        user, outgoing.pk, OutgoingMessage.WAITING_STATES + (OutgoingMessage.State.DRAFT,),
        state=OutgoingMessage.State.CANCELLED, send_at=None,
    )
    if done:
        _notify_draft_changed(outgoing.pk)
    return done


def do_pause(user: User, outgoing: OutgoingMessage) -> bool:
    return _transition(
        user, outgoing.pk, (OutgoingMessage.State.SCHEDULED,),
        state=OutgoingMessage.State.PAUSED,
    )


def do_resume(user: User, outgoing: OutgoingMessage) -> bool:
    """Back in Scheduled; if its time passed while paused, it leaves now."""
    done = _transition(
        user, outgoing.pk, (OutgoingMessage.State.PAUSED,),
        state=OutgoingMessage.State.SCHEDULED,
    )
    if done:
        outgoing.refresh_from_db()
        _notify_queued(outgoing.pk, max(outgoing.send_at or timezone.now(), timezone.now()))
    return done


def do_send_now(user: User, outgoing: OutgoingMessage) -> bool:
    now = timezone.now()
    done = _transition(
        user, outgoing.pk,
        (OutgoingMessage.State.SCHEDULED, OutgoingMessage.State.PAUSED,
         OutgoingMessage.State.QUEUED),
        state=OutgoingMessage.State.QUEUED, send_at=now,
    )
    if done:
        _notify_queued(outgoing.pk, None)
    return done


def check_reschedule(user: User, outgoing: OutgoingMessage, when: datetime) -> bool:
    if when <= timezone.now():
        raise PostaError("time_in_past", _("Choose a time in the future."), field="send_at")
    done = _transition(
        user, outgoing.pk,
        (OutgoingMessage.State.SCHEDULED, OutgoingMessage.State.PAUSED),
        state=OutgoingMessage.State.SCHEDULED, send_at=when, scheduled_for=when,
    )
    if done:
        _notify_queued(outgoing.pk, when)
    return done


def do_review_mark_sent(user: User, outgoing: OutgoingMessage) -> bool:
    """The user checked: the message did leave."""
    return _transition(
        user, outgoing.pk, (OutgoingMessage.State.NEEDS_REVIEW,),
        state=OutgoingMessage.State.SENT, sent_at=timezone.now(), error_code="",
    )


def do_review_send_again(user: User, outgoing: OutgoingMessage) -> bool:
    """The user checked: it did not arrive; send it (same Message-ID) once more."""
    done = _transition(
        user, outgoing.pk, (OutgoingMessage.State.NEEDS_REVIEW, OutgoingMessage.State.FAILED),
        state=OutgoingMessage.State.QUEUED, send_at=timezone.now(), claim_token="",
        data_started_at=None, error_code="", give_up_at=None, queued_at=timezone.now(),
    )
    if done:
        _notify_queued(outgoing.pk, None)
    return done


# --- attachments


def attachment_limit_bytes() -> int:
    return CompanySettings.load().max_attachment_mb * 1024 * 1024


def check_attachment_total(outgoing: OutgoingMessage, adding: int) -> None:
    """PostaError when the attachments would exceed the administrator's limit."""
    limit = attachment_limit_bytes()
    current = (
        OutgoingAttachment.objects.filter(outgoing=outgoing).aggregate(total=Sum("size"))[
            "total"
        ]
        or 0
    )
    if current + adding > limit:
        raise PostaError(
            "attachments_too_large",
            format_lazy(
                _("Attachments may total at most {limit} MB; these would make {total} MB."),
                limit=CompanySettings.load().max_attachment_mb,
                total=f"{(current + adding) / 1024 / 1024:.1f}",
            ),
            status=413,
        )


def _safe_filename(name: str) -> str:
    """A file name without path separators or line breaks (RFC 2183 §2.3)."""
    cleaned = "".join(ch for ch in name if ch not in "/\\" and ch not in fields.FORBIDDEN)
    return cleaned.strip()[:255] or "attachment"


@transaction.atomic
def check_add_attachment(
    user: User, outgoing: OutgoingMessage, *, filename: str, content_type: str, data: bytes,
    content_id: str = "",
) -> OutgoingAttachment:
    outgoing = OutgoingMessage.objects.select_for_update().get(pk=outgoing.pk, user=user)
    if outgoing.state != OutgoingMessage.State.DRAFT:
        raise PostaError("not_editable", _("This message is no longer a draft."))
    check_attachment_total(outgoing, len(data))
    return OutgoingAttachment.objects.create(
        outgoing=outgoing,
        filename=headers_check.check_filename(_safe_filename(filename)),
        content_type=(content_type or "application/octet-stream")[:255],
        size=len(data),
        blob_key=blobs.put(data),
        content_id=content_id,
    )


def do_remove_attachment(user: User, outgoing: OutgoingMessage, attachment_id: int) -> None:
    OutgoingAttachment.objects.filter(
        pk=attachment_id, outgoing=outgoing, outgoing__user=user,
        outgoing__state=OutgoingMessage.State.DRAFT,
    ).delete()


# --- the message a draft starts from (posta.mail.replies prepares the drafts)


def access_message(user: User, message_id: int) -> Message:
    """The user's stored message; PostaError 404 for anyone else's."""
    message = Message.objects.filter(pk=message_id, user=user).first()
    if message is None:
        raise not_found(_("This message does not exist, or it was deleted."))
    return message


def quick_schedule_choices(
    user: User, *, now: datetime | None = None
) -> list[tuple[str, datetime]]:
    """Later today (in three hours, if still today), tomorrow morning, Monday
    morning: in the user's time zone."""
    tz = user_timezone(user)
    local = timezone.localtime(now or timezone.now(), tz)
    choices: list[tuple[str, datetime]] = []
    later = (local + timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    if later.date() == local.date():
        choices.append((str(_("Later today")), later))
    tomorrow = (local + timedelta(days=1)).replace(
        hour=MORNING_HOUR, minute=0, second=0, microsecond=0
    )
    choices.append((str(_("Tomorrow morning")), tomorrow))
    days = (7 - local.weekday()) % 7 or 7
    monday = (local + timedelta(days=days)).replace(
        hour=MORNING_HOUR, minute=0, second=0, microsecond=0
    )
    if monday.date() != tomorrow.date():
        choices.append((str(_("Monday morning")), monday))
    # Wall-clock times in the zone: re-attach so that DST changes are honoured.
    return [(label, when.replace(tzinfo=None).replace(tzinfo=tz)) for label, when in choices]


def do_send_waiting_now(user: User, account: Account) -> int:
    """The account works again (its user signed in again): the messages that were
    waiting for its settings leave now rather than at their next slow retry.
    Returns how many were released."""
    waiting = OutgoingMessage.objects.filter(
        user=user, account=account, state=OutgoingMessage.State.QUEUED
    ).exclude(error_code="")
    return sum(do_send_now(user, row) for row in waiting)
