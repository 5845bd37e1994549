"""The administrator's form of a sign-in provider. Shape only; rules in
posta.accounts.oauth."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.validators import URLValidator
from django.utils.translation import gettext_lazy as _

from posta.accounts.models import OAuthProvider

_ENDPOINTS = (
    "authorization_endpoint",
    "token_endpoint",
    "revocation_endpoint",
    "userinfo_endpoint",
)
_url = URLValidator(schemes=["https", "http"])


class OAuthProviderForm(forms.ModelForm[OAuthProvider]):
    client_secret = forms.CharField(
        label=_("Client secret"),
        required=False,
        max_length=1000,
        widget=forms.PasswordInput(render_value=False),
    )

    class Meta:
        model = OAuthProvider
        fields = [
            "name",
            "client_id",
            "tenant",
            "authorization_endpoint",
            "token_endpoint",
            "revocation_endpoint",
            "userinfo_endpoint",
            "scopes",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        provider = self.instance
        if provider.kind != OAuthProvider.Kind.CUSTOM:
            del self.fields["name"]
        if provider.kind != OAuthProvider.Kind.MICROSOFT:
            del self.fields["tenant"]
        else:
            for name in ("authorization_endpoint", "token_endpoint"):
                self.fields[name].help_text = _("{tenant} stands for the tenant above.")
        self.fields["client_id"].required = True
        self.fields["client_secret"].help_text = (
            _("Leave empty to keep the stored secret.")
            if provider.client_secret_secret
            else _("Leave empty for a public client (PKCE only).")
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for name in _ENDPOINTS:
            value = (data.get(name) or "").strip()
            if not value:
                continue
            try:
                _url(value.replace("{tenant}", "common"))
            except forms.ValidationError:
                self.add_error(name, _("Enter a web address starting with https://."))
            data[name] = value
        return data

    def typed_secret(self) -> str | None:
        """The secret typed, or None to keep the stored one."""
        value: str = self.cleaned_data.get("client_secret") or ""
        return value or None
