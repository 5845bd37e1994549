"""The one MIME reader on the edge cases of issue 18: the list's summary
(posta.sync.parsing.summarize_body) and the reader (posta.mail.sanitize) agree."""

from __future__ import annotations

import pytest

from posta.mail import sanitize
from posta.mail.identity import parse_envelope
from posta.mailproto.mime.parse import parse_message
from posta.sync.parsing import summarize_body
from tests.mime_cases import CASES, Case


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_list_and_reader_read_the_same_message(case: Case) -> None:
    summary = summarize_body(case.raw)
    readable = sanitize.read_message(case.raw)
    assert summary.snippet.startswith(case.snippet)
    assert summary.has_attachments is case.has_attachments
    assert bool(readable.downloads) is summary.has_attachments
    assert [a.filename for a in readable.downloads] == list(case.filenames)
    shown = readable.text + "\n" + readable.html
    for text in case.body:
        assert text in shown
    for text in case.not_body:
        assert text not in shown
    # The list's header fields (the sync's envelope) and the reader's.
    env = parse_envelope(case.raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n")
    assert env.subject == readable.subject == case.subject
    assert env.from_[0] == readable.from_[0] == case.from_
    assert env.date is not None and env.date.year == case.year
    assert readable.date == env.date


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_listed_part_can_be_downloaded(case: Case) -> None:
    readable = sanitize.read_message(case.raw)
    for att in readable.attachments:
        found = sanitize.get_part(case.raw, att.part_id)
        assert found is not None
        assert found[0].filename == att.filename
        assert found[1]
    if case.filenames and case.filenames[0].endswith(".pdf"):
        found = sanitize.get_part(case.raw, readable.downloads[0].part_id)
        assert found is not None and found[1] == b"%PDF-1.4 case"


def test_digest_members_are_messages_numbered_as_imap_does() -> None:
    parsed = parse_message(CASES[5].raw)
    assert [(a.part_id, a.is_message) for a in parsed.attachments] == [("1", True), ("2", True)]


def test_a_date_far_in_the_future_falls_back() -> None:
    env = parse_envelope(b"Date: Mon, 02 Mar 2999 10:00:00 +0100\r\n\r\n")
    assert env.date is None


def test_a_folded_line_without_white_space_continues_its_field() -> None:
    # RFC 5322 §4.5: obsolete folding; the line is the subject's, not the body's.
    raw = b"Subject: folded without\r\nwhite space\r\nFrom : a@example.test\r\n\r\nBody.\r\n"
    readable = sanitize.read_message(raw)
    assert readable.subject == "folded without white space"
    assert readable.from_ == [("", "a@example.test")]
    assert readable.text.strip() == "Body."


def test_an_image_named_by_content_id_without_disposition_is_inline() -> None:
    raw = (
        b"Subject: related\r\nContent-Type: multipart/related; boundary=r\r\n\r\n"
        b'--r\r\nContent-Type: text/html\r\n\r\n<p>Logo <img src="cid:logo@x"></p>\r\n'
        b"--r\r\nContent-Type: image/png\r\nContent-ID: <logo@x>\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--r--\r\n"
    )
    summary = summarize_body(raw)
    readable = sanitize.read_message(raw)
    assert readable.attachments[0].inline
    assert readable.downloads == []
    assert summary.has_attachments is False
    assert summary.snippet == "Logo"
