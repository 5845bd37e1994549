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

from email import errors
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32

from posta.mailproto.mime.headers import repair_header_block

__all__ = ["body_of", "build_tree", "split_raw"]

_MAX_DEPTH = 20
_HEADERS = BytesHeaderParser(policy=compat32)
_BODY = "posta_body"


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


def build_tree(raw: bytes) -> Message:
    """The tree of `raw`, its header block repaired (headers.repair_header_block)."""
    header, body = split_raw(raw)
    return _entity(repair_header_block(header), body, depth=0, digest=False)


def _entity(header: bytes, body: bytes, *, depth: int, digest: bool) -> Message:
    part = _HEADERS.parsebytes(header)
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
    pieces = _split(body, b"--" + boundary.encode("utf-8", "surrogateescape"))
    if pieces is None:
        part.defects.append(errors.StartBoundaryNotFoundDefect())
        return False
    children, closed = pieces
    if not closed:
        part.defects.append(errors.CloseBoundaryNotFoundDefect())
    digest = part.get_content_subtype() == "digest"
    entities: list[Message | str] = []
    for child in children:
        if child.startswith((b"\r\n", b"\n")):
            # RFC 2046 §5.1.1: a part without headers starts with its empty line.
            child_header, child_body = b"", child.split(b"\n", 1)[1]
        else:
            child_header, child_body = split_raw(child)
        entities.append(_entity(child_header, child_body, depth=depth + 1, digest=digest))
    part.set_payload(entities)
    return True


def _split(body: bytes, delimiter: bytes) -> tuple[list[bytes], bool] | None:
    """The parts between delimiter lines, and whether the closing one was found."""
    starts: list[int] = []  # where each delimiter line starts
    ends: list[int] = []  # where the part after it starts
    closed = False
    size = len(delimiter)
    position = 0
    while True:
        index = body.find(delimiter, position)
        if index < 0:
            break
        position = index + size
        if index and body[index - 1] != 0x0A:
            continue  # not at the start of a line
        after = index + size
        closing = body.startswith(b"--", after)
        line_end = body.find(b"\n", after)
        rest = body[after + 2 if closing else after : line_end if line_end >= 0 else len(body)]
        if rest.strip(b" \t\r"):
            continue  # a longer boundary that starts with this one
        starts.append(index)
        ends.append(line_end + 1 if line_end >= 0 else len(body))
        if closing:
            closed = True
            break
    if not starts or (len(starts) == 1 and closed):
        return None
    parts: list[bytes] = []
    last = len(starts) if not closed else len(starts) - 1
    for number in range(last):
        begin = ends[number]
        stop = starts[number + 1] if number + 1 < len(starts) else len(body)
        chunk = body[begin:stop]
        # The line end before a delimiter belongs to the delimiter (RFC 2046 §5.1.1).
        if number + 1 < len(starts):
            if chunk.endswith(b"\r\n"):
                chunk = chunk[:-2]
            elif chunk.endswith(b"\n"):
                chunk = chunk[:-1]
        parts.append(chunk)
    return parts, closed
