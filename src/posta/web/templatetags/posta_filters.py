"""The folder list's word on broken filters (issue 12: a filter whose folder no
longer exists is shown as broken there too, never skipped silently)."""

from __future__ import annotations

from typing import Any

from django import template

from posta.rules.filters import broken_by_account
from posta.users.models import User

register = template.Library()


@register.simple_tag(takes_context=True)
def broken_filters(context: dict[str, Any]) -> dict[int, int]:
    """{account id: how many of the user's filters are broken there}."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if not isinstance(user, User):
        return {}
    cache = "_posta_broken_filters"
    if not hasattr(request, cache):
        setattr(request, cache, {k: len(v) for k, v in broken_by_account(user).items()})
    found: dict[int, int] = getattr(request, cache)
    return found


@register.filter
def get_count(counts: dict[int, int], key: int) -> int:
    return counts.get(key, 0)
