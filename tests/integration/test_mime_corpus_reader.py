"""Every message of the real-world corpus (tests/corpus) stored as the import
stores it (posta.mail.ingest) and opened in the reader with the test client: the
page, the body frame and every download answer, and the page lists each part
by name and kind."""

from __future__ import annotations

import html
import re

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse

from posta.accounts.models import Account
from posta.mail.ingest import do_store_imported
from posta.mail.models import Message
from posta.users.models import User
from posta.web.templatetags.posta_words import file_kind
from tests.corpus_messages import MESSAGES, CorpusMessage

pytestmark = pytest.mark.django_db

_PART_LINK = re.compile(r"/mail/m/\d+/part/([0-9.]+)/")


def _text(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


@pytest.fixture
def reader() -> tuple[User, Client]:
    # No passwords: hashing two a test would cost more than reading the message.
    User.objects.create_superuser("root", "root@example.test", None)
    user = User.objects.create_user(username="anna", password=None)
    Account.objects.create(
        user=user, username="anna", email="anna@example.test", description="anna",
        is_main=True, imap_host="mail.example.test",
    )  # fmt: skip
    client = Client()
    client.force_login(user)
    return user, client


@pytest.mark.parametrize("message", MESSAGES, ids=[m.name for m in MESSAGES])
def test_a_corpus_message_stored_opens_in_the_reader(
    message: CorpusMessage, reader: tuple[User, Client]
) -> None:
    user, client = reader
    with transaction.atomic():
        stored, new = do_store_imported(user_id=user.pk, raw=message.raw)
    assert new
    assert stored.subject == message.subject[: len(stored.subject)]
    again, new = do_store_imported(user_id=user.pk, raw=message.raw)
    assert not new and again.pk == stored.pk
    assert Message.objects.filter(user=user).count() == 1

    page = client.get(reverse("mail_message", args=[stored.pk]), HTTP_HX_REQUEST="true")
    assert page.status_code == 200
    content = page.content.decode()
    shown = _text(content)
    linked = set(_PART_LINK.findall(content))
    listed = {part_id for part_id, _, _ in message.parts}
    assert linked <= listed
    for part_id, content_type, filename in message.parts:
        if part_id not in linked:
            continue  # an inline image shown in the HTML body
        assert (filename or "(unnamed)") in shown
        assert str(file_kind(content_type, filename)) in shown
        got = client.get(reverse("mail_part", args=[stored.pk, part_id]))
        assert got.status_code == 200
        assert got["Content-Disposition"].startswith("attachment;")
    assert bool(linked) is stored.has_attachments

    frame = client.get(reverse("mail_body", args=[stored.pk]))
    assert frame.status_code == 200
    assert "<script" not in frame.content.decode().lower()
    printed = client.get(reverse("mail_print", args=[stored.pk]))
    assert printed.status_code == 200
