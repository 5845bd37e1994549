"""Posta's own responder against the test Dovecot and the test SMTP server.

Mail is delivered through LMTP (Dovecot writes the Return-Path from the
envelope), synced by the sync engine, which announces it; the arrival pipeline
(posta.rules.arrivals) runs its steps, out-of-office after the filters, and the
worker's code answers. The reply is checked at the SMTP server: null reverse path, one
recipient (the envelope sender), the RFC 3834 headers, nothing of the original.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import connections
from django.utils import timezone

from posta.accounts.models import Account, Folder
from posta.crm import services as crm
from posta.crm.models import Contact
from posta.mail.models import Message
from posta.rules import arrivals, autoreply_responder, autoreply_settings, autoreply_step
from posta.rules.autoreply_models import AutoReply
from posta.sync.account_pass import sync_account_once
from tests.ingest_subscriber import Recorder
from tests.integration.test_send import make_sender, quiet_queue  # noqa: F401 - fixture
from tests.integration.test_sync_checker import message
from tests.servers.dovecot import DovecotServer, MailUser
from tests.servers.smtp import SmtpServer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    found = Recorder()
    found.connect()
    yield found
    found.disconnect()


def turn_on(account: Account, **overrides: Any) -> None:
    now = timezone.now()
    values: dict[str, Any] = {
        "enabled": True, "starts_at": now - timedelta(hours=1),
        "ends_at": now + timedelta(days=3), "all_day": False, "subject": "",
        "body_html": "<p>I am away until Thursday.</p>", "known_only": False, "days": 7,
        "aliases": "",
    }
    values.update(overrides)
    autoreply_settings.do_save(account.user, values, [])


def arrive(account: Account, recorder: Recorder) -> list[int]:
    """Sync (the announcement records the arrivals), run the arrival pipeline as
    its worker does (filters, then out-of-office), then the responder; returns
    the rows the pipeline queued."""
    before = set(AutoReply.objects.values_list("pk", flat=True))
    sync_account_once(account.pk)
    arrivals.process_pending(account.user_id)
    queued = sorted(set(AutoReply.objects.values_list("pk", flat=True)) - before)
    autoreply_responder.respond_due()
    return queued


def test_one_reply_then_none_within_the_days(
    dovecot: DovecotServer, smtp_server: SmtpServer, mail_user: MailUser, recorder: Recorder
) -> None:
    account = make_sender(dovecot, smtp_server, mail_user, first_name="Marta")
    turn_on(account)
    dovecot.deliver(mail_user, message(
        "Offerta luglio", from_="Alice <alice@example.test>", to=mail_user.address,
        msgid="<offer.1@example.test>", References="<root@example.test>",
        Reply_To="sales@example.test", body="Secret numbers 12345\n",
    ))
    assert len(arrive(account, recorder)) == 1
    assert list(AutoReply.objects.values_list("state", "reason")) == [("sent", "")]
    (received,) = smtp_server.wait_for(1)
    assert received.mail_from == ""
    assert received.rcpt_tos == ["alice@example.test"]
    reply = received.message()
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["In-Reply-To"] == "<offer.1@example.test>"
    assert reply["References"] == "<root@example.test> <offer.1@example.test>"
    assert reply["To"] == "alice@example.test"
    assert mail_user.address in reply["From"]
    assert reply["Subject"] == "Auto: Offerta luglio"
    assert "12345" not in received.data.decode("utf-8", "replace")
    assert "I am away until Thursday." in received.data.decode("utf-8", "replace")
    row = AutoReply.objects.get()
    assert (row.state, row.sender) == ("sent", "alice@example.test")
    assert row.sent_at is not None

    dovecot.deliver(mail_user, message(
        "Second one", from_="Alice <alice@example.test>", to=mail_user.address,
    ))
    arrive(account, recorder)
    assert len(smtp_server.messages) == 1
    second = AutoReply.objects.exclude(pk=row.pk).get()
    assert (second.state, second.reason_code) == ("skipped", "answered")

    # A new text starts the count afresh (RFC 5230 §4.2, as Pigeonhole).
    turn_on(account, body_html="<p>Back on Monday now.</p>")
    dovecot.deliver(mail_user, message(
        "Third one", from_="Alice <alice@example.test>", to=mail_user.address,
    ))
    arrive(account, recorder)
    assert len(smtp_server.wait_for(2)) == 2


def test_lists_robots_and_outside_the_period_get_none(
    dovecot: DovecotServer, smtp_server: SmtpServer, mail_user: MailUser, recorder: Recorder
) -> None:
    account = make_sender(dovecot, smtp_server, mail_user)
    turn_on(account)
    dovecot.deliver(mail_user, message(
        "Newsletter", from_="news@lists.example.test", to=mail_user.address,
        List_Id="<news.lists.example.test>",
    ))
    dovecot.deliver(mail_user, message(
        "Delivery report", from_="MAILER-DAEMON@example.test", to=mail_user.address,
    ))
    dovecot.deliver(mail_user, message(
        "Not for me", from_="carol@example.test", to="someone@example.test",
    ))
    arrive(account, recorder)
    reasons = dict(AutoReply.objects.values_list("message__subject", "reason_code"))
    assert reasons == {
        "Newsletter": "mailing_list", "Delivery report": "system_sender",
        "Not for me": "not_addressed",
    }
    assert smtp_server.messages == []

    # The period ended: nothing more, and the sweep turns it off.
    turn_on(account, starts_at=timezone.now() - timedelta(days=3),
            ends_at=timezone.now() - timedelta(seconds=1))
    dovecot.deliver(mail_user, message("Late", from_="dave@example.test", to=mail_user.address))
    arrive(account, recorder)
    assert smtp_server.messages == []
    assert autoreply_settings.do_expire() == 1
    assert autoreply_settings.banner_for(account.user) is None


def test_turned_off_before_the_worker_runs_sends_nothing(
    dovecot: DovecotServer, smtp_server: SmtpServer, mail_user: MailUser, recorder: Recorder
) -> None:
    account = make_sender(dovecot, smtp_server, mail_user)
    turn_on(account)
    dovecot.deliver(mail_user, message("Hi", from_="erin@example.test", to=mail_user.address))
    sync_account_once(account.pk)
    inbox = Folder.objects.get(account=account, role=Folder.Role.INBOX)
    (announced,) = [a for a in recorder.seen if a.folder_id == inbox.pk]
    autoreply_step.do_queue(
        user_id=announced.user_id, message_ids=list(announced.message_ids),
        folder_id=inbox.pk,
    )
    assert autoreply_settings.do_turn_off(account.user)
    autoreply_responder.respond_due()
    assert smtp_server.messages == []
    assert AutoReply.objects.get().reason_code == "turned_off"


def test_known_correspondents_only(
    dovecot: DovecotServer, smtp_server: SmtpServer, mail_user: MailUser, recorder: Recorder
) -> None:
    account = make_sender(dovecot, smtp_server, mail_user)
    turn_on(account, known_only=True)
    dovecot.deliver(mail_user, message("Hi", from_="frank@example.test", to=mail_user.address))
    arrive(account, recorder)
    assert smtp_server.messages == []
    assert AutoReply.objects.get().reason_code == "unknown_sender"
    # Once the user has written to them (a message in Sent naming them), they are known.
    dovecot.deliver(
        mail_user,
        message("Our call", from_=mail_user.address, to="Frank <frank@example.test>"),
        folder="Sent",
    )
    dovecot.deliver(mail_user, message("Hi again", from_="frank@example.test",
                                       to=mail_user.address))
    arrive(account, recorder)
    assert len(smtp_server.wait_for(1)) == 1


def test_a_crm_contact_is_a_known_correspondent(
    dovecot: DovecotServer, smtp_server: SmtpServer, mail_user: MailUser, recorder: Recorder
) -> None:
    account = make_sender(dovecot, smtp_server, mail_user)
    turn_on(account, known_only=True)
    crm.do_save_record(Contact(owner=account.user, first_name="Gina"),
                       emails=["gina@example.test"])
    dovecot.deliver(mail_user, message("Ciao", from_="Gina <GINA@example.test>",
                                       to=mail_user.address))
    arrive(account, recorder)
    assert len(smtp_server.wait_for(1)) == 1
    assert AutoReply.objects.get().reason_code == "reply"


@pytest.fixture
def spam_filter() -> Iterator[None]:
    """A step before out-of-office that does what a filter "mark as spam" (or a
    "stop") leaves in the outcomes, by subject, as the filters' step will."""

    def step(batch: Any, outcomes: dict[int, arrivals.Outcome]) -> None:
        subjects = dict(
            Message.objects.filter(pk__in=[a.message_id for a in batch])
            .values_list("pk", "subject")
        )
        for message_id, outcome in outcomes.items():
            if subjects.get(message_id, "").startswith("Spammy"):
                outcome.disposition = "spam"
            if subjects.get(message_id, "").startswith("Stop"):
                outcome.stopped = True
            if subjects.get(message_id, "").startswith("Filed"):
                outcome.disposition = "moved"

    arrivals.register_step("test-filter", 10, step)
    yield
    arrivals.unregister_step("test-filter")


def test_filters_run_first_and_spam_or_stop_prevents_the_reply(
    dovecot: DovecotServer, smtp_server: SmtpServer, mail_user: MailUser, recorder: Recorder,
    spam_filter: None,
) -> None:
    account = make_sender(dovecot, smtp_server, mail_user)
    turn_on(account)
    for n, subject in enumerate(["Spammy offer", "Stop here", "Filed away"]):
        dovecot.deliver(mail_user, message(
            subject, from_=f"gina{n}@example.test", to=mail_user.address,
        ))
    arrive(account, recorder)
    found = dict(AutoReply.objects.values_list("message__subject", "reason_code"))
    assert found == {"Spammy offer": "filtered", "Stop here": "filtered", "Filed away": "reply"}
    (received,) = smtp_server.wait_for(1)
    assert received.rcpt_tos == ["gina2@example.test"]


def test_a_message_whose_body_is_not_stored_is_read_from_the_server(
    dovecot: DovecotServer, smtp_server: SmtpServer, mail_user: MailUser, recorder: Recorder
) -> None:
    account = make_sender(dovecot, smtp_server, mail_user)
    turn_on(account)
    dovecot.deliver(mail_user, message(
        "Header only", from_="hal@example.test", to=mail_user.address,
        List_Post="<mailto:list@example.test>",
    ))
    sync_account_once(account.pk)
    stored = Message.objects.get(subject="Header only")
    Message.objects.filter(pk=stored.pk).update(blob_key="", body_state="pending")
    arrivals.process_pending(account.user_id)
    autoreply_responder.respond_due()
    row = AutoReply.objects.get()
    # List-Post is not among the fields the sync keeps: it came from BODY.PEEK[HEADER].
    assert (row.state, row.reason_code) == ("skipped", "mailing_list")
    assert row.reason_params == {"field": "List-Post"}
    seen = dovecot.imap(mail_user)
    try:
        seen.select("INBOX")
        _typ, flags = seen.fetch("1", "(FLAGS)")
    finally:
        seen.logout()
    assert b"\\Seen" not in flags[0]


def test_two_workers_at_once_answer_one_sender_once(
    dovecot: DovecotServer, smtp_server: SmtpServer, mail_user: MailUser, recorder: Recorder
) -> None:
    account = make_sender(dovecot, smtp_server, mail_user)
    turn_on(account)
    for n in range(4):
        dovecot.deliver(mail_user, message(
            f"Burst {n}", from_="ivo@example.test", to=mail_user.address,
        ))
    sync_account_once(account.pk)
    arrivals.process_pending(account.user_id)
    assert AutoReply.objects.filter(state="pending").count() == 4

    def worker() -> None:
        try:
            autoreply_responder.respond_due()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    autoreply_responder.respond_due()  # whatever a busy claim left for later
    assert len(smtp_server.messages) == 1
    states = sorted(AutoReply.objects.values_list("state", "reason_code"))
    assert states == [("sent", "reply")] + [("skipped", "answered")] * 3


def test_a_live_attempts_claim_is_renewed_and_a_dead_ones_runs_out(
    dovecot: DovecotServer, smtp_server: SmtpServer, mail_user: MailUser, recorder: Recorder,
    settings: Any,
) -> None:
    account = make_sender(dovecot, smtp_server, mail_user)
    turn_on(account)
    dovecot.deliver(mail_user, message("Slow one", from_="ada@example.test", to=mail_user.address))
    sync_account_once(account.pk)
    arrivals.process_pending(account.user_id)
    row = AutoReply.objects.get(state="pending")
    settings.POSTA_AUTOREPLY_LEASE_SECONDS = 1.5
    token = autoreply_responder.claim(row.pk)
    assert token is not None
    first = AutoReply.objects.get(pk=row.pk).lease_until
    assert first is not None
    with autoreply_responder.heartbeat(row.pk, token):
        deadline = time.monotonic() + 30
        renewed = first
        while renewed <= first + timedelta(seconds=1.5) and time.monotonic() < deadline:
            time.sleep(0.1)
            renewed = AutoReply.objects.get(pk=row.pk).lease_until or first
        # Past the first lease: only the heartbeat keeps the row from a second worker.
        assert renewed > first + timedelta(seconds=1.5), "the heartbeat did not renew the claim"
        assert timezone.now() > first
        assert autoreply_responder.recover_stalled() == 0
        assert autoreply_responder.claim(row.pk) is None
    # The heartbeat stopped (the worker died before DATA): the row is pending again.
    deadline = time.monotonic() + 30
    while autoreply_responder.recover_stalled() == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert AutoReply.objects.get(pk=row.pk).state == "pending"
    autoreply_responder.respond_due()
    assert AutoReply.objects.get(pk=row.pk).state == "sent"
    assert len(smtp_server.wait_for(1)) == 1
