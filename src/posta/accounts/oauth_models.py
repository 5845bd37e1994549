"""OAuth2 sign-in: the providers an administrator sets up, and each account's tokens.

One OAuthProvider row per kind (Google, Microsoft, one custom OAuth2 / OpenID
Connect provider). Its client secret and every token are stored sealed
(posta.core.crypto); the `*_secret` fields never hold plain text.
"""

from __future__ import annotations

from typing import ClassVar

from django.db import models
from django.utils.translation import gettext_lazy as _


class OAuthProvider(models.Model):
    """An authorization server Posta is registered with (one row per kind)."""

    class Kind(models.TextChoices):
        GOOGLE = "google", "Google"
        MICROSOFT = "microsoft", "Microsoft 365"
        CUSTOM = "custom", _("Custom OAuth2 / OpenID Connect provider")

    kind = models.CharField(max_length=20, choices=Kind.choices, unique=True)
    name = models.CharField(
        _("name shown to users"),
        max_length=100,
        blank=True,
        help_text=_('Users read "Sign in with" followed by this name.'),
    )
    client_id = models.CharField(_("client ID"), max_length=500, blank=True)
    client_secret_secret = models.TextField(blank=True)
    tenant = models.CharField(
        _("tenant"),
        max_length=100,
        blank=True,
        help_text=_("common, organizations, consumers, or your directory (tenant) ID."),
    )
    authorization_endpoint = models.CharField(_("authorization endpoint"), max_length=500)
    token_endpoint = models.CharField(_("token endpoint"), max_length=500)
    revocation_endpoint = models.CharField(
        _("revocation endpoint"),
        max_length=500,
        blank=True,
        help_text=_("RFC 7009; leave empty when the provider offers none."),
    )
    userinfo_endpoint = models.CharField(_("userinfo endpoint"), max_length=500, blank=True)
    scopes = models.CharField(_("scopes"), max_length=1000)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["kind"]
        verbose_name = _("sign-in provider")

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        if self.kind == self.Kind.CUSTOM:
            return self.name or str(_("your company's sign-in"))
        return str(self.Kind(self.kind).label)

    @property
    def configured(self) -> bool:
        return bool(self.client_id and self.authorization_endpoint and self.token_endpoint)

    def endpoint(self, url: str) -> str:
        """An endpoint with Microsoft's `{tenant}` filled in."""
        return url.replace("{tenant}", self.tenant.strip() or "common")


class OAuthToken(models.Model):
    """The tokens of one OAuth2 account, sealed, with the lease that lets one
    process at a time refresh them (posta.remote.tokens)."""

    account = models.OneToOneField(
        "accounts.Account", on_delete=models.CASCADE, related_name="oauth_token"
    )
    provider = models.CharField(max_length=20, choices=OAuthProvider.Kind.choices)
    access_secret = models.TextField(blank=True)
    refresh_secret = models.TextField(blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    scope = models.CharField(max_length=1000, blank=True)
    # Who refreshes right now, and until when their claim holds (a dead process's
    # claim runs out; the next one that needs the token takes it).
    refresh_owner = models.CharField(max_length=100, blank=True)
    refresh_until = models.DateTimeField(null=True, blank=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"token of account {self.account_id}"
