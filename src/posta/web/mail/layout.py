"""The mail screen's layout switches, kept on the server for the user."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_POST

from posta.users import prefs
from posta.web import params
from posta.web.utils import current_user


@login_required
@require_POST
def list_only(request: HttpRequest) -> HttpResponse:
    """`on=1` or `on=0`: the page has already switched; this makes the choice
    follow the user to another browser."""
    on = params.flag(request.POST, "on")
    prefs.do_set_list_only(current_user(request), on=on)
    return HttpResponse(status=204)
