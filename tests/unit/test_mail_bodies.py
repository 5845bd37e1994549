"""Body summaries of the mirror (fast MIME scan) agree with the full parser, and the
blob store's bulk writer is idempotent and repairs a file a crash left short."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from posta.mail import blobs
from posta.mailproto.mime.parse import parse_message
from posta.sync.parsing import summarize_body


def _plain() -> bytes:
    msg = EmailMessage()
    msg["From"] = "a@example.test"
    msg["Subject"] = "plain"
    msg.set_content("Ciao,\nla riunione è spostata.\n\n-- \nAnna\n")
    return msg.as_bytes()


def _alternative_with_attachment() -> bytes:
    msg = EmailMessage()
    msg["From"] = "a@example.test"
    msg["Subject"] = "alt"
    msg.set_content("Testo semplice qui.\n> quoted line\n")
    msg.add_alternative("<html><body><p>Testo <b>HTML</b></p></body></html>", subtype="html")
    msg.add_attachment(b"%PDF-1.4 fake", maintype="application", subtype="pdf",
                       filename="fattura n°1.pdf")
    return msg.as_bytes()


def _html_only_with_inline_image() -> bytes:
    msg = EmailMessage()
    msg["From"] = "a@example.test"
    msg["Subject"] = "html"
    msg.set_content("<p>Solo <i>HTML</i> &amp; immagine</p>", subtype="html")
    msg.add_related(b"\x89PNG fake", maintype="image", subtype="png", cid="<img1@x>")
    return msg.as_bytes()


def _forwarded() -> bytes:
    inner = EmailMessage()
    inner["Subject"] = "inner"
    inner.set_content("The forwarded text\n")
    msg = EmailMessage()
    msg["Subject"] = "fwd"
    msg.set_content("See below\n")
    msg.add_attachment(inner)
    return msg.as_bytes()


def _quoted_printable_latin1() -> bytes:
    return (
        b"From: a@example.test\r\nSubject: qp\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        b"Perch=E9 no? Citt=E0 di mare.\r\n"
    )


def _missing_closing_boundary() -> bytes:
    return (
        b"From: a@example.test\r\nSubject: broken\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="zz"\r\n\r\n'
        b"--zz\r\nContent-Type: text/plain\r\n\r\nBroken but readable\r\n"
    )


@pytest.mark.parametrize(
    "raw",
    [
        _plain(),
        _alternative_with_attachment(),
        _html_only_with_inline_image(),
        _forwarded(),
        _quoted_printable_latin1(),
        _missing_closing_boundary(),
        b"no header separator at all",
        b"Content-Type: multipart/mixed\r\n\r\nno boundary parameter\r\n",
    ],
    ids=["plain", "alt+pdf", "html+inline", "forwarded", "qp-latin1", "unclosed", "bare",
         "no-boundary"],
)
def test_summary_agrees_with_the_full_parser(raw: bytes) -> None:
    full = parse_message(raw)
    fast = summarize_body(raw)
    assert fast.snippet == full.snippet
    assert fast.has_attachments == full.has_attachments


def test_the_fast_path_finds_what_the_list_shows() -> None:
    summary = summarize_body(_alternative_with_attachment())
    assert summary.snippet == "Testo semplice qui."
    assert summary.has_attachments
    assert not summarize_body(_html_only_with_inline_image()).has_attachments
    assert summarize_body(_quoted_printable_latin1()).snippet == "Perché no? Città di mare."


def test_put_many_is_idempotent_and_repairs_a_short_file() -> None:
    first, second = b"one message\r\n" * 50, b"another\r\n"
    keys = blobs.put_many([first, second, first])
    assert keys[0] == keys[2] == blobs.key_for(first)
    assert blobs.get(keys[0]) == first
    assert blobs.get(keys[1]) == second
    # A crash mid-write left the file short: the next write of the same bytes
    # completes it (the key fixes the content, so the size tells).
    from django.core.files.storage import default_storage

    with open(default_storage.path(keys[0]), "r+b") as handle:
        handle.truncate(10)
    assert blobs.put_many([first]) == [keys[0]]
    assert blobs.get(keys[0]) == first
