"""Mail accounts, the servers they use, and their folders with roles.

An Account is one IMAP/SMTP mailbox of one user. Secrets are stored sealed
(posta.core.crypto); the `*_secret` fields never hold plain text.
"""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from posta.accounts.presets import CUSTOM, SECURITY_CHOICES, SSL, STARTTLS


class MailServer(models.Model):
    """A server the administrator defines; offered in every user's Account list."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    imap_host = models.CharField(_("IMAP server"), max_length=255)
    imap_port = models.PositiveIntegerField(_("IMAP port"), default=993)
    imap_security = models.CharField(
        _("IMAP security"), max_length=10, choices=SECURITY_CHOICES, default=SSL
    )
    smtp_host = models.CharField(_("SMTP server"), max_length=255)
    smtp_port = models.PositiveIntegerField(_("SMTP port"), default=587)
    smtp_security = models.CharField(
        _("SMTP security"), max_length=10, choices=SECURITY_CHOICES, default=STARTTLS
    )
    smtp_auth = models.BooleanField(_("SMTP requires authentication"), default=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["name"]
        verbose_name = _("mail server")

    def __str__(self) -> str:
        return self.name


class CompanySettings(models.Model):
    """The administrator's settings for the whole company: one row, id 1."""

    company_name = models.CharField(_("company name"), max_length=200, blank=True)
    company_signature = models.TextField(_("company signature"), blank=True)
    allowed_mail_hosts = models.TextField(
        _("allowed mail hosts"),
        blank=True,
        help_text=_(
            "One host name, address or network (CIDR) a line. Users may connect to these "
            "although they are private or local addresses: your on-premise mail servers."
        ),
    )
    max_attachment_mb = models.PositiveIntegerField(_("attachment limit (MB)"), default=25)

    class Meta:
        verbose_name = _("company settings")

    def __str__(self) -> str:
        return self.company_name or "Posta"

    @classmethod
    def load(cls) -> CompanySettings:
        """The row, or its defaults unsaved until the administrator saves them:
        reading the settings (on any GET page) never writes."""
        return cls.objects.filter(pk=1).first() or cls(pk=1)

    def allowed_hosts_list(self) -> list[str]:
        entries = [line.strip() for line in self.allowed_mail_hosts.splitlines()]
        return [e for e in entries if e] + list(settings.POSTA_ALLOWED_MAIL_HOSTS)


class Account(models.Model):
    """One mailbox of one user (DESIGN §5)."""

    class AuthMethod(models.TextChoices):
        PASSWORD = "password", _("Password")
        OAUTH2 = "oauth2", _("OAuth2")

    class Signature(models.TextChoices):
        NONE = "none", _("None")
        CUSTOM = "custom", _("Custom")
        COMPANY = "company", _("Company signature")

    class SyncState(models.TextChoices):
        NEW = "new", _("Not yet synchronized")
        SYNCING = "syncing", _("Synchronizing")
        IDLE = "idle", _("Up to date")
        PAUSED = "paused", _("Paused")
        ERROR = "error", _("Error")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mail_accounts"
    )
    preset = models.CharField(_("account type"), max_length=30, default=CUSTOM)
    server = models.ForeignKey(
        MailServer, null=True, blank=True, on_delete=models.PROTECT, related_name="accounts"
    )
    username = models.CharField(_("user name"), max_length=255)
    auth_method = models.CharField(
        _("authentication method"),
        max_length=10,
        choices=AuthMethod.choices,
        default=AuthMethod.PASSWORD,
    )
    email = models.EmailField(_("email"), max_length=255)
    password_secret = models.TextField(blank=True)
    oauth_secret = models.TextField(blank=True)
    description = models.CharField(_("description"), max_length=255)
    is_main = models.BooleanField(_("main"), default=False)
    is_shared_sender = models.BooleanField(_("share sender"), default=False)

    imap_host = models.CharField(_("IMAP server"), max_length=255)
    imap_port = models.PositiveIntegerField(_("IMAP port"), default=993)
    imap_security = models.CharField(
        _("SSL/TLS"), max_length=10, choices=SECURITY_CHOICES, default=SSL
    )
    imap_domain = models.CharField(_("domain"), max_length=255, blank=True)

    smtp_custom = models.BooleanField(_("custom SMTP"), default=False)
    smtp_host = models.CharField(_("SMTP server"), max_length=255, blank=True)
    smtp_port = models.PositiveIntegerField(_("SMTP port"), default=587)
    smtp_security = models.CharField(
        _("SMTP security"), max_length=10, choices=SECURITY_CHOICES, default=STARTTLS
    )
    smtp_username = models.CharField(_("SMTP user name"), max_length=255, blank=True)
    smtp_password_secret = models.TextField(blank=True)
    smtp_auth = models.BooleanField(_("requires authentication"), default=True)

    # Roles the user mapped by hand on the Folders tab: {role: raw folder name, or ""
    # for "no folder"}. Detection never overrides these.
    user_roles = models.JSONField(default=dict, blank=True)

    signature_kind = models.CharField(
        _("signature"), max_length=10, choices=Signature.choices, default=Signature.NONE
    )
    signature_html = models.TextField(_("custom signature"), blank=True)

    sync_state = models.CharField(max_length=10, choices=SyncState.choices, default=SyncState.NEW)
    # The last failure as a code (posta.accounts.errors) plus details, rendered in the
    # reader's language when shown; never a raw exception text with a secret in it.
    last_error_code = models.CharField(max_length=50, blank=True)
    last_error_detail = models.CharField(max_length=500, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    sync_progress_done = models.PositiveIntegerField(default=0)
    sync_progress_total = models.PositiveIntegerField(default=0)
    sync_requested_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["created_at", "id"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(
                fields=["user"], condition=Q(is_main=True), name="one_main_account_per_user"
            ),
        ]
        verbose_name = _("mail account")

    def __str__(self) -> str:
        return f"{self.description} <{self.email}>"

    @property
    def effective_smtp_username(self) -> str:
        return self.smtp_username or self.username


class Folder(models.Model):
    """One IMAP folder of an account, with its role and its sync state (DESIGN §5)."""

    class Role(models.TextChoices):
        INBOX = "inbox", _("Inbox")
        DRAFTS = "drafts", _("Drafts")
        SENT = "sent", _("Sent")
        SPAM = "spam", _("Spam")
        TRASH = "trash", _("Trash")
        ARCHIVE = "archive", _("Archive")

    REQUIRED_ROLES: ClassVar[tuple[str, ...]] = ("inbox", "drafts", "sent", "trash")

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="folders")
    name = models.CharField(max_length=1000)  # the IMAP name, modified UTF-7 as on the wire
    display_name = models.CharField(max_length=1000)  # decoded, full path
    delimiter = models.CharField(max_length=4, blank=True)
    flags = models.CharField(max_length=500, blank=True)  # LIST attributes, space-separated
    special_use = models.CharField(max_length=20, blank=True)
    role = models.CharField(max_length=10, choices=Role.choices, blank=True)
    role_set_by_user = models.BooleanField(default=False)
    selectable = models.BooleanField(default=True)

    uidvalidity = models.BigIntegerField(null=True, blank=True)
    uidnext = models.BigIntegerField(null=True, blank=True)
    highestmodseq = models.BigIntegerField(null=True, blank=True)
    message_count = models.PositiveIntegerField(default=0)
    unread_count = models.PositiveIntegerField(default=0)
    synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["display_name"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["account", "name"], name="unique_folder_name"),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def depth(self) -> int:
        return self.name.count(self.delimiter) if self.delimiter else 0

    @property
    def leaf_name(self) -> str:
        if not self.delimiter:
            return self.display_name
        return self.display_name.rsplit(self.delimiter, 1)[-1]


# The sign-in models live in their own module; imported here so Django loads them
# with the app.
from posta.accounts.oauth_models import OAuthProvider, OAuthToken  # noqa: E402

__all__ = ["Account", "CompanySettings", "Folder", "MailServer", "OAuthProvider", "OAuthToken"]
