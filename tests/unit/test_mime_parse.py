"""parse_message and get_part on ordinary and hostile messages."""

from __future__ import annotations

from email.message import EmailMessage

from hypothesis import given, settings
from hypothesis import strategies as st

from posta.mailproto.mime.parse import get_part, html_to_text, parse_message


def ordinary() -> bytes:
    message = EmailMessage()
    message["From"] = "Anna <a@x.it>"
    message["To"] = "b@y.it"
    message["Subject"] = "Preventivo è pronto"
    message["Message-ID"] = "<x1@x.it>"
    message.set_content("Ciao Mario,\necco il preventivo.\n> vecchio\n-- \nAnna")
    message.add_alternative("<p>Ciao <b>Mario</b></p>", subtype="html")
    message.add_attachment(
        b"%PDF-1.4", maintype="application", subtype="pdf", filename="preventivo è.pdf"
    )
    inner = EmailMessage()
    inner["Subject"] = "inoltrato"
    inner.set_content("corpo interno")
    message.add_attachment(inner)
    return message.as_bytes()


def test_ordinary_message() -> None:
    raw = ordinary()
    parsed = parse_message(raw)
    assert parsed.envelope.subject == "Preventivo è pronto"
    assert parsed.text.startswith("Ciao Mario,")
    assert parsed.html.startswith("<p>Ciao")
    assert parsed.snippet == "Ciao Mario, ecco il preventivo."
    assert parsed.has_attachments
    pdf, forwarded = parsed.attachments
    assert (pdf.part_id, pdf.filename, pdf.content_type, pdf.size) == (
        "2", "preventivo è.pdf", "application/pdf", 8,
    )
    assert pdf.disposition == "attachment" and not pdf.is_message
    assert forwarded.part_id == "3" and forwarded.is_message
    assert get_part(raw, "2")[1] == b"%PDF-1.4"
    assert b"corpo interno" in get_part(raw, "3")[1]
    assert get_part(raw, "3.1")[1].strip() == b"corpo interno"
    assert get_part(raw, "1.1")[1].startswith(b"Ciao Mario")
    headers, _ = get_part(raw, "2")
    assert ("Content-Type", "application/pdf") in headers


def test_get_part_unknown() -> None:
    raw = ordinary()
    for part_id in ("9", "1.9", "x", "2.1.1"):
        try:
            get_part(raw, part_id)
        except KeyError:
            continue
        raise AssertionError(part_id)


def test_missing_boundary_keeps_body() -> None:
    parsed = parse_message(
        b"Content-Type: multipart/mixed\r\nSubject: x\r\n\r\nno boundary here\r\n"
    )
    assert parsed.text.strip() == "no boundary here"
    assert "NoBoundaryInMultipartDefect" in parsed.defects


def test_unclosed_boundary_and_charsets() -> None:
    parsed = parse_message(
        b"Content-Type: multipart/mixed; boundary=zz\r\n\r\n"
        b"--zz\r\nContent-Type: text/plain; charset=x-unknown\r\n\r\ncaf\xe9\r\n"
        b"--zz\r\nContent-Type: text/plain; charset=utf8\r\n\r\ncaf\xc3\xa9\r\n"
        b"--zz\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nna\xc3\xafve\r\n"
    )
    assert parsed.text.split() == ["café", "café", "naïve"]
    assert "CloseBoundaryNotFoundDefect" in parsed.defects


def test_html_only_gives_text_without_quotes() -> None:
    parsed = parse_message(
        b"Subject: \xe8 bello\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        b"<html><head><style>p{}</style><script>x()</script></head><body>"
        b"<p>Hello &amp; <i>world</i></p><blockquote>old text</blockquote></body>"
    )
    assert parsed.envelope.subject == "è bello"
    assert parsed.text == "Hello & world\n> old text"
    assert parsed.snippet == "Hello & world"
    assert html_to_text("<p>unclosed <b>tags") == "unclosed tags"


def test_nested_rfc822_and_inline_image() -> None:
    raw = (
        b"Content-Type: multipart/related; boundary=r\r\n\r\n"
        b"--r\r\nContent-Type: text/html\r\n\r\n<img src=cid:logo>\r\n"
        b"--r\r\nContent-Type: image/png\r\nContent-ID: <logo>\r\n"
        b"Content-Disposition: inline\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0=\r\n"
        b"--r--\r\n"
    )
    parsed = parse_message(raw)
    (image,) = parsed.attachments
    assert (image.content_id, image.disposition) == ("logo", "inline")
    assert not parsed.has_attachments  # an inline image shown by the HTML body

    nested = (
        b"Content-Type: message/rfc822\r\n\r\n"
        b"Content-Type: message/rfc822\r\n\r\nSubject: deep\r\n\r\ninner\r\n"
    )
    parsed = parse_message(nested)
    assert parsed.attachments[0].is_message
    assert parsed.has_attachments


def test_encoded_and_rfc2231_filenames() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Disposition: attachment; filename*=utf-8''fattura%20n%C2%B01.pdf\r\n\r\nx\r\n"
        b"--b\r\nContent-Type: application/octet-stream; name=\"=?utf-8?q?caf=C3=A9.txt?=\"\r\n"
        b"\r\ny\r\n--b--\r\n"
    )
    names = [a.filename for a in parse_message(raw).attachments]
    assert names == ["fattura n°1.pdf", "café.txt"]


def test_huge_header_and_8bit_headers() -> None:
    raw = b"X-Big: " + b"a" * 400_000 + b"\r\nSubject: caf\xe9\r\n\r\nbody"
    parsed = parse_message(raw)
    assert parsed.envelope.subject == "caf\xe9"  # block decoded as cp1252: é
    assert parsed.text == "body"
    parsed = parse_message(b"From: J\xc3\xb6rg <j@x.de>\r\n\r\nbody")
    assert parsed.envelope.from_[0].name == "Jörg"


def test_empty_and_garbage() -> None:
    assert parse_message(b"").text == ""
    parsed = parse_message(b"\x00\xff garbage without header")
    assert "garbage" in parsed.text


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=3000))
def test_never_raises_on_bytes(data: bytes) -> None:
    parse_message(data)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                b"Content-Type: multipart/mixed; boundary=q\r\n",
                b"Content-Type: message/rfc822\r\n",
                b"Content-Type: text/plain; charset=\"bogus\"\r\n",
                b"Content-Transfer-Encoding: base64\r\n",
                b"Content-Transfer-Encoding: quoted-printable\r\n",
                b"Content-Disposition: attachment; filename*=x''%ZZ\r\n",
                b"\r\n",
                b"--q\r\n",
                b"--q--\r\n",
                b"=E9=\r\n",
                b"!!notbase64!!\r\n",
                b"\xff\xfe\r\n",
            ]
        ),
        max_size=30,
    )
)
def test_never_raises_on_mime_shapes(lines: list[bytes]) -> None:
    parse_message(b"".join(lines))
