"""The notice a plain form POST leaves for the next page: "Message moved to
Trash. — Undo" after a move done without script (the page with script shows the
same words in its toast), and "Undone" after its Undo.

Kept in the session for one showing, and only while the undo window lasts; the
ticket is the same signed one the toast uses (posta.mail.undo)."""

from __future__ import annotations

import time
from typing import TypedDict

from django.http import HttpRequest

KEY = "posta_mail_notice"


class Notice(TypedDict):
    text: str
    ticket: str  # empty: nothing to undo (the notice after an Undo)
    until: float  # epoch seconds; past this the Undo would be refused anyway


def remember(request: HttpRequest, text: str, *, ticket: str = "", seconds: int = 10) -> None:
    """Leave `text` (and an Undo for `ticket`) for the next page the user opens."""
    notice: Notice = {"text": text, "ticket": ticket, "until": time.time() + max(seconds, 1)}
    request.session[KEY] = notice


def take(request: HttpRequest) -> Notice | None:
    """The notice left for this page, once; None when there is none or it is late."""
    found = request.session.pop(KEY, None)
    if not isinstance(found, dict) or not isinstance(found.get("text"), str):
        return None
    until = found.get("until")
    if not isinstance(until, int | float) or until < time.time():
        return None
    return Notice(text=found["text"], ticket=str(found.get("ticket") or ""), until=until)
