"""Shapes of real mail that the public corpora (tests/corpus) showed the reader
losing: each is written here small, with a harmless payload."""

from __future__ import annotations

from django.utils import translation

from posta.mail import sanitize
from posta.mailproto.mime.parse import parse_message
from posta.web.templatetags.posta_words import file_kind

_HEAD = b"From: a@example.test\r\nSubject: s\r\nMIME-Version: 1.0\r\n"


def test_a_nested_multipart_with_its_parents_boundary_loses_no_part() -> None:
    # Outlook Express for Mac and some iPhone gateways reuse the boundary: the
    # alternative's close is not the end of the mixed part (CPython msg_15).
    raw = _HEAD + (
        b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
        b'--B\r\nContent-Type: multipart/alternative; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain\r\n\r\nPlain words.\r\n"
        b"--B\r\nContent-Type: text/html\r\n\r\n<p>HTML words.</p>\r\n"
        b"--B--\r\n\r\n"
        b"--B\r\nContent-Type: image/gif; name=pic.gif\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nR0lGODlh\r\n"
        b"--B--\r\n"
    )
    parsed = parse_message(raw)
    assert [(a.part_id, a.filename) for a in parsed.attachments] == [("2", "pic.gif")]
    assert "Plain words." in parsed.text
    assert "HTML words." in parsed.html
    assert parsed.defects == []
    found = sanitize.get_part(raw, "2")
    assert found is not None and found[1] == b"GIF89a"


def test_several_nested_multiparts_with_one_boundary_keep_every_part() -> None:
    inner = (
        b'--b1\r\nContent-Type: multipart/alternative; boundary="b1"\r\n\r\n'
        b"--b1\r\nContent-Type: application/octet-stream; name=%s\r\n\r\nx\r\n"
        b"--b1\r\nContent-Type: application/octet-stream; name=%s\r\n\r\ny\r\n"
        b"--b1--\r\n\r\n"
    )
    raw = _HEAD + (
        b'Content-Type: multipart/mixed; boundary="b0"\r\n\r\n'
        b'--b0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        + inner % (b"p1", b"p2")
        + inner % (b"p3", b"p4")
        + b"--b1--\r\n\r\n--b0\r\nContent-Type: text/plain\r\n\r\nSignature.\r\n--b0--\r\n"
    )
    parsed = parse_message(raw)
    assert [(a.part_id, a.filename) for a in parsed.attachments] == [
        ("1.1.1", "p1"),
        ("1.1.2", "p2"),
        ("1.2.1", "p3"),
        ("1.2.2", "p4"),
    ]
    assert "Signature." in parsed.text


def test_a_lone_part_whose_closing_names_another_boundary_is_read() -> None:
    # Bulk mailers: the declared boundary, the part's delimiter and the closing
    # one all differ; the part is still there (mail-parser's mail_malformed_3).
    raw = _HEAD + (
        b'Content-Type: multipart/alternative; boundary="--=_declared"\r\n\r\n'
        b"----=_used\r\nContent-Type: text/html;\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"PHA+SGVsbG8sIHdvcmxkLjwvcD4=\r\n"
        b"----=_other--\r\n"
    )
    parsed = parse_message(raw)
    assert parsed.html.startswith("<p>Hello, world.</p>")
    assert "Content-Type" not in parsed.text and "PHA+" not in parsed.text


def test_a_plain_body_with_dashes_is_not_split() -> None:
    raw = _HEAD + b"Content-Type: multipart/mixed\r\n\r\n-- \r\nAnna\r\n--\r\nBye\r\n"
    parsed = parse_message(raw)
    assert "Anna" in parsed.text and "Bye" in parsed.text
    assert parsed.attachments == []


def test_an_unencoded_utf8_or_latin1_file_name_is_decoded() -> None:
    # RFC 6532 UTF-8, or an older mailer's own charset, in a quoted parameter
    # (mail-parser's mail_test_1: "ФНС_РФ558.zip" shown as U+FFFD).
    raw = _HEAD + (
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nHi\r\n"
        b'--b\r\nContent-Type: application/octet-stream; name="\xd0\xa4\xd0\x9d\xd0\xa1.zip"\r\n'
        b'Content-Disposition: attachment; filename="\xd0\xa4\xd0\x9d\xd0\xa1.zip"\r\n\r\nx\r\n'
        b'--b\r\nContent-Type: text/plain; name="caf\xe9.txt"\r\n'
        b"Content-Disposition: attachment\r\n\r\ny\r\n"
        b"--b--\r\n"
    )
    parsed = parse_message(raw)
    assert [a.filename for a in parsed.attachments] == ["ФНС.zip", "café.txt"]
    found = sanitize.get_part(raw, "2")
    assert found is not None and found[0].filename == "ФНС.zip"


def test_an_eight_bit_boundary_still_matches_its_delimiters() -> None:
    raw = _HEAD + (
        b'Content-Type: multipart/mixed; boundary="\xe9t\xe9"\r\n\r\n'
        b"--\xe9t\xe9\r\nContent-Type: text/plain\r\n\r\nBody.\r\n"
        b"--\xe9t\xe9\r\nContent-Type: application/pdf; name=a.pdf\r\n\r\n%PDF\r\n"
        b"--\xe9t\xe9--\r\n"
    )
    parsed = parse_message(raw)
    assert parsed.text.strip() == "Body."
    assert [a.filename for a in parsed.attachments] == ["a.pdf"]


def test_apple_mails_html_pieces_around_a_file_are_all_shown() -> None:
    raw = _HEAD + (
        b'Content-Type: multipart/alternative; boundary="A"\r\n\r\n'
        b"--A\r\nContent-Type: text/plain\r\n\r\nBefore.\r\n\r\nAfter.\r\n"
        b'--A\r\nContent-Type: multipart/mixed; boundary="M"\r\n\r\n'
        b"--M\r\nContent-Type: text/html\r\n\r\n<div>Before.</div>\r\n"
        b"--M\r\nContent-Disposition: inline; filename=notes.pdf\r\n"
        b"Content-Type: application/pdf; name=notes.pdf\r\n\r\n%PDF\r\n"
        b"--M\r\nContent-Type: text/html\r\n\r\n<div>After.</div>\r\n--M--\r\n"
        b"--A--\r\n"
    )
    parsed = parse_message(raw)
    assert "Before." in parsed.html and "After." in parsed.html
    assert [a.filename for a in parsed.downloads] == ["notes.pdf"]


def test_html_alternatives_are_not_joined() -> None:
    raw = _HEAD + (
        b'Content-Type: multipart/alternative; boundary="A"\r\n\r\n'
        b"--A\r\nContent-Type: text/html\r\n\r\n<p>First.</p>\r\n"
        b"--A\r\nContent-Type: text/html\r\n\r\n<p>Second.</p>\r\n--A--\r\n"
    )
    assert "Second." not in parse_message(raw).html


def test_an_html_body_without_charset_is_read_in_its_meta_charset() -> None:
    raw = _HEAD + (
        b"Content-Type: text/html\r\n\r\n"
        b'<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1251">'
        b"</head><body>\xcf\xf0\xe8\xe2\xe5\xf2</body></html>\r\n"
    )
    assert "Привет" in parse_message(raw).html
    declared = raw.replace(
        b"Content-Type: text/html\r\n", b"Content-Type: text/html; charset=koi8-r\r\n"
    )
    assert "Привет" not in parse_message(declared).html  # the header's label wins


def test_winmail_dat_and_pgp_parts_are_named_in_words() -> None:
    assert file_kind("application/ms-tnef") == "Outlook package (winmail.dat)"
    assert file_kind("application/pgp-encrypted") == "Encryption details"
    with translation.override("it"):
        assert file_kind("application/ms-tnef") == "Pacchetto Outlook (winmail.dat)"


def test_a_forwarded_message_without_a_file_name_is_named_by_its_subject() -> None:
    raw = _HEAD + (
        b'Content-Type: multipart/mixed; boundary="f"\r\n\r\n'
        b"--f\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n"
        b"--f\r\nContent-Type: message/rfc822\r\n\r\n"
        b"From: c@example.test\r\nSubject: =?utf-8?Q?Contratto_firmato_=E2=9C=93?=\r\n"
        b"\r\nSigned.\r\n"
        b"--f\r\nContent-Type: message/rfc822\r\n\r\nFrom: c@example.test\r\n\r\nNo subject.\r\n"
        b'--f\r\nContent-Type: message/rfc822; name="kept.eml"\r\n\r\n'
        b"From: c@example.test\r\nSubject: other\r\n\r\nNamed.\r\n"
        b"--f--\r\n"
    )
    names = [a.filename for a in parse_message(raw).attachments]
    assert names == ["Contratto firmato ✓.eml", "", "kept.eml"]
    found = sanitize.get_part(raw, "2")
    assert found is not None and found[0].filename == "Contratto firmato ✓.eml"


def test_pgp_mimes_control_part_is_not_listed() -> None:
    raw = _HEAD + (
        b'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="e"'
        b"\r\n\r\n--e\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n"
        b'--e\r\nContent-Type: application/octet-stream; name="encrypted.asc"\r\n\r\n'
        b"-----BEGIN PGP MESSAGE-----\r\n--e--\r\n"
    )
    parsed = parse_message(raw)
    assert [(a.part_id, a.filename) for a in parsed.attachments] == [("2", "encrypted.asc")]


def test_a_part_sent_as_mere_bytes_is_named_from_its_file_name() -> None:
    assert file_kind("application/octet-stream", "Fattura 12.PDF") == "PDF document"
    assert file_kind("application/octet-stream", "winmail.dat") == "Outlook package (winmail.dat)"
    assert file_kind("application/octet-stream", "x.unknownext") == "File"
    assert file_kind("application/octet-stream") == "File"
    # A declared type is trusted: only mere bytes are guessed at.
    assert file_kind("image/png", "photo.pdf") == "PNG image"
