"""What the sync needs from a message's body: snippet, attachment mark, defects.

The envelope and the identity of a message (what the database keys on) are the mail
app's: posta.mail.identity.

Nothing here raises on malformed input.
"""

from __future__ import annotations

import binascii
import quopri
import re
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32

from posta.mailproto.mime.headers import decode_with_charset
from posta.mailproto.mime.parse import html_to_text, parse_message, split_raw
from posta.mailproto.mime.snippet import make_snippet


@dataclass
class BodySummary:
    snippet: str = ""
    has_attachments: bool = False
    defects: list[str] = field(default_factory=list)


def summarize_body(raw: bytes) -> BodySummary:
    """Snippet, attachment mark and defects of a raw message; never raises.

    A whole mailbox's bodies go through here while it is mirrored, so the usual
    MIME shapes are scanned without building the full tree: part headers are
    parsed, only the first text/plain and text/html parts are decoded, and
    attachments are recognized by their headers without decoding them (they are
    most of the bytes). Anything the scan does not understand (no boundary, a
    missing closing boundary, deep nesting) goes to the full parser,
    posta.mailproto.mime.parse.parse_message, which records the defects; the reader
    parses fully anyway when the message is opened.
    """
    try:
        scan = _Scan()
        if scan.part(raw, depth=0):
            text = scan.plain or ""
            if not text.strip() and scan.html:
                text = html_to_text(scan.html)
            return BodySummary(snippet=make_snippet(text), has_attachments=scan.attachments)
    except Exception:  # noqa: BLE001, S110 - the full parser below copes or records it
        pass
    try:
        parsed = parse_message(raw)
    except Exception as exc:  # noqa: BLE001 - the raw bytes stay in the blob store
        return BodySummary(defects=[type(exc).__name__])
    return BodySummary(
        snippet=parsed.snippet,
        has_attachments=parsed.has_attachments,
        defects=list(parsed.defects),
    )


_MAX_DEPTH = 8
_MAX_PARTS = 200
_LINE_END = re.compile(rb"\r?\n")


class _Scan:
    """The part walk of summarize_body's fast path (RFC 2045/2046 shapes only)."""

    def __init__(self) -> None:
        self.plain: str | None = None
        self.html: str | None = None
        self.attachments = False
        self.parts = 0

    def part(self, raw: bytes, *, depth: int) -> bool:
        """Scan one entity; False when its shape needs the full parser."""
        self.parts += 1
        if depth > _MAX_DEPTH or self.parts > _MAX_PARTS:
            return False
        header, body = split_raw(raw)
        if not body and not header.endswith((b"\r\n\r\n", b"\n\n")):
            return False  # no empty line after the header: the full parser decides
        head = _HEADERS.parsebytes(header)
        maintype = head.get_content_maintype()
        ctype = head.get_content_type()
        if maintype == "multipart":
            return self._multipart(head, body, depth=depth)
        # The same rules as posta.mailproto.mime.parse: a text/plain or text/html
        # leaf is the body unless it is marked as an attachment or has a file
        # name; every other leaf is an attachment, except inline parts with a
        # Content-ID (images the HTML shows, RFC 2392).
        disposition = (head.get_content_disposition() or "").lower()
        named = bool(head.get_filename())
        if ctype in ("text/plain", "text/html") and disposition != "attachment" and not named:
            if ctype == "text/plain":
                if self.plain is None:
                    self.plain = _decoded(head, body)
            elif self.html is None:
                self.html = _decoded(head, body)
            return True
        if disposition != "inline" or not head.get("Content-ID") or ctype == "message/rfc822":
            self.attachments = True
        return True

    def _multipart(self, head: Message, body: bytes, *, depth: int) -> bool:
        boundary = head.get_boundary()
        if not boundary:
            return False
        delimiter = b"--" + boundary.encode("utf-8", "surrogateescape")
        pieces = body.split(delimiter)
        closed = False
        for piece in pieces[1:]:  # pieces[0] is the preamble (RFC 2046 §5.1.1)
            if piece.startswith(b"--"):
                closed = True
                break
            # The delimiter line may carry trailing white space; the part starts
            # after its line end, and the CRLF before the next delimiter is the
            # delimiter's (RFC 2046 §5.1.1).
            line_end = _LINE_END.search(piece)
            if line_end is None:
                return False
            part = piece[line_end.end() :]
            if part.endswith(b"\r\n"):
                part = part[:-2]
            elif part.endswith(b"\n"):
                part = part[:-1]
            if not self.part(part, depth=depth + 1):
                return False
        return closed


_HEADERS = BytesHeaderParser(policy=compat32)


def _decoded(head: Message, body: bytes) -> str:
    cte = str(head.get("Content-Transfer-Encoding", "")).strip().lower()
    data = body
    if cte == "base64":
        data = binascii.a2b_base64(body)
    elif cte == "quoted-printable":
        data = quopri.decodestring(body)
    return decode_with_charset(data, head.get_content_charset())


__all__ = ["BodySummary", "summarize_body"]
