"""FETCH responses read into items, and items into records (RFC 3501 §7.4.2, §9).

The parsing half of posta.mailproto.imap.fastfetch, which sends the bulk commands
and reads their responses off the socket (see its docstring for the items we ask
for and how each may be written). Here: one response's segments (text, literal,
text, ...) become a dict of items, with a fast path for the everyday shape of a
sync header response; items become flags, numbers, dates, body structures and
the HeaderRecord the first sync stores.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

__all__ = [
    "FETCH_START",
    "LITERAL_AT_END",
    "BodyPart",
    "BodyStructure",
    "HeaderRecord",
    "Value",
    "fast_header_record",
    "header_record",
    "parse_bodystructure",
    "parse_fetch_response",
    "parse_flags",
    "parse_internaldate",
    "parse_number",
]

LITERAL_AT_END = re.compile(rb"\{(\d+)\+?\}\Z")
FETCH_START = re.compile(rb"\* (\d+) FETCH \(")


@dataclass(slots=True)
class BodyPart:
    """One leaf of a BODYSTRUCTURE (RFC 3501 §7.4.2), numbered as for BODY[part]."""

    part_id: str
    content_type: str  # lower case, "type/subtype"
    size: int
    filename: str  # raw parameter value (RFC 2231/2047 undecoded), "" if none
    disposition: str  # "attachment", "inline" or "" (none given)
    content_id: str


@dataclass(slots=True)
class BodyStructure:
    """A compact summary of a message's MIME tree as the server describes it."""

    parts: list[BodyPart] = field(default_factory=list)

    @property
    def has_attachments(self) -> bool:
        """True when a part is an attachment: disposition attachment, or a named
        non-text part that is not an inline image referenced by Content-ID, or a
        forwarded message (message/rfc822)."""
        for part in self.parts:
            if part.disposition == "attachment" or part.content_type == "message/rfc822":
                return True
            if part.filename and not part.content_id and not part.content_type.startswith(
                "text/"
            ):
                return True
        return False


@dataclass(slots=True)
class HeaderRecord:
    """What the first sync lists a message with, parsed from one FETCH response."""

    uid: int
    flags: tuple[str, ...]
    internaldate: datetime | None
    size: int
    modseq: int | None
    # Raw header block of BODY.PEEK[HEADER.FIELDS (SYNC_HEADER_FIELDS)], CRLF line
    # ends, ending with the empty line (RFC 3501 §6.4.5).
    header: bytes
    gm_thrid: int | None = None
    gm_msgid: int | None = None
    bodystructure: BodyStructure | None = None


# --- parsing one FETCH response -------------------------------------------------

_KEY = re.compile(rb" ?([A-Za-z0-9.\-]+(?:\[[^\]]*\](?:<\d+>)?)?) ")
_ATOM = re.compile(rb"[^ ()\r\n\"{]+")
_QUOTED = re.compile(rb'"((?:[^"\\]|\\.)*)"')
_FLAT_LIST = re.compile(rb"\(([^()\"{}]*)\)")
_QUOTE_ESCAPE = re.compile(rb"\\(.)")

Value = Any  # bytes | int-like bytes | None | list[Value]


class _Cursor:
    """Position in the segments of one response while parsing it."""

    __slots__ = ("segments", "index", "text", "pos")

    def __init__(self, segments: list[bytes], start: int) -> None:
        self.segments = segments
        self.index = 0
        self.text = segments[0]
        self.pos = start

    def value(self) -> Value:
        """Parse one value: list, quoted string, literal, NIL or atom."""
        text, pos = self.text, self.pos
        char = text[pos : pos + 1]
        if char == b"(":
            flat = _FLAT_LIST.match(text, pos)
            if flat is not None:
                self.pos = flat.end()
                return flat.group(1).split()
            return self._list()
        if char == b'"':
            quoted = _QUOTED.match(text, pos)
            if quoted is None:
                raise ValueError("unterminated quoted string")
            self.pos = quoted.end()
            raw = quoted.group(1)
            return _QUOTE_ESCAPE.sub(rb"\1", raw) if b"\\" in raw else raw
        if char == b"{":
            # A literal: the marker ends this text segment (RFC 3501 §4.3).
            if LITERAL_AT_END.match(text, pos) is None:
                raise ValueError("literal marker not at end of line")
            literal = self.segments[self.index + 1]
            self.index += 2
            self.text = self.segments[self.index]
            self.pos = 0
            return literal
        atom = _ATOM.match(text, pos)
        if atom is None:
            raise ValueError(f"unexpected {char!r} at {pos}")
        self.pos = atom.end()
        word = atom.group(0)
        return None if word == b"NIL" or word == b"nil" else word

    def _list(self) -> list[Value]:
        self.pos += 1  # "("
        items: list[Value] = []
        while True:
            text = self.text
            while text[self.pos : self.pos + 1] == b" ":
                self.pos += 1
            char = text[self.pos : self.pos + 1]
            if char == b")":
                self.pos += 1
                return items
            if not char:
                raise ValueError("unterminated list")
            items.append(self.value())


def parse_fetch_response(segments: list[bytes]) -> tuple[int, dict[bytes, Value]]:
    """Parse one `* n FETCH (...)` response into (sequence number, items).

    Keys are upper-cased item names (`b"UID"`, `b"FLAGS"`, `b"BODY[HEADER.FIELDS
    (FROM)]"`); values are bytes (atoms, strings, literals), None (NIL) or nested
    lists. Raises ValueError on a response that does not follow RFC 3501 §9.
    """
    head = FETCH_START.match(segments[0])
    if head is None:
        raise ValueError("not a FETCH response")
    cursor = _Cursor(segments, head.end())
    items: dict[bytes, Value] = {}
    while True:
        text = cursor.text
        if text[cursor.pos : cursor.pos + 1] == b")":
            return int(head.group(1)), items
        key = _KEY.match(text, cursor.pos)
        if key is None:
            raise ValueError(f"no item name at {cursor.pos}")
        name = key.group(1)
        if not name.isupper():
            name = name.upper()
        cursor.pos = key.end()
        items[name] = cursor.value()


# --- item conversion ------------------------------------------------------------

_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        (b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun")
        + (b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec")
    )
}
_ZONES: dict[bytes, timezone] = {}
_INTERNALDATE = re.compile(
    rb"\s*(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})\s*\Z"
)


def _zone(sign: bytes, hours: bytes, minutes: bytes) -> timezone:
    key = sign + hours + minutes
    zone = _ZONES.get(key)
    if zone is None:
        offset = timedelta(hours=int(hours), minutes=int(minutes))
        zone = timezone(-offset if sign == b"-" else offset)
        _ZONES[key] = zone
    return zone


def parse_internaldate(raw: bytes | None) -> datetime | None:
    """Parse an INTERNALDATE (`"17-Jul-1996 02:44:25 -0700"`, RFC 3501 §9
    date-time, the day possibly space-padded) to an aware datetime; None if absent
    or malformed."""
    if not raw:
        return None
    match = _INTERNALDATE.match(raw)
    if match is None:
        return None
    day, month, year, hh, mm, ss, sign, zh, zm = match.groups()
    month_number = _MONTHS.get(month.capitalize())
    if month_number is None:
        return None
    try:
        return datetime(
            int(year), month_number, int(day), int(hh), int(mm), int(ss),
            tzinfo=_zone(sign, zh, zm),
        )
    except ValueError:
        return None


_FLAG_CACHE: dict[bytes, tuple[str, ...]] = {}


def parse_flags(raw: Value) -> tuple[str, ...]:
    """FLAGS list → tuple of str. A mailbox has few distinct flag sets, so the
    decoded tuples are cached by their raw bytes."""
    if not isinstance(raw, list):
        return ()
    key = b" ".join(raw)
    flags = _FLAG_CACHE.get(key)
    if flags is None:
        # Keywords are atoms (RFC 3501 §9), ASCII in practice; decode leniently.
        flags = tuple(key.decode("utf-8", "replace").split())
        if len(_FLAG_CACHE) < 4096:
            _FLAG_CACHE[key] = flags
    return flags


def parse_number(raw: Value) -> int | None:
    if isinstance(raw, list):  # MODSEQ (n), RFC 7162 §3.1.4.1
        raw = raw[0] if raw else None
    if isinstance(raw, bytes) and raw.isdigit():
        return int(raw)
    return None


def _section_value(items: dict[bytes, Value], prefix: bytes) -> bytes | None:
    """The value of the first BODY[...] item whose section starts with prefix."""
    for key, value in items.items():
        if key.startswith(prefix):
            return value if isinstance(value, bytes) else b""
    return None


def _text(raw: Value) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else ""


def parse_bodystructure(raw: Value) -> BodyStructure:
    """Summarize a parsed BODYSTRUCTURE value (RFC 3501 §7.4.2) into its leaves.

    Part numbers follow RFC 3501 §6.4.5: children of a multipart are 1, 2, ...; a
    non-multipart message body is part 1; a message/rfc822 leaf is listed itself
    (as an attachment) and not descended into.
    """
    structure = BodyStructure()
    _walk_body(raw, "", structure.parts)
    return structure


def _walk_body(node: Value, prefix: str, out: list[BodyPart]) -> None:
    if not isinstance(node, list) or not node:
        return
    if isinstance(node[0], list):  # multipart: children, then subtype and extensions
        number = 1
        for child in node:
            if not isinstance(child, list):
                break
            _walk_body(child, f"{prefix}.{number}" if prefix else str(number), out)
            number += 1
        return
    part_id = prefix or "1"
    mime_type = f"{_text(node[0])}/{_text(node[1] if len(node) > 1 else None)}".lower()
    params = _pairs(node[2] if len(node) > 2 else None)
    content_id = _text(node[3] if len(node) > 3 else None)
    size = parse_number(node[6] if len(node) > 6 else None) or 0
    # Extension data position depends on the type: text/* has a line count,
    # message/rfc822 has envelope, body and line count (RFC 3501 §7.4.2).
    if mime_type.startswith("text/"):
        ext = 8
    elif mime_type == "message/rfc822":
        ext = 10
    else:
        ext = 7
    disposition, disp_params = "", {}
    disp = node[ext + 1] if len(node) > ext + 1 else None  # after body MD5
    if isinstance(disp, list) and disp:
        disposition = _text(disp[0]).lower()
        disp_params = _pairs(disp[1] if len(disp) > 1 else None)
    filename = (
        disp_params.get("filename")
        or disp_params.get("filename*")
        or params.get("name")
        or params.get("name*")
        or ""
    )
    out.append(BodyPart(part_id, mime_type, size, filename, disposition, content_id))


def _pairs(raw: Value) -> dict[str, str]:
    if not isinstance(raw, list):
        return {}
    return {
        _text(raw[i]).lower(): _text(raw[i + 1]) for i in range(0, len(raw) - 1, 2)
    }


def header_record(items: dict[bytes, Value]) -> HeaderRecord | None:
    uid = parse_number(items.get(b"UID"))
    if uid is None:
        return None
    header = _section_value(items, b"BODY[HEADER")
    if header is None:
        return None
    structure = items.get(b"BODYSTRUCTURE")
    return HeaderRecord(
        uid=uid,
        flags=parse_flags(items.get(b"FLAGS")),
        internaldate=parse_internaldate(items.get(b"INTERNALDATE")),
        size=parse_number(items.get(b"RFC822.SIZE")) or 0,
        modseq=parse_number(items.get(b"MODSEQ")),
        header=header,
        gm_thrid=parse_number(items.get(b"X-GM-THRID")),
        gm_msgid=parse_number(items.get(b"X-GM-MSGID")),
        bodystructure=parse_bodystructure(structure) if structure is not None else None,
    )


# The everyday shape of a sync header response, parsed with two C-level regex calls
# instead of the general item loop: simple items (numbers, flat lists, quoted
# strings without escapes), then the header section as a literal, then optionally
# more simple items. Anything else takes the general path.
_SIMPLE_VALUE = rb'(?:\d+|\([^()"{}]*\)|"[^"\\{}]*")'
_FAST_HEAD = re.compile(
    rb"\* \d+ FETCH \(((?:[A-Z0-9.\-]+ " + _SIMPLE_VALUE + rb" )*)"
    rb"BODY\[HEADER\.FIELDS \([^\]]*\)\] \{(\d+)\}\Z"
)
_FAST_TAIL = re.compile(rb"((?: [A-Z0-9.\-]+ " + _SIMPLE_VALUE + rb")*)\)\Z")
_FAST_ITEM = re.compile(rb"([A-Z0-9.\-]+) (" + _SIMPLE_VALUE + rb") ")


def fast_header_record(segments: list[bytes]) -> HeaderRecord | None | bool:
    """The record of a response of the everyday shape; False when the response has
    another shape (the caller then uses the general parser); None when it has no
    UID (unsolicited)."""
    if len(segments) != 3:
        return False
    head = _FAST_HEAD.match(segments[0])
    if head is None:
        return False
    simple = head.group(1)
    tail = segments[2]
    if tail != b")":
        rest = _FAST_TAIL.match(tail)
        if rest is None:
            return False
        simple += rest.group(1)[1:] + b" "
    uid = modseq = thrid = msgid = None
    flags: tuple[str, ...] = ()
    internaldate = None
    size = 0
    for key, value in _FAST_ITEM.findall(simple):
        if key == b"UID":
            uid = int(value)
        elif key == b"FLAGS":
            flags = parse_flags(value[1:-1].split())
        elif key == b"INTERNALDATE":
            internaldate = parse_internaldate(value[1:-1])
        elif key == b"RFC822.SIZE":
            size = int(value)
        elif key == b"MODSEQ":
            modseq = parse_number(value[1:-1])
        elif key == b"X-GM-THRID":
            thrid = int(value)
        elif key == b"X-GM-MSGID":
            msgid = int(value)
    if uid is None:
        return None
    return HeaderRecord(uid, flags, internaldate, size, modseq, segments[1], thrid, msgid)
