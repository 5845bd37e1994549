"""Building the RFC 5322 message a user sends.

`build(composition)` returns an `email.message.EmailMessage`; `serialize` turns it
into the bytes given to SMTP DATA and to IMAP APPEND. The MIME tree is the one mail
clients expect (RFC 2046, RFC 2387)::

    multipart/mixed                      only with attachments
      multipart/related                  only with inline images
        multipart/alternative            only with an HTML body
          text/plain                     always: the plain-text alternative
          text/html
        image/png; Content-ID: <...>     inline images (RFC 2392 cid: URLs)
      application/pdf; attachment        attachments
      message/rfc822                     a message forwarded as attachment

Header safety: every header value goes through posta.mailproto.mime.fields, which
writes its wire form itself (the `email` package never parses, so never decodes,
what the user typed), refuses a line break or NUL in it, literally or hidden in an
RFC 2047 encoded word, with `HeaderInjection` rather than folding or dropping it (a
newline there lets a caller add headers of their own; RFC 5322 §2.2 allows one only
as folding), and checks the serialized header blocks again (`serialize`).
Addresses are checked by `parse_mailbox`: internationalized domains
are sent in their ASCII (punycode) form (RFC 5890); a non-ASCII local part needs
SMTPUTF8 (RFC 6531) and makes the message a UTF-8 one (RFC 6532), see
`needs_smtputf8` and `serialize(utf8=...)`.

Bcc recipients are envelope recipients only; they never appear in the message.
"""

from __future__ import annotations

import email.message
import email.policy
import email.utils
import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.headerregistry import Address

from posta.mailproto.mime import fields
from posta.mailproto.mime.fields import ComposeError, HeaderInjection
from posta.mailproto.mime.parse import html_to_text

__all__ = [
    "Composition",
    "ComposeError",
    "FilePart",
    "HeaderInjection",
    "InvalidAddress",
    "Mailbox",
    "assemble_html",
    "assemble_text",
    "build",
    "forward_subject",
    "needs_smtputf8",
    "parse_mailbox",
    "parse_mailbox_list",
    "quote_plain",
    "reply_references",
    "reply_subject",
    "serialize",
    "text_from_html",
]

SIGNATURE_SEPARATOR = "-- "  # RFC 3676 §4.3: "-- " alone on a line starts a signature
_MAX_LOCAL = 64  # RFC 5321 §4.5.3.1.1
_MAX_DOMAIN = 255  # RFC 5321 §4.5.3.1.2
_MAX_LABEL = 63  # RFC 1035 §2.3.4
# RFC 5322 §3.2.3 atext, plus any non-ASCII character (RFC 6532 §3.2 UTF8-non-ascii).
_ATEXT = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010ffff]+$")
_LDH_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_ANGLE = re.compile(r"^(?P<name>.*?)\s*<(?P<addr>[^<>]*)>\s*$", re.S)


class InvalidAddress(ComposeError):
    """An address is not a valid mailbox; `reason` is one of the codes below.

    empty, no_at, local_empty, local_too_long, local_invalid, domain_empty,
    domain_too_long, domain_invalid, newline.
    """

    code = "invalid_address"

    def __init__(self, address: str, reason: str) -> None:
        super().__init__(f"{address!r}: {reason}")
        self.address = address
        self.reason = reason


@dataclass(frozen=True)
class Mailbox:
    """One checked mailbox: display name and address, domain in ASCII form."""

    name: str
    address: str

    @property
    def local_part(self) -> str:
        return self.address.rpartition("@")[0]

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]

    @property
    def needs_smtputf8(self) -> bool:
        return not self.local_part.isascii()

    def __str__(self) -> str:
        # For logs and tests only: headers are written by fields.address_list.
        return str(Address(display_name=self.name, username=self.local_part, domain=self.domain))


@dataclass(frozen=True)
class FilePart:
    """An attachment, or an inline image when `content_id` is set (no <>)."""

    filename: str
    content_type: str
    data: bytes
    content_id: str = ""


@dataclass
class Composition:
    """Everything a message is made of; `build` turns it into MIME."""

    sender: Mailbox
    to: Sequence[Mailbox]
    subject: str
    text: str
    message_id: str  # without <>
    date: datetime  # aware
    cc: Sequence[Mailbox] = ()
    html: str = ""  # empty: a plain-text message
    reply_to: Sequence[Mailbox] = ()
    in_reply_to: str = ""  # without <>
    references: Sequence[str] = ()  # without <>, oldest first
    attachments: Sequence[FilePart] = ()
    inline: Sequence[FilePart] = ()
    forwarded: Sequence[bytes] = ()  # raw messages attached as message/rfc822
    forwarded_names: Sequence[str] = field(default_factory=list)
    extra_headers: Sequence[tuple[str, str]] = ()
    # Written as a Bcc field only in the server copy of a draft (so that reopening
    # it keeps them); a message that is sent never shows its Bcc recipients.
    draft_bcc: Sequence[Mailbox] = ()


# ------------------------------------------------------------------------ addresses


def check_header_value(value: str, *, field_name: str = "") -> str:
    """`value` unchanged, or HeaderInjection when it holds a line break or NUL,
    literally or inside an RFC 2047 encoded word (fields.check_text)."""
    return fields.check_text(value, field=field_name)


def ascii_domain(domain: str) -> str | None:
    """The domain in ASCII (each label punycoded when needed), or None if invalid."""
    domain = domain.rstrip(".")
    if not domain or len(domain) > _MAX_DOMAIN:
        return None
    labels = []
    for label in domain.split("."):
        if not label:
            return None
        if not label.isascii():
            try:
                label = label.encode("idna").decode("ascii")
            except UnicodeError:
                return None
        if len(label) > _MAX_LABEL or not _LDH_LABEL.match(label):
            return None
        labels.append(label.lower())
    if len(labels) < 2:
        # A bare host name is not an Internet mail domain (RFC 5321 §2.3.5).
        return None
    result = ".".join(labels)
    return result if len(result) <= _MAX_DOMAIN else None


def _breaks(text: str) -> bool:
    """Whether `text` holds a line break or NUL, literally or encoded (RFC 2047)."""
    try:
        fields.check_text(text, field="address")
    except HeaderInjection:
        return True
    return False


def check_addr_spec(addr: str) -> str:
    """The address with its domain in ASCII form, or InvalidAddress naming why."""
    original = addr
    addr = addr.strip()
    if _breaks(addr):
        raise InvalidAddress(original, "newline")
    if not addr:
        raise InvalidAddress(original, "empty")
    if "@" not in addr:
        raise InvalidAddress(original, "no_at")
    local, _at, domain = addr.rpartition("@")
    if not local:
        raise InvalidAddress(original, "local_empty")
    if len(local.encode("utf-8")) > _MAX_LOCAL:
        raise InvalidAddress(original, "local_too_long")
    # dot-atom only (RFC 5322 §3.4.1): quoted local parts are legal but nearly
    # unused and often refused by servers; asking the user to check is kinder.
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise InvalidAddress(original, "local_invalid")
    if not all(_ATEXT.match(atom) for atom in local.split(".")):
        raise InvalidAddress(original, "local_invalid")
    if not domain:
        raise InvalidAddress(original, "domain_empty")
    domain_ascii = ascii_domain(domain)
    if domain_ascii is None:
        too_long = len(domain) > _MAX_DOMAIN
        raise InvalidAddress(original, "domain_too_long" if too_long else "domain_invalid")
    return f"{local}@{domain_ascii}"


def parse_mailbox(text: str) -> Mailbox:
    """One mailbox from `Name <addr>`, `"Name" <addr>` or a bare address."""
    if _breaks(text):
        raise InvalidAddress(text, "newline")
    stripped = text.strip()
    match = _ANGLE.match(stripped)
    if match:
        name = match.group("name").strip()
        if len(name) >= 2 and name[0] == name[-1] == '"':
            name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        addr = match.group("addr")
    else:
        name, addr = "", stripped
    return Mailbox(name=name, address=check_addr_spec(addr))


def split_address_list(text: str) -> list[str]:
    """Split at commas and semicolons outside double quotes and angle brackets."""
    items: list[str] = []
    current: list[str] = []
    quoted = False
    angle = False
    for ch in text:
        if ch == '"' and not angle:
            quoted = not quoted
        elif ch == "<" and not quoted:
            angle = True
        elif ch == ">" and not quoted:
            angle = False
        if ch in ",;" and not quoted and not angle:
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def parse_mailbox_list(text: str) -> list[Mailbox]:
    """Every mailbox of a comma- or semicolon-separated list; InvalidAddress on the
    first bad one."""
    return [parse_mailbox(item) for item in split_address_list(text)]


def needs_smtputf8(mailboxes: Iterable[Mailbox]) -> bool:
    """Whether any address has a non-ASCII local part (RFC 6531 §3.2)."""
    return any(m.needs_smtputf8 for m in mailboxes)


# ------------------------------------------------------------------- subjects, quotes

_REPLY_PREFIX = re.compile(r"^\s*(re|r|aw|sv|vs)\s*(\[\d+\])?\s*:\s*", re.I)
_FORWARD_PREFIX = re.compile(r"^\s*(fwd?|i|inoltro|wg|tr)\s*:\s*", re.I)


def reply_subject(subject: str) -> str:
    """`Re: subject`, without piling up prefixes (RFC 5322 §3.6.5)."""
    base = subject.strip()
    while True:
        stripped = _REPLY_PREFIX.sub("", base, count=1)
        if stripped == base:
            break
        base = stripped
    return f"Re: {base}"


def forward_subject(subject: str) -> str:
    base = subject.strip()
    return base if _FORWARD_PREFIX.match(base) else f"Fwd: {base}"


def reply_references(
    parent_references: Sequence[str], parent_in_reply_to: str, parent_message_id: str
) -> list[str]:
    """References of a reply (RFC 5322 §3.6.4): the parent's References (or its
    In-Reply-To when it has none) followed by the parent's Message-ID."""
    refs = list(parent_references) or ([parent_in_reply_to] if parent_in_reply_to else [])
    if parent_message_id:
        refs.append(parent_message_id)
    unique: list[str] = []
    for ref in refs:
        if ref and ref not in unique:
            unique.append(ref)
    return trim_references(unique)


# RFC 5537 §3.4.4: a References field is trimmed when it would exceed 998 octets
# (RFC 5322 §2.1.1's line length), however many replies the thread had.
MAX_REFERENCES_LENGTH = 998


def trim_references(refs: Sequence[str], *, limit: int = MAX_REFERENCES_LENGTH) -> list[str]:
    """`refs` shortened to fit `limit` characters as written ("<id> <id> ...").

    RFC 5537 §3.4.4 (the same rule mail readers follow): identifiers are dropped
    from the second one on, oldest first, but the first (the thread's root) and the
    last three (the closest parents) are always kept, so threading still works.
    """
    kept = list(refs)

    def written(ids: Sequence[str]) -> int:
        return sum(len(ref) + 2 for ref in ids) + max(len(ids) - 1, 0)

    while written(kept) > limit and len(kept) > 4:
        del kept[1]
    return kept


def quote_plain(text: str) -> str:
    """`text` quoted line by line with "> " (RFC 3676 §4.5)."""
    return "\n".join(f">{'' if line.startswith('>') else ' '}{line}".rstrip()
                     for line in text.splitlines())


def text_from_html(markup: str) -> str:
    """The plain-text alternative of an HTML body."""
    return html_to_text(markup)


def assemble_html(body: str, *, signature: str = "", quote: str = "") -> str:
    """Body, then the signature (marked so that quoting and snippets skip it), then
    the quoted original."""
    parts = [f'<div class="posta-body">{body}</div>']
    if signature:
        parts.append(
            f'<div class="posta-signature" data-posta-signature="1">'
            f"{html.escape(SIGNATURE_SEPARATOR)}<br>{signature}</div>"
        )
    if quote:
        parts.append(f'<div class="posta-quote">{quote}</div>')
    return "\n".join(parts)


def assemble_text(body: str, *, signature: str = "", quote: str = "") -> str:
    parts = [body.rstrip("\n")]
    if signature:
        parts.append(f"{SIGNATURE_SEPARATOR}\n{signature.strip()}")
    if quote:
        parts.append(quote)
    return "\n\n".join(parts) + "\n"


# --------------------------------------------------------------------------- build


def _pairs(mailboxes: Sequence[Mailbox]) -> list[tuple[str, str]]:
    return [(m.name, m.address) for m in mailboxes]


def _split_type(content_type: str) -> tuple[str, str]:
    maintype, _slash, subtype = content_type.lower().partition("/")
    if not maintype or not subtype or not re.match(r"^[a-z0-9.+-]+$", maintype + subtype):
        return "application", "octet-stream"
    return maintype, subtype


def _set_field(part: email.message.Message, name: str, value: fields.Written) -> None:
    """Replace the field `name` of a part by a value written by `fields`."""
    del part[name]
    part[name] = value


def _last_part(parent: email.message.EmailMessage) -> email.message.Message:
    payload = parent.get_payload()
    assert isinstance(payload, list)  # noqa: S101 - add_related/add_attachment made it
    part = payload[-1]
    assert isinstance(part, email.message.Message)  # noqa: S101 - idem
    return part


def _write_headers(msg: email.message.EmailMessage, c: Composition) -> None:
    msg["From"] = fields.address_list("From", _pairs([c.sender]))
    if c.to:
        msg["To"] = fields.address_list("To", _pairs(c.to))
    if c.cc:
        msg["Cc"] = fields.address_list("Cc", _pairs(c.cc))
    if c.draft_bcc:
        msg["Bcc"] = fields.address_list("Bcc", _pairs(c.draft_bcc))
    if c.reply_to:
        msg["Reply-To"] = fields.address_list("Reply-To", _pairs(c.reply_to))
    msg["Subject"] = fields.unstructured("Subject", c.subject)
    msg["Date"] = fields.unstructured("Date", email.utils.format_datetime(c.date))
    msg["Message-ID"] = fields.msg_ids("Message-ID", [c.message_id])
    if c.in_reply_to:
        msg["In-Reply-To"] = fields.msg_ids("In-Reply-To", [c.in_reply_to])
    if c.references:
        msg["References"] = fields.msg_ids("References", list(c.references))
    for name, value in c.extra_headers:
        msg[fields.field_name(name)] = fields.unstructured(name, value)


def _add_inline(html_part: email.message.EmailMessage, part: FilePart) -> None:
    maintype, subtype = _split_type(part.content_type)
    content_id = fields.msg_ids("Content-ID", [part.content_id])
    html_part.add_related(part.data, maintype=maintype, subtype=subtype, disposition="inline")
    added = _last_part(html_part)
    added["Content-ID"] = content_id
    if part.filename:
        _set_field(added, "Content-Disposition", fields.disposition("inline", part.filename))


def _add_forwarded(msg: email.message.EmailMessage, raw: bytes, name: str) -> None:
    """A message attached byte for byte (RFC 2046 §5.2.1 message/rfc822, whose
    transfer encoding may only be 7bit or 8bit): never parsed and written again,
    so nothing in its header block is ever decoded or refolded."""
    disposition = fields.disposition("attachment", name or "message.eml")
    lines = re.sub(rb"\r\n|\r|\n", b"\r\n", raw)
    part = email.message.EmailMessage(policy=fields.POLICY)
    part["Content-Type"] = "message/rfc822"
    part["Content-Transfer-Encoding"] = "7bit" if lines.isascii() else "8bit"
    part["Content-Disposition"] = disposition
    part.set_payload(lines.decode("ascii", "surrogateescape"))
    if msg.get_content_type() != "multipart/mixed":
        msg.make_mixed()
    msg.attach(part)


def build(c: Composition) -> email.message.EmailMessage:
    """The message for `c`; ComposeError (HeaderInjection, InvalidAddress) if a
    field cannot be written safely. Every header value is written by
    posta.mailproto.mime.fields."""
    msg = email.message.EmailMessage(policy=fields.POLICY)
    _write_headers(msg, c)
    msg.set_content(c.text or "\n", subtype="plain", charset="utf-8")
    if c.html:
        msg.add_alternative(c.html, subtype="html", charset="utf-8")
        if c.inline:
            html_part = list(msg.iter_parts())[1]  # [text/plain, text/html]
            assert isinstance(html_part, email.message.EmailMessage)  # noqa: S101 - ours
            for inline in c.inline:
                _add_inline(html_part, inline)
    for part in c.attachments:
        maintype, subtype = _split_type(part.content_type)
        written = fields.disposition("attachment", part.filename or "attachment")
        msg.add_attachment(part.data, maintype=maintype, subtype=subtype)
        _set_field(_last_part(msg), "Content-Disposition", written)
    for index, raw in enumerate(c.forwarded):
        name = c.forwarded_names[index] if index < len(c.forwarded_names) else ""
        _add_forwarded(msg, raw, name)
    return msg


def serialize(msg: email.message.EmailMessage, *, utf8: bool = False) -> bytes:
    """The wire form: CRLF line ends (RFC 5322 §2.1); raw UTF-8 headers only for
    an SMTPUTF8 message (RFC 6532), encoded words otherwise (RFC 2047).

    The final guard: HeaderInjection unless every header block of the bytes holds
    exactly the fields that were set (fields.check_header_blocks)."""
    try:
        data = msg.as_bytes(policy=fields.wire_policy(utf8=utf8))
    except UnicodeEncodeError as exc:
        # A UTF-8 address in a message not sent with SMTPUTF8 (RFC 6531 §3.2).
        raise ComposeError(f"8-bit header in a 7-bit message: {exc.reason}") from exc
    fields.check_header_blocks(data, msg, utf8=utf8)
    return data
