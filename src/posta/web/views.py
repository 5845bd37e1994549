"""Start, setup, profile and layout pages."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import RequestDataTooBig
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from posta.accounts.models import CompanySettings
from posta.accounts.services import account_error_message, accounts_of, missing_roles
from posta.core.errors import PostaError
from posta.users.models import User
from posta.web.forms import LayoutForm, ProfileForm, SetupForm
from posta.web.middleware import SetupMiddleware, render_error
from posta.web.utils import current_user


@login_required
def home(request: HttpRequest) -> HttpResponse:
    user = current_user(request)
    accounts = list(accounts_of(user))
    if accounts:
        return redirect("mail_index")
    rows = [
        {
            "account": account,
            "error": account_error_message(account),
            "missing_roles": missing_roles(account),
        }
        for account in accounts
    ]
    return render(request, "web/home.html", {"rows": rows})


def setup(request: HttpRequest) -> HttpResponse:
    """First visit of a new install: create the administrator. Gone once one exists."""
    if User.objects.filter(is_superuser=True).exists():
        return redirect("home")
    form = SetupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            # Re-check inside the transaction: two first visitors must not both win.
            if User.objects.select_for_update().filter(is_superuser=True).exists():
                return redirect("login")
            user = form.save(commit=False)
            user.is_staff = True
            user.is_superuser = True
            user.save()
            company = CompanySettings.load()
            company.company_name = form.cleaned_data["company_name"]
            company.save()
        SetupMiddleware.set_ready()
        login(request, user)
        messages.success(request, _("Welcome to Posta. Add your first mail account."))
        return redirect("account_new")
    return render(request, "web/setup.html", {"form": form})


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    user = current_user(request)
    form = ProfileForm(request.POST or None, instance=user)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Profile saved."))
        return redirect("profile")
    return render(request, "web/profile.html", {"form": form})


@login_required
def layout(request: HttpRequest) -> HttpResponse:
    user = current_user(request)
    form = LayoutForm(request.POST or None, instance=user)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Layout saved."))
        return redirect("layout")
    return render(request, "web/layout.html", {"form": form, "tab": "layout"})


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler400: a request Django itself refused while reading it (more than
    DATA_UPLOAD_MAX_NUMBER_FIELDS fields, form data past DATA_UPLOAD_MAX_MEMORY_SIZE,
    a broken multipart body), in the same words and layout as our own errors."""
    if isinstance(exception, RequestDataTooBig):
        error = PostaError("request_too_large", _("This request is too large."), status=413)
    else:
        error = PostaError("bad_request", _("This request could not be read."), status=400)
    return render_error(request, error)
