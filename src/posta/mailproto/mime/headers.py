"""Fast envelope decoding from a raw header block.

The first sync decodes the envelope of every message of a mailbox, 100,000 and more,
so this module avoids `email.policy.default`'s header registry (hundreds of
microseconds a header block) and decodes the few fields the message list needs with
compiled regular expressions, falling back to `email.utils` only for the address and
date shapes the fast paths do not recognize. It never raises on malformed input:
garbage dates become None, undecodable bytes are decoded leniently, a missing
Message-ID is "" (the caller synthesizes one).

Identifiers (`message_id`, `in_reply_to`, `references`) are returned as written,
angle brackets included, whitespace removed; `posta.mailproto.mime.threading`
normalizes them into keys.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email.utils
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import NamedTuple

__all__ = [
    "Address",
    "Envelope",
    "decode_bytes",
    "decode_words",
    "parse_addresses",
    "parse_date",
    "parse_envelope",
    "repair_header_block",
    "split_header_block",
]


class Address(NamedTuple):
    """One mailbox: display name (decoded, may be "") and address (may be "" for a
    group or an unparseable entry that still has a name).

    A named tuple rather than a dataclass: a first sync creates hundreds of
    thousands, and tuples of strings are cheaper to build and are untracked by the
    garbage collector after its first pass.
    """

    name: str
    email: str


@dataclass(slots=True)
class Envelope:
    """The fields the message list and threading need, decoded."""

    subject: str = ""
    from_: list[Address] = field(default_factory=list)
    to: list[Address] = field(default_factory=list)
    cc: list[Address] = field(default_factory=list)
    reply_to: list[Address] = field(default_factory=list)
    date: datetime | None = None
    message_id: str = ""
    in_reply_to: str = ""
    references: list[str] = field(default_factory=list)


# --- bytes to text ----------------------------------------------------------------


def decode_bytes(raw: bytes) -> str:
    """Decode header or body bytes whose charset is unknown: ASCII, else UTF-8, else
    cp1252 (a superset of latin-1 for printable text), else latin-1 (never fails).

    RFC 6532 allows UTF-8 in headers; older software sends its local 8-bit charset,
    most often Windows-1252 in Western Europe.
    """
    if raw.isascii():
        if b"\x1b" in raw:
            # RFC 1468: ISO-2022-JP is 7-bit; its escape sequences mark Japanese text
            # that plain ASCII would show as "$B...".
            try:
                return raw.decode("iso2022_jp_2")
            except UnicodeDecodeError:
                pass
        return raw.decode("ascii")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


_CHARSET_ALIASES = {
    "utf8": "utf-8",
    "unicode-1-1-utf-8": "utf-8",
    "x-unknown": "",
    "unknown-8bit": "",
    "unknown": "",
    "x-user-defined": "",
    "default": "",
    "iso-8859-8-i": "iso-8859-8",
    "ks_c_5601-1987": "cp949",
    "gb2312": "gb18030",  # GB18030 is a superset and decodes what mislabeled mail holds
    "gbk": "gb18030",
}
_CODEC_CACHE: dict[str, str] = {}
_SEVEN_BIT = frozenset(
    ("iso2022_jp", "iso2022_jp_1", "iso2022_jp_2", "iso2022_jp_2004", "iso2022_jp_3",
     "iso2022_jp_ext", "iso2022_kr", "hz", "utf-7")
)  # fmt: skip


def codec_for(charset: str | None) -> str:
    """Python codec name for a MIME charset label, "" when unknown. RFC 2231 §5
    language suffixes ("utf-8*it") are ignored."""
    if not charset:
        return ""
    label = charset.strip().strip('"').lower().split("*", 1)[0]
    cached = _CODEC_CACHE.get(label)
    if cached is not None:
        return cached
    name = _CHARSET_ALIASES.get(label, label)
    if name:
        try:
            name = codecs.lookup(name).name
        except LookupError:
            name = ""
    if len(_CODEC_CACHE) < 1024:
        _CODEC_CACHE[label] = name
    return name


def decode_with_charset(raw: bytes, charset: str | None) -> str:
    """Decode bytes declared to be in `charset`, trusting the label only as far as the
    bytes allow: an unknown label, or bytes invalid in it, fall back to
    `decode_bytes`; text labelled ASCII or latin-1 that is valid UTF-8 is UTF-8
    (mislabelled UTF-8 is far more common than latin-1 text that happens to be valid
    UTF-8)."""
    codec = codec_for(charset)
    if raw.isascii():
        if codec in _SEVEN_BIT and (b"\x1b" in raw or b"~{" in raw or b"+" in raw):
            # 7-bit charsets (ISO-2022-*, RFC 1468 / 1557; HZ; UTF-7) are ASCII bytes
            # that mean other characters: decode them with their own codec.
            try:
                return raw.decode(codec)
            except (UnicodeDecodeError, LookupError):
                return decode_bytes(raw)
        return decode_bytes(raw)
    if codec in ("", "ascii", "latin-1", "iso8859-1", "cp1252", "iso8859-15"):
        return decode_bytes(raw)
    try:
        return raw.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return decode_bytes(raw)


# --- RFC 2047 encoded words -------------------------------------------------------

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*?)\?=")
# RFC 2047 §6.2: linear white space between two adjacent encoded words is ignored.
_BETWEEN_WORDS = re.compile(r"(\?=)\s+(=\?)")


def _decode_word_bytes(encoding: str, text: str) -> bytes:
    data = text.encode("ascii", "replace")
    if encoding == "B" or encoding == "b":
        try:
            # Non-strict a2b_base64 skips characters outside the alphabet.
            return binascii.a2b_base64(data)
        except binascii.Error:
            # Tolerate missing padding, as every mail reader does.
            data = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
            data = data[: len(data) - len(data) % 4 if len(data) % 4 == 1 else len(data)]
            try:
                return base64.b64decode(data + b"=" * (-len(data) % 4))
            except (binascii.Error, ValueError):
                return b""
    # RFC 2047 §4.2: Q is quoted-printable where "_" stands for a space.
    return binascii.a2b_qp(data, header=True)


def decode_words(value: str) -> str:
    """Decode the RFC 2047 encoded words in a header value.

    Adjacent encoded words are joined (§6.2) before decoding, so a multi-byte
    character split across two words (common, though §5 forbids it) decodes
    whole. Unknown charsets fall back to UTF-8 / cp1252. Malformed words are kept
    as written.
    """
    if "=?" not in value:
        return value
    whole = _ENCODED_WORD.fullmatch(value)
    if whole is not None:  # the common case: one word is the whole value
        charset, encoding, text = whole.groups()
        return decode_with_charset(_decode_word_bytes(encoding, text), charset)
    value = _BETWEEN_WORDS.sub(r"\1\2", value)
    out: list[str] = []
    pos = 0
    pending = b""
    pending_charset = ""
    for match in _ENCODED_WORD.finditer(value):
        start = match.start()
        if start > pos:
            if pending:
                out.append(decode_with_charset(pending, pending_charset))
                pending = b""
            out.append(value[pos:start])
        charset = match.group(1)
        chunk = _decode_word_bytes(match.group(2), match.group(3))
        if pending and charset.lower() != pending_charset.lower():
            out.append(decode_with_charset(pending, pending_charset))
            pending = b""
        pending += chunk
        pending_charset = charset
        pos = match.end()
    if pending:
        out.append(decode_with_charset(pending, pending_charset))
    out.append(value[pos:])
    return "".join(out)


# --- the header block ---------------------------------------------------------------

# A field starts at a line start with a name (RFC 5322 §2.2: printable ASCII but ":")
# followed by ":"; continuation lines start with white space (§2.2.3).
_FIELD = re.compile(r"^([!-9;-~]+)[ \t]*:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.MULTILINE)
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_WANTED = {
    "from": "from",
    "to": "to",
    "cc": "cc",
    "reply-to": "reply_to",
    "subject": "subject",
    "date": "date",
    "message-id": "message_id",
    "in-reply-to": "in_reply_to",
    "references": "references",
}
_WANTED.update({name.title(): key for name, key in list(_WANTED.items())})
_WANTED.update({"Message-Id": "message_id", "MESSAGE-ID": "message_id", "CC": "cc"})


# A line of a header block that is neither a field nor a continuation.
_ODD_LINE = re.compile(rb"^(?![ \t]|[!-9;-~]+:|\r?$)", re.MULTILINE)
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_SPACED_NAME = re.compile(rb"^([!-9;-~]+)[ \t]+:")


def has_obsolete_lines(header: bytes) -> bool:
    """Whether the header block has a line repair_header_block would change."""
    end = _BLANK_LINE.search(header)
    return _ODD_LINE.search(header if end is None else header[: end.end()]) is not None


def repair_header_block(header: bytes) -> bytes:
    """The header block with RFC 5322 §4.5 obsolete syntax made current, so that no
    parser ends the header early and shows the rest as body: white space between a
    field name and its colon (`From : ...`, obs-optional) is removed, and
    a line that is neither a field nor folded with leading white space is taken as
    the continuation of the field above it (what mutt and Thunderbird do). An mbox
    `From ` envelope line first is kept. Unchanged when already well formed."""
    end = _BLANK_LINE.search(header)
    rest = b""
    if end is not None:
        header, rest = header[: end.end()], header[end.end() :]
    if _ODD_LINE.search(header) is None:
        return header + rest
    lines = header.splitlines(keepends=True)
    out: list[bytes] = []
    for index, line in enumerate(lines):
        if _ODD_LINE.match(line) is None:
            out.append(line)
            continue
        spaced = _SPACED_NAME.match(line)
        if spaced is not None:
            out.append(spaced.group(1) + b":" + line[spaced.end() :])
        elif index == 0:
            out.append(line)  # an mbox envelope line, or no header at all
        else:
            out.append(b" " + line)
    return b"".join(out) + rest


def split_header_block(header: bytes) -> dict[str, str]:
    """The wanted fields of a header block, decoded to text and unfolded, keyed by
    `Envelope` attribute name.

    The block is decoded once: ASCII, else UTF-8 (RFC 6532); a block that is
    neither has its fields decoded one by one (UTF-8, else cp1252), since relays
    add fields in charsets of their own (a Latin-1 Received line above a UTF-8
    Subject). The first occurrence of a field wins (RFC 5322 §3.6 allows each of
    these once), except To and Cc, whose repeated occurrences (seen in broken
    mail) are joined.
    """
    by_field = False
    if header.isascii():
        text = header.decode("ascii")
    else:
        try:
            text = header.decode("utf-8")
        except UnicodeDecodeError:
            text = header.decode("ascii", "surrogateescape")
            by_field = True
    fields: dict[str, str] = {}
    for name, value in _FIELD.findall(text):
        key = _WANTED.get(name) or _WANTED.get(name.lower())
        if key is None:
            continue
        if "\n" in value:
            value = _FOLD.sub("", value)  # RFC 5322 §2.2.3 unfolding
        value = value.rstrip()
        if by_field and not value.isascii():
            value = decode_bytes(value.encode("ascii", "surrogateescape"))
        if key in fields:
            if (key == "to" or key == "cc") and value:
                fields[key] += ", " + value
            continue
        fields[key] = value
    return fields


# --- addresses --------------------------------------------------------------------

# One entry of an address list in its everyday shapes: `"Quoted, Name" <a@b>`,
# `Plain Name <a@b>`, `<a@b>`, `a@b`; each followed by a comma or the end.
_ADDRESS_ITEM = re.compile(
    r'[\s,]*(?:(?:"([^"\\]*)"|([^",<>]*?))\s*<([^<>\s",]*)>|([^<>\s,;"]+@[^<>\s,;"]+))'
    r"\s*(?:,|\Z)"
)


# Address lists repeat across a mailbox (the same colleagues, the same
# newsletters), so parsed lists are remembered by their raw text. Bounded: cleared
# when full.
_ADDRESS_CACHE: dict[str, tuple[Address, ...]] = {}
_ADDRESS_CACHE_SIZE = 8192


def parse_addresses(value: str) -> list[Address]:
    """Parse an address-list header value (raw, encoded words undecoded); a new list
    on each call.

    Fast path for the everyday shapes `a@b`, `Name <a@b>`, `"Last, First" <a@b>`;
    anything else (comments, groups, routes, escapes) goes to
    `email.utils.getaddresses`. Encoded words in display names are decoded after
    splitting (RFC 2047 §5: an encoded word may not stand for a comma or bracket).
    """
    if not value:
        return []
    cached = _ADDRESS_CACHE.get(value)
    if cached is None:
        cached = tuple(_parse_addresses(value))
        if len(_ADDRESS_CACHE) >= _ADDRESS_CACHE_SIZE:
            _ADDRESS_CACHE.clear()
        _ADDRESS_CACHE[value] = cached
    return list(cached)


def _parse_addresses(value: str) -> list[Address]:
    if "(" in value or ":" in value or "\\" in value:
        return _parse_addresses_slow(value)
    result: list[Address] = []
    pos = 0
    end = len(value.rstrip(", \t"))
    match_at = _ADDRESS_ITEM.match
    while pos < end:
        match = match_at(value, pos)
        if match is None:
            return _parse_addresses_slow(value)
        quoted, plain, addr, bare = match.groups()
        pos = match.end()
        if bare is not None:
            result.append(Address("", bare))
            continue
        name = quoted if quoted is not None else plain
        result.append(Address(decode_words(name) if name else "", addr))
    return result


# RFC 5322 §3.2.2 comments, innermost first (they nest); a quoted pair may escape a
# parenthesis.
_COMMENT = re.compile(r"\((?:\\.|[^()\\])*\)")


_ANGLE_ADDR = re.compile(r"<[^<>]*>(?:\s*\((?:\\.|[^()\\])*\))*")


def _address_comments_removed(value: str) -> str:
    """Comments inside `<...>` and right after it removed; those in the display name
    are the sender's words and stay."""
    return _ANGLE_ADDR.sub(lambda m: _without_comments(m.group(0)).replace(" ", ""), value)


def _without_comments(value: str) -> str:
    for _ in range(8):
        stripped = _COMMENT.sub(" ", value)
        if stripped == value:
            break
        value = stripped
    return value


def _loose_mailboxes(value: str) -> list[Address] | None:
    """Senders as mailers write them without the syntax: `a@b c@d` (two mailboxes,
    no comma) or `Anna Rossi anna@example.com` (a name without angle brackets).
    None when the value has some other shape."""
    if "<" in value or '"' in value or "," in value or ";" in value:
        return None
    words = value.split()
    if len(words) < 2:
        return None
    mailboxes = [word for word in words if "@" in word]
    if len(mailboxes) == len(words):
        return [Address("", word) for word in words]
    if len(mailboxes) == 1 and words[-1] == mailboxes[0]:
        return [Address(decode_words(" ".join(words[:-1])), words[-1])]
    return None


def _parse_addresses_slow(value: str) -> list[Address]:
    loose = _loose_mailboxes(_without_comments(value))
    if loose is not None:
        return loose
    try:
        pairs = email.utils.getaddresses([value])
        # A comment is no part of the display name (RFC 5322 §3.4): the names come
        # from the value without comments; a mailbox whose only name is a comment
        # (`anna@example.com (Anna)`, the old RFC 822 style) keeps that.
        clean = email.utils.getaddresses(
            [_address_comments_removed(value) if "<" in value else _without_comments(value)]
        )
    except Exception:  # noqa: BLE001 - the stdlib parser may fail on anything hostile
        return []
    if len(clean) != len(pairs):
        clean = pairs
    result = []
    for (name, addr), (clean_name, _) in zip(pairs, clean, strict=True):
        if not name and not addr:
            continue
        shown = " ".join((clean_name or name).split())
        result.append(Address(decode_words(shown), addr))
    return result


# --- dates ------------------------------------------------------------------------

_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
    )
}
# RFC 5322 §3.3 date-time, the day name optional, seconds optional, a numeric zone.
_DATE = re.compile(
    r"\s*(?:[A-Za-z]{3},?\s*)?(\d{1,2})\s+([A-Za-z]{3})[a-z]*\s+(\d{2,4})\s+"
    r"(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([+-]\d{4})?"
)
_ZONES: dict[str, timezone] = {}


def parse_date(value: str) -> datetime | None:
    """Parse a Date header to an aware datetime; None if missing or unusable.

    A date without a zone or with "-0000" (RFC 5322 §3.3: local time unknown) is
    taken as UTC. Two-digit years follow RFC 5322 §4.3 (< 50 → 20xx).
    """
    if not value:
        return None
    match = _DATE.match(value)
    if match is not None and match.group(7) is not None:
        day, month, year, hh, mm, ss, zone = match.groups()
        month_number = _MONTHS.get(month.lower())
        if month_number is not None:
            year_number = int(year)
            if year_number < 100:
                year_number += 2000 if year_number < 50 else 1900
            try:
                return datetime(
                    year_number, month_number, int(day), int(hh), int(mm), int(ss or 0),
                    tzinfo=_zone(zone),
                )
            except ValueError:
                return None
    return _parse_date_slow(value)


def _zone(zone: str) -> timezone:
    tz = _ZONES.get(zone)
    if tz is None:
        minutes = int(zone[1:3]) * 60 + int(zone[3:5])
        if minutes >= 24 * 60:
            tz = UTC
        else:
            tz = timezone(timedelta(minutes=-minutes if zone[0] == "-" else minutes))
        _ZONES[zone] = tz
    return tz


def _parse_date_slow(value: str) -> datetime | None:
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


# --- identifiers ------------------------------------------------------------------

_MSG_ID = re.compile(r"<[^<>]*>")


def _first_id(value: str) -> str:
    """The first <id> of a Message-ID or In-Reply-To value, or the bare token when
    the brackets are missing (seen from broken software)."""
    if not value:
        return ""
    match = _MSG_ID.search(value)
    if match is not None:
        return "".join(match.group(0).split())
    words = value.split()
    return words[0] if words and "@" in words[0] else ""


def _all_ids(value: str) -> list[str]:
    if not value:
        return []
    found = _MSG_ID.findall(value)
    if found:
        return ["".join(item.split()) for item in found]
    return [word for word in value.replace(",", " ").split() if "@" in word]


# --- the envelope -----------------------------------------------------------------


def parse_envelope(header: bytes) -> Envelope:
    """Decode the envelope fields of a raw header block (the part of a message before
    the first empty line; passing a whole message also works but is slower).

    Never raises; missing fields are empty.
    """
    fields = split_header_block(repair_header_block(header))
    get = fields.get
    subject = get("subject", "")
    from_ = get("from")
    to = get("to")
    cc = get("cc")
    reply_to = get("reply_to")
    date = get("date")
    return Envelope(
        subject=decode_words(subject).strip() if subject else "",
        from_=parse_addresses(from_) if from_ else [],
        to=parse_addresses(to) if to else [],
        cc=parse_addresses(cc) if cc else [],
        reply_to=parse_addresses(reply_to) if reply_to else [],
        date=parse_date(date) if date else None,
        message_id=_first_id(get("message_id", "")),
        in_reply_to=_first_id(get("in_reply_to", "")),
        references=_all_ids(get("references", "")),
    )
