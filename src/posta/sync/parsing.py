"""What the sync needs from a message's body: snippet, attachment mark, defects.

The envelope and the identity of a message (what the database keys on) are the mail
app's: posta.mail.identity.

Nothing here raises on malformed input.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from posta.mailproto.mime.parse import parse_message


@dataclass
class BodySummary:
    snippet: str = ""
    has_attachments: bool = False
    defects: list[str] = field(default_factory=list)


def summarize_body(raw: bytes) -> BodySummary:
    """Snippet, attachment mark and defects of a raw message; never raises.

    The same reading as the reader's (posta.mailproto.mime.parse.parse_message), so
    the list's preview and mark agree with what the message shows when opened.
    """
    try:
        parsed = parse_message(raw, with_envelope=False)
    except Exception as exc:  # noqa: BLE001 - the raw bytes stay in the blob store
        return BodySummary(defects=[type(exc).__name__])
    return BodySummary(
        snippet=parsed.snippet,
        has_attachments=parsed.has_attachments,
        defects=list(parsed.defects),
    )


__all__ = ["BodySummary", "summarize_body"]
