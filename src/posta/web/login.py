"""The sign-in page, with login throttling (posta.users.throttle)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpResponse

from posta.core.errors import PostaError
from posta.users import throttle
from posta.web.security import client_address


class ThrottledLoginForm(AuthenticationForm):
    """Django's sign-in form, refusing while the name or the address is locked and
    counting every wrong password."""

    throttled = False

    def clean(self) -> dict[str, Any]:
        username = str(self.cleaned_data.get("username") or "")
        if not username or not self.cleaned_data.get("password") or self.request is None:
            return super().clean()
        address = client_address(self.request)
        # Checked before the password: while locked, even the right one is refused.
        self._refuse_if_locked(username, address)
        try:
            cleaned = super().clean()
        except ValidationError as exc:
            if exc.code == "invalid_login":
                throttle.do_record_failure(username=username, address=address)
                self._refuse_if_locked(username, address)
            raise
        throttle.do_record_success(username=username)
        return cleaned

    def _refuse_if_locked(self, username: str, address: str) -> None:
        try:
            throttle.check_login_allowed(username=username, address=address)
        except PostaError as exc:
            self.throttled = True
            raise ValidationError(str(exc.message), code=exc.code) from exc


class LoginView(auth_views.LoginView):
    form_class = ThrottledLoginForm
    template_name = "web/login.html"
    redirect_authenticated_user = True

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        response = super().form_invalid(form)
        if getattr(form, "throttled", False):
            # RFC 6585 §4: Too Many Requests.
            response.status_code = 429
        return response
