"""The out-of-office banner of the mail screen: `{% autoreply_banner %}`."""

from __future__ import annotations

from typing import Any

from django import template

from posta.rules.autoreply_settings import banner_for
from posta.users.models import User

register = template.Library()


@register.inclusion_tag("web/autoreply_banner.html", takes_context=True)
def autoreply_banner(context: template.Context) -> dict[str, Any]:
    request = context.get("request")
    user = getattr(request, "user", None)
    banner = banner_for(user) if isinstance(user, User) else None
    return {"banner": banner, "request": request, "csrf_token": context.get("csrf_token")}
