"""Day and month names in the user's language: Italian writes them lowercase
("martedì 24 novembre"), English keeps its capitals; in the reader, the print view and
the "On ..., ... wrote:" line of a reply, over mail synced from the test Dovecot."""

from __future__ import annotations

import html
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from posta.mail.models import Message
from posta.sync.account_pass import sync_account_once
from tests.integration.test_mail_screen import login, setup_account
from tests.integration.test_sync_checker import message
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def no_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing consumes the queue here; these pages only read."""
    monkeypatch.setattr("posta.sync.tasks.enqueue_account_actions", lambda ids: None)


def pages_of(client: Client, msg: Message) -> dict[str, str]:
    """The pages that write the message's date out in words."""
    urls = {
        "reader": (reverse("mail_message", args=[msg.pk]), {"HTTP_HX_REQUEST": "true"}),
        "print": (reverse("mail_print", args=[msg.pk]), {}),
        "reply": (reverse("compose_reply", args=[msg.pk]), {}),
    }
    found = {}
    for name, (url, headers) in urls.items():
        response = client.get(url, **headers)
        assert response.status_code == 200, name
        found[name] = html.unescape(response.content.decode())
    return found


def test_italian_day_and_month_names_are_lowercase_and_english_keeps_capitals(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, client: Client
) -> None:
    account = setup_account(dovecot, mail_user, settings)
    # A Tuesday, in the morning in Rome: the same day in every zone Posta might use.
    dovecot.deliver(mail_user, message("riunione", date="Tue, 24 Nov 2026 10:30:00 +0100"))
    sync_account_once(account.pk)
    msg = Message.objects.get(user=account.user, subject="riunione")
    user = account.user
    user.time_zone = "Europe/Rome"
    login(client, user)

    user.language = "it"
    user.save()
    for name, text in pages_of(client, msg).items():
        assert "martedì 24 novembre 2026" in text, name
        assert "Martedì" not in text and "Novembre" not in text, name

    user.language = "en"
    user.save()
    for name, text in pages_of(client, msg).items():
        assert "Nov. 24, 2026" in text, name
        assert "nov. 24" not in text, name
