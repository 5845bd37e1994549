"""Messages of the real-world corpus (tests/corpus) through the real path: APPEND
of the raw bytes to Dovecot, the sync, the stored copy, the message list and the
reader's pages and downloads."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from posta.mail import blobs, sanitize
from posta.mail.identity import content_hash
from posta.mail.models import Message
from posta.mailproto.mime.parse import html_to_text
from posta.sync import bodies
from posta.sync.account_pass import sync_account_once
from posta.web.templatetags.posta_words import file_kind
from tests.corpus_messages import MESSAGES, CorpusMessage
from tests.integration.test_mail_screen import setup_account
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = pytest.mark.django_db(transaction=True)

_CHOSEN = (
    "cpython/msg_15.txt",  # nested multipart with its parent's boundary
    "mail-parser/mail_malformed_3.eml",  # declared, used and closing boundaries differ
    "posta/apple_mail_file_in_text.eml",
    "posta/eight_bit_headers_cp1252.eml",
    "posta/outlook_winmail_dat.eml",
    "posta/rfc2231_filenames.eml",
    "posta/smime_signed.eml",
    "talon/outlook.eml",
)
_CASES = [m for m in MESSAGES if m.name in _CHOSEN]
_PART_LINK = re.compile(r"/mail/m/\d+/part/([0-9.]+)/")


def _text(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def test_the_chosen_messages_are_in_the_corpus() -> None:
    assert len(_CASES) == len(_CHOSEN)


@pytest.mark.parametrize("message", _CASES, ids=[m.name for m in _CASES])
def test_a_corpus_message_appended_is_stored_and_shown_faithfully(
    message: CorpusMessage,
    dovecot: DovecotServer,
    mail_user: MailUser,
    settings: Any,
    client: Client,
) -> None:
    account = setup_account(dovecot, mail_user, settings)
    # An IMAP server stores CRLF line ends (RFC 3501 §6.3.11 literal).
    raw = message.raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    imap = dovecot.imap(mail_user)
    try:
        status, _ = imap.append("INBOX", None, None, raw)
    finally:
        imap.logout()
    assert status == "OK"
    sync_account_once(account.pk)
    stored = Message.objects.get(user=account.user)
    if stored.body_state != Message.BodyState.STORED:
        bodies.fetch_bodies_now(account.pk, [stored.pk])
        stored.refresh_from_db()
    assert stored.body_state == Message.BodyState.STORED
    assert stored.subject == message.subject
    assert stored.from_email == message.sender
    if b"\x00" not in raw:  # RFC 3501 §4.3: a server may change NUL in a literal
        assert content_hash(blobs.get(stored.blob_key)) == content_hash(message.raw)

    # A second pass finds the same copy: still one message.
    sync_account_once(account.pk)
    assert Message.objects.filter(user=account.user).count() == 1

    client.force_login(account.user)
    page = client.get(reverse("mail_message", args=[stored.pk]), HTTP_HX_REQUEST="true")
    assert page.status_code == 200
    shown = _text(page.content.decode())
    linked = set(_PART_LINK.findall(page.content.decode()))
    downloads = [p for p in message.parts if p[0] in linked]
    for part_id, content_type, filename in downloads:
        assert filename in shown
        assert str(file_kind(content_type, filename)) in shown
        got = client.get(reverse("mail_part", args=[stored.pk, part_id]))
        assert got.status_code == 200
        assert got["Content-Disposition"].startswith("attachment;")
    assert {p[2] for p in downloads} >= {p[2] for p in message.parts if p[2]} - {""}

    frame = client.get(reverse("mail_body", args=[stored.pk]))
    assert frame.status_code == 200
    # The frame shows the HTML body when there is one, else the plain text.
    readable = sanitize.read_message(message.raw)
    body = " ".join(html_to_text(readable.html).split())[:40] if readable.html else message.text
    assert body in _text(frame.content.decode())
