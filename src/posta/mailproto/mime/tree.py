"""The MIME tree of a raw message, built fast and leniently.

`email`'s feed parser compiles a regular expression for every boundary it meets,
which in a mailbox (one boundary per message) costs more than the rest of reading
the message. Here the entities are cut apart with plain byte searches (RFC 2046
§5.1.1: a delimiter line is "--" and the boundary at the start of a line, then
only white space; "--" after the boundary closes the multipart), each header
block is read by `email`'s header parser (`compat32`, which keeps parameters as
written), and the result is the same `email.message.Message` tree the feed parser
builds, so the walk in posta.mailproto.mime.parse reads either.

Lenient like the feed parser: a multipart without any delimiter line keeps its
body as text (parse then looks for the delimiter it really uses), a missing
closing delimiter ends the last part at the end of the body; the problems are
recorded as `email.errors` defects on the part.
"""

from __future__ import annotations

import re
from email import errors
from email.message import Message, _parseparam, _unquotevalue  # type: ignore[attr-defined]
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import decode_params
from typing import Any, NamedTuple

from posta.mailproto.mime.headers import repair_header_block

__all__ = ["Part", "body_of", "build_tree", "split_raw"]

_MAX_DEPTH = 20
_MISSING = object()


class Part(Message):
    """An `email` message part whose header parameters are remembered.

    The walk asks each part for its boundary, charset, file name and name, and
    `Message` answers each by parsing the whole header's parameters again. The
    answers here are Message.get_param's (the same field, the same parsing),
    the parsed parameters remembered until the header list changes."""

    _posta_key: tuple[int, int] | None = None
    _posta_params: dict[str, Any]

    def get_param(
        self, param: str, failobj: Any = None, header: str = "content-type", unquote: bool = True
    ) -> Any:
        headers: list[tuple[str, Any]] = self._headers  # type: ignore[attr-defined]
        key = (id(headers), len(headers))
        if self._posta_key != key:
            self._posta_params = {}
            self._posta_key = key
        field = header.lower()
        params = self._posta_params.get(field, _MISSING)
        if params is _MISSING:
            params = self._params(header)
            self._posta_params[field] = params
        if params is _MISSING:
            return failobj
        wanted = param.lower()
        for name, value in params:
            if name.lower() == wanted:
                return _unquotevalue(value) if unquote else value
        return failobj

    def _params(self, header: str) -> Any:
        """The field's parameters as Message._get_params_preserve reads them, but
        from the field as received when it has 8-bit bytes: `compat32` hands such a
        field out as a Header whose text has lost them (U+FFFD), and a UTF-8 or
        Latin-1 file name sent unencoded (RFC 6532, or older mailers) would be
        lost with them. The bytes stay surrogate escapes here; parse decodes the
        names (a boundary must match its delimiter lines byte for byte)."""
        value = self.get(header, _MISSING)
        if value is _MISSING:
            return _MISSING
        if isinstance(value, str):
            return self._get_params_preserve(_MISSING, header)  # type: ignore[attr-defined]
        wanted = header.lower()
        headers: list[tuple[str, Any]] = self._headers  # type: ignore[attr-defined]
        text = next(str(v) for k, v in headers if k.lower() == wanted)
        params: list[tuple[str, str]] = []
        for item in _parseparam(text):
            name, equals, val = item.partition("=")
            params.append((name.strip(), val.strip()) if equals else (name.strip(), ""))
        return decode_params(params)

    def replace_header(self, _name: str, _value: Any) -> None:
        super().replace_header(_name, _value)
        self._posta_key = None  # changed in place: same list, same length


_HEADERS = BytesHeaderParser(_class=Part, policy=compat32)
_BODY = "posta_body"


def split_raw(raw: bytes) -> tuple[bytes, bytes]:
    """Split a raw message at the first empty line (RFC 5322 §2.1) into header block
    (including its final line end) and body. A message without an empty line is all
    header."""
    crlf = raw.find(b"\r\n\r\n")
    # An LF-only empty line counts only before the first CRLF one: not searched
    # for through the rest (an attachment's megabytes) when that one was found.
    lf = raw.find(b"\n\n", 0, crlf) if crlf >= 0 else raw.find(b"\n\n")
    found = [(index, size) for index, size in ((crlf, 4), (lf, 2)) if index >= 0]
    if not found:
        return raw, b""
    index, size = min(found)
    return raw[: index + size], raw[index + size :]


def build_tree(raw: bytes) -> Message:
    """The tree of `raw`, its header block repaired (headers.repair_header_block)."""
    header, body = split_raw(raw)
    return _entity(repair_header_block(header), body, depth=0, digest=False)


# A header block every line of which is a field ("name:", the name printable
# ASCII but ":") or its continuation, with CRLF or LF line ends, up to its empty
# line: the everyday block, which _regular_headers reads as `email`'s parser does
# without running the feed parser's line machinery. Anything else (an mbox From
# line, a line that is no field, other line breaks the parser honours) goes to
# that parser, which records the defects.
_LINE_TAIL = rb"[^\r\n\x0b\x0c\x1c-\x1e]*\r?\n"
_REGULAR_BLOCK = re.compile(
    rb"(?:[!-9;-~]+:" + _LINE_TAIL + rb"(?:[ \t]" + _LINE_TAIL + rb")*)*(?:\r?\n)?"
)


def _regular_headers(header: bytes) -> Message | None:
    """The header block read into a part exactly as _HEADERS.parsebytes reads it,
    for a regular block (see _REGULAR_BLOCK); None for any other."""
    if _REGULAR_BLOCK.fullmatch(header) is None:
        return None
    part = Part(policy=compat32)
    source = compat32.header_source_parse
    fields: list[tuple[str, str]] = []
    lines: list[str] = []
    for line in header.decode("ascii", "surrogateescape").splitlines(keepends=True):
        if line[0] in " \t":
            lines.append(line)
            continue
        if lines:
            fields.append(source(lines))
        if line in ("\r\n", "\n"):
            lines = []
            break
        lines = [line]
    if lines:
        fields.append(source(lines))
    part._headers = fields  # type: ignore[attr-defined]  # noqa: SLF001 - what set_raw fills
    part.set_payload("")
    return part


def _entity(header: bytes, body: bytes, *, depth: int, digest: bool) -> Message:
    part = _regular_headers(header) or _HEADERS.parsebytes(header)
    leftover = part.get_payload()
    if isinstance(leftover, str) and leftover:
        # A line that is no header ends the header early: it and what follows are
        # the body (as the feed parser reads it, MissingHeaderBodySeparatorDefect).
        body = leftover.encode("utf-8", "surrogateescape") + body
    if digest:
        part.set_default_type("message/rfc822")  # RFC 2046 §5.1.5
    if depth < _MAX_DEPTH:
        maintype = part.get_content_maintype()
        if maintype == "multipart":
            if _multipart(part, body, depth=depth):
                return part
        elif part.get_content_type() == "message/rfc822" and body.strip():
            inner_header, inner_body = split_raw(body)
            part.set_payload([_entity(inner_header, inner_body, depth=depth + 1, digest=False)])
            setattr(part, _BODY, body)
            return part
    # Leaves keep their bytes undecoded (body_of): attachments are most of a
    # mailbox's bytes, and the list never needs them as text.
    setattr(part, _BODY, body)
    return part


def body_of(part: Message) -> bytes:
    """The raw (still transfer-encoded) body of a leaf of a tree built here, or of
    any `email` part."""
    body = getattr(part, _BODY, None)
    if isinstance(body, bytes):
        return body
    payload = part.get_payload()
    return payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""


def _multipart(part: Message, body: bytes, *, depth: int) -> bool:
    """Split a multipart's body into its children; False when it has no
    delimiter line at all (its body is then kept as text)."""
    boundary = part.get_boundary()
    if not boundary:
        part.defects.append(errors.NoBoundaryInMultipartDefect())
        return False
    marks = _delimiters(body, b"--" + boundary.encode("utf-8", "surrogateescape"))
    if not marks or marks[0].closing:
        part.defects.append(errors.StartBoundaryNotFoundDefect())
        return False
    level = _Level(body, marks, boundary)
    children, closed = level.read(0, depth=depth, digest=part.get_content_subtype() == "digest")
    if not closed:
        part.defects.append(errors.CloseBoundaryNotFoundDefect())
    part.set_payload(children)
    return True


class _Mark(NamedTuple):
    """One delimiter line of a multipart body."""

    start: int  # where the line starts
    end: int  # where the part after it starts
    closing: bool  # "--" after the boundary (RFC 2046 §5.1.1)


class _Level:
    """The children of a multipart, read from its delimiter lines.

    Some mailers (Outlook Express for Mac, iPhone mail relayed by some
    gateways) give a nested multipart the boundary of its parent. Its parts are
    then the delimited parts that follow it, up to the first closing delimiter,
    and the parent's parts go on after that: read so, nothing after the first
    closing delimiter is lost (`email` ends the parent there)."""

    def __init__(self, body: bytes, marks: list[_Mark], boundary: str) -> None:
        self.body = body
        self.marks = marks
        self.boundary = boundary
        self.next = 0

    def read(self, index: int, *, depth: int, digest: bool) -> tuple[list[Message | str], bool]:
        """The children from mark `index` on, and whether a closing delimiter ended
        them; self.next is then the first mark after them."""
        children: list[Message | str] = []
        marks = self.marks
        while index < len(marks):
            if marks[index].closing:
                self.next = index + 1
                return children, True
            child = _child(self._chunk(index), depth=depth + 1, digest=digest)
            index += 1
            if depth + 1 < _MAX_DEPTH and self._nests_here(child):
                inner, _closed = self.read(
                    index, depth=depth + 1, digest=child.get_content_subtype() == "digest"
                )
                index = self.next
                child.defects = [
                    d
                    for d in child.defects
                    if not isinstance(d, errors.StartBoundaryNotFoundDefect)
                ]
                child.set_payload(inner)
            children.append(child)
        self.next = index
        return children, False

    def _nests_here(self, child: Message) -> bool:
        return (
            child.get_content_maintype() == "multipart"
            and not isinstance(child.get_payload(), list)
            and child.get_boundary() == self.boundary
        )

    def _chunk(self, index: int) -> bytes:
        marks = self.marks
        begin = marks[index].end
        if index + 1 >= len(marks):
            return self.body[begin:]
        chunk = self.body[begin : marks[index + 1].start]
        # The line end before a delimiter belongs to the delimiter (RFC 2046 §5.1.1).
        if chunk.endswith(b"\r\n"):
            return chunk[:-2]
        if chunk.endswith(b"\n"):
            return chunk[:-1]
        return chunk


def _child(chunk: bytes, *, depth: int, digest: bool) -> Message:
    if chunk.startswith((b"\r\n", b"\n")):
        # RFC 2046 §5.1.1: a part without headers starts with its empty line.
        header, body = b"", chunk.split(b"\n", 1)[1]
    else:
        header, body = split_raw(chunk)
    return _entity(header, body, depth=depth, digest=digest)


def _delimiters(body: bytes, delimiter: bytes) -> list[_Mark]:
    """Every delimiter line of the body, in order."""
    marks: list[_Mark] = []
    size = len(delimiter)
    position = 0
    while True:
        index = body.find(delimiter, position)
        if index < 0:
            return marks
        position = index + size
        if index and body[index - 1] != 0x0A:
            continue  # not at the start of a line
        after = index + size
        closing = body.startswith(b"--", after)
        line_end = body.find(b"\n", after)
        rest = body[after + 2 if closing else after : line_end if line_end >= 0 else len(body)]
        if rest.strip(b" \t\r"):
            continue  # a longer boundary that starts with this one
        marks.append(_Mark(index, line_end + 1 if line_end >= 0 else len(body), closing))
