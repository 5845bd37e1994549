"""A remote action whose server cannot be reached waits and runs when the server
is back; it never fails and undoes the user's move over an outage (the failure
table, posta.mailproto.failures)."""

from __future__ import annotations

import socket
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from posta.accounts.models import Account, Folder
from posta.mail import services
from posta.mail.models import Location, Message, RemoteAction
from posta.mailproto.failures import SERVER_RETRY_FOR
from posta.sync import actions
from posta.sync.account_pass import sync_account_once
from tests.integration.test_sync_checker import make_account, message
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def no_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test runs the executor itself; the queue is not consumed here."""
    monkeypatch.setattr("posta.sync.tasks.enqueue_account_actions", lambda ids: None)


def _free_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _moved_one(dovecot: DovecotServer, mail_user: MailUser, settings: Any) -> tuple[Any, int]:
    account = make_account(dovecot, mail_user, settings)
    dovecot.create_folder(mail_user, "Archive")
    dovecot.deliver(mail_user, message("moved"))
    dovecot.deliver(mail_user, message("stays"))
    sync_account_once(account.pk)
    moved = Message.objects.get(user=account.user, subject="moved")
    archive = Folder.objects.get(account=account, name="Archive")
    services.do_move(account.user, [moved.pk], archive)
    return account, moved.pk


def _unreachable(account: Any, how: str, silent_port: int, settings: Any) -> None:
    if how == "refused":
        Account.objects.filter(pk=account.pk).update(imap_port=_free_port())
    elif how == "timeout":
        settings.POSTA_NETWORK_TIMEOUT = 1
        Account.objects.filter(pk=account.pk).update(imap_port=silent_port)
    else:  # RFC 2606 §2: .invalid never resolves
        Account.objects.filter(pk=account.pk).update(imap_host="imap.posta.invalid")


@pytest.mark.parametrize(
    ("how", "code"),
    [("refused", "connection_refused"), ("timeout", "timeout"), ("dns", "host_not_found")],
)
def test_a_move_waits_while_the_server_is_unreachable_then_runs(
    dovecot: DovecotServer,
    mail_user: MailUser,
    settings: Any,
    silent_port: int,
    how: str,
    code: str,
) -> None:
    account, moved = _moved_one(dovecot, mail_user, settings)
    real = {"imap_host": account.imap_host, "imap_port": account.imap_port}
    _unreachable(account, how, silent_port, settings)

    for _ in range(3):  # several passes: each one waits again, none gives up
        RemoteAction.objects.update(next_attempt_at=None)  # as the retry time passing does
        assert actions.run_account_actions(account.pk) == 0
        action = RemoteAction.objects.get()
        assert action.state == "pending"
        assert action.error_code == code
        assert action.next_attempt_at is not None
        assert action.next_attempt_at > timezone.now()
        # The message stays where the user moved it, locally.
        assert Location.objects.get(message_id=moved).folder.name == "Archive"
    assert action.attempts == 3
    assert actions.sweep() == []  # nothing due before its retry time
    assert len(dovecot.uids(mail_user, "INBOX")) == 2

    # The server is reachable again, and the retry time has come.
    Account.objects.filter(pk=account.pk).update(**real)
    RemoteAction.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert actions.sweep() == [account.pk]
    assert actions.run_account_actions(account.pk) == 1
    assert RemoteAction.objects.get().state == "done"
    assert len(dovecot.uids(mail_user, "Archive")) == 1
    assert len(dovecot.uids(mail_user, "INBOX")) == 1
    assert Location.objects.get(message_id=moved).folder.name == "Archive"


def test_a_move_unreachable_past_the_deadline_fails_and_is_undone(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, silent_port: int
) -> None:
    account, moved = _moved_one(dovecot, mail_user, settings)
    _unreachable(account, "refused", silent_port, settings)
    asked = timezone.now() - SERVER_RETRY_FOR - timedelta(minutes=1)
    RemoteAction.objects.update(created_at=asked)
    actions.run_account_actions(account.pk)
    action = RemoteAction.objects.get()
    assert (action.state, action.error_code) == ("failed", "connection_refused")
    # The server still has it in INBOX: so does the local state.
    assert Location.objects.get(message_id=moved).folder.name == "INBOX"


def test_an_unreadable_secret_leaves_the_move_waiting_and_pauses_the_account(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    account, moved = _moved_one(dovecot, mail_user, settings)
    Account.objects.filter(pk=account.pk).update(password_secret="gAAAAA-not-a-token")
    actions.run_account_actions(account.pk)
    action = RemoteAction.objects.get()
    assert (action.state, action.error_code) == ("pending", "secret_unreadable")
    assert action.next_attempt_at is not None
    assert action.next_attempt_at - timezone.now() > timedelta(minutes=20)
    assert Location.objects.get(message_id=moved).folder.name == "Archive"
    account.refresh_from_db()
    assert account.sync_state == Account.SyncState.PAUSED
    assert account.last_error_code == "secret_unreadable"
