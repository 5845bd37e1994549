"""The Imported special folder: linked mail that is in no mailbox any more, and mail
brought in as .eml or .mbox files (posta.mail.keepers, posta.mail.imports)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from posta.mail import keepers
from posta.mail.queries import decode_cursor, encode_cursor
from posta.users.models import User
from posta.web import params

MAX_CURSOR_LENGTH = 60


def imported_context(request: HttpRequest, user: User) -> dict[str, Any]:
    cursor = params.text(request.GET, "after", max_length=MAX_CURSOR_LENGTH)
    before = decode_cursor(cursor) if cursor else None
    query = params.text(request.GET, "q", max_length=200)
    page, following = keepers.kept_messages(user.pk, before=before, query=query)
    return {
        "imported": page,
        "imported_query": query,
        "imported_more": encode_cursor(*following) if following else "",
    }
