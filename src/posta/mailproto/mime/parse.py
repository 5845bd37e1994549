"""The one reading of a message: bodies, attachments, defects, snippet.

The list's preview and attachment mark (posta.sync.parsing.summarize_body, when a
body is stored) and the reader (posta.mail.sanitize) both come from
`parse_message`, so they agree. The tree is built by posta.mailproto.mime.tree
(`email` message objects, `compat32` header parsing); what mail clients have
learned is applied here: a multipart whose boundary does not match its delimiter
lines is split at the delimiter it really uses, a digest's parts are messages
(RFC 2046 §5.1.5), a top-level message/rfc822 is the message, delivery reports
are text. Nothing here raises on malformed input: problems become entries of
`defects`, and a tree that cannot be walked shows its text.

Part numbers are IMAP's (RFC 3501 §6.4.5), so an attachment found here can also be
fetched alone with `BODY[part]`: the children of a multipart are 1, 2, ...; a
non-multipart message has the single part 1; inside a message/rfc822 part "n", the
parts of the embedded message are "n.1", "n.2", ... (its body is "n.1" when it is
not multipart).
"""

from __future__ import annotations

import binascii
import email
import email.message
import email.policy
import email.utils
import quopri
import re
from dataclasses import dataclass, field
from email.message import Message
from html.parser import HTMLParser

from posta.mailproto.mime.headers import (
    Envelope,
    codec_for,
    decode_bytes,
    decode_with_charset,
    decode_words,
    parse_envelope,
)
from posta.mailproto.mime.snippet import make_snippet
from posta.mailproto.mime.tree import body_of, build_tree, split_raw

__all__ = ["Attachment", "ParsedMessage", "get_part", "html_to_text", "parse_message"]

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
    has_attachments: bool = False  # the list's mark: `downloads` is not empty
    snippet: str = ""

    @property
    def downloads(self) -> list[Attachment]:
        """The attachments the user sees listed: inline images with a Content-ID in
        an HTML body are shown in place instead (RFC 2392)."""
        return [
            a
            for a in self.attachments
            if not (a.disposition == "inline" and a.content_id and self.html)
        ]


def parse_message(raw: bytes, *, with_envelope: bool = True) -> ParsedMessage:
    """Parse a raw RFC 5322 message. Never raises.

    The one reading of a message's MIME tree: the list's snippet and attachment mark
    and the reader's body and attachments all come from here, so they agree.
    `compat32` reads the structure: it keeps parameters as written (an unquoted
    `boundary=----=_NextPart_...` or `filename==?utf-8?B?...?=`, which the strict
    policy cuts at the `=` or a space), and header text is decoded here.
    Without `with_envelope` (the body mirror, which has the envelope from the
    header fetch already) the envelope is left empty.
    """
    header, body = split_raw(raw)
    envelope = parse_envelope(header) if with_envelope else Envelope()
    try:
        return _from_message(_tree(raw), envelope)
    except Exception as exc:  # noqa: BLE001 - hostile input may break any parser
        failure = type(exc).__name__
    # The tree could not be walked: show the body as text.
    text = decode_bytes(body or raw)
    return ParsedMessage(
        envelope=envelope, text=text, defects=[failure], snippet=make_snippet(text)
    )


def _tree(raw: bytes) -> Message:
    """The MIME tree as parse_message reads it."""
    return build_tree(raw)


class _Walk:
    """State of one walk over a message tree."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.html = ""
        self.attachments: list[Attachment] = []
        self.defects: list[str] = []
        self.parts = 0
        # The HTML body has a plain-text alternative (RFC 2046 §5.1.4: the same
        # content), so the preview may come from the plain text.
        self.html_has_plain = False


# Parts read as text although not text/plain: a bounce's machine-readable report
# and the returned headers are prose for the reader (RFC 3464 §2, RFC 6522 §4,
# RFC 8098 §3).
_REPORT_TEXT = frozenset(
    (
        "message/delivery-status",
        "message/global-delivery-status",
        "message/disposition-notification",
        "message/global-disposition-notification",
        "text/rfc822-headers",
        "message/global-headers",
    )
)


def _from_message(message: Message, envelope: Envelope) -> ParsedMessage:
    walk = _Walk()
    _collect_defects(message, walk)
    if _is_message_part(message):
        # A top-level message/rfc822 is the message itself, wrapped: its parts are
        # "1.1", "1.2", ... (RFC 3501 §6.4.5), shown as the body.
        _walk_children(message, "1", walk)
    elif _is_container(message) and _children(message):
        _walk_children(message, "", walk)
    elif _is_container(message):
        walk.texts.append(_decoded_text(message))  # no parts to find: its text
    else:
        _visit(message, "1", walk)
    text = "\n".join(t for t in walk.texts if t.strip())
    if not text.strip() and walk.html:
        text = html_to_text(walk.html)
    # The preview is of what the reader shows: the HTML body when there is one,
    # read from its plain alternative when it has one (cheaper, the same words).
    preview = text
    if walk.html and not walk.html_has_plain:
        preview = html_to_text(walk.html)
    parsed = ParsedMessage(
        envelope=envelope,
        text=text,
        html=walk.html,
        attachments=walk.attachments,
        defects=walk.defects[:_MAX_DEFECTS],
        snippet=make_snippet(preview),
    )
    parsed.has_attachments = bool(parsed.downloads)
    return parsed


def _collect_defects(part: Message, walk: _Walk) -> None:
    for defect in getattr(part, "defects", ()):
        name = type(defect).__name__
        if name not in walk.defects:
            walk.defects.append(name)


def _content_type(part: Message) -> str:
    """The part's lower-case "type/subtype", read once: `email` scans the header
    list and its parameters on every call, and the walk asks several times."""
    known = getattr(part, "posta_content_type", None)
    if isinstance(known, str):
        return known
    found = part.get_content_type()
    setattr(part, "posta_content_type", found)  # noqa: B010 - Message has no slot for it
    return found


def _is_message_part(part: Message) -> bool:
    return _content_type(part) == "message/rfc822"


def _is_container(part: Message) -> bool:
    """A multipart to walk into (a broken one included: see _rescued_parts)."""
    return _content_type(part).startswith("multipart/")


# A line that looks like a MIME delimiter (RFC 2046 §5.1.1: "--" and a boundary of
# up to 70 characters, trailing white space allowed).
_DELIMITER = re.compile(rb"^--([ -~]{1,70}?)[ \t]*\r?$", re.MULTILINE)


def _rescued_parts(part: Message) -> list[Message]:
    """The parts of a multipart whose boundary parameter is missing or does not
    match its delimiter lines (so `email` left the body unsplit): the body is split
    again at the delimiter it really uses, the first line that looks like one and
    occurs again, as mutt does; else at the first one that a MIME header field
    follows (a lone part whose closing delimiter names another boundary, as bulk
    mailers write). [] when there is none: the body is then text."""
    data = body_of(part)
    if not data:
        return []
    seen: set[bytes] = set()
    lone = b""
    for match in _DELIMITER.finditer(data):
        boundary = match.group(1)
        if boundary.endswith(b"--") and boundary[:-2] in seen:
            boundary = boundary[:-2]
        if boundary in seen:
            return _split_at(data, boundary)
        seen.add(boundary)
        if not lone and _PART_HEADER.match(data, match.end() + 1):
            lone = boundary
    return _split_at(data, lone) if lone else []


# A MIME part's first header line (RFC 2045 §3: its fields start with "Content-").
_PART_HEADER = re.compile(rb"Content-[!-9;-~]+:", re.IGNORECASE)


def _split_at(data: bytes, boundary: bytes) -> list[Message]:
    quoted = boundary.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
    wrapper = b'Content-Type: multipart/mixed; boundary="' + quoted + b'"\r\n\r\n' + data
    payload = build_tree(wrapper).get_payload()
    return [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []


def _children(part: Message) -> list[Message]:
    """The numbered children of a part (RFC 3501 §6.4.5)."""
    if _is_message_part(part):
        inner = part.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            embedded = inner[0]
            if _is_container(embedded):
                return _children(embedded)
            return [embedded]
        return []
    if _is_container(part):
        payload = part.get_payload()
        if isinstance(payload, list):
            return [p for p in payload if isinstance(p, Message)]
        return _rescued_parts(part)
    return []


def _walk_children(part: Message, prefix: str, walk: _Walk) -> None:
    alternative = _content_type(part) == "multipart/alternative"
    digest = _content_type(part) == "multipart/digest"
    plain_seen = False
    for number, child in enumerate(_children(part), start=1):
        walk.parts += 1
        if walk.parts > _MAX_PARTS:
            if "TooManyParts" not in walk.defects:
                walk.defects.append("TooManyParts")
            return
        _collect_defects(child, walk)
        part_id = f"{prefix}.{number}" if prefix else str(number)
        if _is_container(child):
            if _children(child):
                _walk_children(child, part_id, walk)
            else:
                # A multipart with no parts to find: the text that is there.
                walk.texts.append(_decoded_text(child))
            continue
        if alternative and _content_type(child) == "text/plain":
            # RFC 2046 §5.1.4: alternatives of one content; one plain text is enough.
            if plain_seen:
                continue
            plain_seen = True
        had_html = bool(walk.html)
        _visit(child, part_id, walk, joined=_content_type(part) == "multipart/mixed")
        if alternative and plain_seen and walk.html and not had_html:
            walk.html_has_plain = True
        if digest and _is_message_part(child):
            # RFC 2046 §5.1.5: a digest is messages to read; each is listed as a
            # message and its text shown in the body, in order.
            _digest_entry(child, part_id, walk)


def _digest_entry(part: Message, part_id: str, walk: _Walk) -> None:
    inner = _Walk()
    inner.parts = walk.parts
    _walk_children(part, part_id, inner)
    walk.parts = inner.parts
    walk.texts.extend(inner.texts)


def _visit(part: Message, part_id: str, walk: _Walk, *, joined: bool = False) -> None:
    """A leaf: a body text, or an attachment. `joined`: the part is one of a
    multipart/mixed's, whose inline HTML parts are all shown, in order (Apple
    Mail sends a text with a file in its middle as HTML, the file, HTML)."""
    content_type = _content_type(part)
    disposition = (part.get_content_disposition() or "").lower()
    filename = _filename(part)
    shown = disposition != "attachment" and not filename
    if shown and content_type in ("text/plain", "text/html"):
        text = _decoded_text(part)
        if content_type == "text/plain":
            walk.texts.append(text)
        elif not walk.html:
            walk.html = text
        elif joined:
            walk.html += "\n" + text
        return
    if shown and content_type in _REPORT_TEXT:
        walk.texts.append(_report_text(part))
        return
    if content_type.startswith("multipart/"):
        walk.texts.append(_decoded_text(part))
        return
    if content_type == "application/pgp-encrypted" and not filename:
        return  # RFC 3156 §4: PGP/MIME's control part ("Version: 1"), not content
    is_message = content_type == "message/rfc822"
    if is_message and not filename:
        filename = _message_name(part)
    content_id = _content_id(part)
    # RFC 2387: a part of multipart/related named by Content-ID is usually sent
    # without Content-Disposition; it is inline unless marked as an attachment.
    inline = disposition == "inline" or (not disposition and bool(content_id))
    walk.attachments.append(
        Attachment(
            part_id=part_id,
            filename=filename,
            content_type=content_type,
            size=_size(part, is_message=is_message),
            content_id=content_id,
            disposition="inline" if inline else "attachment",
            is_message=is_message,
        )
    )


def _message_name(part: Message) -> str:
    """A forwarded message sent without a file name is named by its subject, as
    mail clients name it when saving it ("Subject.eml"); "" without one."""
    header, _body = split_raw(_message_bytes(part))
    subject = " ".join(parse_envelope(header).subject.split())
    return f"{subject[:200]}.eml" if subject else ""


def _report_text(part: Message) -> str:
    """A delivery report's text: `email` reads message/delivery-status as a list of
    header blocks (RFC 3464 §2.1); they are shown as written."""
    payload = part.get_payload()
    if isinstance(payload, list):
        blocks = [str(item).strip() for item in payload if isinstance(item, Message)]
        return "\n\n".join(block for block in blocks if block)
    return _decoded_text(part)


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
    if not name.isascii():
        # 8-bit bytes in the field (surrogate escapes, see tree.Part): UTF-8
        # (RFC 6532) or the sender's 8-bit charset.
        name = decode_bytes(name.encode("utf-8", "surrogateescape"))
    if "=?" in name:
        name = decode_words(name)
    # Unquoted names may carry folding white space: one space between words.
    return " ".join(name.split())[:255]


def _content_id(part: Message) -> str:
    value = part.get("Content-ID")
    if not value:
        return ""
    return str(value).strip().strip("<>").strip()


def _transfer_encoding(part: Message) -> str:
    return str(part.get("Content-Transfer-Encoding", "")).strip().lower()


def _payload(part: Message) -> bytes:
    """The part's body with its transfer encoding (RFC 2045 §6) undone."""
    data = body_of(part)
    cte = _transfer_encoding(part)
    if cte == "base64":
        try:
            # Non-strict: characters outside the alphabet are skipped.
            return binascii.a2b_base64(data)
        except binascii.Error:
            pass  # broken padding: `email`'s own repair below
    elif cte == "quoted-printable":
        return quopri.decodestring(data)
    elif cte in ("", "7bit", "8bit", "binary"):
        return data
    part.set_payload(data.decode("ascii", "surrogateescape"))
    decoded = part.get_payload(decode=True)
    return decoded if isinstance(decoded, bytes) else data


def _size(part: Message, *, is_message: bool) -> int:
    if is_message:
        return len(_message_bytes(part))
    if _transfer_encoding(part) == "base64":
        # Counted, not decoded: attachments are most of a mailbox's bytes and the
        # list only needs to know they are there (RFC 4648 §4: 4 characters for 3
        # bytes, "=" padding the last group).
        data = body_of(part)
        chars = len(data) - sum(data.count(c) for c in (b"\r", b"\n", b" ", b"\t"))
        return max(chars * 3 // 4 - data.rstrip().count(b"=", -2), 0)
    return len(_payload(part))


def _decoded_text(part: Message) -> str:
    try:
        charset = part.get_content_charset()
    except Exception:  # noqa: BLE001 - malformed parameters
        charset = None
    data = _payload(part)
    if not codec_for(charset) and _content_type(part) == "text/html":
        # No (known) charset in the header: the document's own <meta> (HTML
        # §4.2.5.4, read as browsers do from its first bytes), as mail clients do.
        found = _META_CHARSET.search(data, 0, 4096)
        if found is not None:
            charset = found.group(1).decode("ascii")
    return decode_with_charset(data, charset)


_META_CHARSET = re.compile(rb"<meta[^>]*?charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", re.IGNORECASE)


# --- attachment download ----------------------------------------------------------


def get_part(raw: bytes, part_id: str) -> tuple[list[tuple[str, str]], bytes]:
    """The headers and decoded payload of part `part_id` (IMAP numbering) of a raw
    message. A message/rfc822 part's payload is the embedded message as bytes.

    Raises KeyError when the message has no such part.
    """
    try:
        message = _tree(raw)
        numbers = [int(n) for n in part_id.split(".")]
    except ValueError as exc:
        raise KeyError(part_id) from exc
    part: Message = message
    for depth, number in enumerate(numbers):
        if depth == 0 and not _is_container(part):
            if number != 1:
                raise KeyError(part_id)
            continue
        children = _children(part)
        if not 1 <= number <= len(children):
            raise KeyError(part_id)
        part = children[number - 1]
    headers = [(name, str(value)) for name, value in part.items()]
    if _is_message_part(part):
        return headers, _message_bytes(part)
    return headers, _payload(part)


def _message_bytes(part: Message) -> bytes:
    """The embedded message of a message/rfc822 part, as sent (RFC 2046 §5.2.1
    allows only 7bit, 8bit or binary, but encoded ones are seen and decoded)."""
    if _transfer_encoding(part) in ("base64", "quoted-printable"):
        return _payload(part)
    return body_of(part)


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
