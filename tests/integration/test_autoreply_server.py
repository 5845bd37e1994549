"""Out-of-office run by the mail server: the vacation section Posta writes,
uploaded through ManageSieve to the test Dovecot, answers mail delivered through
LMTP while Posta does nothing (Pigeonhole's own vacation, sending through the
test SMTP server)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.utils import timezone
from sievelib.managesieve import Client

from posta.accounts.models import Account
from posta.mailproto.sieve.script import render_script
from posta.rules import arrivals, autoreply_handover, autoreply_responder, autoreply_settings
from posta.rules.autoreply_models import AutoReply
from posta.rules.autoreply_sieve import vacation_section
from posta.sync.account_pass import sync_account_once
from posta.users.models import User
from tests.integration.test_send import make_sender
from tests.integration.test_sync_checker import message
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp import SmtpServer

pytestmark = pytest.mark.django_db

FULL = frozenset({"vacation", "date", "relational", "fileinto"})


def upload(dovecot: DovecotServer, name: str, password: str, script: str) -> None:
    client = Client(dovecot.host, dovecot.managesieve_port)
    assert client.connect(name, password, authmech="PLAIN")
    assert client.checkscript(script), client.errmsg
    assert client.putscript("posta", script), client.errmsg
    assert client.setactive("posta"), client.errmsg
    client.logout()


def account_for(address: str, name: str) -> Account:
    user = User.objects.create_user(username=name, password="pw-unused-123")
    return Account.objects.create(
        user=user, username=name, email=address, description=name, is_main=True,
        imap_host="127.0.0.1",
    )


def turn_on(account: Account, **overrides: object) -> None:
    now = timezone.now()
    values: dict[str, object] = {
        "enabled": True, "starts_at": now - timedelta(hours=1),
        "ends_at": now + timedelta(days=1), "all_day": False, "subject": "",
        "body_html": '<p>Away; "urgent" \\ matters to carol@example.test.</p>',
        "known_only": False, "days": 2, "aliases": "marta.alias@example.test",
    }
    values.update(overrides)
    autoreply_settings.do_save(account.user, values, [])


def test_the_server_answers_once_and_never_a_list(
    dovecot_factory: Callable[..., DovecotServer], smtp_server: SmtpServer
) -> None:
    dovecot = dovecot_factory(extra_config=f"submission_host = 127.0.0.1:{smtp_server.port}")
    mail_user = dovecot.add_user()
    account = account_for(mail_user.address, mail_user.name)
    turn_on(account)
    section = vacation_section(account, FULL)
    assert section is not None
    upload(dovecot, mail_user.name, mail_user.password,
           render_script([], extensions=FULL, trailer=[section]))

    dovecot.deliver(mail_user, message(
        "Preventivo", from_="Luca <luca@example.test>", to=mail_user.address,
        msgid="<preventivo.server@example.test>",
    ))
    dovecot.deliver(mail_user, message(
        "Preventivo bis", from_="Luca <luca@example.test>", to=mail_user.address,
    ))
    dovecot.deliver(mail_user, message(
        "Digest", from_="digest@lists.example.test", to=mail_user.address,
        List_Id="<digest.lists.example.test>",
    ))
    dovecot.deliver(mail_user, message(
        "To my alias", from_="nora@example.test", to="marta.alias@example.test",
    ))
    received = smtp_server.wait_for(2, timeout=20)
    by_recipient = {tuple(m.rcpt_tos): m for m in received}
    assert set(by_recipient) == {("luca@example.test",), ("nora@example.test",)}
    reply = by_recipient[("luca@example.test",)]
    assert reply.mail_from == ""
    parsed = reply.message()
    assert parsed["Auto-Submitted"].startswith("auto-replied")
    assert parsed["In-Reply-To"] == "<preventivo.server@example.test>"
    assert parsed["Subject"] == "Auto: Preventivo"
    assert mail_user.address in parsed["From"]
    assert 'Away; "urgent" \\ matters to carol@example.test.' in parsed.get_content()
    assert len(smtp_server.messages) == 2


def test_outside_the_period_the_server_sends_nothing(
    dovecot_factory: Callable[..., DovecotServer], smtp_server: SmtpServer
) -> None:
    dovecot = dovecot_factory(extra_config=f"submission_host = 127.0.0.1:{smtp_server.port}")
    mail_user = dovecot.add_user()
    account = account_for(mail_user.address, mail_user.name)
    now = timezone.now()
    turn_on(account, starts_at=now + timedelta(hours=2), ends_at=now + timedelta(days=1))
    section = vacation_section(account, FULL)
    assert section is not None and "currentdate" in section.text
    upload(dovecot, mail_user.name, mail_user.password,
           render_script([], extensions=FULL, trailer=[section]))
    dovecot.deliver(mail_user, message("Early", from_="luca@example.test", to=mail_user.address))
    # Delivered (the script ran at LMTP time) and not answered.
    assert dovecot.status(mail_user)["messages"] == 1
    assert smtp_server.messages == []
    # Without `date` the section is left out until the period starts.
    assert vacation_section(account, frozenset({"vacation"})) is None
    assert vacation_section(account, frozenset({"vacation"}), now=now + timedelta(hours=3))


def test_no_section_when_off_or_without_vacation() -> None:
    account = account_for("solo@example.test", "solo")
    assert vacation_section(account, FULL) is None
    turn_on(account)
    assert vacation_section(account, frozenset({"fileinto"})) is None
    autoreply_settings.do_turn_off(account.user)
    assert vacation_section(account, FULL) is None


def test_handover_between_the_executors_never_answers_twice(
    dovecot_factory: Callable[..., DovecotServer], smtp_server: SmtpServer,
    transactional_db: None,
) -> None:
    """Posta answers, then the server takes over, then Posta again: each of the
    three messages gets exactly one reply, from the executor of its time."""
    dovecot = dovecot_factory(extra_config=f"submission_host = 127.0.0.1:{smtp_server.port}")
    mail_user = dovecot.add_user()
    account = make_sender(dovecot, smtp_server, mail_user)
    turn_on(account)

    def posta_runs() -> None:
        sync_account_once(account.pk)
        arrivals.process_pending(account.user_id)
        autoreply_responder.respond_due()

    dovecot.deliver(mail_user, message("One", from_="x@example.test", to=mail_user.address,
                                       msgid="<one@example.test>"))
    posta_runs()
    assert [m.rcpt_tos for m in smtp_server.wait_for(1)] == [["x@example.test"]]

    # The server gains ManageSieve: the upload records the handover, then uploads.
    autoreply_handover.do_server_starts(account.pk)
    section = vacation_section(account, FULL)
    assert section is not None
    upload(dovecot, mail_user.name, mail_user.password,
           render_script([], extensions=FULL, trailer=[section]))
    time.sleep(autoreply_handover.MARGIN.total_seconds() + 1)
    dovecot.deliver(mail_user, message("Two", from_="y@example.test", to=mail_user.address,
                                       msgid="<two@example.test>"))
    smtp_server.wait_for(2, timeout=20)
    posta_runs()  # Posta sees message two and leaves it to the server
    two = AutoReply.objects.get(message__subject="Two")
    assert (two.state, two.reason_code) == ("skipped", "server_answers")

    # The user switches the server side off: the script steps aside, Posta takes over.
    client = Client(dovecot.host, dovecot.managesieve_port)
    assert client.connect(mail_user.name, mail_user.password, authmech="PLAIN")
    assert client.setactive("")
    client.logout()
    autoreply_handover.do_server_stops(account.pk)
    time.sleep(autoreply_handover.MARGIN.total_seconds() + 1)
    dovecot.deliver(mail_user, message("Three", from_="z@example.test", to=mail_user.address,
                                       msgid="<three@example.test>"))
    posta_runs()
    replies = smtp_server.wait_for(3, timeout=20)
    time.sleep(1)
    parents = sorted(m.message()["In-Reply-To"] for m in smtp_server.messages)
    assert parents == ["<one@example.test>", "<three@example.test>", "<two@example.test>"]
    by_parent = {m.message()["In-Reply-To"]: m.message() for m in replies}
    assert "(vacation)" in by_parent["<two@example.test>"]["Auto-Submitted"]  # Pigeonhole's
    assert by_parent["<three@example.test>"]["Auto-Submitted"] == "auto-replied"  # Posta's


def test_known_correspondents_only_is_left_to_posta() -> None:
    """The server cannot tell whom the user has written to: with that switch on,
    no vacation section goes up, and Posta's responder answers instead."""
    account = account_for("known@example.test", "known")
    turn_on(account, known_only=True)
    assert vacation_section(account, FULL) is None
    turn_on(account, known_only=False)
    assert vacation_section(account, FULL) is not None
