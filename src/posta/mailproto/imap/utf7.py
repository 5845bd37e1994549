"""Modified UTF-7 for IMAP mailbox names (RFC 3501 §5.1.3).

Printable US-ASCII except "&" stands for itself; "&" is written "&-"; any other run
of characters is encoded as UTF-16BE, then base64 with "," in place of "/", without
padding, between "&" and "-".
"""

from __future__ import annotations

import base64


def _is_direct(char: str) -> bool:
    return 0x20 <= ord(char) <= 0x7E and char != "&"


def _encode_run(run: str) -> str:
    data = base64.b64encode(run.encode("utf-16-be")).decode("ascii")
    return "&" + data.rstrip("=").replace("/", ",") + "-"


def encode(name: str) -> str:
    """Encode a mailbox name (any Unicode text) into modified UTF-7."""
    out: list[str] = []
    run: list[str] = []
    for char in name:
        if _is_direct(char):
            if run:
                out.append(_encode_run("".join(run)))
                run = []
            out.append(char)
        elif char == "&":
            if run:
                out.append(_encode_run("".join(run)))
                run = []
            out.append("&-")
        else:
            run.append(char)
    if run:
        out.append(_encode_run("".join(run)))
    return "".join(out)


def _decode_run(data: str) -> str:
    raw = data.replace(",", "/")
    raw += "=" * (-len(raw) % 4)
    # surrogatepass: a lone surrogate is not valid UTF-16, but servers have stored such
    # names; keeping it lets us encode the name back to the same bytes for SELECT.
    return base64.b64decode(raw, validate=False).decode("utf-16-be", "surrogatepass")


def decode(name: str | bytes) -> str:
    """Decode a modified UTF-7 mailbox name. A malformed shift sequence (no closing
    "-", bad base64) is kept literally rather than failing: names come from servers."""
    text = name.decode("latin-1") if isinstance(name, bytes) else name
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "&":
            out.append(char)
            i += 1
            continue
        end = text.find("-", i + 1)
        if end == -1:
            out.append(text[i:])
            break
        if end == i + 1:
            out.append("&")
        else:
            try:
                out.append(_decode_run(text[i + 1 : end]))
            except (ValueError, UnicodeDecodeError):
                out.append(text[i : end + 1])
        i = end + 1
    return "".join(out)
