"""Bulk FETCH without IMAPClient's response parser.

IMAPClient parses FETCH responses with a general tokenizer that manages about 8,000
header records a second; a bare imaplib session streams the same data about six
times faster (shared/NOTES.md). The first sync of a large folder is dominated by that
parse, so the few bulk commands the sync engine runs are sent here instead: the
command goes out on the logged-in IMAPClient's own imaplib connection (with a tag of
imaplib's own sequence, so nothing else on the connection is confused), the
responses are read straight from the connection's buffered socket file in large
chunks, and each FETCH response is parsed with a few compiled regular expressions.

The parser follows RFC 3501 §7.4.2 and §9 (formal syntax) for the items we ask for:

- items may come in any order, in upper or lower case;
- every `nstring` may be a quoted string (with `\\"` and `\\\\` escapes), a literal
  `{n}` followed by n octets after CRLF (anywhere, not only for BODY[]), or NIL;
- FLAGS keywords are any atoms (`$Forwarded`, `NonJunk`, `\\Seen`);
- MODSEQ is `MODSEQ (n)` (RFC 7162 §3.1.4.1);
- X-GM-THRID / X-GM-MSGID are 64-bit numbers (Gmail IMAP extensions);
- the server may send FETCH responses we did not ask for (RFC 3501 §7.4.2 allows a
  flag change of any message at any time, and a UID FETCH answer must carry UID only
  for the messages asked about, RFC 3501 §6.4.8). A response without a UID cannot be
  tied to a message and is skipped; a response whose items lack what the command
  asked for (e.g. only FLAGS, sent because another session changed them) is skipped
  by `fetch_headers` and `fetch_bodies` and reported by `fetch_flags`.

Other untagged responses that arrive during the command (EXISTS, EXPUNGE, RECENT,
OK [HIGHESTMODSEQ ...]) are handed to imaplib's `untagged_responses` exactly as
imaplib itself would, so the owner of the connection still sees them.

Errors: a tagged NO/BAD becomes `ProtocolError` (or `ServerBusy` for the RFC 5530
codes that mean "try later"); a closed connection, an untagged BYE or a socket error
becomes `TemporaryNetworkError`. After such an error the connection is in an unknown
state and must be dropped by the caller.
"""

from __future__ import annotations

import imaplib
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol, cast

from posta.mailproto.common import gc_paused
from posta.mailproto.errors import ProtocolError, ServerBusy, TemporaryNetworkError

__all__ = [
    "SYNC_HEADER_FIELDS",
    "BodyPart",
    "BodyStructure",
    "HeaderRecord",
    "fetch_bodies",
    "fetch_flags",
    "fetch_headers",
    "fetch_uids",
    "parse_bodystructure",
    "parse_fetch_response",
    "parse_internaldate",
    "uid_set_from",
]

#: The header fields the first sync needs to list a message and thread it.
SYNC_HEADER_FIELDS: tuple[str, ...] = (
    "FROM",
    "TO",
    "CC",
    "REPLY-TO",
    "SUBJECT",
    "DATE",
    "MESSAGE-ID",
    "IN-REPLY-TO",
    "REFERENCES",
)
_HEADER_SECTION = "BODY.PEEK[HEADER.FIELDS (" + " ".join(SYNC_HEADER_FIELDS) + ")]"

# Bytes read from the socket file at a time. Large reads are what makes the loop fast:
# one read1() call returns whatever the kernel has, up to this size.
_CHUNK = 1 << 18


class _ImapClientLike(Protocol):
    """What we use of IMAPClient: its underlying imaplib connection."""

    _imap: imaplib.IMAP4


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


# --- reading responses -----------------------------------------------------------

_LITERAL_AT_END = re.compile(rb"\{(\d+)\+?\}\Z")
_FETCH_START = re.compile(rb"\* (\d+) FETCH \(")
_BUSY_CODES = (b"[THROTTLED]", b"[UNAVAILABLE]", b"[LIMIT]", b"[INUSE]")


class _Command:
    """Runs one command on an imaplib connection and yields its FETCH responses.

    Each response is a list of segments `[text0, literal0, text1, ...]`: the text of
    the response line up to and including each `{n}` marker, then the n octets, then
    the rest. A response without literals is a one-element list.
    """

    def __init__(self, imap: imaplib.IMAP4, command: bytes) -> None:
        self._imap = imap
        self._tag: bytes = imap._new_tag()
        # The connection's buffered socket file: imaplib may already hold bytes in
        # its buffer, so we must read through it, never from the raw socket.
        self._file = cast(io.BufferedReader, imap.file)
        self._command = command
        self._buf = b""
        self._pos = 0
        self.search: list[bytes] = []  # lines of untagged SEARCH responses

    def _more(self) -> None:
        """Append the next chunk from the connection to the buffer."""
        try:
            chunk = self._file.read1(_CHUNK)
        except OSError as exc:
            raise TemporaryNetworkError(f"reading a FETCH response: {exc}") from exc
        if not chunk:
            raise TemporaryNetworkError("the server closed the connection during FETCH")
        self._buf = self._buf[self._pos :] + chunk
        self._pos = 0

    def _line(self) -> bytes:
        while True:
            end = self._buf.find(b"\r\n", self._pos)
            if end >= 0:
                line = self._buf[self._pos : end]
                self._pos = end + 2
                return line
            self._more()

    def _literal(self, size: int) -> bytes:
        while len(self._buf) - self._pos < size:
            self._more()
        data = self._buf[self._pos : self._pos + size]
        self._pos += size
        return data

    def _finish(self, line: bytes) -> None:
        self._imap.tagged_commands.pop(self._tag, None)
        # Give back what we read past the tagged line: nothing should follow it
        # (the server speaks only when asked, RFC 3501 §2.2.2) but an IDLE-less
        # server may push untagged data right after; keep it for imaplib.
        rest = self._buf[self._pos :]
        self._buf = b""
        if rest and not rest.endswith(b"\r\n"):
            rest += self._file.readline()
        if rest:
            for extra in rest.split(b"\r\n"):
                if extra.startswith(b"* "):
                    self._untagged(extra)
        status = line[len(self._tag) + 1 :]
        if status.startswith(b"OK"):
            return
        text = status.decode("utf-8", "replace")
        if any(code in status for code in _BUSY_CODES):
            raise ServerBusy(text)
        raise ProtocolError(text)

    def _untagged(self, line: bytes) -> None:
        """Keep a non-FETCH untagged response where imaplib would have put it."""
        body = line[2:]
        if body.startswith(b"BYE"):
            raise TemporaryNetworkError(body.decode("utf-8", "replace"))
        parts = body.split(b" ", 2)
        if parts[0].isdigit() and len(parts) > 1:  # "* 5 EXISTS"
            typ, dat = parts[1].decode("ascii", "replace").upper(), parts[0]
        else:
            typ = parts[0].decode("ascii", "replace").upper()
            dat = body[len(parts[0]) + 1 :]
        if typ == "SEARCH":
            self.search.append(dat)
            return
        self._imap._append_untagged(typ, dat)

    def responses(self) -> Iterator[list[bytes]]:
        """Send the command; yield each FETCH response; return on tagged OK."""
        try:
            self._imap.send(self._tag + b" " + self._command + b"\r\n")
        except OSError as exc:
            raise TemporaryNetworkError(f"sending a command: {exc}") from exc
        tag_prefix = self._tag + b" "
        while True:
            line = self._line()
            if line.startswith(b"* "):
                if _FETCH_START.match(line) is None:
                    if line.endswith(b"}"):  # untagged non-FETCH with a literal
                        literal = _LITERAL_AT_END.search(line)
                        if literal is not None:
                            self._literal(int(literal.group(1)))
                            line = line + self._line()
                    self._untagged(line)
                    continue
                segments = [line]
                while line.endswith(b"}"):
                    literal = _LITERAL_AT_END.search(line)
                    if literal is None:
                        break
                    segments.append(self._literal(int(literal.group(1))))
                    line = self._line()
                    segments.append(line)
                yield segments
            elif line.startswith(tag_prefix):
                self._finish(line)
                return
            elif line.startswith(b"+"):
                raise ProtocolError("unexpected continuation request during FETCH")
            # Anything else is noise we cannot attribute; ignore it.


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
            if _LITERAL_AT_END.match(text, pos) is None:
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
    head = _FETCH_START.match(segments[0])
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


def _flags(raw: Value) -> tuple[str, ...]:
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


def _number(raw: Value) -> int | None:
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
    size = _number(node[6] if len(node) > 6 else None) or 0
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


def _header_record(items: dict[bytes, Value]) -> HeaderRecord | None:
    uid = _number(items.get(b"UID"))
    if uid is None:
        return None
    header = _section_value(items, b"BODY[HEADER")
    if header is None:
        return None
    structure = items.get(b"BODYSTRUCTURE")
    return HeaderRecord(
        uid=uid,
        flags=_flags(items.get(b"FLAGS")),
        internaldate=parse_internaldate(items.get(b"INTERNALDATE")),
        size=_number(items.get(b"RFC822.SIZE")) or 0,
        modseq=_number(items.get(b"MODSEQ")),
        header=header,
        gm_thrid=_number(items.get(b"X-GM-THRID")),
        gm_msgid=_number(items.get(b"X-GM-MSGID")),
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


def _fast_header_record(segments: list[bytes]) -> HeaderRecord | None | bool:
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
            flags = _flags(value[1:-1].split())
        elif key == b"INTERNALDATE":
            internaldate = parse_internaldate(value[1:-1])
        elif key == b"RFC822.SIZE":
            size = int(value)
        elif key == b"MODSEQ":
            modseq = _number(value[1:-1])
        elif key == b"X-GM-THRID":
            thrid = int(value)
        elif key == b"X-GM-MSGID":
            msgid = int(value)
    if uid is None:
        return None
    return HeaderRecord(uid, flags, internaldate, size, modseq, segments[1], thrid, msgid)


def _parsed(command: _Command) -> Iterator[dict[bytes, Value]]:
    """Items of each well-formed FETCH response; malformed ones are skipped so that
    one bad response never leaves the rest of the command unread."""
    for segments in command.responses():
        try:
            yield parse_fetch_response(segments)[1]
        except (ValueError, IndexError):
            continue


# --- public commands ------------------------------------------------------------


def _imap_of(client: _ImapClientLike) -> imaplib.IMAP4:
    return client._imap


def fetch_headers(
    client: _ImapClientLike,
    uid_set: str,
    *,
    modseq: bool = False,
    gmail: bool = False,
    bodystructure: bool = False,
) -> list[HeaderRecord]:
    """UID FETCH the sync headers of `uid_set` in the selected folder.

    Asks for UID FLAGS INTERNALDATE RFC822.SIZE and the SYNC_HEADER_FIELDS header
    block, plus MODSEQ (the folder must be selected with CONDSTORE enabled, RFC 7162
    §3.1), X-GM-THRID/X-GM-MSGID (Gmail only) and BODYSTRUCTURE when asked.
    Returns one record per message answered, in the server's order; unsolicited
    responses are skipped. `uid_set` is an IMAP sequence set such as "1:*".
    """
    items = ["UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE"]
    if modseq:
        items.append("MODSEQ")
    if gmail:
        items += ["X-GM-THRID", "X-GM-MSGID"]
    if bodystructure:
        items.append("BODYSTRUCTURE")
    items.append(_HEADER_SECTION)
    command = _Command(
        _imap_of(client), f"UID FETCH {uid_set} ({' '.join(items)})".encode("ascii")
    )
    records = []
    with gc_paused():
        for segments in command.responses():
            record = _fast_header_record(segments)
            if record is False:
                try:
                    record = _header_record(parse_fetch_response(segments)[1])
                except (ValueError, IndexError):
                    continue  # malformed: skip it, keep reading the rest
            if isinstance(record, HeaderRecord):
                records.append(record)
    return records


def fetch_flags(
    client: _ImapClientLike, uid_set: str, *, changed_since: int | None = None
) -> list[tuple[int, tuple[str, ...], int | None]]:
    """UID FETCH the FLAGS (and MODSEQ when `changed_since` is given) of `uid_set`.

    With `changed_since`, adds the CHANGEDSINCE modifier (RFC 7162 §3.1.4): only
    messages whose MODSEQ is greater are answered. Returns (uid, flags, modseq),
    including unsolicited flag updates that carry a UID.
    """
    command_text = f"UID FETCH {uid_set} (UID FLAGS"
    if changed_since is not None:
        command_text += f" MODSEQ) (CHANGEDSINCE {int(changed_since)})"
    else:
        command_text += ")"
    command = _Command(_imap_of(client), command_text.encode("ascii"))
    result = []
    for fetched in _parsed(command):
        uid = _number(fetched.get(b"UID"))
        if uid is None or b"FLAGS" not in fetched:
            continue
        result.append((uid, _flags(fetched[b"FLAGS"]), _number(fetched.get(b"MODSEQ"))))
    return result


def fetch_uids(client: _ImapClientLike, uid_set: str = "1:*") -> list[int]:
    """The UIDs present in `uid_set` of the selected folder, ascending
    (`UID SEARCH UID set`, RFC 3501 §6.4.4 / §6.4.8)."""
    command = _Command(_imap_of(client), f"UID SEARCH UID {uid_set}".encode("ascii"))
    for _ in command.responses():
        pass  # FETCH responses here are unsolicited flag updates; ignore them
    uids: list[int] = []
    for line in command.search:
        # "* SEARCH 1 2 3" may end with "(MODSEQ n)" under CONDSTORE (RFC 7162 §3.1.5).
        uids.extend(int(word) for word in line.split() if word.isdigit())
    uids.sort()
    return uids


def uid_set_from(uids: Iterable[int]) -> str:
    """Compress UIDs into an IMAP sequence set: [1, 2, 3, 7, 9, 10] → "1:3,7,9:10"."""
    ordered = sorted(set(uids))
    if not ordered:
        raise ValueError("empty UID set")
    ranges = []
    start = prev = ordered[0]
    for uid in ordered[1:]:
        if uid != prev + 1:
            ranges.append(f"{start}:{prev}" if start != prev else str(start))
            start = uid
        prev = uid
    ranges.append(f"{start}:{prev}" if start != prev else str(start))
    return ",".join(ranges)


def fetch_bodies(
    client: _ImapClientLike,
    uids: list[int],
    *,
    max_batch_bytes: int = 16 << 20,
    max_batch_count: int = 1000,
) -> Iterator[tuple[int, bytes]]:
    """Yield (uid, raw message) for each of `uids` still present, via BODY.PEEK[]
    (RFC 3501 §6.4.5: PEEK leaves \\Seen alone).

    Sizes are asked first (RFC822.SIZE), then messages are fetched in batches of at
    most `max_batch_bytes` total (one larger message goes alone) and
    `max_batch_count` messages. Each batch is read whole before its messages are
    yielded, so a consumer that stops early never leaves a command half-read.
    """
    if not uids:
        return
    imap = _imap_of(client)
    sizes: dict[int, int] = {}
    for start in range(0, len(uids), 5000):
        chunk = uids[start : start + 5000]
        command = _Command(
            imap, f"UID FETCH {uid_set_from(chunk)} (UID RFC822.SIZE)".encode("ascii")
        )
        for fetched in _parsed(command):
            uid = _number(fetched.get(b"UID"))
            if uid is not None:
                sizes[uid] = _number(fetched.get(b"RFC822.SIZE")) or 0
    batch: list[int] = []
    total = 0
    for uid in uids:
        if uid not in sizes:
            continue  # expunged since
        size = sizes[uid]
        if batch and (total + size > max_batch_bytes or len(batch) >= max_batch_count):
            yield from _fetch_body_batch(imap, batch)
            batch, total = [], 0
        batch.append(uid)
        total += size
    if batch:
        yield from _fetch_body_batch(imap, batch)


def _fetch_body_batch(imap: imaplib.IMAP4, batch: list[int]) -> list[tuple[int, bytes]]:
    command = _Command(
        imap, f"UID FETCH {uid_set_from(batch)} (UID BODY.PEEK[])".encode("ascii")
    )
    wanted = set(batch)
    found: list[tuple[int, bytes]] = []
    for fetched in _parsed(command):
        uid = _number(fetched.get(b"UID"))
        body = fetched.get(b"BODY[]")
        if uid is not None and uid in wanted and isinstance(body, bytes):
            found.append((uid, body))
            wanted.discard(uid)
    return found
