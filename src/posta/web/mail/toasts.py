"""The words of the toast shown after a move, archive, spam or delete, and after
its Undo, in the user's language (the page only places them)."""

from __future__ import annotations

from django.utils.translation import ngettext

MOVING = frozenset({"move", "delete", "spam", "notspam", "archive"})


def moved_text(action: str, count: int, *, folder: str = "") -> str:
    """"Message archived."-style words for `count` messages moved by `action`
    (a plain move names the `folder` it went to, when known)."""
    if action == "delete":
        return ngettext("Message moved to Trash.", "%(count)d messages moved to Trash.", count) % {
            "count": count
        }
    if action == "archive":
        return ngettext("Message archived.", "%(count)d messages archived.", count) % {
            "count": count
        }
    if action == "spam":
        return ngettext("Message marked as spam.", "%(count)d messages marked as spam.", count) % {
            "count": count
        }
    if action == "notspam":
        return ngettext(
            "Message moved to the Inbox.", "%(count)d messages moved to the Inbox.", count
        ) % {"count": count}
    if folder:
        return ngettext(
            "Message moved to %(folder)s.", "%(count)d messages moved to %(folder)s.", count
        ) % {"count": count, "folder": folder}
    return ngettext("Message moved.", "%(count)d messages moved.", count) % {"count": count}


def undone_text(count: int) -> str:
    """After Undo: how many copies went back."""
    return ngettext(
        "Undone: the message is back.", "Undone: %(count)d messages are back.", count
    ) % {"count": count}
