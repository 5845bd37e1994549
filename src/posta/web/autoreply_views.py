"""The Out-of-office tab and the banner's switch (issue 13). Thin: the services
in posta.rules.autoreply_settings keep the rules; no connection is opened."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from posta.rules import autoreply_settings
from posta.rules.autoreply_models import AutoReply
from posta.web.autoreply_forms import AutoReplyForm
from posta.web.utils import current_user, safe_next

RECENT = 20


@login_required
def autoreply(request: HttpRequest) -> HttpResponse:
    user = current_user(request)
    found = autoreply_settings.access_settings(user)
    form = AutoReplyForm(
        request.POST or None, user=user, initial=AutoReplyForm.initial_of(found)
    )
    if request.method == "POST" and form.is_valid():
        values = dict(form.cleaned_data)
        accounts = list(values.pop("accounts"))
        autoreply_settings.do_save(user, values, accounts)
        messages.success(request, _("Out-of-office settings saved."))
        return redirect("autoreply")
    recent = (
        AutoReply.objects.filter(user=user)
        .select_related("message")
        .order_by("-created_at", "-pk")[:RECENT]
    )
    return render(
        request, "web/autoreply.html", {"form": form, "tab": "autoreply", "recent": recent}
    )


@login_required
@require_POST
def autoreply_off(request: HttpRequest) -> HttpResponse:
    user = current_user(request)
    if autoreply_settings.do_turn_off(user):
        messages.success(request, _("Automatic replies are off."))
    nxt = safe_next(
        request, request.POST.get("next", ""), names=frozenset({"autoreply"}),
        default="mail_index",
    )
    return redirect(nxt)
