"""The user's actions reach the server exactly once, even when the worker dies
between the server call and the database update."""

from __future__ import annotations

from typing import Any

import pytest

from posta.accounts.models import Folder
from posta.core import faults
from posta.mail import services
from posta.mail.models import Location, Message, RemoteAction
from posta.mailproto.imap.session import Session
from posta.sync import actions
from posta.sync.account_pass import sync_account_once
from tests.integration.test_sync_checker import assert_mirrored, make_account, message
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def no_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test runs the executor itself; the queue is not consumed here."""
    monkeypatch.setattr("posta.sync.tasks.enqueue_account_actions", lambda ids: None)


def _claims_run_out() -> None:
    """What a lease's time does to a dead worker's claims, without waiting for it."""
    running = RemoteAction.objects.filter(state="running")
    assert running.exclude(lease_until__gt=actions.timezone.now()).count() == 0
    running.update(lease_until=actions.timezone.now() - actions.claims.lease())


def _setup(dovecot: DovecotServer, mail_user: MailUser, settings: Any) -> Any:
    account = make_account(dovecot, mail_user, settings)
    dovecot.create_folder(mail_user, "Trash")
    dovecot.create_folder(mail_user, "Archive")
    for i in range(4):
        dovecot.deliver(mail_user, message(f"a{i}"))
    sync_account_once(account.pk)
    return account


def test_flags_move_and_delete_reach_the_server(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    account = _setup(dovecot, mail_user, settings)
    user = account.user
    ids = {m.subject: m.pk for m in Message.objects.filter(user=user)}
    archive = Folder.objects.get(account=account, name="Archive")

    services.do_set_seen(user, [ids["a0"]], True)
    services.do_set_flagged(user, [ids["a1"]], True)
    services.do_move(user, [ids["a2"]], archive)
    services.do_delete(user, [ids["a3"]])
    # The local state changed at once.
    assert Location.objects.get(message_id=ids["a2"]).folder == archive
    assert Location.objects.get(message_id=ids["a3"]).folder.name == "Trash"

    actions.run_account_actions(account.pk)

    assert set(RemoteAction.objects.values_list("state", flat=True)) == {"done"}
    assert len(dovecot.uids(mail_user, "Archive")) == 1
    assert len(dovecot.uids(mail_user, "Trash")) == 1
    assert len(dovecot.uids(mail_user, "INBOX")) == 2
    sync_account_once(account.pk)
    assert_mirrored(dovecot, mail_user, account)
    assert Location.objects.get(message_id=ids["a2"]).uid is not None

    # From Trash, delete means gone for good.
    services.do_delete(user, [ids["a3"]])
    actions.run_account_actions(account.pk)
    assert dovecot.uids(mail_user, "Trash") == []
    sync_account_once(account.pk)
    assert_mirrored(dovecot, mail_user, account)


@pytest.mark.parametrize("use_move", [True, False])
def test_move_killed_after_the_server_call_happens_once(
    dovecot: DovecotServer,
    mail_user: MailUser,
    settings: Any,
    use_move: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    account = _setup(dovecot, mail_user, settings)
    user = account.user
    target = Folder.objects.get(account=account, name="Archive")
    moved = list(Message.objects.filter(user=user).values_list("pk", flat=True)[:2])
    services.do_move(user, moved, target)

    faults.arm("action_after_server")
    if not use_move:
        # The COPY + \Deleted + UID EXPUNGE path of servers without MOVE.
        original = Session.start

        def without_move(client: Any) -> Any:
            session = original(client)
            session.can_move = False
            return session

        monkeypatch.setattr(Session, "start", without_move)
    with pytest.raises(faults.SimulatedCrash):
        actions.run_account_actions(account.pk)
    assert RemoteAction.objects.filter(state="running").count() == 1
    # The dead worker's claim runs out (no heartbeat renews it); run it again.
    _claims_run_out()
    assert account.pk in actions.sweep()
    actions.run_account_actions(account.pk)
    actions.run_account_actions(account.pk)

    assert set(RemoteAction.objects.values_list("state", flat=True)) == {"done"}
    assert len(dovecot.uids(mail_user, "Archive")) == 2
    assert len(dovecot.uids(mail_user, "INBOX")) == 2
    sync_account_once(account.pk)
    assert_mirrored(dovecot, mail_user, account)
    assert Location.objects.filter(folder=target).count() == 2


def test_delete_and_empty_trash_touch_only_the_copy_in_that_folder(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    account = _setup(dovecot, mail_user, settings)
    user = account.user
    dovecot.create_folder(mail_user, "Clienti")
    both = message("in two folders", msgid="<both@example.test>")
    dovecot.deliver(mail_user, both)
    dovecot.deliver(mail_user, both, folder="Clienti")
    sync_account_once(account.pk)
    msg = Message.objects.get(user=user, subject="in two folders")
    inbox = Folder.objects.get(account=account, name="INBOX")
    clienti = Folder.objects.get(account=account, name="Clienti")
    trash = Folder.objects.get(account=account, name="Trash")
    assert Location.objects.filter(message=msg).count() == 2

    assert services.do_delete(user, [msg.pk], from_folders=[inbox.pk]) == 1
    actions.run_account_actions(account.pk)
    assert set(RemoteAction.objects.values_list("state", flat=True)) == {"done"}
    assert len(dovecot.uids(mail_user, "Trash")) == 1
    assert len(dovecot.uids(mail_user, "Clienti")) == 1
    assert len(dovecot.uids(mail_user, "INBOX")) == 4  # the a0..a3 of _setup
    sync_account_once(account.pk)
    assert_mirrored(dovecot, mail_user, account)
    assert set(Location.objects.filter(message=msg).values_list("folder", flat=True)) == {
        trash.pk,
        clienti.pk,
    }

    assert services.do_expunge_folder(user, trash) == 1
    assert not Location.objects.filter(folder=trash).exists()  # gone from the list at once
    actions.run_account_actions(account.pk)
    assert set(RemoteAction.objects.values_list("state", flat=True)) == {"done"}
    assert dovecot.uids(mail_user, "Trash") == []
    assert len(dovecot.uids(mail_user, "Clienti")) == 1
    sync_account_once(account.pk)
    assert_mirrored(dovecot, mail_user, account)
    assert Location.objects.get(message=msg).folder == clienti


def test_moving_from_a_folder_leaves_the_other_copy(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    account = _setup(dovecot, mail_user, settings)
    user = account.user
    dovecot.create_folder(mail_user, "Clienti")
    both = message("labelled", msgid="<labelled@example.test>")
    dovecot.deliver(mail_user, both)
    dovecot.deliver(mail_user, both, folder="Clienti")
    sync_account_once(account.pk)
    msg = Message.objects.get(user=user, subject="labelled")
    clienti = Folder.objects.get(account=account, name="Clienti")
    archive = Folder.objects.get(account=account, name="Archive")

    assert services.do_move(user, [msg.pk], archive, from_folders=[clienti.pk]) == 1
    actions.run_account_actions(account.pk)
    assert dovecot.uids(mail_user, "Clienti") == []
    assert len(dovecot.uids(mail_user, "Archive")) == 1
    assert len(dovecot.uids(mail_user, "INBOX")) == 5
    sync_account_once(account.pk)
    assert_mirrored(dovecot, mail_user, account)


@pytest.mark.parametrize("killed", [False, True])
def test_append_lands_once_with_its_flags(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, killed: bool
) -> None:
    account = _setup(dovecot, mail_user, settings)
    user = account.user
    archive = Folder.objects.get(account=account, name="Archive")
    raw = message("saved draft", msgid="<saved.draft@Example.test>")

    loc = services.do_append(user, archive, raw, ["\\Seen", "\\Flagged"])
    # The copy shows in the folder at once, waiting for its UID.
    assert Location.objects.get(pk=loc.pk).uid is None
    assert RemoteAction.objects.get(kind="append").state == "pending"

    if killed:
        faults.arm("action_after_server")
        with pytest.raises(faults.SimulatedCrash):
            actions.run_account_actions(account.pk)
        # A sync between the kill and the retry stores the server's copy first.
        sync_account_once(account.pk)
        _claims_run_out()
        assert account.pk in actions.sweep()
    actions.run_account_actions(account.pk)
    actions.run_account_actions(account.pk)

    assert set(RemoteAction.objects.values_list("state", flat=True)) == {"done"}
    on_server = dovecot.uids(mail_user, "Archive")
    assert len(on_server) == 1
    copies = Location.objects.filter(folder=archive)
    assert copies.count() == 1
    copy = copies.get()
    assert copy.uid == on_server[0]
    assert copy.seen and copy.flagged
    assert Message.objects.filter(user=user, subject="saved draft").count() == 1
    sync_account_once(account.pk)
    assert_mirrored(dovecot, mail_user, account)
    assert Location.objects.filter(folder=archive).count() == 1
    assert Message.objects.filter(user=user, subject="saved draft").count() == 1
