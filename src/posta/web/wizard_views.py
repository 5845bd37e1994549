"""The account wizard (issue 19), before the full Account form, as Thunderbird has
it: name, address and password; Posta finds and tries the servers
(posta.accounts.discovery) and shows what it found, with "Add account" and "Edit
settings" (the full form, filled in). The view opens no connection itself: the
search and the tries go through the registries posta.remote fills."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from posta.accounts import discovery
from posta.accounts.presets import CUSTOM
from posta.core.errors import PostaError
from posta.web.utils import current_user


class WizardForm(forms.Form):
    name = forms.CharField(label=_("Your name"), max_length=255, required=False)
    email = forms.EmailField(label=_("Email address"), max_length=255)
    password = forms.CharField(
        label=_("Password"), max_length=1000, widget=forms.PasswordInput(render_value=True)
    )


SOURCE_WORDS = {
    "server": _("your administrator's servers"),
    "preset": _("the settings Posta knows for this provider"),
    "autoconfig": _("the configuration published by the domain"),
    "srv": _("the domain's DNS service records"),
    "mx": _("the provider that receives the domain's mail"),
    "guess": _("the usual server names"),
}


def form_values(found: discovery.ServerSettings, *, name: str, email: str, password: str
                ) -> dict[str, str]:  # fmt: skip
    """The full Account form's fields for `found` (hidden inputs of both buttons)."""
    values = {
        "account_type": found.account_type,
        "username": found.username or email,
        "auth_method": "password",
        "email": email,
        "password": password,
        "description": name or email,
        "imap_host": found.imap_host,
        "imap_port": str(found.imap_port),
        "imap_security": found.imap_security,
        "smtp_host": found.smtp_host,
        "smtp_port": str(found.smtp_port),
        "smtp_security": found.smtp_security,
        "smtp_auth": "on",
        "signature_kind": "none",
    }
    if found.account_type == CUSTOM:
        values["smtp_custom"] = "on"
    return values


@login_required
def account_wizard(request: HttpRequest) -> HttpResponse:
    user = current_user(request)
    form = WizardForm(request.POST or None)
    context: dict[str, Any] = {"form": form, "tab": "account"}
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            found = discovery.check_find_servers(
                user, address=data["email"], password=data["password"]
            )
        except PostaError as error:
            form.add_error(error.field if error.field in form.fields else None, str(error))
            return render(request, "web/account_wizard.html", context)
        best = found.best
        context.update(
            found=found,
            best=best,
            source=SOURCE_WORDS.get(best.settings.source, "") if best else "",
            values=form_values(best.settings, name=data["name"], email=data["email"],
                               password=data["password"]) if best else {},  # fmt: skip
        )
    return render(request, "web/account_wizard.html", context)
