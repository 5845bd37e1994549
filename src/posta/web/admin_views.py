"""Administrator pages: users, mail servers, company settings and signature."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from posta.accounts.models import CompanySettings, MailServer
from posta.accounts.signatures import FIELDS, render_company_signature, unknown_fields
from posta.users import throttle
from posta.users.models import LoginThrottle, User
from posta.web.forms import (
    AdminUserCreateForm,
    AdminUserEditForm,
    CompanySettingsForm,
    MailServerForm,
)
from posta.web.utils import admin_required, current_user


@admin_required
def user_list(request: HttpRequest) -> HttpResponse:
    locks = throttle.locks()
    locked_names = {lock.key for lock in locks if lock.kind == LoginThrottle.Kind.ACCOUNT}
    users = [
        (user, throttle.account_key(user.username) in locked_names)
        for user in User.objects.order_by("username")
    ]
    return render(request, "web/admin/users.html", {"users": users, "locks": locks})


@admin_required
@require_POST
def login_unlock(request: HttpRequest) -> HttpResponse:
    """Lift a login lock (a user name or an address) before it runs out."""
    kind = request.POST.get("kind", "")
    key = request.POST.get("key", "")
    if kind not in LoginThrottle.Kind.values:
        raise Http404
    if throttle.do_unlock(kind=kind, key=key):
        messages.success(request, _("Sign-in unlocked for %(key)s.") % {"key": key})
    return redirect("admin_users")


@admin_required
def user_new(request: HttpRequest) -> HttpResponse:
    form = AdminUserCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        messages.success(request, _("User %(name)s created.") % {"name": user.username})
        return redirect("admin_users")
    return render(request, "web/admin/user_form.html", {"form": form})


@admin_required
def user_edit(request: HttpRequest, user_id: int) -> HttpResponse:
    target = get_object_or_404(User, pk=user_id)
    form = AdminUserEditForm(request.POST or None, instance=target)
    if request.method == "POST" and form.is_valid():
        if target == current_user(request) and not form.cleaned_data["is_staff"]:
            form.add_error("is_staff", _("You cannot take away your own administrator rights."))
        else:
            form.save()
            messages.success(request, _("User saved."))
            return redirect("admin_users")
    return render(request, "web/admin/user_form.html", {"form": form, "target": target})


@admin_required
def server_list(request: HttpRequest) -> HttpResponse:
    return render(request, "web/admin/servers.html", {"servers": MailServer.objects.all()})


@admin_required
def server_edit(request: HttpRequest, server_id: int | None = None) -> HttpResponse:
    server = get_object_or_404(MailServer, pk=server_id) if server_id else None
    form = MailServerForm(request.POST or None, instance=server)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Mail server saved."))
        return redirect("admin_servers")
    return render(request, "web/admin/server_form.html", {"form": form, "server": server})


@admin_required
@require_POST
def server_delete(request: HttpRequest, server_id: int) -> HttpResponse:
    server = get_object_or_404(MailServer, pk=server_id)
    if server.accounts.exists():
        messages.error(request, _("Accounts still use this server; it was not deleted."))
    else:
        server.delete()
        messages.success(request, _("Mail server deleted."))
    return redirect("admin_servers")


@admin_required
def company(request: HttpRequest) -> HttpResponse:
    settings_row = CompanySettings.load()
    form = CompanySettingsForm(request.POST or None, instance=settings_row)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Company settings saved."))
        return redirect("admin_company")
    raw = form.data.get("company_signature", "") if form.is_bound else None
    context = {
        "form": form,
        "merge_fields": [(f"$Users||{name}$", label) for name, (label, _get) in FIELDS.items()],
        **_preview(request, raw if raw is not None else settings_row.company_signature),
    }
    return render(request, "web/admin/company.html", context)


def _preview(request: HttpRequest, template: str) -> dict[str, object]:
    # The editor's own sanitizer (nh3) runs on the template first; merge values are
    # escaped by render_company_signature. Only then is the result marked safe.
    clean = CompanySettingsForm.base_fields["company_signature"].clean(template) or ""
    html = render_company_signature(clean, current_user(request))
    return {"preview": mark_safe(html), "unknown": unknown_fields(template)}  # noqa: S308


@admin_required
@require_POST
def signature_preview(request: HttpRequest) -> HttpResponse:
    """htmx: the signature as the current user's mail will show it, while editing."""
    context = _preview(request, request.POST.get("company_signature", ""))
    return render(request, "web/admin/signature_preview.html", context)
