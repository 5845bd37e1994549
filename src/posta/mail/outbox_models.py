"""The outbox tables: messages being written, waiting to leave, leaving and gone.

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

The tables belong to the mail app (imported by posta.mail.models); the web layer
changes them through posta.mail.outbox, the worker (posta.delivery) carries them
out. They were created by the delivery app's migrations and keep those table names.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any, ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from posta.accounts.models import Account, Folder

# Headers of the server copy of a draft (posta.delivery.drafts): which draft it is,
# and which save of it.
DRAFT_ID_HEADER = "X-Posta-Draft-Id"
DRAFT_REVISION_HEADER = "X-Posta-Draft-Revision"
# error_code of a draft whose server copy the server refused for good.
DRAFT_REFUSED = "draft_refused"
# Account states in which nothing is sent from the account: the message waits.
BLOCKED_ACCOUNT_STATES = ("paused", "error")


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
        "mail.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
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

    # CRM records ("contact:12") the message is linked to once it is sent
    # (compose's "Link to"; posta.mail.links).
    crm_links = models.JSONField(default=list, blank=True)

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
        # The table keeps the name it was created with (state-only migration
        # mail.0008_outgoing_messages_join_mail): no row moves.
        db_table = "delivery_outgoingmessage"
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
        db_table = "delivery_outgoingattachment"
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


def account_blocked(account: Account) -> bool:
    """Nothing is sent from a paused account or one in error: it waits."""
    return account.sync_state in BLOCKED_ACCOUNT_STATES
