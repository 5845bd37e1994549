"""POP3 import: the sources a user pulls mail from, and one row per message taken.

A `Pop3Source` is a POP3 mailbox of one user and the IMAP folder (of one of the
user's accounts) its mail goes into. Its password is sealed (posta.core.crypto)
like an account's. The source also carries what its page shows: the last fetch,
how many were imported, the progress of the run under way, the last error as a
code turned into words when shown, and the lease of the worker fetching it.

A `Pop3Import` records one message of the source, keyed by its UIDL (or, for a
server without UIDL, by its content hash). It is written *before* the APPEND as
an intent (state "pending": UIDL, content hash and Message-ID known, copy not
confirmed) and completed with the APPENDUID in one transaction after it (state
"stored"). Only "stored" messages are ever deleted from the POP3 server; a
"pending" one left by a killed worker is looked for in the target folder before
anything is appended again (posta.rules.pop3_job).
"""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from posta.accounts.models import Account
from posta.accounts.presets import SECURITY_CHOICES, SSL

DEFAULT_INTERVAL_MINUTES = 5


class Pop3Source(models.Model):
    """One POP3 mailbox pulled into an IMAP folder (the POP3 tab)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="pop3_sources"
    )
    host = models.CharField(_("POP3 server"), max_length=255)
    port = models.PositiveIntegerField(_("port"), default=995)
    security = models.CharField(
        _("security"), max_length=10, choices=SECURITY_CHOICES, default=SSL
    )
    username = models.CharField(_("user name"), max_length=255)
    password_secret = models.TextField(blank=True)  # sealed, never plain text
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="pop3_sources",
        verbose_name=_("target account"),
    )
    folder_name = models.CharField(max_length=1000)  # IMAP name, as on the wire
    keep_on_server = models.BooleanField(_("leave a copy on the server"), default=False)
    delete_after_days = models.PositiveIntegerField(
        _("delete from the server after (days)"), null=True, blank=True
    )
    interval_minutes = models.PositiveIntegerField(
        _("fetch every (minutes)"), default=DEFAULT_INTERVAL_MINUTES
    )
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    # What the server offers, learnt at the test and at each fetch.
    has_uidl = models.BooleanField(default=True)

    # State shown on the page.
    last_fetch_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    imported_count = models.PositiveIntegerField(default=0)
    running = models.BooleanField(default=False)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    last_error_code = models.CharField(max_length=50, blank=True)
    last_error_detail = models.CharField(max_length=500, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    fetch_requested_at = models.DateTimeField(null=True, blank=True)
    next_fetch_at = models.DateTimeField(null=True, blank=True)

    # The worker that fetches it now (posta.rules.pop3_lease).
    lease_owner = models.CharField(max_length=100, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["created_at", "id"]
        verbose_name = _("POP3 source")

    def __str__(self) -> str:
        return f"{self.username}@{self.host}"

    @property
    def deletes_on_server(self) -> bool:
        """Whether imported messages are removed from the POP3 server at all:
        never without UIDL (a message number names another message in the next
        session, RFC 1939 §7, so nothing could say which copy is stored)."""
        if not self.has_uidl:
            return False
        return not self.keep_on_server or self.delete_after_days is not None


class Pop3Import(models.Model):
    """One message of a source: the intent before the APPEND, the record after."""

    class State(models.TextChoices):
        PENDING = "pending"  # intent written, the APPEND not confirmed
        STORED = "stored"  # in the target folder (APPENDUID recorded when sent)

    source = models.ForeignKey(Pop3Source, on_delete=models.CASCADE, related_name="imports")
    # The UIDL (RFC 1939 §7: 1-70 printable characters), or "sha256:<hash>" for a
    # server without UIDL.
    uidl = models.CharField(max_length=100)
    content_hash = models.CharField(max_length=64)
    message_id = models.CharField(max_length=998, blank=True)  # without < >
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    # The target folder's UIDNEXT before the APPEND: where to look for the copy
    # of a message without Message-ID after a kill.
    uidnext_before = models.BigIntegerField(null=True, blank=True)
    appended_uidvalidity = models.BigIntegerField(null=True, blank=True)
    appended_uid = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    stored_at = models.DateTimeField(null=True, blank=True)
    # When QUIT confirmed its removal from the POP3 server.
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["source", "uidl"], name="unique_pop3_uidl"),
        ]
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["source", "state"], name="pop3_import_state"),
        ]

    def __str__(self) -> str:
        return f"{self.uidl} ({self.state})"
