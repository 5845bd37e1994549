"""The out-of-office reply as a message (RFC 3834 §3).

Pure apart from the settings row it reads: From is the account's address the
mail was sent to, To the envelope sender only, `Auto-Submitted: auto-replied`
(§5), In-Reply-To and References (§3.1.5), the subject "Auto: " + the original
subject unless the user wrote one, and nothing of the original's content.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from email.header import decode_header, make_header

from posta.mailproto.mime import compose
from posta.rules.autoreply_models import AutoReplySettings

_MSGID_FIELDS = ("message-id", "references", "in-reply-to")


def _first(headers: Sequence[tuple[str, str]], name: str) -> str:
    for field_name, value in headers:
        if field_name.lower() == name:
            return value
    return ""


def _ids(value: str) -> list[str]:
    return [part.strip("<>") for part in value.split() if part.startswith("<") and ">" in part]


def _decoded(value: str) -> str:
    try:
        return str(make_header(decode_header(value)))
    except (UnicodeError, LookupError, ValueError):
        return value


def reply_subject(settings: AutoReplySettings, original: str) -> str:
    """RFC 3834 §3.1.5: "Auto: " and the original subject, or the user's own."""
    if settings.subject.strip():
        return settings.subject.strip()
    return f"Auto: {_decoded(original).strip()}".strip()


def build_reply(
    settings: AutoReplySettings,
    headers: Sequence[tuple[str, str]],
    *,
    from_address: str,
    from_name: str,
    to_address: str,
    message_id: str,
    date: datetime,
) -> bytes:
    """The reply's bytes, ready for DATA."""
    original_id = _ids(_first(headers, "message-id"))
    parent = original_id[0] if original_id else ""
    references = compose.reply_references(
        _ids(_first(headers, "references")),
        (_ids(_first(headers, "in-reply-to")) or [""])[0],
        parent,
    )
    composition = compose.Composition(
        sender=compose.Mailbox(name=from_name, address=from_address),
        to=[compose.Mailbox(name="", address=to_address)],
        subject=reply_subject(settings, _first(headers, "subject")),
        text=settings.body_text or compose.text_from_html(settings.body_html),
        html=settings.body_html,
        message_id=message_id,
        date=date,
        in_reply_to=parent,
        references=references,
        # RFC 3834 §5; Precedence and X-Auto-Response-Suppress keep other robots
        # (and Exchange) from answering the answer.
        extra_headers=[
            ("Auto-Submitted", "auto-replied"),
            ("Precedence", "bulk"),
            ("X-Auto-Response-Suppress", "All"),
        ],
    )
    message = compose.build(composition)
    return compose.serialize(message, utf8=compose.needs_smtputf8(composition.to))
