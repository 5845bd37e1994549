"""Header fields checked when the user saves or sends, in the reader's language.

The MIME layer (posta.mailproto.mime.fields) refuses any header value it cannot
write safely: a line break or NUL, typed as such or hidden in an RFC 2047 encoded
word. The worker would find that out only when it builds the message, long after
the user pressed Send. So the same test runs here, on every field the message will
carry, and a failure becomes a PostaError naming the field (Subject, To, Cc, Bcc,
the sender's name, an attachment's name): such a message never reaches the queue.

What comes from stored mail rather than from the user (the subject of the message
replied to, Message-IDs for In-Reply-To and References, names of copied
attachments) is made writable instead of refused, since the user cannot edit it:
line breaks become spaces, ids that cannot be written are left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.utils.functional import Promise
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from posta.accounts.models import Account
from posta.core.errors import PostaError
from posta.mailproto.mime import fields
from posta.users.models import User

__all__ = [
    "check_filename",
    "check_header_text",
    "check_recipients",
    "check_sender_name",
    "fold_line_breaks",
    "stored_filename",
    "usable_ids",
]

# The compose form's fields an address list belongs to, and their labels.
_ADDRESS_LABELS: dict[str, Promise] = {"to": _("To"), "cc": _("Cc"), "bcc": _("Bcc")}


def check_header_text(value: str, what: str | Promise, *, field: str | None = None) -> str:
    """`value` unchanged, or PostaError naming `what` (and the form's `field`)
    when it holds a line break or NUL, literally or inside an encoded word."""
    try:
        fields.check_text(value, field=field or "")
    except fields.HeaderInjection as exc:
        if exc.encoded:
            message = format_lazy(
                _(
                    "Line breaks are not allowed in {field}, not even written as an "
                    "encoded word (=?...?=)."
                ),
                field=what,
            )
        else:
            message = format_lazy(_("Line breaks are not allowed in {field}."), field=what)
        raise PostaError("header_newline", message, field=field) from exc
    return value


def check_recipients(pairs: Iterable[Sequence[str]], *, field: str) -> None:
    """The names and addresses of one address field ("to", "cc", "bcc")."""
    what = _ADDRESS_LABELS[field]
    for name, address in pairs:
        check_header_text(name, what, field=field)
        check_header_text(address, what, field=field)


def check_sender_name(account: Account, user: User) -> None:
    """The display name of the From, as posta.delivery.sending.sender_mailbox
    writes it: the user's own name, or a shared sender's description."""
    if account.user_id == user.pk:
        name = user.get_full_name()
    else:
        name = account.description if account.description != account.email else ""
    check_header_text(name, _("the sender name"))


def check_filename(name: str) -> str:
    """An attachment's name as it will be written (RFC 2183 filename)."""
    return check_header_text(name, _("the attachment name"), field="attachments")


def fold_line_breaks(text: str) -> str:
    """`text` with each line break or NUL turned into a space."""
    if not fields.has_forbidden(text):
        return text
    return "".join(" " if ch in fields.FORBIDDEN else ch for ch in text)


def stored_filename(name: str, *, fallback: str = "attachment") -> str:
    """A file name taken from stored mail, made writable: `fallback` when even
    without its line breaks it hides one in an encoded word."""
    cleaned = fold_line_breaks(name)
    try:
        fields.check_text(cleaned, field="filename")
    except fields.HeaderInjection:
        return fallback
    return cleaned


def usable_ids(ids: Iterable[str]) -> list[str]:
    """The Message-IDs (without <>) that can be written in In-Reply-To or
    References (RFC 5322 §3.6.4); a malformed one from stored mail is left out
    rather than keep the reply from being sent."""
    return [value for value in ids if fields.msg_id_ok(value)]
