"""People who use Posta: CRM users with the profile fields signatures merge."""

from __future__ import annotations

from typing import ClassVar

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _


class User(AbstractUser):
    """A CRM user. `is_staff` marks an administrator of Posta.

    The profile fields are named after the CRM's, because the company signature's
    merge fields (`$Users||phone_work$`) name them; see `SIGNATURE_FIELDS`.
    """

    role = models.CharField(_("role"), max_length=100, blank=True)
    title = models.CharField(_("title"), max_length=100, blank=True)
    phone_work = models.CharField(_("office phone"), max_length=50, blank=True)
    phone_mobile = models.CharField(_("mobile phone"), max_length=50, blank=True)
    department = models.CharField(_("department"), max_length=100, blank=True)
    language = models.CharField(
        _("language"),
        max_length=10,
        blank=True,
        choices=[("", _("As the browser says")), ("en", "English"), ("it", "Italiano")],
    )
    time_zone = models.CharField(_("time zone"), max_length=64, blank=True)
    # Layout tab: three switches, all on by default.
    show_preview = models.BooleanField(_("preview snippet in the message list"), default=True)
    thread_view = models.BooleanField(_("thread view"), default=True)
    merge_folders = models.BooleanField(_("merge the folders of all accounts"), default=True)
    # The mail screen's "List only" switch: kept for the user, not the browser.
    list_only = models.BooleanField(_("open messages in place of the list"), default=False)
    undo_send_seconds = models.PositiveSmallIntegerField(
        _("undo send delay (seconds)"),
        default=10,
        help_text=_("How long a sent message can be called back; 0 sends at once."),
    )

    REQUIRED_FIELDS: ClassVar[list[str]] = ["email"]

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def __str__(self) -> str:
        return self.get_full_name() or self.username

    @property
    def is_administrator(self) -> bool:
        return self.is_staff or self.is_superuser


class LoginThrottle(models.Model):
    """Wrong passwords in a row for one user name or from one address
    (posta.users.throttle). A user name is counted whether or not such a user
    exists, so the answer never tells which names are real."""

    class Kind(models.TextChoices):
        ACCOUNT = "account", _("user name")
        ADDRESS = "address", _("address")

    kind = models.CharField(max_length=10, choices=Kind.choices)
    key = models.CharField(max_length=255)
    failures = models.PositiveIntegerField(default=0)
    last_failure = models.DateTimeField()
    locked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("login throttle")
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["kind", "key"], name="login_throttle_kind_key"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.key}"
