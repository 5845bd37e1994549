"""OAuth2 sign-in pages: the administrator's providers, starting a sign-in, and
"Sign in again" for an account whose grant was refused.

The Account form starts a sign-in and takes the provider's answer (the callback,
posta.web.account_views); the network half is reached through
posta.accounts.oauth's registry, never imported here.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from posta.accounts.models import Account, OAuthProvider
from posta.accounts.oauth import (
    do_save_provider,
    do_start_signin,
    load_provider,
    provider_kind_for,
)
from posta.accounts.services import access_account
from posta.core.errors import PostaError
from posta.web.oauth_forms import OAuthProviderForm
from posta.web.utils import admin_required, current_user


def callback_uri(request: HttpRequest) -> str:
    """The redirect URI to register with the provider (RFC 6749 §3.1.2)."""
    return request.build_absolute_uri(reverse("oauth_callback"))


def start_signin(
    request: HttpRequest, *, kind: str, account: Account | None, form_data: dict[str, str] | None
) -> HttpResponse:
    """Send the browser to the provider (a sign-in remembered in the session)."""
    url = do_start_signin(
        request.session,
        kind=kind,
        redirect_uri=callback_uri(request),
        account_id=account.pk if account is not None else None,
        form_data=form_data,
    )
    return redirect(url)


@admin_required
def provider_list(request: HttpRequest) -> HttpResponse:
    providers = [load_provider(kind) for kind in OAuthProvider.Kind.values]
    return render(request, "web/admin/signin_providers.html", {"providers": providers})


@admin_required
def provider_edit(request: HttpRequest, kind: str) -> HttpResponse:
    if kind not in OAuthProvider.Kind.values:
        raise Http404
    provider = load_provider(kind)
    form = OAuthProviderForm(request.POST or None, instance=provider)
    if request.method == "POST" and form.is_valid():
        do_save_provider(form.instance, client_secret=form.typed_secret())
        messages.success(request, _("Sign-in provider saved."))
        return redirect("admin_signin")
    context = {"form": form, "provider": provider, "redirect_uri": callback_uri(request)}
    return render(request, "web/admin/signin_provider_form.html", context)


@login_required
@require_POST
def signin_again(request: HttpRequest, account_id: int) -> HttpResponse:
    """The "Sign in again" button of an OAuth2 account."""
    account = access_account(current_user(request), account_id)
    if account.auth_method != Account.AuthMethod.OAUTH2:
        raise Http404
    try:
        return start_signin(
            request, kind=provider_kind_for(account), account=account, form_data=None
        )
    except PostaError as error:
        messages.error(request, str(error.message))
        return redirect("account_edit", account_id=account.pk)
