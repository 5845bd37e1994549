"""The POP3 tab of the mail settings: the user's sources, their state, the form.

Views never talk to a POP3 server: saving runs the registered test through
posta.rules.pop3_services (as the Account form does), and "Fetch now" writes the
wish for the worker."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from posta.core.crypto import unseal
from posta.core.errors import PostaError
from posta.rules.pop3_models import Pop3Source
from posta.rules.pop3_services import (
    access_source,
    check_save_source,
    do_delete_source,
    do_request_fetch,
    source_error_message,
    source_rows,
)
from posta.web.pop3_forms import Pop3SourceForm
from posta.web.utils import current_user


@login_required
def pop3_sources(request: HttpRequest) -> HttpResponse:
    rows = source_rows(current_user(request))
    context = {"rows": rows, "tab": "pop3", "polling": _polling(rows)}
    return render(request, "web/pop3_sources.html", context)


@login_required
def pop3_status(request: HttpRequest) -> HttpResponse:
    """The sources' state alone: the page polls it while an import runs."""
    rows = source_rows(current_user(request))
    return render(request, "web/pop3_status.html", {"rows": rows, "polling": _polling(rows)})


def _polling(rows: list[dict[str, Any]]) -> bool:
    """Whether an import runs or waits: the page then refreshes its state."""
    return any(r["source"].running or r["source"].fetch_requested_at for r in rows)


def _render_form(
    request: HttpRequest, form: Pop3SourceForm, source: Pop3Source | None, *,
    test_error: str = "", offer_save_anyway: bool = False,
) -> HttpResponse:
    context = {
        "form": form,
        "source": source,
        "tab": "pop3",
        "test_error": test_error,
        "fields": [
            f for f in form.visible_fields() if offer_save_anyway or f.name != "save_anyway"
        ],
        "error": source_error_message(source) if source else "",
    }
    return render(request, "web/pop3_form.html", context)


def _edit(request: HttpRequest, source: Pop3Source | None) -> HttpResponse:
    user = current_user(request)
    instance = source or Pop3Source(user=user)
    stored_secret = source.password_secret if source else ""
    form = Pop3SourceForm(request.POST or None, user=user, instance=instance)
    if request.method != "POST" or not form.is_valid():
        return _render_form(request, form, source)
    try:
        outcome = check_save_source(
            user,
            form.instance,
            folder=form.cleaned_data["target"],
            password=form.cleaned_data["password"] or None,
            current_password=_stored_password(stored_secret),
            save_anyway=form.cleaned_data["save_anyway"],
        )
    except PostaError as error:
        form.add_error(error.field, str(error.message))
        return _render_form(request, form, source)
    if not outcome.saved:
        form.keep_typed_password()
        return _render_form(
            request, form, source, test_error=outcome.error, offer_save_anyway=True
        )
    if outcome.error:
        messages.warning(request, _("POP3 source saved, but it does not work yet."))
    else:
        messages.success(request, _("POP3 source saved and connected."))
    return redirect("pop3_sources")


def _stored_password(secret: str) -> str:
    """The stored password, or "" when the key that sealed it is gone (the test
    then fails with a refused login, and the user types it again)."""
    try:
        return unseal(secret)
    except PostaError:
        return ""


@login_required
def pop3_new(request: HttpRequest) -> HttpResponse:
    return _edit(request, None)


@login_required
def pop3_edit(request: HttpRequest, source_id: int) -> HttpResponse:
    return _edit(request, access_source(current_user(request), source_id))


@login_required
@require_POST
def pop3_delete(request: HttpRequest, source_id: int) -> HttpResponse:
    do_delete_source(access_source(current_user(request), source_id))
    messages.success(request, _("POP3 source deleted."))
    return redirect("pop3_sources")


@login_required
@require_POST
def pop3_fetch(request: HttpRequest, source_id: int) -> HttpResponse:
    try:
        do_request_fetch(access_source(current_user(request), source_id))
    except PostaError as error:
        if error.status == 404:
            raise
        messages.error(request, str(error.message))
    else:
        messages.success(request, _("Fetching now."))
    return redirect("pop3_sources")
