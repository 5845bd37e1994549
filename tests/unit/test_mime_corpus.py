"""Every message of the real-world corpus (tests/corpus) read as the reader and
the list read it: nothing raises, every part is listed and can be downloaded, the
header text decodes without replacement characters where its bytes decode, the
body passes the sanitizer, and the content hash ignores what a server may change."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage

import pytest

from posta.mail import sanitize
from posta.mail.identity import content_hash, header_block
from posta.mailproto.mime.parse import html_to_text, parse_message
from posta.sync.parsing import summarize_body
from tests.corpus_messages import CORPUS, MAIL_FOLDERS, MESSAGES, CorpusMessage

_IDS = [m.name for m in MESSAGES]
# Text decoded in the wrong 8-bit charset: UTF-8 read as Latin-1 or cp1252.
_MOJIBAKE = re.compile("Ã[\x80-\xbf]|â€|Â[\xa0-\xbf]")
_STDLIB_LOST = ("StartBoundaryNotFoundDefect", "NoBoundaryInMultipartDefect")


def test_every_file_of_the_corpus_has_its_expectations() -> None:
    files = {
        str(path.relative_to(CORPUS))
        for folder in MAIL_FOLDERS
        for path in (CORPUS / folder).iterdir()
        if path.name not in ("LICENSE", "LICENSE.txt", "NOTICE.txt")
    }
    assert files == {m.name for m in MESSAGES}
    assert len(MESSAGES) >= 90


@pytest.mark.parametrize("message", MESSAGES, ids=_IDS)
def test_the_reader_reads_what_the_message_holds(message: CorpusMessage) -> None:
    parsed = parse_message(message.raw)
    assert parsed.envelope.subject == message.subject
    assert (parsed.envelope.from_[0].email if parsed.envelope.from_ else "") == message.sender
    listed = tuple((a.part_id, a.content_type, a.filename) for a in parsed.attachments)
    assert listed == message.parts
    text = parsed.text if parsed.text.strip() else html_to_text(parsed.html)
    assert " ".join(text.split()).startswith(message.text)


@pytest.mark.parametrize("message", MESSAGES, ids=_IDS)
def test_no_part_that_email_finds_is_lost(message: CorpusMessage) -> None:
    """Python's `email` (policy.default) as a second reader: every named part it
    finds is listed, unless it lost the structure itself."""
    reference = email.message_from_bytes(message.raw, policy=email.policy.default)
    assert isinstance(reference, EmailMessage)
    defects = {type(d).__name__ for part in reference.walk() for d in part.defects}
    if defects & set(_STDLIB_LOST):
        return
    names = [a.filename for a in parse_message(message.raw).attachments]
    for name in _named_parts(reference):
        if "\ufffd" not in name:
            assert " ".join(name.split()) in names


def _named_parts(part: EmailMessage) -> list[str]:
    """The file names of the parts, not looking into forwarded messages (listed
    as one part each)."""
    if part.get_content_type() == "message/rfc822":
        name = part.get_filename()
        return [name] if name else []
    if part.is_multipart():
        return [name for child in part.iter_parts() for name in _named_parts(child)]  # type: ignore[arg-type]
    name = part.get_filename()
    return [name] if name else []


@pytest.mark.parametrize("message", MESSAGES, ids=_IDS)
def test_header_text_decodes_cleanly(message: CorpusMessage) -> None:
    readable = sanitize.read_message(message.raw)
    block = header_block(message.raw)
    shown = [readable.subject, *(name for name, _ in readable.from_ + readable.to)]
    for text in shown:
        if b"\xef\xbf\xbd" not in block:  # a replacement character the sender sent
            assert "\ufffd" not in text, text
        assert _MOJIBAKE.search(text) is None, text
    body = readable.text + readable.html
    if b"\xef\xbf\xbd" not in message.raw:
        assert _MOJIBAKE.search(body) is None


@pytest.mark.parametrize("message", MESSAGES, ids=_IDS)
def test_the_body_shown_passes_the_sanitizer(message: CorpusMessage) -> None:
    readable = sanitize.read_message(message.raw)
    images = sanitize.inline_images(message.raw, readable)
    if readable.html:
        safe = sanitize.sanitize_html(readable.html, images=images, proxy=None)
        page = sanitize.document(safe)
    else:
        page = sanitize.document(text_html=sanitize.text_to_html(readable.text))
    lowered = page.lower()
    assert "<script" not in lowered
    assert "javascript:" not in lowered
    assert re.search(r"<[^>]+\son[a-z]+\s*=", lowered) is None
    # RFC 2392: Content-IDs compare without case; each inline picture is there.
    shown = set(images)
    for att in readable.attachments:
        if att.inline and att.content_id and att.content_type in ("image/png", "image/gif"):
            assert att.content_id.lower() in shown


@pytest.mark.parametrize("message", MESSAGES, ids=_IDS)
def test_every_listed_part_can_be_downloaded(message: CorpusMessage) -> None:
    readable = sanitize.read_message(message.raw)
    for att in readable.attachments:
        found = sanitize.get_part(message.raw, att.part_id)
        assert found is not None, att.part_id
        assert found[0].filename == att.filename
        assert found[0].content_type == att.content_type


@pytest.mark.parametrize("message", MESSAGES, ids=_IDS)
def test_list_and_reader_agree(message: CorpusMessage) -> None:
    summary = summarize_body(message.raw)
    readable = sanitize.read_message(message.raw)
    assert summary.has_attachments is bool(readable.downloads)
    assert parse_message(message.raw).snippet == summary.snippet


@pytest.mark.parametrize("message", MESSAGES, ids=_IDS)
def test_the_content_hash_ignores_line_ends_and_is_stable(message: CorpusMessage) -> None:
    lf = message.raw.replace(b"\r\n", b"\n")
    crlf = lf.replace(b"\n", b"\r\n")
    assert content_hash(message.raw) == content_hash(message.raw)
    assert content_hash(lf) == content_hash(crlf)
    relayed = b"Received: from mx.example.test by imap.example.test; Tue, 3 Mar 2026\r\n" + crlf
    assert content_hash(relayed) == content_hash(crlf)
