"""Request plumbing: the user's language, first-run setup, and PostaError rendering."""

from __future__ import annotations

import contextlib
import zoneinfo
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation

from posta.core.errors import PostaError

GetResponse = Callable[[HttpRequest], HttpResponse]


class UserLanguageMiddleware:
    """A user's chosen language wins over the browser's Accept-Language; their time
    zone, when set, is the one dates are shown in."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        signed_in = bool(user and user.is_authenticated)
        language = getattr(user, "language", "") if signed_in else ""
        # Both only for this request (override, not activate): code that runs after
        # it in the same thread, a test or a worker task, keeps its own language.
        with contextlib.ExitStack() as scope:
            if language:
                scope.enter_context(translation.override(language))
                request.LANGUAGE_CODE = language
            scope.enter_context(timezone.override(_zone_of(user) if signed_in else None))
            response = self.get_response(request)
            if language:
                response.headers.setdefault("Content-Language", language)
            return response


def _zone_of(user: object) -> zoneinfo.ZoneInfo | None:
    """The user's time zone, or None (the default zone) when unset or unknown."""
    zone = getattr(user, "time_zone", "")
    if not zone:
        return None
    try:
        return zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


class SetupMiddleware:
    """Until an administrator exists, every page leads to the setup page."""

    _ready = False

    @classmethod
    def set_ready(cls, ready: bool = True) -> None:
        """Say whether an administrator exists (setup done), without a query:
        the setup page says so once it has made one (and tests, to start afresh)."""
        cls._ready = ready

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not SetupMiddleware._ready:
            from posta.users.models import User

            SetupMiddleware._ready = User.objects.filter(is_superuser=True).exists()
            setup_url = reverse("setup")
            if not SetupMiddleware._ready and not (
                request.path == setup_url or request.path.startswith("/static/")
            ):
                return redirect(setup_url)
        return self.get_response(request)


class PostaErrorMiddleware:
    """Renders a PostaError raised by a view: JSON for the API, a partial for htmx."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not isinstance(exc, PostaError):
            return None
        return render_error(request, exc)


def render_error(request: HttpRequest, exc: PostaError) -> HttpResponse:
    """A PostaError as the response: JSON for the API, a partial for htmx, else a page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"error": exc.code, "message": str(exc.message)}, status=exc.status)
    template = "web/error_partial.html" if request.headers.get("HX-Request") else "web/error.html"
    return render(request, template, {"error": exc}, status=exc.status)
