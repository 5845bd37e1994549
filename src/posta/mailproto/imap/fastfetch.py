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
from collections.abc import Iterable, Iterator
from typing import Protocol, cast

from posta.mailproto.common import gc_paused
from posta.mailproto.errors import ProtocolError, ServerBusy, TemporaryNetworkError
from posta.mailproto.imap.fetch_items import (
    FETCH_START,
    LITERAL_AT_END,
    BodyPart,
    BodyStructure,
    HeaderRecord,
    Value,
    fast_header_record,
    header_record,
    parse_bodystructure,
    parse_fetch_response,
    parse_flags,
    parse_internaldate,
    parse_number,
)

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


# --- reading responses -----------------------------------------------------------

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
                if FETCH_START.match(line) is None:
                    if line.endswith(b"}"):  # untagged non-FETCH with a literal
                        literal = LITERAL_AT_END.search(line)
                        if literal is not None:
                            self._literal(int(literal.group(1)))
                            line = line + self._line()
                    self._untagged(line)
                    continue
                segments = [line]
                while line.endswith(b"}"):
                    literal = LITERAL_AT_END.search(line)
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
            record = fast_header_record(segments)
            if record is False:
                try:
                    record = header_record(parse_fetch_response(segments)[1])
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
        uid = parse_number(fetched.get(b"UID"))
        if uid is None or b"FLAGS" not in fetched:
            continue
        result.append((uid, parse_flags(fetched[b"FLAGS"]), parse_number(fetched.get(b"MODSEQ"))))
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
            uid = parse_number(fetched.get(b"UID"))
            if uid is not None:
                sizes[uid] = parse_number(fetched.get(b"RFC822.SIZE")) or 0
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
        uid = parse_number(fetched.get(b"UID"))
        body = fetched.get(b"BODY[]")
        if uid is not None and uid in wanted and isinstance(body, bytes):
            found.append((uid, body))
            wanted.discard(uid)
    return found
