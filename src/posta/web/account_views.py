"""The mail settings: Account and Folders tabs of each account."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from posta.accounts.models import Account, MailServer, OAuthProvider
from posta.accounts.oauth import (
    PRESET_PROVIDERS,
    FinishedSignin,
    check_finish_signin,
    check_resume_after_signin,
    do_revoke_signin,
    load_provider,
    needs_signin_again,
    provider_kind_for,
    signin_needed,
    signin_origins,
)
from posta.accounts.presets import PRESETS
from posta.accounts.services import (
    access_account,
    account_error_message,
    accounts_of,
    check_save_account,
    do_make_main,
    do_set_folder_roles,
    missing_roles,
)
from posta.core.crypto import unseal
from posta.core.errors import PostaError
from posta.mail.keepers import count_kept_if_deleted, do_delete_account_keeping_needed
from posta.mail.outbox import do_send_waiting_now
from posta.web.forms import AccountForm, FolderRolesForm
from posta.web.oauth_views import start_signin
from posta.web.security import allow_form_action
from posta.web.utils import current_user


def _presets() -> dict[str, dict[str, object]]:
    """Servers of every account type, for the form's script to fill in."""
    data: dict[str, dict[str, object]] = {
        code: {
            "imap_host": p.imap_host,
            "imap_port": p.imap_port,
            "imap_security": p.imap_security,
            "smtp_host": p.smtp_host,
            "smtp_port": p.smtp_port,
            "smtp_security": p.smtp_security,
            "smtp_auth": True,
            "oauth2": p.oauth2,
            "oauth_kind": PRESET_PROVIDERS.get(code, OAuthProvider.Kind.CUSTOM),
            "notices": [str(n) for n in p.notices],
        }
        for code, p in PRESETS.items()
    }
    for s in MailServer.objects.all():
        data[f"server:{s.pk}"] = {
            "imap_host": s.imap_host,
            "imap_port": s.imap_port,
            "imap_security": s.imap_security,
            "smtp_host": s.smtp_host,
            "smtp_port": s.smtp_port,
            "smtp_security": s.smtp_security,
            "smtp_auth": s.smtp_auth,
            "oauth2": True,
            "oauth_kind": OAuthProvider.Kind.CUSTOM,
            "notices": [],
        }
    return data


FIELD_GROUPS = [
    (
        "account",
        [
            "account_type",
            "username",
            "auth_method",
            "email",
            "password",
            "description",
            "is_main",
            "is_shared_sender",
        ],
    ),
    ("imap", ["imap_host", "imap_port", "imap_security", "imap_domain"]),
    (
        "smtp",
        [
            "smtp_custom",
            "smtp_host",
            "smtp_port",
            "smtp_security",
            "smtp_username",
            "smtp_password",
            "smtp_auth",
        ],
    ),
    ("signature", ["signature_kind", "signature_html"]),
    ("save_anyway", ["save_anyway"]),
]


@login_required
def account_list(request: HttpRequest) -> HttpResponse:
    user = current_user(request)
    rows = [
        {"account": a, "error": account_error_message(a), "missing_roles": missing_roles(a)}
        for a in accounts_of(user)
    ]
    return render(request, "web/accounts.html", {"rows": rows})


def _oauth_data(request: HttpRequest) -> dict[str, object]:
    """For the form's script: each provider's button name and whether it is set up."""
    providers = {
        kind: {"name": p.display_name, "configured": p.configured}
        for kind in OAuthProvider.Kind.values
        for p in [load_provider(kind)]
    }
    admin = current_user(request).is_administrator
    return {"providers": providers, "setup_url": reverse("admin_signin") if admin else ""}


_NOT_KEPT = {"csrfmiddlewaretoken", "password", "smtp_password"}


def _start_account_signin(
    request: HttpRequest, form: AccountForm, account: Account | None
) -> HttpResponse:
    form_data = {k: str(request.POST.get(k, "")) for k in request.POST if k not in _NOT_KEPT}
    try:
        return start_signin(
            request, kind=provider_kind_for(form.instance), account=account, form_data=form_data
        )
    except PostaError as error:
        form.add_error(error.field, str(error.message))
        return _render_form(request, form, account)


def _save(request: HttpRequest, form: AccountForm, account: Account | None) -> HttpResponse:
    user = current_user(request)
    stored = account or Account()
    if signin_needed(form.instance, account):
        return _start_account_signin(request, form, account)
    try:
        outcome = check_save_account(
            user,
            form.instance,
            password=form.cleaned_data["password"] or None,
            smtp_password=form.cleaned_data["smtp_password"] or None,
            make_main=form.cleaned_data["is_main"],
            shared_sender=bool(form.cleaned_data.get("is_shared_sender")),
            save_anyway=form.cleaned_data["save_anyway"],
            current_password=unseal(stored.password_secret) if account else "",
            current_smtp_password=unseal(stored.smtp_password_secret) if account else "",
        )
    except PostaError as error:
        form.add_error(error.field, str(error.message))
        return _render_form(request, form, account)
    if not outcome.saved:
        return _render_form(
            request,
            form,
            account,
            offer_save_anyway=True,
            test_errors=outcome.errors_by_protocol,
            keep_passwords=True,
        )
    if outcome.errors:
        messages.warning(request, _("Account saved, but it does not work yet."))
    else:
        messages.success(request, _("Account saved and connected."))
    return redirect("account_folders", account_id=outcome.account.pk)


def _render_form(
    request: HttpRequest,
    form: AccountForm,
    account: Account | None,
    *,
    offer_save_anyway: bool = False,
    test_errors: dict[str, str] | None = None,
    keep_passwords: bool = False,
) -> HttpResponse:
    """The Account tab. `test_errors` ("imap"/"smtp" to a message) are shown once,
    each in its own fieldset. `keep_passwords` writes the passwords just typed back
    into this response only, so a retry after a failed test needs no retyping; they
    are never stored before a successful save.
    """
    if keep_passwords:
        form.keep_typed_passwords()
    # Saving an OAuth2 account, and "Sign in again", lead to the provider's page.
    allow_form_action(request, signin_origins())
    context = {
        "form": form,
        "account": account,
        "tab": "account",
        "presets": _presets(),
        **{f"{group}_fields": [form[name] for name in names] for group, names in FIELD_GROUPS},
        "offer_save_anyway": offer_save_anyway,
        "imap_test_error": (test_errors or {}).get("imap", ""),
        "smtp_test_error": (test_errors or {}).get("smtp", ""),
        "error": account_error_message(account) if account else "",
        "signin_again": bool(account and needs_signin_again(account)),
        "oauth_data": _oauth_data(request),
    }
    return render(request, "web/account_form.html", context)


def finish_account_signin(request: HttpRequest, finished: FinishedSignin) -> HttpResponse:
    """The provider confirmed the sign-in started by the Account form: save the
    form as it was sent, logging in with the new tokens."""
    user = current_user(request)
    account = access_account(user, finished.account_id) if finished.account_id else None
    instance = account_from_db(account) if account else Account(user=user)
    form = AccountForm(finished.form_data, user=user, instance=instance)
    if not form.is_valid():
        return _render_form(request, form, account)
    try:
        outcome = check_save_account(
            user,
            form.instance,
            password=None,
            smtp_password=None,
            make_main=form.cleaned_data["is_main"],
            shared_sender=bool(form.cleaned_data.get("is_shared_sender")),
            save_anyway=form.cleaned_data["save_anyway"],
            oauth_grant=finished.grant,
        )
    except PostaError as error:
        form.add_error(error.field, str(error.message))
        return _render_form(request, form, account)
    if not outcome.saved:
        return _render_form(
            request, form, account, offer_save_anyway=True, test_errors=outcome.errors_by_protocol
        )
    if outcome.errors:
        messages.warning(request, _("Account saved, but it does not work yet."))
    else:
        messages.success(request, _("Signed in and connected."))
    return redirect("account_folders", account_id=outcome.account.pk)


@login_required
def signin_callback(request: HttpRequest) -> HttpResponse:
    """Where the provider sends the browser back (RFC 6749 §4.1.2)."""
    user = current_user(request)
    try:
        finished = check_finish_signin(
            request.session,
            state=request.GET.get("state", "")[:200],
            code=request.GET.get("code", "")[:2000],
            error=request.GET.get("error", "")[:100],
        )
    except PostaError as error:
        messages.error(request, str(error.message))
        return redirect("accounts")
    if finished.form_data is not None:
        return finish_account_signin(request, finished)
    account = access_account(user, finished.account_id or 0)
    try:
        check_resume_after_signin(account, finished)
    except PostaError as error:
        messages.error(request, str(error.message))
        return redirect("account_edit", account_id=account.pk)
    do_send_waiting_now(user, account)
    messages.success(request, _("Signed in again: the account works again."))
    return redirect("account_edit", account_id=account.pk)



@login_required
def account_new(request: HttpRequest) -> HttpResponse:
    user = current_user(request)
    if request.method == "POST" and request.POST.get("prefill") == "1":
        # The wizard's "Edit settings": the form filled in with what it found.
        typed = {name: request.POST.get(name, "") for name in AccountForm.base_fields}
        initial: dict[str, object] = {k: v for k, v in typed.items() if v}
        initial["smtp_custom"] = typed["smtp_custom"] == "on"
        initial["smtp_auth"] = typed["smtp_auth"] == "on"
        form = AccountForm(user=user, instance=Account(user=user), initial=initial)
        return _render_form(request, form, None, keep_passwords=True)
    form = AccountForm(request.POST or None, user=user, instance=Account(user=user))
    if request.method == "POST" and form.is_valid():
        return _save(request, form, None)
    return _render_form(request, form, None)


@login_required
def account_edit(request: HttpRequest, account_id: int) -> HttpResponse:
    user = current_user(request)
    account = access_account(user, account_id)
    form = AccountForm(request.POST or None, user=user, instance=account)
    if request.method == "POST" and form.is_valid():
        return _save(request, form, account_from_db(account))
    return _render_form(request, form, account)


def account_from_db(account: Account) -> Account:
    """The stored row, unaffected by the form's changes to the instance."""
    return Account.objects.get(pk=account.pk)


@login_required
def account_delete(request: HttpRequest, account_id: int) -> HttpResponse:
    """GET: what deleting the account keeps (mail linked to CRM records stays in
    Imported); POST: delete it."""
    account = access_account(current_user(request), account_id)
    if request.method != "POST":
        context = {"account": account, "kept": count_kept_if_deleted(account)}
        return render(request, "web/account_delete.html", context)
    # RFC 7009: the provider forgets the grant first (where it offers revocation).
    do_revoke_signin(account)
    kept = do_delete_account_keeping_needed(account)
    if kept:
        messages.success(
            request,
            ngettext(
                "Account deleted. %(count)d linked message is kept in Imported.",
                "Account deleted. %(count)d linked messages are kept in Imported.",
                kept,
            )
            % {"count": kept},
        )
    else:
        messages.success(request, _("Account deleted."))
    return redirect("accounts")


@login_required
@require_POST
def account_make_main(request: HttpRequest, account_id: int) -> HttpResponse:
    do_make_main(access_account(current_user(request), account_id))
    return redirect("accounts")


@login_required
def account_folders(request: HttpRequest, account_id: int) -> HttpResponse:
    account = access_account(current_user(request), account_id)
    form = FolderRolesForm(request.POST or None, account=account)
    if request.method == "POST" and form.is_valid():
        do_set_folder_roles(account, form.mapping())
        messages.success(request, _("Folder roles saved."))
        return redirect("account_folders", account_id=account.pk)
    context = {
        "account": account,
        "form": form,
        "tab": "folders",
        "folders": account.folders.all(),
        "missing_roles": missing_roles(account),
        "error": account_error_message(account),
    }
    return render(request, "web/account_folders.html", context)
