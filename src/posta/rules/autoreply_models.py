"""Out-of-office: the user's settings and one row per message it looked at.

`AutoReplySettings` is one per user. `AutoReply` is both the intent and the
"answered" record (posta.rules.autoreply_responder draws its states): one row
per inbox message, decided and sent by the worker, so a message is looked at
once whatever the resyncs and kills, and `sent` is written only after the
server's 250.
"""

from __future__ import annotations

import hashlib
from typing import ClassVar

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from posta.accounts.models import Account
from posta.mail.models import Message
from posta.rules.autoreply_decision import reason_words

DEFAULT_DAYS = 7  # RFC 5230 §4.1 suggests 7; the minimum is 1


class AutoReplySettings(models.Model):
    """The Out-of-office tab of one user."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="autoreply"
    )
    enabled = models.BooleanField(_("send automatic replies"), default=False)
    starts_at = models.DateTimeField(_("from"), null=True, blank=True)
    ends_at = models.DateTimeField(_("until"), null=True, blank=True)
    all_day = models.BooleanField(_("all day"), default=False)
    # Empty: every account of the user.
    accounts = models.ManyToManyField(Account, blank=True, related_name="+")
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    body_html = models.TextField(_("message"), blank=True)
    body_text = models.TextField(blank=True)  # generated from body_html
    known_only = models.BooleanField(_("reply only to people I have written to"), default=False)
    days = models.PositiveSmallIntegerField(
        _("days between two replies to the same sender"),
        default=DEFAULT_DAYS,
        validators=[MinValueValidator(1)],
    )
    aliases = models.TextField(_("other addresses of mine"), blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("out-of-office settings")

    def __str__(self) -> str:
        return f"out of office of {self.user_id}"

    def alias_list(self) -> list[str]:
        return [line.strip() for line in self.aliases.splitlines() if line.strip()]

    def text_key(self) -> str:
        """Which reply text this is: a changed subject or message starts the
        per-sender count afresh (RFC 5230 §4.2, as Pigeonhole's handle)."""
        material = "\0".join([self.subject, self.body_text])
        return hashlib.sha256(material.encode("utf-8")).hexdigest()[:32]


class AutoReply(models.Model):
    """One inbox message out-of-office looked at, and what became of it."""

    class State(models.TextChoices):
        PENDING = "pending", _("Waiting")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        # The worker died after DATA and before recording the answer: the server
        # may have the reply, so it is counted as sent and never sent again.
        UNCERTAIN = "uncertain", _("Probably sent")
        SKIPPED = "skipped", _("Not answered")
        FAILED = "failed", _("Could not be sent")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    filter_outcome = models.CharField(max_length=20, blank=True)
    sender = models.CharField(max_length=500, blank=True)  # normalized envelope sender
    text_key = models.CharField(max_length=32, blank=True)
    reason_code = models.CharField(max_length=30, blank=True)
    reason_params = models.JSONField(default=dict, blank=True)
    # Words for failures and the stored decision in the worker's language; the
    # page shows `reason_words()`, in the reader's.
    reason = models.CharField(max_length=500, blank=True)
    reply_message_id = models.CharField(max_length=300, blank=True)
    claim_token = models.CharField(max_length=100, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    data_started_at = models.DateTimeField(null=True, blank=True)
    retry_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["user", "message"], name="autoreply_once_per_message"),
        ]
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["state", "retry_at"], name="autoreply_state_retry"),
            models.Index(fields=["user", "sender", "text_key"], name="autoreply_history"),
        ]

    def __str__(self) -> str:
        return f"auto-reply {self.pk} ({self.state})"

    def reason_words(self) -> str:
        """Why no reply went out, in the active language."""
        if self.reason_code and self.reason_code not in ("failed", "reply"):
            params = {key: str(value) for key, value in self.reason_params.items()}
            return reason_words(self.reason_code, params)
        return self.reason


class ServerPeriod(models.Model):
    """A time during which the account's mail server answered out-of-office
    itself (Posta's Sieve script held the vacation section), from `since` until
    `until` (None: still). Posta's responder leaves mail delivered in such a
    period to the server, so a message is never answered by both
    (posta.rules.autoreply_handover)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    since = models.DateTimeField()
    until = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["account", "since"], name="autoreply_server_since"),
        ]

    def __str__(self) -> str:
        return f"server answers {self.account_id} from {self.since}"
