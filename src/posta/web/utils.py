from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.http import url_has_allowed_host_and_scheme

from posta.users.models import User


def current_user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)  # noqa: S101  login_required runs first
    return user


def admin_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Administrator pages: 404 for everyone else (no hint that the page exists)."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not current_user(request).is_administrator:
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


def safe_next(request: HttpRequest, value: str, *, names: frozenset[str], default: str) -> str:
    """Where a form's `next` may lead: one of the URL `names` the page may give,
    or a URL on this site (never another host or scheme, `//host`, `/\\host`,
    `javascript:`); otherwise `default`. The answer is a URL or a URL name for
    django.shortcuts.redirect."""
    if value in names:
        return value
    # A bare word would be taken for a URL name by redirect(): only paths and URLs.
    if "/" in value and url_has_allowed_host_and_scheme(
        value, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return value
    return default
