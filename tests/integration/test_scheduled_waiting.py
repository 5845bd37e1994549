"""A scheduled (or queued) message whose account is paused or in error at its time
waits, and the Scheduled and Outbox pages say why, with the way to the settings."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from posta.accounts.models import Account
from posta.delivery import sending
from posta.mail import outbox, outbox_sentences
from posta.mail.models import OutgoingMessage
from posta.users.models import User
from tests.integration.test_send import make_sender, write
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp import SmtpServer
from tests.wakeups import recorded_wakeups

pytestmark = pytest.mark.django_db(transaction=True)

State = OutgoingMessage.State


@pytest.fixture(autouse=True)
def quiet_queue() -> Iterator[None]:
    with recorded_wakeups():
        yield


def logged_in(user: User) -> Client:
    if not User.objects.filter(is_superuser=True).exists():
        User.objects.create_superuser("admin", password="pw-unused-admin-123")
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    ("state", "words"),
    [(Account.SyncState.PAUSED, "is paused"), (Account.SyncState.ERROR, "has a problem")],
)
def test_scheduled_message_waits_while_the_account_cannot_send(
    dovecot: DovecotServer, smtp_server: SmtpServer, state: str, words: str
) -> None:
    a = make_sender(dovecot, smtp_server, dovecot.add_user())
    when = timezone.now() + timedelta(minutes=5)
    row = outbox.check_schedule(a.user, write(a, to="x@example.test", subject="Later"), when)
    Account.objects.filter(pk=a.pk).update(
        sync_state=state, last_error_code="auth_failed", last_error_detail=""
    )

    # Its time comes: no worker takes it, by the sweep or by a direct wake-up.
    assert row.pk not in sending.due_ids(now=when + timedelta(seconds=1))
    assert sending.deliver_due(now=when + timedelta(seconds=1)) == 0
    assert not sending.deliver(row.pk, now=when + timedelta(seconds=1))
    row.refresh_from_db()
    assert row.state == State.SCHEDULED
    assert smtp_server.messages == []

    reason = outbox_sentences.waiting_reason(row)
    assert reason.startswith(f"Waiting: the account {a.email} {words}.")
    page = logged_in(a.user).get("/compose/scheduled/").content.decode()
    assert f"Waiting: the account {a.email} {words}." in page
    assert f'href="/settings/accounts/{a.pk}/"' in page

    # The account works again: the next pass sends it, once.
    Account.objects.filter(pk=a.pk).update(sync_state=Account.SyncState.IDLE,
                                           last_error_code="")
    row.refresh_from_db()
    assert outbox_sentences.waiting_reason(row) == ""
    assert sending.deliver_due(now=when + timedelta(seconds=2)) == 1
    assert sending.deliver_due(now=when + timedelta(seconds=3)) == 0
    row.refresh_from_db()
    assert row.state == State.SENT
    assert len(smtp_server.messages) == 1


def test_outbox_says_why_a_queued_message_waits(
    dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    a = make_sender(dovecot, smtp_server, dovecot.add_user())
    row = outbox.check_send(a.user, write(a, to="x@example.test", subject="Now"))
    Account.objects.filter(pk=a.pk).update(sync_state=Account.SyncState.PAUSED)
    assert row.send_at is not None
    assert sending.deliver_due(now=row.send_at + timedelta(seconds=1)) == 0
    page = logged_in(a.user).get("/compose/outbox/").content.decode()
    assert f"Waiting: the account {a.email} is paused." in page
    assert f'href="/settings/accounts/{a.pk}/"' in page
    assert smtp_server.messages == []
