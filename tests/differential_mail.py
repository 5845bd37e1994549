"""Hypothesis strategies for the filter differential test: hostile rules and the
messages they look at (tests/integration/test_filters_differential.py).

Values of rules are drawn from the same words the messages are made of (in other
cases, cut, with wildcards), so that rules match often enough to say something.
"""

from __future__ import annotations

import base64
import quopri
from email.header import Header

from hypothesis import strategies as st

from posta.mailproto.filtering.spec import Action, Condition, FilterRule, operators_for
from tests.differential_harness import CASE_FIELD

WORDS = [
    "fattura", "Invoice", "URGENT", "ciao", "Re:", "order 42", "a", "",
    'say "hi"', "back\\slash", "star*", "what?", "${x}", '"; discard;', "100%",
    "=?utf-8?q?not_encoded?=", "Città", "CITTÀ", "perché", "straße", "STRASSE",
    "Ωμέγα", "ΣΊΣΥΦΟΣ", "İstanbul", "ık", "\u212a", "\u017fale", "\u01c5", "ﬁne", "日本語",
    "📧 mail",
]
ADDRESSES = [
    "mario@acme.it", "Mario.Rossi@ACME.it", "sales@example.test", "bob@example.test",
    "x*y@example.test", "q?@example.test", "team@lists.example.test",
]
NAMES = ["", "Mario Rossi", "José Pérez", 'Quote "Q" Man', "Σοφία", "Rossi, Mario"]
HEADER_NAMES = ["List-Id", "X-Priority", "X-Tag", "Reply-To", "Comments", "X-Missing"]
CHARSETS = ["utf-8", "iso-8859-1", "windows-1252", "iso-8859-7", "koi8-r", "iso-8859-15"]
FOLDERS = ["Clienti", "Clienti/Acme", "Copie", "Città"]

words = st.sampled_from(WORDS)


# ------------------------------------------------------------------ headers


def _encodable(text: str, charset: str) -> bool:
    try:
        text.encode(charset)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


@st.composite
def header_text(draw: st.DrawFn, text: str) -> bytes:
    """`text` as a header value: plain (8-bit when not ASCII), or encoded words
    (B or Q, any charset that holds it), folded or not."""
    charsets = [c for c in CHARSETS if _encodable(text, c)]
    style = draw(st.sampled_from(["plain", "encoded", "folded"] if charsets else ["plain"]))
    if style == "plain" or not text:
        return text.encode()
    charset = draw(st.sampled_from(charsets))
    if style == "encoded":
        kind = draw(st.sampled_from("bq"))
        data = text.encode(charset)
        if kind == "b":
            return b"=?" + charset.encode() + b"?B?" + base64.b64encode(data) + b"?="
        q = quopri.encodestring(data, header=True).replace(b"=\n", b"")
        q = q.replace(b"?", b"=3F").replace(b'"', b"=22")
        return b"=?" + charset.encode() + b"?Q?" + q + b"?="
    return Header(text, charset, maxlinelen=30).encode("\r\n ").encode("ascii")


@st.composite
def mailbox_text(draw: st.DrawFn) -> bytes:
    address = draw(st.sampled_from(ADDRESSES))
    name = draw(st.sampled_from(NAMES))
    if not name:
        return address.encode()
    shown = draw(header_text(name))
    if shown == name.encode() and not name.isascii():
        return b'"' + shown + b'" <' + address.encode() + b">"
    if shown == name.encode() and any(c in name for c in ',"'):
        return b'"' + name.replace('"', '\\"').encode() + b'" <' + address.encode() + b">"
    return shown + b" <" + address.encode() + b">"


@st.composite
def address_list(draw: st.DrawFn) -> bytes:
    shape = draw(st.sampled_from(["one", "several", "group", "empty group"]))
    if shape == "empty group":
        return b"undisclosed-recipients:;"
    count = 1 if shape == "one" else draw(st.integers(2, 3))
    boxes = b", ".join(draw(mailbox_text()) for _ in range(count))
    return b"Team: " + boxes + b";" if shape == "group" else boxes


# --------------------------------------------------------------------- body


def _encode_body(text: str, charset: str, encoding: str) -> bytes:
    data = text.encode(charset)
    if encoding == "base64":
        return base64.encodebytes(data)
    if encoding == "quoted-printable":
        return quopri.encodestring(data)
    return data


@st.composite
def text_part(draw: st.DrawFn, subtype: str = "plain") -> bytes:
    text = " ".join(draw(st.lists(words, min_size=1, max_size=4))) + "\n"
    if subtype == "html":
        text = f"<html><body><p>{text}</p></body></html>\n"
    charset = draw(st.sampled_from([c for c in CHARSETS if _encodable(text, c)]))
    encoding = draw(st.sampled_from(["8bit", "base64", "quoted-printable"]))
    head = (
        f"Content-Type: text/{subtype}; charset={charset}\r\n"
        f"Content-Transfer-Encoding: {encoding}\r\n"
    ).encode()
    return head + b"\r\n" + _encode_body(text, charset, encoding)


ATTACHMENT_HEADS = [
    b'Content-Type: application/pdf\r\nContent-Disposition: attachment; filename="f.pdf"\r\n',
    b'Content-Type: application/pdf; name="f.pdf"\r\n',
    b"Content-Type: application/octet-stream\r\nContent-Disposition: attachment\r\n",
    b'Content-Type: image/png\r\nContent-Disposition: inline; filename="p.png"\r\n',
    b"Content-Type: text/plain\r\nContent-Disposition: ATTACHMENT\r\n",
]


@st.composite
def body(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """(the MIME header fields, the body) of a plain, alternative or mixed message."""
    shape = draw(st.sampled_from(["plain", "alternative", "mixed"]))
    if shape == "plain":
        part = draw(text_part())
        head, _, text = part.partition(b"\r\n\r\n")
        return head + b"\r\n", text
    boundary = b"=_b0und"
    parts = [draw(text_part())]
    if shape == "alternative":
        parts.append(draw(text_part("html")))
    else:
        for _ in range(draw(st.integers(0, 2))):
            head = draw(st.sampled_from(ATTACHMENT_HEADS))
            parts.append(head + b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n")
    data = b"".join(b"--" + boundary + b"\r\n" + p + b"\r\n" for p in parts)
    head = b"Content-Type: multipart/" + shape.encode() + b'; boundary="' + boundary + b'"\r\n'
    return head, b"This is MIME.\r\n" + data + b"--" + boundary + b"--\r\n"


# ------------------------------------------------------------------ message


@st.composite
def message(draw: st.DrawFn, case: str) -> bytes:
    """A whole message: From, To, Cc, Subject and extra fields each present,
    missing or repeated; its body padded to `pad` octets of filler."""
    lines = [f"{CASE_FIELD}: {case}".encode()]
    lines.append(b"From: " + draw(mailbox_text()))
    for _ in range(draw(st.sampled_from([0, 1, 1, 2]))):
        lines.append(b"To: " + draw(address_list()))
    for _ in range(draw(st.sampled_from([0, 0, 1, 2]))):
        lines.append(b"Cc: " + draw(address_list()))
    for _ in range(draw(st.sampled_from([0, 1, 1, 1, 2]))):
        subject = " ".join(draw(st.lists(words, min_size=1, max_size=3)))
        lines.append(b"Subject: " + draw(header_text(subject)))
    for name in draw(st.lists(st.sampled_from(HEADER_NAMES[:-1]), max_size=3)):
        if name == "List-Id":
            value = b"Developers <dev.lists.example.test>"
        else:
            value = draw(header_text(draw(words)))
        lines.append(name.encode() + b": " + value)
    lines.append(b"Date: Mon, 02 Mar 2026 10:00:00 +0100")
    lines.append(b"Message-ID: <" + case.encode() + b"@example.test>")
    lines.append(b"MIME-Version: 1.0")
    mime_head, text = draw(body())
    pad = draw(st.sampled_from([0, 0, 0, 2000, 4000]))
    filler = b"".join(b"x" * 75 + b"\r\n" for _ in range(pad // 77))
    return b"\r\n".join(lines) + b"\r\n" + mime_head + b"\r\n" + text + filler


# -------------------------------------------------------------------- rules


@st.composite
def value_for(draw: st.DrawFn, field: str, op: str) -> str:
    pool = ADDRESSES + WORDS if field in {"from", "to", "cc", "to_or_cc"} else WORDS
    word = draw(st.sampled_from(pool))
    shape = draw(st.sampled_from(["same", "upper", "lower", "cut", "empty"]))
    if shape == "upper":
        word = word.upper()
    elif shape == "lower":
        word = word.lower()
    elif shape == "cut" and len(word) > 2:
        start = draw(st.integers(0, len(word) - 2))
        word = word[start:draw(st.integers(start + 1, len(word)))]
    elif shape == "empty":
        word = ""
    if op == "matches":
        word = draw(st.sampled_from(["*{}*", "{}", "*{}", "{}*", "?{}*", "*{}?"])).format(word)
    return word


@st.composite
def condition(draw: st.DrawFn, *, sizes: tuple[int, ...]) -> Condition:
    field = draw(st.sampled_from(
        ["from", "to", "cc", "to_or_cc", "subject", "body", "header", "size", "attachment"]
    ))
    op = draw(st.sampled_from(operators_for(field)))
    if field == "size":
        return Condition(field, op, size=draw(st.sampled_from(sizes)))
    if field == "attachment":
        return Condition(field, op)
    header = draw(st.sampled_from(HEADER_NAMES)) if field == "header" else ""
    return Condition(field, op, draw(value_for(field, op)), header=header)  # type: ignore[arg-type]


@st.composite
def action(draw: st.DrawFn) -> Action:
    kind = draw(st.sampled_from(["seen", "flag", "copy", "move", "trash", "spam"]))
    if kind == "trash":
        return Action("trash", folder="Trash")
    if kind == "spam":
        return Action("spam", folder="Junk")
    if kind in {"copy", "move"}:
        return Action(kind, folder=draw(st.sampled_from(FOLDERS)))  # type: ignore[arg-type]
    return Action(kind)  # type: ignore[arg-type]


@st.composite
def rule(draw: st.DrawFn, *, sizes: tuple[int, ...]) -> FilterRule:
    return FilterRule(
        conditions=tuple(draw(st.lists(
            condition(sizes=sizes), min_size=draw(st.sampled_from([0, 1, 1, 1])), max_size=3
        ))),
        actions=tuple(draw(st.lists(action(), min_size=1, max_size=3, unique=True))),
        match_all=draw(st.booleans()),
        case_sensitive=draw(st.booleans()),
        stop=draw(st.booleans()),
    )
