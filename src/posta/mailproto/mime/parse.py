"""Full message parsing for display: bodies, attachments, defects, snippet.

Built on the standard `email` package with `policy.default`; when that policy raises
on a hostile message (it parses structured headers strictly, on access), the message
is parsed again with `compat32`, which accepts anything; and if even that fails, what
can be shown (the envelope and the raw text after the header) is shown. Nothing here
raises on malformed input: problems become entries of `defects`.

Part numbers are IMAP's (RFC 3501 §6.4.5), so an attachment found here can also be
fetched alone with `BODY[part]`: the children of a multipart are 1, 2, ...; a
non-multipart message has the single part 1; inside a message/rfc822 part "n", the
parts of the embedded message are "n.1", "n.2", ... (its body is "n.1" when it is
not multipart).
"""

from __future__ import annotations

import email
import email.message
import email.policy
import email.utils
from dataclasses import dataclass, field
from email.message import Message
from html.parser import HTMLParser

from posta.mailproto.mime.headers import (
    Envelope,
    decode_bytes,
    decode_with_charset,
    decode_words,
    parse_envelope,
)
from posta.mailproto.mime.snippet import make_snippet

__all__ = ["Attachment", "ParsedMessage", "get_part", "html_to_text", "parse_message"]

# Header blocks larger than this skip policy.default: its structured header parsers
# can take seconds on megabytes of hostile header text, and compat32 reads it raw.
_HUGE_HEADER = 256 * 1024
_MAX_DEFECTS = 50
_MAX_PARTS = 1000  # a message with more parts is listed up to here (zip-bomb shapes)


@dataclass(slots=True)
class Attachment:
    """One attachment or inline non-body part of a message."""

    part_id: str  # IMAP part number, e.g. "2" or "3.1"
    filename: str  # decoded (RFC 2231 / RFC 2047), "" if the part has none
    content_type: str  # lower case "type/subtype"
    size: int  # decoded size in bytes
    content_id: str  # without angle brackets, "" if none
    disposition: str  # "attachment" or "inline"
    is_message: bool = False  # a forwarded message (message/rfc822)


@dataclass(slots=True)
class ParsedMessage:
    """What the reader shows of a message."""

    envelope: Envelope
    text: str = ""  # the plain-text body, or text derived from the HTML body
    html: str = ""  # the HTML body, unsanitized: sanitize before showing it
    attachments: list[Attachment] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)
    has_attachments: bool = False
    snippet: str = ""


def split_raw(raw: bytes) -> tuple[bytes, bytes]:
    """Split a raw message at the first empty line (RFC 5322 §2.1) into header block
    (including its final line end) and body. A message without an empty line is all
    header."""
    crlf = raw.find(b"\r\n\r\n")
    lf = raw.find(b"\n\n")
    found = [(index, size) for index, size in ((crlf, 4), (lf, 2)) if index >= 0]
    if not found:
        return raw, b""
    index, size = min(found)
    return raw[: index + size], raw[index + size :]


def parse_message(raw: bytes) -> ParsedMessage:
    """Parse a raw RFC 5322 message. Never raises."""
    header, body = split_raw(raw)
    envelope = parse_envelope(header)
    policies: list[email.policy.Policy] = [email.policy.compat32]
    if len(header) <= _HUGE_HEADER:
        policies.insert(0, email.policy.default)
    failures: list[str] = []
    for policy in policies:
        try:
            message = email.message_from_bytes(raw, policy=policy)
            parsed = _from_message(message, envelope)
        except Exception as exc:  # noqa: BLE001 - hostile input may break any parser
            failures.append(f"{type(exc).__name__} with {policy.__class__.__name__}")
            continue
        parsed.defects = (failures + parsed.defects)[:_MAX_DEFECTS]
        return parsed
    # Neither policy could walk the message: show its body as text.
    text = decode_bytes(body)
    return ParsedMessage(
        envelope=envelope, text=text, defects=failures, snippet=make_snippet(text)
    )


class _Walk:
    """State of one walk over a message tree."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.html = ""
        self.attachments: list[Attachment] = []
        self.defects: list[str] = []
        self.parts = 0


def _from_message(message: Message, envelope: Envelope) -> ParsedMessage:
    walk = _Walk()
    _collect_defects(message, walk)
    if message.is_multipart() and not _is_message_part(message):
        _walk_children(message, "", walk)
    else:
        _visit(message, "1", walk, top=True)
    text = "\n".join(walk.texts)
    if not text.strip() and walk.html:
        text = html_to_text(walk.html)
    has_attachments = any(
        item.disposition == "attachment" or not item.content_id or item.is_message
        for item in walk.attachments
    )
    return ParsedMessage(
        envelope=envelope,
        text=text,
        html=walk.html,
        attachments=walk.attachments,
        defects=walk.defects[:_MAX_DEFECTS],
        has_attachments=has_attachments,
        snippet=make_snippet(text),
    )


def _collect_defects(part: Message, walk: _Walk) -> None:
    for defect in getattr(part, "defects", ()):
        name = type(defect).__name__
        if name not in walk.defects:
            walk.defects.append(name)


def _is_message_part(part: Message) -> bool:
    return part.get_content_type() == "message/rfc822"


def _children(part: Message) -> list[Message]:
    """The numbered children of a part (RFC 3501 §6.4.5)."""
    if _is_message_part(part):
        inner = part.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            embedded = inner[0]
            if embedded.is_multipart():
                return [p for p in embedded.get_payload() if isinstance(p, Message)]
            return [embedded]
        return []
    if part.is_multipart():
        payload = part.get_payload()
        return [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []
    return []


def _walk_children(part: Message, prefix: str, walk: _Walk) -> None:
    for number, child in enumerate(_children(part), start=1):
        walk.parts += 1
        if walk.parts > _MAX_PARTS:
            if "TooManyParts" not in walk.defects:
                walk.defects.append("TooManyParts")
            return
        _collect_defects(child, walk)
        part_id = f"{prefix}.{number}" if prefix else str(number)
        if child.is_multipart() and not _is_message_part(child):
            _walk_children(child, part_id, walk)
        else:
            _visit(child, part_id, walk, top=False)


def _visit(part: Message, part_id: str, walk: _Walk, *, top: bool) -> None:
    """A leaf: a body text, or an attachment."""
    content_type = part.get_content_type()
    disposition = (part.get_content_disposition() or "").lower()
    filename = _filename(part)
    is_text_body = content_type in ("text/plain", "text/html") and (
        disposition != "attachment" and not filename
    )
    if is_text_body:
        text = _decoded_text(part)
        if content_type == "text/plain":
            walk.texts.append(text)
        elif not walk.html:
            walk.html = text
        return
    if content_type.startswith("multipart/"):
        # A multipart whose boundary is missing or never occurs: `email` leaves the
        # body unsplit; show it as text rather than lose it.
        walk.texts.append(_decoded_text(part))
        return
    is_message = content_type == "message/rfc822"
    walk.attachments.append(
        Attachment(
            part_id=part_id,
            filename=filename,
            content_type=content_type,
            size=_size(part, is_message=is_message),
            content_id=_content_id(part),
            disposition="inline" if disposition == "inline" else "attachment",
            is_message=is_message,
        )
    )


def _filename(part: Message) -> str:
    """The decoded file name: RFC 2231 parameters are decoded by `email`; RFC 2047
    encoded words inside a quoted name (not allowed by RFC 2047 §5, sent by many
    mailers) are decoded here."""
    try:
        name = part.get_filename() or part.get_param("name") or ""
    except Exception:  # noqa: BLE001 - malformed parameters
        return ""
    if isinstance(name, tuple):  # compat32 returns RFC 2231 triples undecoded
        name = email.utils.collapse_rfc2231_value(name)
    name = str(name)
    return decode_words(name).strip() if "=?" in name else name.strip()


def _content_id(part: Message) -> str:
    value = part.get("Content-ID")
    if not value:
        return ""
    return str(value).strip().strip("<>").strip()


def _payload(part: Message) -> bytes:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode("utf-8", "surrogateescape")
    return b""


def _size(part: Message, *, is_message: bool) -> int:
    if is_message:
        inner = part.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            try:
                return len(inner[0].as_bytes())
            except Exception:  # noqa: BLE001 - re-serializing a broken message
                return 0
        return 0
    return len(_payload(part))


def _decoded_text(part: Message) -> str:
    try:
        charset = part.get_content_charset()
    except Exception:  # noqa: BLE001 - malformed parameters
        charset = None
    return decode_with_charset(_payload(part), charset)


# --- attachment download ----------------------------------------------------------


def get_part(raw: bytes, part_id: str) -> tuple[list[tuple[str, str]], bytes]:
    """The headers and decoded payload of part `part_id` (IMAP numbering) of a raw
    message. A message/rfc822 part's payload is the embedded message as bytes.

    Raises KeyError when the message has no such part.
    """
    try:
        message = email.message_from_bytes(raw, policy=email.policy.compat32)
        numbers = [int(n) for n in part_id.split(".")]
    except ValueError as exc:
        raise KeyError(part_id) from exc
    part: Message = message
    for depth, number in enumerate(numbers):
        if depth == 0 and not part.is_multipart():
            if number != 1:
                raise KeyError(part_id)
            continue
        children = _children(part)
        if not 1 <= number <= len(children):
            raise KeyError(part_id)
        part = children[number - 1]
    headers = [(name, str(value)) for name, value in part.items()]
    if _is_message_part(part):
        inner = part.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            return headers, inner[0].as_bytes()
        return headers, b""
    return headers, _payload(part)


# --- HTML to text -----------------------------------------------------------------

_BLOCK_TAGS = frozenset(
    "p div br tr li ul ol table h1 h2 h3 h4 h5 h6 pre hr section article header footer"
    " blockquote dd dt".split()
)
_SKIP_TAGS = frozenset(("script", "style", "head", "title", "template", "noscript"))


class _TextExtractor(HTMLParser):
    """Readable text of an HTML body; text inside <blockquote> is prefixed with "> "
    per level so that the snippet skips it like a quoted plain-text reply."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        self.quote_depth = 0
        self.line_depth = 0
        self.skip = 0

    def flush(self) -> None:
        text = " ".join("".join(self.current).split())
        if text:
            self.lines.append("> " * self.line_depth + text)
        self.current = []
        self.line_depth = self.quote_depth

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self.skip += 1
        elif tag in _BLOCK_TAGS:
            self.flush()
            if tag == "blockquote":
                self.quote_depth += 1
                self.line_depth = self.quote_depth

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCK_TAGS:
            self.flush()
            if tag == "blockquote":
                self.quote_depth = max(0, self.quote_depth - 1)
                self.line_depth = self.quote_depth

    def handle_data(self, data: str) -> None:
        if not self.skip:
            if not self.current:
                self.line_depth = self.quote_depth
            self.current.append(data)


def html_to_text(html: str) -> str:
    """Plain text of an HTML body, one line per block; never raises."""
    extractor = _TextExtractor()
    try:
        extractor.feed(html)
        extractor.close()
    except Exception:  # noqa: BLE001, S110 - hostile markup: keep the text extracted so far
        pass
    extractor.flush()
    return "\n".join(extractor.lines)
