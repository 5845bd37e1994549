"""The user's filters (issue 12) and, per account, where they run.

`FilterRule` is one ordered rule of one user, for one account or for all of the
user's accounts (`account` empty). Its conditions and actions are small JSON
lists read and written only through posta.rules.filters, which turns a row into
the plain posta.mailproto.filtering.spec.FilterRule both executors read. A
folder is named by its IMAP name, so a renamed or deleted folder is found
missing (the rule is *broken* for that account) instead of silently used.

`FilterServer` records, per account, whether its server offers ManageSieve (RFC
5804), whether the user lets Posta use it, and how the last upload went.
"""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from posta.accounts.models import Account


class FilterRule(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mail_filters"
    )
    # Empty: the rule applies to every account of the user.
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.CASCADE, related_name="filters"
    )
    position = models.PositiveIntegerField(default=0)
    name = models.CharField(_("name"), max_length=200)
    enabled = models.BooleanField(_("on"), default=True)
    match_all = models.BooleanField(default=True)  # all conditions, else any
    case_sensitive = models.BooleanField(_("match case"), default=False)
    stop = models.BooleanField(_("stop processing more rules"), default=False)
    # [{"field", "op", "value", "header", "size"}]; see posta.rules.filters.
    conditions = models.JSONField(default=list)
    # [{"kind", "folder", "address"}]; "folder" is an IMAP folder name.
    actions = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["position", "id"]
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["user", "position"], name="filter_user_position"),
        ]

    def __str__(self) -> str:
        return self.name


class FilterServer(models.Model):
    """Where one account's filters run, and the last word from its server."""

    class State(models.TextChoices):
        UNKNOWN = "unknown", _("Not checked yet")
        NONE = "none", _("The server does not offer server-side filters")
        SERVER = "server", _("Running on the server")
        POSTA = "posta", _("Run by Posta")
        ERROR = "error", _("The server refused the filters")

    account = models.OneToOneField(
        Account, on_delete=models.CASCADE, primary_key=True, related_name="filter_server"
    )
    # The user's switch: let the server run the filters when it can.
    use_server = models.BooleanField(default=True)
    offered = models.BooleanField(null=True)  # ManageSieve found at the last check
    port = models.PositiveIntegerField(default=4190)
    extensions = models.JSONField(default=list)  # the server's SIEVE capability
    state = models.CharField(max_length=10, choices=State.choices, default=State.UNKNOWN)
    # Why the filters are not on the server although it offers ManageSieve, or the
    # server's words when it refused the script (shown to the user).
    reason_code = models.CharField(max_length=50, blank=True)
    reason_detail = models.CharField(max_length=1000, blank=True)
    # Another script the user made elsewhere that was active when Posta looked.
    other_script = models.CharField(max_length=200, blank=True)
    # Bumped on every change of the rules; the upload job records what it sent.
    wanted_revision = models.PositiveIntegerField(default=0)
    uploaded_revision = models.PositiveIntegerField(default=0)
    checked_at = models.DateTimeField(null=True, blank=True)
    uploaded_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.account_id}: {self.state}"

    @property
    def runs_on_server(self) -> bool:
        return (
            self.use_server
            and self.state == self.State.SERVER
            and self.uploaded_revision == self.wanted_revision
        )
