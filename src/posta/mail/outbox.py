"""The outbox: messages being written, waiting to leave, leaving and gone.

An `OutgoingMessage` row is the single source of truth for one message the user
sends (DESIGN §5, "Outgoing"). Its state machine::

    draft ──queue──> queued ──(send_at passed, claimed)──> sending ──250──> sent
      │  ╲              │  ▲                                   │  ╲
      │   schedule     undo│ retry (4xx, network, backoff)     │   5xx / deadline
      │     ╲           ▼  │                                   │      ╲
      │    scheduled ──────┘ (claimed at its time)            │     failed
      │      │  ▲                                              │
      │   pause│resume                                crash after DATA began,
      │      ▼  │                                     outcome unknown
      │    paused                                             ▼
      └──────────────── cancel (any waiting state) ──>   needs_review
                                                          cancelled

- The Message-ID is chosen when the row is first queued or scheduled and never
  changes: retries, crash recovery and the Sent-folder lookup all rely on it.
- A worker takes a row only through a conditional UPDATE (queued|scheduled →
  sending, with a fresh claim token): two workers racing send it once.
- `data_started_at` is written (and committed) just before the SMTP DATA command.
  A row found in `sending` after a crash without it has certainly not left and is
  queued again; with it, the Sent folder is searched for its Message-ID, and when
  the outcome cannot be known the row becomes `needs_review`: never sent blindly.
- After the 250, the Sent copy, the \\Answered / $Forwarded flag on the original and
  the removal of the draft are follow-ups of their own, retried alone: nothing
  after the 250 ever sends the message again.

While the row is a draft, each save bumps `draft_revision` and wakes the draft
worker (posta.delivery.drafts), which replaces the copy in the From account's
Drafts folder; every copy carries X-Posta-Draft-Id (`draft_key`), so opening it
from Drafts finds this row again (posta.mail.replies.prepare_open_draft). The key
is unique per user: the editor page chooses it, and the first POST of a page makes
the row with it (posta.mail.replies.check_start_draft), so a GET never writes and
two racing POSTs of one page make one row.

The rows are declared here, in the mail layer, because the web layer reads and
writes them and may not import `posta.delivery`; they belong to the delivery app,
whose worker (posta.delivery.tasks) does the network work.

Services for the web layer follow the models: `do_` / `check_` / `access_` as in
STYLE 1. The worker is woken through `wake_worker`, which reaches
`posta.delivery.tasks` by name.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db import models, transaction
from django.db.models import F, Q, QuerySet, Sum
from django.http import Http404
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.module_loading import import_string
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from posta.accounts.errors import connection_error_message
from posta.accounts.models import Account, CompanySettings, Folder
from posta.accounts.services import sender_accounts
from posta.accounts.signatures import render_company_signature
from posta.core.errors import PostaError
from posta.mail import blobs, headers_check
from posta.mail.models import Location, Message
from posta.mailproto.mime import compose, fields
from posta.users.models import User

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- models


class OutgoingMessage(models.Model):
    """One message the user writes and sends; see the module docstring."""

    class State(models.TextChoices):
        DRAFT = "draft", _("Draft")
        QUEUED = "queued", _("Waiting to be sent")
        SCHEDULED = "scheduled", _("Scheduled")
        PAUSED = "paused", _("Paused")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Not sent")
        NEEDS_REVIEW = "needs_review", _("Needs your review")
        CANCELLED = "cancelled", _("Cancelled")

    class Kind(models.TextChoices):
        NEW = "new", _("New message")
        REPLY = "reply", _("Reply")
        REPLY_ALL = "reply_all", _("Reply to all")
        FORWARD = "forward", _("Forward")
        FORWARD_ATTACHED = "forward_attached", _("Forward as attachment")

    class FollowUp(models.TextChoices):
        NONE = "none", _("Nothing to do")
        PENDING = "pending", _("Waiting")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    WAITING_STATES: ClassVar[tuple[str, ...]] = ("queued", "scheduled", "paused")
    EDITABLE_STATES: ClassVar[tuple[str, ...]] = ("draft", "queued", "scheduled", "paused")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="outgoing_messages"
    )
    # The From: one of the user's accounts or a shared sender (another user's).
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="outgoing")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.NEW)
    state = models.CharField(max_length=20, choices=State.choices, default=State.DRAFT)

    # RFC 5322 §3.6.4, without angle brackets; chosen at first queue, never changed.
    message_id = models.CharField(max_length=250, blank=True)
    subject = models.CharField(max_length=998, blank=True)
    to = models.JSONField(default=list)  # [[name, address], ...]
    cc = models.JSONField(default=list)
    bcc = models.JSONField(default=list)
    body_html = models.TextField(blank=True)  # sanitized editor HTML, without signature
    body_text = models.TextField(blank=True)  # the plain-text mode's body
    plain_text = models.BooleanField(default=False)
    # Snapshot of the From account's signature, taken when the message is queued.
    signature_html = models.TextField(blank=True)
    # The quoted original of a reply or an inline forward, kept apart from the body so
    # that the signature goes above it (issue 5, "Signatures").
    quote_html = models.TextField(blank=True)
    quote_text = models.TextField(blank=True)

    original = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    in_reply_to = models.CharField(max_length=998, blank=True)  # normalized, without <>
    references = models.JSONField(default=list)  # normalized ids, oldest first

    # The earliest time a worker may take the row: end of the undo window, the
    # scheduled time, or the next retry.
    send_at = models.DateTimeField(null=True, blank=True)
    # Set for messages the user scheduled (shown in Scheduled while waiting).
    scheduled_for = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=64, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    data_started_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    give_up_at = models.DateTimeField(null=True, blank=True)
    # The composed RFC 5322 bytes in the blob store, made at the first attempt and
    # reused by every retry (same Date, same boundaries, same Message-ID).
    raw_blob_key = models.CharField(max_length=100, blank=True)

    error_code = models.CharField(max_length=50, blank=True)
    error_detail = models.CharField(max_length=500, blank=True)
    # [{"address": ..., "code": 550, "text": ...}] refused by the server.
    failed_recipients = models.JSONField(default=list)
    sent_at = models.DateTimeField(null=True, blank=True)

    sent_copy = models.CharField(max_length=10, choices=FollowUp.choices, default="none")
    mark_original = models.CharField(max_length=10, choices=FollowUp.choices, default="none")
    draft_cleanup = models.CharField(max_length=10, choices=FollowUp.choices, default="none")
    follow_up_attempts = models.PositiveSmallIntegerField(default=0)
    follow_up_at = models.DateTimeField(null=True, blank=True)

    # The draft's copy on the server (Drafts folder), replaced at every autosave.
    draft_folder = models.ForeignKey(
        Folder, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    draft_uid = models.BigIntegerField(null=True, blank=True)
    draft_revision = models.PositiveIntegerField(default=0)
    draft_saved_revision = models.PositiveIntegerField(default=0)
    # Written into every server copy as X-Posta-Draft-Id, so that the copies of this
    # draft can be found again (after a kill, or when the draft is opened from Drafts).
    draft_key = models.CharField(max_length=64, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        app_label = "delivery"
        indexes: ClassVar[list[models.Index]] = [
            models.Index(
                fields=["send_at"],
                name="outgoing_due",
                condition=Q(state__in=["queued", "scheduled"]),
            ),
            models.Index(fields=["user", "state"], name="outgoing_user_state"),
        ]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(
                fields=["message_id"],
                condition=~Q(message_id=""),
                name="outgoing_unique_message_id",
            ),
            # The editor page's key of a draft not stored yet: its first POSTs (an
            # autosave racing a click on Send) all find the one row it made.
            models.UniqueConstraint(
                fields=["user", "draft_key"],
                condition=~Q(draft_key=""),
                name="outgoing_unique_user_draft_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subject or '(no subject)'} [{self.state}]"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.draft_key:
            self.draft_key = new_draft_key()
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = [*kwargs["update_fields"], "draft_key"]
        super().save(*args, **kwargs)

    @property
    def is_waiting(self) -> bool:
        return self.state in self.WAITING_STATES

    def recipients(self) -> list[str]:
        """Every envelope recipient (To, Cc, Bcc), each address once, in order."""
        seen: list[str] = []
        for _name, address in [*self.to, *self.cc, *self.bcc]:
            if address.lower() not in {s.lower() for s in seen}:
                seen.append(address)
        return seen


class OutgoingAttachment(models.Model):
    """A file attached to an outgoing message; bytes in the blob store."""

    outgoing = models.ForeignKey(
        OutgoingMessage, on_delete=models.CASCADE, related_name="attachments"
    )
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255, default="application/octet-stream")
    size = models.PositiveBigIntegerField(default=0)
    blob_key = models.CharField(max_length=100)
    # Set for an image shown in the body (<img src="cid:...">, RFC 2392).
    content_id = models.CharField(max_length=250, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "delivery"
        ordering: ClassVar[list[str]] = ["id"]

    def __str__(self) -> str:
        return self.filename


def new_claim_token() -> str:
    return secrets.token_hex(16)


def new_draft_key() -> str:
    return uuid.uuid4().hex


def new_message_id(domain: str) -> str:
    """A globally unique Message-ID (RFC 5322 §3.6.4) for `domain`, without <>."""
    return f"{uuid.uuid4().hex}.posta@{domain or 'localhost'}"


# ------------------------------------------------------------------------- services
#
# Called by the web layer. Validation happens here, in the reader's language; the
# worker checks again when it builds the message (posta.mailproto.mime.compose).

# The worker is reached by name: the web layer must not import posta.delivery.
WAKE_WORKER = "posta.delivery.tasks.wake"
WAKE_DRAFT = "posta.delivery.tasks.wake_draft"
# Headers of the server copy of a draft (posta.delivery.drafts): which draft it is,
# and which save of it.
DRAFT_ID_HEADER = "X-Posta-Draft-Id"
DRAFT_REVISION_HEADER = "X-Posta-Draft-Revision"
# Account states in which nothing is sent from the account: the message waits.
BLOCKED_ACCOUNT_STATES = ("paused", "error")
MORNING_HOUR = 8
# Error codes meaning the From account's settings must change (posta.delivery.policy).
ACCOUNT_ERRORS = frozenset(
    {
        "auth_failed", "tls_required", "certificate_invalid", "tls_failed",
        "starttls_missing", "capability_missing", "host_not_allowed",
        "smtputf8_missing", "secret_unreadable",
    }
)


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
    """An account the user may send from (their own or a shared sender), or 404."""
    for account in sender_accounts(user):
        if account.pk == account_id:
            return account
    raise Http404


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


# --- addresses


# What the user reads for each reason an address is refused
# (posta.mailproto.mime.compose.InvalidAddress.reason).
_ADDRESS_REASONS: dict[str, Promise] = {
    "newline": _("line breaks are not allowed"),
    "empty": _("an address needs a name, an @ and a domain"),
    "no_at": _("an address needs a name, an @ and a domain"),
    "local_empty": _("an address needs a name, an @ and a domain"),
    "local_too_long": _("the part before the @ is too long"),
    "local_invalid": _("the part before the @ has characters not allowed"),
    "domain_empty": _("the domain after the @ is not valid"),
    "domain_too_long": _("the domain after the @ is not valid"),
    "domain_invalid": _("the domain after the @ is not valid"),
}


def check_address(address: str) -> str:
    """The address, domain in ASCII form (IDN, RFC 5890); PostaError saying why not."""
    try:
        return compose.check_addr_spec(address)
    except compose.InvalidAddress as error:
        reason = _ADDRESS_REASONS.get(error.reason, _("the address is not valid"))
        raise PostaError(
            "invalid_address",
            format_lazy(_("{address}: {reason}"), address=address.strip(), reason=reason),
        ) from error


split_addresses = compose.split_address_list


def _name_and_address(item: str) -> tuple[str, str]:
    if item.endswith(">") and "<" in item:
        name, _lt, address = item[:-1].rpartition("<")
        name = name.strip()
        if len(name) >= 2 and name[0] == name[-1] == '"':
            name = name[1:-1]
        return name, address
    return "", item


def check_address_list(text: str) -> list[list[str]]:
    """[[name, address], ...] of an address field; PostaError on the first bad one."""
    if fields.has_forbidden(text):
        raise PostaError("header_newline", _("Line breaks are not allowed in address fields."))
    return [
        [name, check_address(address)]
        for name, address in (_name_and_address(item) for item in split_addresses(text))
    ]


def lenient_address_list(text: str) -> list[list[str]]:
    """What a draft keeps of an address field: every item, checked or not."""
    cleaned = headers_check.fold_line_breaks(text)
    return [list(_name_and_address(item)) for item in split_addresses(cleaned)]


def format_addresses(pairs: list[list[str]]) -> str:
    out = []
    for name, address in pairs:
        if name:
            quoted = f'"{name}"' if any(c in name for c in ',;<>@"') else name
            out.append(f"{quoted} <{address}>")
        else:
            out.append(address)
    return ", ".join(out)


def correspondents(user: User, query: str, *, limit: int = 10) -> list[str]:
    """Addresses the user has written with, for autocomplete: senders of their mail
    and recipients of what they sent, matching `query` by name or address."""
    query = query.strip()
    if len(query) < 2:
        return []
    found: dict[str, str] = {}
    rows = (
        Message.objects.filter(user=user)
        .filter(Q(from_email__icontains=query) | Q(from_name__icontains=query))
        .values_list("from_name", "from_email")
        .distinct()[: limit * 3]
    )
    for name, address in rows:
        if address and address.lower() not in found:
            found[address.lower()] = format_addresses([[name, address]])
    needle = query.lower()
    sent = OutgoingMessage.objects.filter(user=user, state=OutgoingMessage.State.SENT)
    for pairs in sent.order_by("-sent_at").values_list("to", flat=True)[:200]:
        for name, address in pairs:
            if (needle in address.lower() or needle in name.lower()) and (
                address.lower() not in found
            ):
                found[address.lower()] = format_addresses([[name, address]])
    return sorted(found.values(), key=str.lower)[:limit]


# --- drafts


def access_outgoing(user: User, outgoing_id: int) -> OutgoingMessage:
    try:
        return OutgoingMessage.objects.select_related("account").get(pk=outgoing_id, user=user)
    except OutgoingMessage.DoesNotExist as exc:
        raise Http404 from exc


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
    wake_draft_after_commit(outgoing.pk)
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
    wake_after_commit(outgoing.pk, wake_at)


def wake_draft_after_commit(outgoing_id: int) -> None:
    """Ask the worker to bring the server copy of the draft up to date (or remove
    it); the worker's sweep finds the row anyway if the queue loses this."""

    def wake() -> None:
        try:
            import_string(WAKE_DRAFT)(outgoing_id)
        except Exception:
            log.warning("could not wake the draft worker for %s", outgoing_id, exc_info=True)

    transaction.on_commit(wake)


def wake_after_commit(outgoing_id: int, send_at: datetime | None) -> None:
    def wake() -> None:
        try:
            import_string(WAKE_WORKER)(outgoing_id, send_at)
        except Exception:
            # The queue is only a wake-up; the worker's sweep finds the row anyway.
            log.warning("could not wake the delivery worker for %s", outgoing_id, exc_info=True)

    transaction.on_commit(wake)


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
        wake_draft_after_commit(outgoing.pk)
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
        wake_after_commit(outgoing.pk, max(outgoing.send_at or timezone.now(), timezone.now()))
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
        wake_after_commit(outgoing.pk, None)
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
        wake_after_commit(outgoing.pk, when)
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
        wake_after_commit(outgoing.pk, None)
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
    try:
        return Message.objects.get(pk=message_id, user=user)
    except Message.DoesNotExist as exc:
        raise Http404 from exc


# --- lists and words


def scheduled_messages(user: User) -> QuerySet[OutgoingMessage]:
    """The Scheduled special folder: messages waiting for their time."""
    return (
        OutgoingMessage.objects.filter(
            user=user,
            state__in=[OutgoingMessage.State.SCHEDULED, OutgoingMessage.State.PAUSED],
        )
        .select_related("account")
        .order_by("send_at", "id")
    )


def outbox_messages(user: User) -> QuerySet[OutgoingMessage]:
    """Messages on their way or stuck: waiting, retrying, failed, to review."""
    return (
        OutgoingMessage.objects.filter(
            user=user,
            state__in=[
                OutgoingMessage.State.QUEUED, OutgoingMessage.State.SENDING,
                OutgoingMessage.State.FAILED, OutgoingMessage.State.NEEDS_REVIEW,
            ],
        )
        .select_related("account")
        .order_by("-updated_at")
    )


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


def outgoing_error_message(outgoing: OutgoingMessage) -> str:
    """The row's error in the reader's language, or ""."""
    code = outgoing.error_code
    if not code:
        return ""
    account = outgoing.account
    own = {
        "recipients_refused": _("The server refused every recipient."),
        "some_recipients_refused": _("Sent, but the server refused some recipients."),
        "outcome_unknown": _(
            "The connection broke while the message was being handed over: it may or may "
            "not have left. Check with the recipients, then mark it as sent or send it again."
        ),
        "sender_not_allowed": _("You may no longer send from this address."),
        "smtputf8_missing": _(
            "An address contains international characters that the server %(server)s "
            "cannot send to."
        ) % {"server": account.smtp_host},
        "internal_error": _("Something went wrong while sending; Posta will try again."),
        "internal_error_gave_up": _(
            "Something went wrong every time Posta tried to send this message, so it "
            "stopped trying. Edit the message and send it again."
        ),
        "message_unbuildable": _(
            "This message cannot be sent as it is written (%(detail)s). Edit it and "
            "send it again."
        ) % {"detail": outgoing.error_detail},
    }
    if code in own:
        return str(own[code])
    if code.startswith("smtp_"):
        return str(
            _("The server %(server)s refused the message: %(detail)s")
            % {"server": account.smtp_host, "detail": outgoing.error_detail}
        )
    text = connection_error_message(
        code, protocol="smtp", host=account.smtp_host, detail=outgoing.error_detail
    )
    if code in ACCOUNT_ERRORS:
        text = f"{text} {_('The message waits until the account settings are fixed.')}"
    return text


def leads_to_settings(outgoing: OutgoingMessage) -> bool:
    return outgoing.error_code in ACCOUNT_ERRORS


def account_blocked(account: Account) -> bool:
    """Nothing is sent from a paused account or one in error: it waits."""
    return account.sync_state in BLOCKED_ACCOUNT_STATES


def waiting_reason(outgoing: OutgoingMessage) -> str:
    """Why a waiting message does not leave, in words, or "" (issue 5: "When the
    account is paused or broken at the scheduled time, the message waits and the
    user is told")."""
    if outgoing.state not in (OutgoingMessage.State.QUEUED, OutgoingMessage.State.SCHEDULED):
        return ""
    account = outgoing.account
    if not account_blocked(account):
        return ""
    name = account.email or account.description
    if account.sync_state == Account.SyncState.PAUSED:
        text = _(
            "Waiting: the account %(account)s is paused. The message leaves once the "
            "account works again."
        )
    else:
        text = _(
            "Waiting: the account %(account)s has a problem. The message leaves once the "
            "account works again."
        )
    detail = ""
    if account.last_error_code:
        detail = connection_error_message(
            account.last_error_code, protocol="imap", host=account.imap_host,
            detail=account.last_error_detail,
        )
    return f"{text % {'account': name}} {detail}".strip()


def may_open_settings(user: User, outgoing: OutgoingMessage) -> bool:
    """Whether the account settings the message waits for are the user's own (a
    shared sender is the administrator's)."""
    return outgoing.account.user_id == user.pk
