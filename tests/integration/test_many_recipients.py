"""Incoming mail with hundreds of recipients: every one is stored, Reply all
addresses every one, and the reader shows a capped list with "and N more"."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

import pytest
from django.template.loader import render_to_string
from django.test import Client
from django.urls import reverse
from django.utils import translation

from posta.mail import addresses, outbox, replies
from posta.mail.models import Message, OutgoingMessage
from posta.sync.account_pass import sync_account_once
from posta.users.models import User
from posta.web.mail.reader import READER_ADDRESSES, shown_addresses
from tests.integration.test_send import (
    make_sender,
    parsed,
    quiet_queue,  # noqa: F401 - its autouse fixture
    send_now,
)
from tests.servers.dovecot import DovecotServer, MailUser
from tests.servers.smtp import SmtpServer

pytestmark = pytest.mark.django_db(transaction=True)

TO_COUNT = 500
CC_COUNT = 250


def people(prefix: str, count: int) -> list[tuple[str, str]]:
    return [(f"Person {prefix}{i:03d}", f"{prefix}{i:03d}@example.test") for i in range(count)]


def crowded_message(own_address: str) -> tuple[bytes, list[tuple[str, str]], list[tuple[str, str]]]:
    """A message to 500 people (the reader's own address among them) and 250 in Cc."""
    to = people("to", TO_COUNT - 1)
    to.insert(250, ("", own_address))
    cc = people("cc", CC_COUNT)
    msg = EmailMessage()
    msg["From"] = "Carla <carla@example.test>"
    msg["To"] = ", ".join(f"{n} <{a}>" if n else a for n, a in to)
    msg["Cc"] = ", ".join(f"{n} <{a}>" for n, a in cc)
    msg["Subject"] = "Everyone"
    msg["Date"] = "Mon, 02 Mar 2026 10:00:00 +0100"
    msg["Message-ID"] = "<everyone@example.test>"
    msg.set_content("To all of you.\n")
    return msg.as_bytes(), to, cc


@pytest.mark.slow
def test_every_recipient_is_kept_answered_by_reply_all_and_counted_by_the_reader(
    dovecot: DovecotServer, smtp_server: SmtpServer, mail_user: MailUser, settings: Any
) -> None:
    account = make_sender(dovecot, smtp_server, mail_user)
    if not User.objects.filter(is_superuser=True).exists():
        User.objects.create_superuser("root", "root@example.test", "pw-unused-123")
    raw, to, cc = crowded_message(mail_user.address)
    dovecot.deliver(mail_user, raw)
    sync_account_once(account.pk)

    stored = Message.objects.get(user=account.user, message_id="everyone@example.test")
    assert [tuple(p) for p in stored.to] == to
    assert [tuple(p) for p in stored.cc] == cc

    # Reply all, as the reader's button does: the sender in To, everyone else in Cc.
    client = Client()
    client.force_login(account.user)
    answer = client.get(reverse("compose_reply", args=[stored.pk]) + "?all=1")
    assert answer.status_code == 200  # the editor opens with them all, storing nothing yet
    others = [a for _n, a in to if a != mail_user.address] + [a for _n, a in cc]
    page = answer.content.decode()
    assert all(address in page for address in others)
    assert not OutgoingMessage.objects.filter(user=account.user).exists()
    reply = replies.do_start_reply(account.user, stored, reply_all=True)
    assert [p[1] for p in reply.to] == ["carla@example.test"]
    assert [p[1] for p in reply.cc] == others

    outbox.check_save_draft(
        account.user,
        reply,
        outbox.Draft(
            account_id=account.pk,
            to=addresses.format_addresses(reply.to),
            cc=addresses.format_addresses(reply.cc),
            subject=reply.subject,
            body_html="<p>Noted.</p>",
        ),
    )
    send_now(reply)
    (received,) = smtp_server.messages
    assert sorted(received.rcpt_tos) == sorted(["carla@example.test", *others])
    sent_cc = parsed(received.data)["Cc"].addresses
    assert [a.addr_spec for a in sent_cc] == others

    # The reader shows the first READER_ADDRESSES of each list and counts the rest.
    user = account.user
    for language, more_to, more_cc in (
        ("en", "and 480 more", "and 230 more"),
        ("it", "e altri 480", "e altri 230"),
    ):
        user.language = language
        user.save()
        page = client.get(reverse("mail_message", args=[stored.pk]), HTTP_HX_REQUEST="true")
        html = page.content.decode()
        assert page.status_code == 200
        assert more_to in html and more_cc in html
        assert "to019@example.test" in html and "cc019@example.test" in html
        assert "to020@example.test" not in html and "cc020@example.test" not in html


def test_the_capped_list_says_how_many_are_left_out_in_both_languages() -> None:
    def rendered(count: int, language: str) -> str:
        pairs = [[f"P{i}", f"p{i}@example.test"] for i in range(count)]
        with translation.override(language):
            return render_to_string(
                "web/mail/_addresses.html", {"addresses": shown_addresses(pairs)}
            )

    whole = rendered(READER_ADDRESSES, "en")
    assert f"p{READER_ADDRESSES - 1}@example.test" in whole and "more" not in whole
    assert "and 1 more" in rendered(READER_ADDRESSES + 1, "en")
    assert "e 1 altro" in rendered(READER_ADDRESSES + 1, "it")
    assert "e altri 5" in rendered(READER_ADDRESSES + 5, "it")
    assert not shown_addresses([])
    assert shown_addresses([["", "a@example.test"]]).more == 0
