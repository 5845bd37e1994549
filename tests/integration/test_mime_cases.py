"""Issue 18's MIME edge cases through the real path: LMTP delivery to Dovecot, the
sync, the body download, the message list and every reader URL. The list's
snippet and attachment mark and the reader agree on each."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from posta.accounts.models import Folder
from posta.mail.models import Message
from posta.sync import bodies
from posta.sync.account_pass import sync_account_once
from tests.integration.test_mail_screen import setup_account
from tests.mime_cases import CASES, Case
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = pytest.mark.django_db(transaction=True)

_PART_LINK = re.compile(r"/mail/m/\d+/part/([0-9.]+)/")


def _row(listing: str, message_id: int) -> str:
    match = re.search(rf'<li class="[^"]*" data-id="{message_id}".*?</li>', listing, re.S)
    assert match is not None, "the message is not listed"
    return match.group(0)


def _text(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_list_and_reader_agree_through_the_sync(
    case: Case, dovecot: DovecotServer, mail_user: MailUser, settings: Any, client: Client
) -> None:
    account = setup_account(dovecot, mail_user, settings)
    dovecot.deliver(mail_user, case.raw)
    sync_account_once(account.pk)
    msg = Message.objects.get(user=account.user)
    if msg.body_state != Message.BodyState.STORED:
        bodies.fetch_bodies_now(account.pk, [msg.pk])
        msg.refresh_from_db()
    assert msg.body_state == Message.BodyState.STORED
    assert msg.subject == case.subject
    assert (msg.from_name, msg.from_email) == case.from_
    assert msg.date is not None and msg.date.year == case.year
    client.force_login(account.user)

    inbox = Folder.objects.get(account=account, name="INBOX")
    row = _row(client.get(reverse("mail_folder", args=[inbox.pk])).content.decode(), msg.pk)
    snippet = re.search(r'<span class="snippet">(.*?)</span>', row, re.S)
    assert snippet is not None and html.unescape(snippet.group(1)).startswith(case.snippet)
    assert ("mark-attach" in row) is case.has_attachments

    reader = client.get(reverse("mail_message", args=[msg.pk]), HTTP_HX_REQUEST="true")
    assert reader.status_code == 200
    page = reader.content.decode()
    parts = sorted(set(_PART_LINK.findall(page)))
    # The mark is shown exactly when the reader lists something to download.
    assert bool(parts) is case.has_attachments
    shown_names = _text(page)
    for name in case.filenames:
        assert name in shown_names

    frame = client.get(reverse("mail_body", args=[msg.pk]))
    assert frame.status_code == 200
    body = _text(frame.content.decode())
    assert case.snippet in " ".join(body.split())
    for text in case.body:
        assert text in body
    for text in case.not_body:
        assert text not in body

    for part_id in parts:
        download = client.get(reverse("mail_part", args=[msg.pk, part_id]))
        assert download.status_code == 200
        assert download["Content-Disposition"].startswith("attachment;")
        assert download.content
    eml = client.get(reverse("mail_eml", args=[msg.pk]))
    assert eml.status_code == 200 and case.raw.split(b"\r\n")[-2] in eml.content.replace(
        b"\r\n", b"\n"
    ).replace(b"\n", b"\r\n")
    printed = client.get(reverse("mail_print", args=[msg.pk]))
    assert printed.status_code == 200
    assert case.snippet in " ".join(_text(printed.content.decode()).split())
