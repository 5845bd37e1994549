"""Failures of the sending account's settings wait for the user, and removing
server copies never expunges what another client deleted (the failure table,
posta.mailproto.failures; RFC 4315 §2.1)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from posta.accounts.models import Account, Folder
from posta.core.crypto import seal
from posta.delivery import followups, sending
from posta.mail import outbox, outbox_sentences
from posta.mail.models import OutgoingMessage
from posta.remote import connect, copies
from posta.sync.account_pass import sync_account_once
from tests.integration.test_send import make_sender, send_now, server_copies, write
from tests.integration.test_sync_checker import make_account, message
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp import SmtpServer
from tests.wakeups import recorded_wakeups

pytestmark = pytest.mark.django_db(transaction=True)

State = OutgoingMessage.State


@pytest.fixture(autouse=True)
def quiet_queue() -> Iterator[None]:
    with recorded_wakeups(sends=[]):
        yield


def test_an_unreadable_smtp_secret_waits_for_the_settings_not_retried_as_a_bug(
    dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    mail_a = dovecot.add_user()
    smtp_server.require_auth(mail_a.name, "right-password")
    a = make_sender(dovecot, smtp_server, mail_a, smtp_password="right-password")
    # The key that sealed it is gone: the token no longer opens.
    Account.objects.filter(pk=a.pk).update(smtp_password_secret="gAAAAA-not-a-token")

    row = send_now(write(a, to="x@example.test"))
    assert row.state == State.QUEUED  # waiting, not lost
    assert row.error_code == "secret_unreadable"  # not "internal_error"
    assert outbox_sentences.leads_to_settings(row)
    text = outbox_sentences.outgoing_error_message(row)
    assert "can no longer be read" in text
    assert "waits until the account settings are fixed" in text
    assert row.send_at is not None
    assert row.send_at - timezone.now() >= sending.ACCOUNT_RETRY_DELAY - timedelta(minutes=1)
    assert smtp_server.messages == []

    # Past the retry deadline it still waits for the settings: it never turns
    # into a failure of the message, nor an "internal error, gave up".
    OutgoingMessage.objects.filter(pk=row.pk).update(
        give_up_at=timezone.now() - timedelta(hours=1)
    )
    assert sending.deliver(row.pk, now=row.send_at)
    row.refresh_from_db()
    assert (row.state, row.error_code) == (State.QUEUED, "secret_unreadable")

    # The user enters the password again: the next attempt goes.
    Account.objects.filter(pk=a.pk).update(smtp_password_secret=seal("right-password"))
    assert outbox.do_send_now(a.user, row)
    assert sending.deliver(row.pk)
    row.refresh_from_db()
    assert row.state == State.SENT
    assert smtp_server.messages[0].authenticated_as == mail_a.name


def test_a_sent_copy_waits_for_the_settings_when_the_imap_secret_is_unreadable(
    dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    mail_a = dovecot.add_user()
    a = make_sender(dovecot, smtp_server, mail_a)
    Account.objects.filter(pk=a.pk).update(password_secret="gAAAAA-not-a-token")

    row = send_now(write(a, to="x@example.test"))
    assert row.state == State.SENT  # SMTP has its own secret, which still opens
    assert row.sent_copy == OutgoingMessage.FollowUp.PENDING
    a.refresh_from_db()
    assert (a.sync_state, a.last_error_code) == (Account.SyncState.PAUSED, "secret_unreadable")

    # However often it is tried, the copy waits for the settings; it is not given up.
    OutgoingMessage.objects.filter(pk=row.pk).update(
        follow_up_attempts=followups.MAX_FOLLOW_UP_ATTEMPTS, follow_up_at=timezone.now()
    )
    followups.run_follow_ups(row.pk)
    row.refresh_from_db()
    assert row.sent_copy == OutgoingMessage.FollowUp.PENDING
    assert server_copies(dovecot, mail_a, "Sent", row.message_id) == 0

    # The password is entered again: the copy is filed, once.
    Account.objects.filter(pk=a.pk).update(password_secret=seal(mail_a.password))
    followups.run_follow_ups(row.pk)
    row.refresh_from_db()
    assert row.sent_copy == OutgoingMessage.FollowUp.DONE
    assert server_copies(dovecot, mail_a, "Sent", row.message_id) == 1


# Dovecot's own list without UIDPLUS (imap_capability replaces the whole list).
_NO_UIDPLUS = (
    "imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ "
    "MOVE CONDSTORE QRESYNC SPECIAL-USE NAMESPACE"
)


@pytest.mark.parametrize("uidplus", [False, True])
def test_remove_uids_leaves_another_clients_deleted_message_alone(
    dovecot_factory: Callable[..., DovecotServer], settings: Any, uidplus: bool
) -> None:
    server = dovecot_factory(extra_config="" if uidplus else _NO_UIDPLUS)
    user = server.add_user()
    server.create_folder(user, "Drafts")
    server.deliver(user, message("ours"), folder="Drafts")
    server.deliver(user, message("theirs"), folder="Drafts")
    ours, theirs = server.uids(user, "Drafts")
    server.set_flags(user, "Drafts", theirs, "\\Deleted")  # deleted elsewhere, not expunged
    account = make_account(server, user, settings)
    sync_account_once(account.pk)
    folder = Folder.objects.get(account=account, name="Drafts")

    session = connect.open_imap(account)
    try:
        assert session.uidplus is uidplus
        assert copies.remove_copies(session, folder, [ours]) is uidplus
    finally:
        connect.close(session)

    left = server.uids(user, "Drafts")
    assert theirs in left  # another client's \Deleted message is never expunged by us
    if uidplus:
        assert left == [theirs]  # UID EXPUNGE of ours only
    else:
        assert left == [ours, theirs]  # ours stays, marked \Deleted
        flags = server.doveadm("fetch", "-u", user.name, "flags", "mailbox", "Drafts", "uid",
                               str(ours))
        assert "\\Deleted" in flags
