"""What the sync needs from a message's bytes: envelope, identity, body summary.

Small and defensive: a malformed header or body never raises out of here; what
cannot be read becomes empty, and body defects are returned by name. (The richer
parsers of posta.mailproto.mime can replace these functions one for one.)
"""

from __future__ import annotations

import hashlib
import html as html_lib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import getaddresses, parsedate_to_datetime

_MSGID = re.compile(r"<([^<>\s]+)>")
# RFC 5256 §2.1: subject leaders and trailers removed to find the base subject.
_SUBJ_LEADER = re.compile(
    r"^\s*((re|fwd?|aw|wg|r|i|rif|tr|sv|vs)(\[\d+\])?\s*:\s*|\[[^\]]*\]\s*)+", re.I
)
_SUBJ_TRAILER = re.compile(r"\s*\(fwd\)\s*$", re.I)
MAX_REFERENCES = 100
MAX_ADDRESSES = 200


@dataclass
class Envelope:
    subject: str = ""
    from_: list[tuple[str, str]] = field(default_factory=list)
    to: list[tuple[str, str]] = field(default_factory=list)
    cc: list[tuple[str, str]] = field(default_factory=list)
    reply_to: list[tuple[str, str]] = field(default_factory=list)
    date: datetime | None = None
    message_id: str = ""
    in_reply_to: str = ""
    references: list[str] = field(default_factory=list)


def normalize_message_id(value: str) -> str:
    """The first `<id>` in `value` without brackets, or the bare text when a broken
    client left the brackets out; "" when there is none."""
    found = _MSGID.search(value or "")
    if found:
        return found.group(1)[:990]
    bare = (value or "").strip()
    return bare[:990] if bare and " " not in bare else ""


def message_ids(value: str) -> list[str]:
    return [m[:990] for m in _MSGID.findall(value or "")]


def base_subject(subject: str) -> str:
    """RFC 5256 §2.1 base subject, lower-cased, whitespace collapsed."""
    text = " ".join((subject or "").split())
    previous = None
    while previous != text:
        previous = text
        text = _SUBJ_TRAILER.sub("", _SUBJ_LEADER.sub("", text))
    return text.lower()


def _header(msg: Message, name: str) -> str:
    try:
        value = msg.get(name)
        return str(value) if value is not None else ""
    except Exception:  # noqa: BLE001 - a header the policy cannot parse is just unreadable
        raw = msg.get_all(name, failobj=[])
        return str(raw[0]) if raw else ""


def _addresses(msg: Message, name: str) -> list[tuple[str, str]]:
    values = [_header(msg, name)] if msg.get(name) is not None else []
    try:
        pairs = getaddresses(values)
    except Exception:  # noqa: BLE001 - unparsable address lists are dropped, not fatal
        return []
    out = [(n.strip()[:300], a.strip()[:300]) for n, a in pairs if a.strip() or n.strip()]
    return out[:MAX_ADDRESSES]


def _date(text: str) -> datetime | None:
    try:
        value = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if value.tzinfo is None:
        # RFC 5322 §3.3: "-0000" means the zone is unknown; treat it as UTC.
        value = value.replace(tzinfo=UTC)
    if not 1970 <= value.year <= 2200:
        return None
    return value


def parse_envelope(header: bytes) -> Envelope:
    """The envelope fields of a header block; never raises."""
    try:
        msg = BytesHeaderParser(policy=policy.default).parsebytes(header)
    except Exception:  # noqa: BLE001 - keep syncing; an empty envelope is shown
        return Envelope()
    refs = message_ids(_header(msg, "References"))
    if len(refs) > MAX_REFERENCES:
        # RFC 5322 §3.6.4 lets a long chain keep its first and last ids.
        refs = refs[:1] + refs[-(MAX_REFERENCES - 1) :]
    return Envelope(
        subject=_header(msg, "Subject").replace("\r", "").replace("\n", "")[:2000],
        from_=_addresses(msg, "From"),
        to=_addresses(msg, "To"),
        cc=_addresses(msg, "Cc"),
        reply_to=_addresses(msg, "Reply-To"),
        date=_date(_header(msg, "Date")),
        message_id=normalize_message_id(_header(msg, "Message-ID")),
        in_reply_to=normalize_message_id(_header(msg, "In-Reply-To")),
        references=refs,
    )


def identity(env: Envelope, size: int) -> str:
    """The key that makes copies of one message one Message (DESIGN §5).

    With a Message-ID: the id plus sender, date and subject, because some servers
    and mailing tools reuse Message-IDs for different mail. Without one: the
    header fields plus the size.
    """
    sender = env.from_[0][1].lower() if env.from_ else ""
    date = env.date.isoformat() if env.date else ""
    if env.message_id:
        parts = ["id", env.message_id, sender, date, env.subject]
    else:
        rcpt = ",".join(sorted(a.lower() for _, a in env.to + env.cc))
        parts = ["noid", sender, rcpt, date, env.subject, str(size)]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "replace")).hexdigest()


@dataclass
class BodySummary:
    snippet: str = ""
    has_attachments: bool = False
    defects: list[str] = field(default_factory=list)


_QUOTE_START = re.compile(r"^(on .{0,200} wrote:|il .{0,200} ha scritto:)\s*$", re.I)


def _snippet_from(text: str, limit: int = 200) -> str:
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped in {"--", "-- "} or line == "-- ":
            break  # RFC 3676 §4.3 signature separator
        if stripped.startswith(">") or _QUOTE_START.match(stripped):
            continue
        if stripped:
            lines.append(stripped)
        if sum(len(x) + 1 for x in lines) > limit:
            break
    return " ".join(" ".join(lines).split())[:limit]


def _html_text(html: str) -> str:
    html = re.sub(r"(?is)<(script|style|head)[^>]*>.*?</\1>", " ", html)
    html = re.sub(r"(?s)<br\s*/?>|</p>|</div>", "\n", html)
    text = re.sub(r"(?s)<[^>]+>", " ", html)
    return html_lib.unescape(text)


def _defects(msg: Message) -> list[str]:
    names: set[str] = set()
    for part in msg.walk():
        for defect in getattr(part, "defects", []):
            names.add(type(defect).__name__)
    return sorted(names)


def summarize_body(raw: bytes) -> BodySummary:
    """Snippet, attachment mark and defects of a raw message; never raises."""
    try:
        msg = message_from_bytes(raw, policy=policy.default)
    except Exception as exc:  # noqa: BLE001 - the raw bytes stay in the blob store
        return BodySummary(defects=[type(exc).__name__])
    summary = BodySummary(defects=_defects(msg))
    text = ""
    html = ""
    try:
        for part in msg.walk():
            if part.is_multipart():
                continue
            disposition = part.get_content_disposition()
            if disposition == "attachment" or (
                part.get_filename() and part.get_content_maintype() != "text"
            ):
                summary.has_attachments = True
                continue
            ctype = part.get_content_type()
            if ctype == "text/plain" and not text:
                text = _part_text(part)
            elif ctype == "text/html" and not html:
                html = _part_text(part)
    except Exception as exc:  # noqa: BLE001 - keep what was found so far
        summary.defects.append(type(exc).__name__)
    summary.snippet = _snippet_from(text or _html_text(html))
    return summary


def _part_text(part: Message) -> str:
    """The part's text, with charset fallbacks for undeclared or wrong charsets."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    declared = part.get_content_charset() or ""
    for charset in (declared, "utf-8", "windows-1252"):
        if not charset:
            continue
        try:
            return payload.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    return payload.decode("latin-1")


__all__ = [
    "BodySummary",
    "Envelope",
    "base_subject",
    "identity",
    "normalize_message_id",
    "parse_envelope",
    "summarize_body",
]
