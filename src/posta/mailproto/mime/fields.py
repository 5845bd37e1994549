"""Writing header fields: the one place every header value Posta writes passes through.

Why Posta writes the wire form of its headers itself: given a string for a header
(`msg["Subject"] = text`, a display name, a file name parameter) the `email`
package parses it, and its parser decodes the RFC 2047 encoded words it finds (in
unstructured text, in display names, even inside quoted strings). A subject typed
as ``=?utf-8?q?Hi=0D=0AX-Injected:_1?=`` becomes "Hi\\r\\nX-Injected: 1" and, in
interpreters without the fix for CVE-2024-6923, is written with a real CR LF: a
header of the typist's choosing. So user text never reaches that parser:
`unstructured`, `address_list`, `msg_ids` and `disposition` return the finished
wire text of a field (`Written`), which `POLICY` stores and writes verbatim, and
`POLICY` refuses any other value for a field that is not one of the MIME fields
the package writes itself (Content-*, MIME-Version).

Every value obeys three rules:

1. It is refused (`HeaderInjection`) when it holds a line break or NUL
   (`FORBIDDEN`: every boundary `str.splitlines` knows, since the `email` package
   splits on them, CR, LF, VT, FF, FS, GS, RS, NEL, U+2028, U+2029), literally or
   once decoded as a lenient receiver decodes it: RFC 2047 encoded words anywhere
   in the value, in any charset, repeatedly (`decode_words`, the decoder of
   posta.mailproto.mime.headers, which is as lenient as the mail readers it
   imitates).
2. It is written literally: the recipient sees exactly the characters that were
   typed. Text that is not printable ASCII, or that holds "=?" (which a reader
   would take for the start of an encoded word), is itself encoded (RFC 2047 §4.2
   Q, UTF-8), so that decoding it yields the typed characters and nothing else.
   A subject typed as an encoded word arrives as that text, never decoded.
3. After serialization, `check_header_blocks` reads every header block of the
   bytes again and requires exactly the fields that were set, in order (the final
   guard): whatever the interpreter's `email` package does, a line that is not a
   field Posta meant to write refuses the message.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterator, Sequence
from email.message import Message
from email.policy import EmailPolicy
from typing import Any
from urllib.parse import quote

from posta.mailproto.mime.headers import codec_for, decode_words

__all__ = [
    "FORBIDDEN",
    "POLICY",
    "ComposeError",
    "HeaderInjection",
    "Written",
    "address_list",
    "check_header_blocks",
    "check_text",
    "disposition",
    "field_name",
    "has_forbidden",
    "msg_id_ok",
    "msg_ids",
    "unstructured",
    "wire_policy",
]

# The line boundaries of str.splitlines(), which the `email` package uses to split
# and fold header values, and NUL (RFC 5322 §2.2: a field body is printable
# characters and white space only).
LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
FORBIDDEN = LINE_BREAKS | {"\0"}
_DECODE_ROUNDS = 4  # a reader that decodes twice must find nothing either
_LINE = 76  # RFC 2047 §2: a line holding encoded words; also under RFC 5322's 78
_PLAIN_LINE = 78  # RFC 5322 §2.1.1
_MAX_LINE = 998  # RFC 5322 §2.1.1
_EW_MAX = 75  # RFC 2047 §2
_EW_OPEN = "=?utf-8?q?"
_EW_OVERHEAD = len(_EW_OPEN) + len("?=")
_MAX_WORD = 200  # longer runs without white space are encoded, and so split
_MAX_ID = 900  # one id with its brackets and the field name fits a 998-char line
# RFC 2047 §5(3): the characters a Q encoded word may hold as themselves anywhere,
# also inside a phrase; everything else is =XX, and "_" is the space.
_Q_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
_FIELD_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 §3.6.8 ftext
# RFC 5322 §3.6.4 msg-id, as real mail has it: printable ASCII without brackets.
_MSG_ID = re.compile(r"[!-;=?-~]+")
_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")  # RFC 5322 §3.2.3 atext
_ADDRESS = re.compile(r"[^\s<>\"(),;:\\\[\]]+@[^\s<>\"(),;:\\\[\]@]+")
_FILENAME_PLAIN = re.compile(r"[A-Za-z0-9 !#$&'()*+,\-.:;=@\[\]^_`{|}~]+")
# The header block of a serialized part: bytes that are line breaks in some reader
# (a CR or LF alone, VT, FF, FS/GS/RS, NEL or U+2028/U+2029 in UTF-8) or NUL.
_BAD_BYTES = re.compile(rb"[\x00\x0b\x0c\x1c-\x1e]|\r(?!\n)|(?<!\r)\n|\xc2\x85|\xe2\x80[\xa8\xa9]")
_FIELD_LINE = re.compile(r"([!-9;-~]+):")
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*?)\?=")


class ComposeError(ValueError):
    """The message cannot be built as asked. `code` is stable; `detail` names why."""

    code = "compose_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class HeaderInjection(ComposeError):
    """A header field value holds a line break (or NUL), literally or, when
    `encoded`, inside an RFC 2047 encoded word; `field` is the header's name."""

    code = "header_newline"

    def __init__(self, field: str, *, encoded: bool = False, detail: str = "") -> None:
        what = "encoded line break" if encoded else "line break"
        super().__init__(f"{field or 'header'}: {detail or what + ' in value'}")
        self.field = field
        self.encoded = encoded


class Written(str):
    """The finished wire text of one field value, stored and written verbatim."""


# ------------------------------------------------------------------------- checks


def has_forbidden(value: str) -> bool:
    """Whether `value` itself holds a line break or NUL."""
    return not FORBIDDEN.isdisjoint(value)


def check_text(value: str, *, field: str) -> str:
    """`value` unchanged, or HeaderInjection when it holds a line break or NUL,
    literally or after decoding its encoded words (rule 1 of the module)."""
    if has_forbidden(value):
        raise HeaderInjection(field)
    if any("\ud800" <= ch <= "\udfff" for ch in value):
        raise HeaderInjection(field, detail="character that cannot be written")
    decoded = value
    for _round in range(_DECODE_ROUNDS):
        if "=?" not in decoded:
            break
        if any(has_forbidden(word) for word in _words_as_charset(decoded)):
            raise HeaderInjection(field, encoded=True)
        again = decode_words(decoded)
        if again == decoded:
            break
        if has_forbidden(again):
            raise HeaderInjection(field, encoded=True)
        decoded = again
    return value


def _words_as_charset(value: str) -> Iterator[str]:
    """Each encoded word of `value` decoded in the charset it names, or, when
    that charset is unknown, in each one a reader falls back to (UTF-8, latin-1,
    where byte 0x85 is NEL). `decode_words` reads ASCII bytes as ASCII whatever the
    label says, as most readers do; a reader that honours the label may not (UTF-7
    spells CR LF in ASCII: "+AA0ACg-")."""
    for charset, encoding, text in _ENCODED_WORD.findall(value):
        data = text.encode("ascii", "replace")
        try:
            raw = (
                binascii.a2b_base64(data + b"==")
                if encoding in "bB"
                else binascii.a2b_qp(data, header=True)
            )
        except binascii.Error:
            continue
        codec = codec_for(charset)
        for name in (codec,) if codec else ("utf-8", "latin-1"):
            yield raw.decode(name, "replace")


def msg_id_ok(value: str) -> bool:
    """Whether `value` (without <>) can be written as a msg-id: printable ASCII,
    no brackets, nothing a reader would decode as an encoded word."""
    return (
        0 < len(value) <= _MAX_ID and _MSG_ID.fullmatch(value) is not None and "=?" not in value
    )


def field_name(name: str) -> str:
    """`name` if it is a valid field name (RFC 5322 §3.6.8), else HeaderInjection."""
    if _FIELD_NAME.fullmatch(name) is None:
        raise HeaderInjection(name[:40], detail="invalid field name")
    return name


# ------------------------------------------------------------------------ writing


def _q_piece(ch: str) -> str:
    if ch == " ":
        return "_"
    if ch in _Q_SAFE:
        return ch
    return "".join(f"={byte:02X}" for byte in ch.encode("utf-8"))


def _plain(text: str) -> bool:
    """Whether `text` can be written as it is: printable ASCII (and tabs), nothing
    that reads as an encoded word, no word too long to fold."""
    if "=?" in text or not all(" " <= ch <= "~" or ch == "\t" for ch in text):
        return False
    return all(len(word) <= _MAX_WORD for word in text.split())


class _Folder:
    """One field value laid out in lines (RFC 5322 §2.2.3): a fold is only ever
    put where the value has white space between two tokens."""

    def __init__(self, name: str) -> None:
        self._lines: list[str] = []
        self._line = ""
        self._used = len(name) + 2  # "Name: "
        self._started = False

    def _room(self) -> int:
        return _LINE - self._used - (1 if self._started else 0)

    def _fold(self) -> None:
        self._lines.append(self._line)
        self._line = ""
        self._used = 0

    def token(self, text: str, *, space: bool = True) -> None:
        """Append `text` (never split), after a space (or a fold) when `space`."""
        if not self._started:
            self._line, self._started = text, True
            self._used += len(text)
            return
        if not space:
            self._line += text
            self._used += len(text)
            return
        if self._room() < len(text) and self._line.strip():
            self._fold()
        self._line += " " + text
        self._used += 1 + len(text)

    def encoded(self, text: str) -> None:
        """Append `text` as encoded words, each sized to its line. The white space
        between two of them is ignored by readers (RFC 2047 §6.2), so the words
        decode to exactly `text`."""
        pieces = [_q_piece(ch) for ch in text]
        whole = _EW_OVERHEAD + sum(len(piece) for piece in pieces)
        if whole <= _EW_MAX and whole > self._room() and self._line.strip():
            # One word on the next line rather than two: not every reader joins
            # adjacent words in a phrase as RFC 2047 §6.2 says (Python's adds a space).
            self._fold()
        index = 0
        while index < len(pieces):
            room = min(_EW_MAX, self._room())
            if room < _EW_OVERHEAD + len(pieces[index]) and self._line.strip():
                self._fold()
                room = min(_EW_MAX, self._room())
            budget = max(room, _EW_OVERHEAD + len(pieces[index])) - _EW_OVERHEAD
            chunk: list[str] = []
            size = 0
            while index < len(pieces) and size + len(pieces[index]) <= budget:
                chunk.append(pieces[index])
                size += len(pieces[index])
                index += 1
            self.token(f"{_EW_OPEN}{''.join(chunk)}?=")

    def value(self) -> Written:
        return Written("\r\n".join([*self._lines, self._line]))


def _fold_plain(name: str, text: str) -> Written:
    """Printable text as it is, folded before its own white space where a line
    would pass 78 characters; unfolding gives back `text` exactly."""
    lines = [""]
    used = len(name) + 2
    for part in re.split(r"(?=[ \t])", text):
        if used + len(part) > _PLAIN_LINE and lines[-1].strip() and part[:1] in " \t":
            lines.append(part)
            used = len(part)
        else:
            lines[-1] += part
            used += len(part)
    return Written("\r\n".join(lines))


def unstructured(name: str, text: str) -> Written:
    """An unstructured field (RFC 5322 §3.2.5: Subject, Date, our own X- fields)."""
    field_name(name)
    check_text(text, field=name)
    if _plain(text):
        return _fold_plain(name, text)
    folder = _Folder(name)
    folder.encoded(text)
    return folder.value()


def _phrase(folder: _Folder, name: str, *, field: str) -> None:
    """A display name (RFC 5322 §3.2.5 phrase): atoms, a quoted string, or encoded
    words (RFC 2047 §5(3)) when it is not plain ASCII or reads as encoded."""
    check_text(name, field=field)
    if not _plain(name) or "\t" in name:
        folder.encoded(name)
        return
    words = name.split(" ")
    if all(_ATOM.fullmatch(word) for word in words):
        for word in words:
            folder.token(word)
        return
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    folder.token(f'"{escaped}"')


def address_list(name: str, mailboxes: Sequence[tuple[str, str]]) -> Written:
    """An address field (From, To, Cc, Bcc, Reply-To) of (display name, address)
    pairs; the address already checked (posta.mailproto.mime.compose), written raw
    (UTF-8 only in an SMTPUTF8 message, RFC 6532)."""
    field_name(name)
    if not mailboxes:
        raise HeaderInjection(name, detail="no address")
    folder = _Folder(name)
    for index, (display, address) in enumerate(mailboxes):
        check_text(address, field=name)
        if _ADDRESS.fullmatch(address) is None:
            raise HeaderInjection(name, detail="address cannot be written")
        if index:
            folder.token(",", space=False)
        if display:
            _phrase(folder, display, field=name)
            folder.token(f"<{address}>")
        else:
            folder.token(address)
    return folder.value()


def msg_ids(name: str, ids: Sequence[str]) -> Written:
    """Message-ID, In-Reply-To, References, Content-ID: each id (without <>)
    between brackets (RFC 5322 §3.6.4, RFC 2392)."""
    field_name(name)
    if not ids:
        raise HeaderInjection(name, detail="no id")
    folder = _Folder(name)
    for value in ids:
        check_text(value, field=name)
        if not msg_id_ok(value):
            raise HeaderInjection(name, detail="id cannot be written")
        folder.token(f"<{value}>")
    return folder.value()


def disposition(kind: str, filename: str, *, field: str = "filename") -> Written:
    """Content-Disposition (RFC 2183) with a file name: quoted when it is plain
    ASCII, else RFC 2231 §4 UTF-8 percent-encoding (with §3 continuations when
    long), which readers decode once into the typed name."""
    if kind not in ("attachment", "inline"):
        raise HeaderInjection("Content-Disposition", detail="unknown disposition")
    check_text(filename, field=field)
    folder = _Folder("Content-Disposition")
    folder.token(f"{kind};")
    if len(filename) <= 60 and _FILENAME_PLAIN.fullmatch(filename) and _plain(filename):
        folder.token(f'filename="{filename}"')
        return folder.value()
    encoded = quote(filename.encode("utf-8"), safe="")
    segments: list[str] = []
    while encoded:
        cut = min(len(encoded), 50)
        while "%" in encoded[max(0, cut - 2) : cut]:  # never split a %XX
            cut -= 1
        segments.append(encoded[:cut])
        encoded = encoded[cut:]
    if len(segments) == 1:
        folder.token(f"filename*=utf-8''{segments[0]}")
        return folder.value()
    for index, segment in enumerate(segments):
        prefix = "utf-8''" if index == 0 else ""
        end = ";" if index < len(segments) - 1 else ""
        folder.token(f"filename*{index}*={prefix}{segment}{end}")
    return folder.value()


# ------------------------------------------------------------------------- policy


# Fields the `email` package itself writes for the MIME structure (RFC 2045 §3-6,
# RFC 2183, RFC 2392): the only ones it may be given plain strings for.
_PACKAGE_FIELDS = ("content-", "mime-version")


class _WrittenPolicy(EmailPolicy):
    """`email.policy.default`, except that a `Written` value is stored as it is
    (never parsed, so never decoded) and that any other field must be Written."""

    def header_store_parse(self, name: str, value: Any) -> tuple[str, Any]:
        if isinstance(value, Written):
            return (name, str(value))
        if not name.lower().startswith(_PACKAGE_FIELDS):
            raise HeaderInjection(name, detail="not written through posta.mailproto.mime.fields")
        return super().header_store_parse(name, value)


POLICY = _WrittenPolicy()
# The wire form: CRLF (RFC 5322 §2.1); values written as stored, never refolded by
# parsing them again (refold_source "none": a refold would decode them).
_WIRE = POLICY.clone(linesep="\r\n", refold_source="none")
_WIRE_UTF8 = _WIRE.clone(utf8=True)


def wire_policy(*, utf8: bool) -> EmailPolicy:
    """The policy `serialize` writes with: raw UTF-8 headers only for an SMTPUTF8
    message (RFC 6532)."""
    return _WIRE_UTF8 if utf8 else _WIRE


# -------------------------------------------------------------------- final guard


def _multiparts(part: Message) -> Iterator[Message]:
    """The multipart nodes of the tree; a message/rfc822 part is a body here."""
    if part.get_content_maintype() == "multipart" and part.is_multipart():
        yield part
        for sub in part.get_payload():
            if isinstance(sub, Message):
                yield from _multiparts(sub)


def _block_at(data: bytes, start: int) -> bytes:
    if data.startswith(b"\r\n", start):
        return b""
    end = data.find(b"\r\n\r\n", start)
    if end < 0:
        raise HeaderInjection("", detail="header block without end")
    return data[start : end + 2]


def _field_names(block: bytes, *, utf8: bool) -> list[str]:
    """The names, lower-cased and in order, of the fields in a header block that
    holds nothing but fields and their folded continuations."""
    if _BAD_BYTES.search(block):
        raise HeaderInjection("", detail="line break inside a header field")
    if not utf8 and not block.isascii():
        raise HeaderInjection("", detail="8-bit header in a 7-bit message")
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HeaderInjection("", detail="header is not UTF-8") from exc
    names: list[str] = []
    for line in text.split("\r\n")[:-1]:
        if len(line.encode("utf-8")) > _MAX_LINE:
            raise HeaderInjection("", detail="header line too long")
        if line[:1] in (" ", "\t"):
            if not names or not line.strip():
                raise HeaderInjection("", detail="stray continuation line")
            continue
        found = _FIELD_LINE.match(line)
        if found is None:
            raise HeaderInjection("", detail="line that is not a header field")
        names.append(found.group(1).lower())
    return names


def _expect(part: Message, block: bytes, *, utf8: bool) -> None:
    expected = [name.lower() for name in part.keys()]
    found = _field_names(block, utf8=utf8)
    if found != expected:
        extra = sorted(set(found) - set(expected)) or found
        raise HeaderInjection(extra[0] if extra else "", detail="unexpected header field")


def check_header_blocks(data: bytes, msg: Message, *, utf8: bool) -> None:
    """HeaderInjection unless every header block of `data` (the serialization of
    `msg`) holds exactly the fields set on its part, each on lines of its own."""
    _expect(msg, _block_at(data, 0), utf8=utf8)
    for node in _multiparts(msg):
        boundary = node.get_boundary()
        parts = node.get_payload()
        if not boundary or not isinstance(parts, list):
            raise HeaderInjection("Content-Type", detail="multipart without boundary")
        delimiter = b"\r\n--" + boundary.encode("ascii") + b"\r\n"
        starts: list[int] = []
        at = data.find(delimiter)
        while at >= 0:
            starts.append(at + len(delimiter))
            at = data.find(delimiter, at + 1)
        if len(starts) != len(parts):
            raise HeaderInjection("Content-Type", detail="parts do not match their boundary")
        for sub, start in zip(parts, starts, strict=True):
            _expect(sub, _block_at(data, start), utf8=utf8)
