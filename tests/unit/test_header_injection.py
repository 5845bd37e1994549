"""Header injection at the MIME layer: every header Posta writes × every line break
× typed literally, or hidden in a Q or B encoded word (RFC 2047).

The interpreter's `email` package decodes encoded words in strings it is given for
headers (CVE-2024-6923 on 3.11.7); these tests hold whatever it does, because Posta
writes the wire form itself (posta.mailproto.mime.fields) and checks the result.
"""

from __future__ import annotations

import base64
import email
import email.policy
import re
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest
from hypothesis import given
from hypothesis import strategies as st

from posta.mailproto.mime import compose, fields
from posta.mailproto.mime.headers import parse_envelope

WHEN = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)

BREAKS = {
    "crlf": "\r\n",
    "lf": "\n",
    "cr": "\r",
    "vt": "\x0b",
    "ff": "\x0c",
    "nel": "\x85",
    "u2028": "\u2028",
    "u2029": "\u2029",
    "nul": "\0",
}


def q_word(text: str) -> str:
    data = "".join(
        ch if ch.isalnum() and ch.isascii() else "".join(f"={b:02X}" for b in ch.encode())
        for ch in text
    )
    return f"=?utf-8?q?{data}?="


def b_word(text: str) -> str:
    return f"=?utf-8?b?{base64.b64encode(text.encode()).decode()}?="


ENCODINGS: dict[str, Callable[[str], str]] = {
    "literal": lambda text: text,
    "q": q_word,
    "b": b_word,
}


def box(name: str, address: str = "bob@example.test") -> compose.Mailbox:
    return compose.Mailbox(name=name, address=address)


def composition(**overrides: object) -> compose.Composition:
    base: dict[str, object] = {
        "sender": box("Anna Rossi", "anna@example.test"),
        "to": [box("Bob", "bob@example.test")],
        "subject": "Hello",
        "text": "Hello Bob",
        "html": "<p>Hello <img src='cid:logo@example.test'></p>",
        "message_id": "m1@example.test",
        "date": WHEN,
    }
    base.update(overrides)
    return compose.Composition(**base)  # type: ignore[arg-type]


# Every header value Posta writes, as the field whose name the error carries and a
# way to put `value` into it.
FIELDS: dict[str, tuple[str, Callable[[str], dict[str, object]]]] = {
    "subject": ("Subject", lambda v: {"subject": v}),
    "from name": ("From", lambda v: {"sender": box(v, "anna@example.test")}),
    "to name": ("To", lambda v: {"to": [box(v)]}),
    "cc name": ("Cc", lambda v: {"cc": [box(v, "carla@example.test")]}),
    "draft bcc name": ("Bcc", lambda v: {"draft_bcc": [box(v, "dario@example.test")]}),
    "reply-to name": ("Reply-To", lambda v: {"reply_to": [box(v, "desk@example.test")]}),
    "to address": ("To", lambda v: {"to": [box("", f"a{v}b@example.test")]}),
    "message-id": ("Message-ID", lambda v: {"message_id": f"a{v}b@example.test"}),
    "in-reply-to": ("In-Reply-To", lambda v: {"in_reply_to": f"a{v}b@example.test"}),
    "references": ("References", lambda v: {"references": ["r@x.test", f"a{v}b@x.test"]}),
    "attachment name": (
        "filename",
        lambda v: {"attachments": [compose.FilePart(f"{v}.pdf", "application/pdf", b"%PDF")]},
    ),
    "inline image name": (
        "filename",
        lambda v: {"inline": [compose.FilePart(f"{v}.png", "image/png", b"PNG", "logo@x.test")]},
    ),
    "content-id": (
        "Content-ID",
        lambda v: {"inline": [compose.FilePart("logo.png", "image/png", b"PNG", f"a{v}@x.test")]},
    ),
    "forwarded name": (
        "filename",
        lambda v: {"forwarded": [b"Subject: old\r\n\r\nold\r\n"], "forwarded_names": [v]},
    ),
    "extra header": ("X-Posta-Draft-Id", lambda v: {"extra_headers": [("X-Posta-Draft-Id", v)]}),
}
INJECTION = "Hi{br}X-Injected: 1"


def _build_and_serialize(c: compose.Composition) -> bytes:
    return compose.serialize(compose.build(c))


@pytest.mark.parametrize("brk", BREAKS.values(), ids=BREAKS.keys())
@pytest.mark.parametrize("encoding", ENCODINGS.keys())
@pytest.mark.parametrize("where", FIELDS.keys())
def test_a_line_break_is_refused_in_every_header(where: str, encoding: str, brk: str) -> None:
    header, put = FIELDS[where]
    value = ENCODINGS[encoding](INJECTION.format(br=brk))
    with pytest.raises(compose.ComposeError) as caught:
        _build_and_serialize(composition(**put(value)))
    error = caught.value
    if isinstance(error, compose.InvalidAddress):
        assert where == "to address"  # refused by the address check itself
        assert error.reason == "newline"
        return
    assert isinstance(error, compose.HeaderInjection)
    assert error.field == header
    if encoding != "literal" and where not in ("message-id", "in-reply-to", "references",
                                               "content-id"):
        assert error.encoded  # the break was seen inside the encoded word


@pytest.mark.parametrize("where", ["subject", "to name", "attachment name"])
def test_charset_that_spells_a_break_in_ascii_is_refused(where: str) -> None:
    _header, put = FIELDS[where]
    # UTF-7 writes CR LF as "+AA0ACg-": ASCII bytes that only the charset makes a break.
    with pytest.raises(compose.HeaderInjection):
        _build_and_serialize(composition(**put("=?utf-7?q?Hi+AA0ACg-X-Injected:_1?=")))


@pytest.mark.parametrize(
    "word",
    ["=?iso-8859-1?q?Hi=85X-Injected:_1?=", "=?x-unknown?q?Hi=85X-Injected:_1?=",
     "=?utf-16-le?b?KCA=?="],
    ids=["latin-1 nel", "unknown charset nel", "utf-16 u2028"],
)
def test_breaks_only_a_charset_makes_are_refused(word: str) -> None:
    with pytest.raises(compose.HeaderInjection):
        _build_and_serialize(composition(subject=word))


def test_a_break_encoded_twice_is_refused() -> None:
    inner = q_word("Hi\r\nX-Injected: 1")
    with pytest.raises(compose.HeaderInjection):
        _build_and_serialize(composition(subject=q_word(inner)))


def _header_names(data: bytes) -> list[str]:
    block = data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    return [m.group(1).lower() for m in re.finditer(r"^([!-9;-~]+):", block, re.M)]


LOOKALIKES = {
    "q": "=?utf-8?q?caf=C3=A9?=",
    "b": "=?utf-8?b?Y2Fmw6k=?=",
    "mixed": "Re: =?iso-8859-1?q?caf=E9?= perché =?utf-8?b?SGk=?=",
}


@pytest.mark.parametrize("typed", LOOKALIKES.values(), ids=LOOKALIKES.keys())
def test_text_that_looks_encoded_is_sent_as_typed(typed: str) -> None:
    c = composition(
        subject=typed,
        to=[box(typed)],
        cc=[box(typed, "carla@example.test")],
        attachments=[compose.FilePart(f"{typed}.pdf", "application/pdf", b"%PDF")],
    )
    data = _build_and_serialize(c)
    assert _header_names(data) == [
        "from", "to", "cc", "subject", "date", "message-id", "mime-version", "content-type",
    ]
    # Both readers, the stdlib's and Posta's own, see exactly the typed characters.
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    assert str(msg["Subject"]) == typed
    if len(typed) < 30:
        # A longer name takes two encoded words, which Python's phrase parser joins
        # with a space, against RFC 2047 §6.2; Posta's own reader is checked below.
        assert msg["To"].addresses[0].display_name == typed
        assert msg["Cc"].addresses[0].display_name == typed
    assert [p.get_filename() for p in msg.iter_attachments()] == [f"{typed}.pdf"]
    envelope = parse_envelope(data)
    assert envelope.subject == typed
    assert envelope.to[0].name == typed
    assert envelope.cc[0].name == typed
    assert b"X-Injected" not in data


def test_the_final_guard_refuses_a_header_block_with_an_extra_field() -> None:
    msg = compose.build(composition())
    # A value that bypassed the writer: the guard reads the bytes, not the model.
    del msg["Subject"]
    msg["Subject"] = fields.Written("Hi\r\nX-Injected: 1")
    with pytest.raises(compose.HeaderInjection) as caught:
        compose.serialize(msg)
    assert caught.value.field == "x-injected"


@pytest.mark.parametrize("brk", ["\u2028", "\x85", "\r", "\x0b"])
def test_the_final_guard_refuses_other_breaks_in_a_part_header(brk: str) -> None:
    msg = compose.build(
        composition(attachments=[compose.FilePart("a.pdf", "application/pdf", b"%PDF")])
    )
    part = list(msg.iter_attachments())[0]
    del part["Content-Disposition"]
    # The email package splits a stored value at every str.splitlines() boundary.
    part["Content-Disposition"] = fields.Written(f"attachment;{brk}X-Injected: 1")
    with pytest.raises(compose.HeaderInjection) as caught:
        compose.serialize(msg, utf8=True)
    assert caught.value.field == "x-injected"


def test_headers_can_only_be_set_through_the_writer() -> None:
    msg = compose.build(composition())
    with pytest.raises(compose.HeaderInjection):
        msg["X-Other"] = "value"
    del msg["Subject"]
    with pytest.raises(compose.HeaderInjection):
        msg["Subject"] = "=?utf-8?q?Hi=0D=0AX-Injected:_1?="


def test_forwarded_message_is_attached_byte_for_byte() -> None:
    # Its header block is the original's; never decoded and written again.
    original = b"From: a@example.test\r\nSubject: =?utf-8?q?x=0D=0AX-Evil:_1?=\r\n\r\nbody\r\n"
    data = _build_and_serialize(composition(forwarded=[original], forwarded_names=["a.eml"]))
    assert original in data
    assert b"\r\nX-Evil" not in data


SAFE_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters=fields.FORBIDDEN),
    max_size=300,
)


@given(SAFE_TEXT)
def test_any_other_subject_arrives_exactly(subject: str) -> None:
    data = _build_and_serialize(composition(subject=subject))
    names = _header_names(data)
    assert names == [
        "from", "to", "subject", "date", "message-id", "mime-version", "content-type",
    ]
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        assert len(line) <= 998
    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    # Unfolded and decoded by the rules of RFC 5322 §2.2.3 and RFC 2047 §6.2.
    raw = "".join(re.split(r"\r\n(?=[ \t])", msg["Subject"]))
    decoded = re.sub(r"(\?=)[ \t]+(=\?)", r"\1\2", raw)
    # Readers drop the white space that opens a field body (RFC 5322 §2.2.3 FWS).
    assert compose_decode(decoded).strip(" \t") == subject.strip(" \t")


def compose_decode(value: str) -> str:
    """Strict RFC 2047 decoding of what Posta wrote: encoded words only where it
    encoded, UTF-8 Q."""
    if not value.startswith("=?utf-8?q?"):
        return value
    out = b""
    for word in re.findall(r"=\?utf-8\?q\?([^?]*)\?=", value):
        out += re.sub(
            rb"=([0-9A-F]{2})", lambda m: bytes([int(m.group(1), 16)]),
            word.replace("_", " ").encode("ascii"),
        )
    return out.decode("utf-8")


@given(SAFE_TEXT.filter(lambda s: s == s.strip() and "  " not in s))
def test_any_other_display_name_arrives_exactly(name: str) -> None:
    data = _build_and_serialize(composition(to=[box(name)]))
    assert _header_names(data).count("to") == 1
    envelope = parse_envelope(data)
    assert envelope.to[0].email == "bob@example.test"
    assert envelope.to[0].name == name or (not name and envelope.to[0].name == "")
