"""Every path that stores messages announces them once, after commit, with
posta.mail.signals.messages_stored: the first sync (in batches), IDLE news, mail
sent from Posta, mail appended from Posta. Never again on a resync, a UIDVALIDITY
change or the pass after a kill; never for a rolled-back batch."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from posta.accounts.models import Account, Folder
from posta.core import faults
from posta.mail import services
from posta.mail.models import Location, Message, RemoteAction
from posta.sync import actions, folder_state, service
from posta.sync.account_pass import sync_account_once
from posta.sync.models import SyncLease
from tests.ingest_subscriber import Recorder
from tests.integration.test_send import make_sender, send_now, write
from tests.integration.test_sync_checker import assert_mirrored, make_account, message
from tests.integration.test_sync_service import wait_for
from tests.servers.dovecot import DovecotServer, MailUser
from tests.servers.smtp import SmtpServer

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    found = Recorder()
    found.connect()
    yield found
    found.disconnect()


@pytest.fixture(autouse=True)
def no_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests run the action executor themselves."""
    monkeypatch.setattr("posta.sync.tasks.enqueue_account_actions", lambda ids: None)


def _claims_run_out() -> None:
    """What a lease's time does to a dead worker's claims, without waiting for it."""
    RemoteAction.objects.filter(state="running").update(
        lease_until=actions.timezone.now() - actions.claims.lease()
    )


def _inbox(account: Account) -> Folder:
    return Folder.objects.get(account=account, role=Folder.Role.INBOX)


def test_a_subscriber_needs_only_the_mail_app() -> None:
    code = (
        "import sys, tests.ingest_subscriber\n"
        "print(sorted(m for m in sys.modules if m.startswith(('posta.sync', 'posta.delivery'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_first_sync_announces_each_message_once_per_batch(
    dovecot: DovecotServer,
    mail_user: MailUser,
    settings: Any,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(folder_state, "HEADER_BATCH", 3)
    account = make_account(dovecot, mail_user, settings)
    dovecot.create_folder(mail_user, "Archive")
    for i in range(7):
        dovecot.deliver(mail_user, message(f"first {i}"))
    # The same message in a second folder: a copy of a known message.
    dovecot.deliver(mail_user, message("first 3"), folder="Archive")

    sync_account_once(account.pk)

    inbox = _inbox(account)
    stored = set(Message.objects.filter(user=account.user).values_list("id", flat=True))
    assert len(stored) == 7
    assert sorted(recorder.ids()) == sorted(stored)  # each message once
    assert [len(a.message_ids) for a in recorder.seen] == [3, 3, 1]  # one per batch
    assert {(a.user_id, a.folder_id, a.source) for a in recorder.seen} == {
        (account.user_id, inbox.pk, "sync")
    }
    assert Location.objects.filter(folder__name="Archive").count() == 1

    # A resync, a full re-listing after a UIDVALIDITY change, and a new copy of a
    # known message elsewhere announce nothing.
    recorder.seen.clear()
    sync_account_once(account.pk)
    dovecot.reset_uidvalidity(mail_user, "INBOX")
    dovecot.deliver(mail_user, message("first 5"), folder="Archive")
    sync_account_once(account.pk)
    assert recorder.seen == []
    assert_mirrored(dovecot, mail_user, account)

    # New mail: one announcement with just that message.
    dovecot.deliver(mail_user, message("later"))
    sync_account_once(account.pk)
    later = Message.objects.get(user=account.user, subject="later")
    assert [(a.message_ids, a.folder_id, a.source) for a in recorder.seen] == [
        ((later.pk,), inbox.pk, "sync")
    ]


def test_a_rolled_back_batch_is_not_announced_and_the_next_pass_is_once(
    dovecot: DovecotServer,
    mail_user: MailUser,
    settings: Any,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(folder_state, "HEADER_BATCH", 2)
    account = make_account(dovecot, mail_user, settings)
    for i in range(5):
        dovecot.deliver(mail_user, message(f"kill {i}"))

    # Killed after the second batch is written, before it commits.
    original = faults.point
    passes = {"n": 0}

    def point(name: str) -> None:
        if name == "sync_batch_written":
            passes["n"] += 1
            if passes["n"] == 2:
                faults.arm(name)
        original(name)

    monkeypatch.setattr(faults, "point", point)
    with pytest.raises(faults.SimulatedCrash):
        sync_account_once(account.pk)
    committed = set(Message.objects.filter(user=account.user).values_list("id", flat=True))
    assert len(committed) == 2  # the first batch only
    assert sorted(recorder.ids()) == sorted(committed)

    # The restart stores the rest; nothing is announced twice.
    monkeypatch.setattr(faults, "point", original)
    sync_account_once(account.pk)
    stored = set(Message.objects.filter(user=account.user).values_list("id", flat=True))
    assert len(stored) == 5
    assert sorted(recorder.ids()) == sorted(stored)
    assert_mirrored(dovecot, mail_user, account)


def test_another_writer_of_the_same_message_wins_and_announces_it(
    dovecot: DovecotServer,
    mail_user: MailUser,
    settings: Any,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two accounts of one user may store one message at the same moment (two
    processes): the batch that finds its insert pre-empted stores again and adds
    its copy to the other writer's row, unannounced."""
    from posta.mail import bulk_store

    account = make_account(dovecot, mail_user, settings)
    dovecot.deliver(mail_user, message("raced"))
    sync_account_once(account.pk)
    (first,) = recorder.seen
    # A second folder holds the same message; the first look at the user's rows
    # misses it, as a SELECT just before the other writer's commit would.
    dovecot.create_folder(mail_user, "Copy")
    dovecot.deliver(mail_user, message("raced"), folder="Copy")
    real = bulk_store._ids_of
    calls = {"n": 0}

    def stale_first_look(user_id: int, identities: list[str]) -> dict[str, int]:
        calls["n"] += 1
        return {} if calls["n"] == 1 else real(user_id, identities)

    monkeypatch.setattr(bulk_store, "_ids_of", stale_first_look)
    sync_account_once(account.pk)
    assert recorder.seen == [first]
    message_row = Message.objects.get(user=account.user, subject="raced")
    folders = Location.objects.filter(message=message_row).values_list("folder__name", flat=True)
    assert set(folders) == {"INBOX", "Copy"}


@pytest.fixture
def running_service() -> Iterator[service.SyncService]:
    svc = service.SyncService(tick=0.2, timing=service.Timing(idle_check=0.2, resync=3600))
    thread = threading.Thread(target=svc.run, daemon=True)
    thread.start()
    yield svc
    svc.stop()
    thread.join(timeout=30)


@pytest.mark.slow
def test_idle_news_is_announced_as_idle(
    dovecot: DovecotServer,
    mail_user: MailUser,
    settings: Any,
    recorder: Recorder,
    running_service: service.SyncService,
) -> None:
    account = make_account(dovecot, mail_user, settings)
    dovecot.deliver(mail_user, message("before idle"))
    wait_for(lambda: Account.objects.get(pk=account.pk).sync_state == "idle")
    wait_for(lambda: SyncLease.objects.get(account=account).owner == running_service.owner)
    before = Message.objects.get(user=account.user, subject="before idle")
    assert recorder.ids() == [before.pk]

    dovecot.deliver(mail_user, message("pushed"))
    wait_for(lambda: len(recorder.seen) == 2)
    pushed = Message.objects.get(user=account.user, subject="pushed")
    assert recorder.seen[1].message_ids == (pushed.pk,)
    assert recorder.seen[1].folder_id == _inbox(account).pk
    assert recorder.seen[1].source == "idle"
    running_service.stop()
    wait_for(lambda: not running_service.workers)
    assert len(recorder.seen) == 2


def test_sent_mail_is_announced_once_and_its_sent_copy_not_again(
    dovecot: DovecotServer, smtp_server: SmtpServer, recorder: Recorder
) -> None:
    smtp_server.relay_to_lmtp(dovecot)
    mail_a, mail_b = dovecot.add_user(), dovecot.add_user()
    a = make_sender(dovecot, smtp_server, mail_a)
    b = make_sender(dovecot, smtp_server, mail_b)
    recorder.seen.clear()

    sent = send_now(write(a, to=mail_b.address, subject="Announced"))
    own = Message.objects.get(user=a.user, message_id=sent.message_id)
    assert [(x.user_id, x.message_ids, x.folder_id, x.source) for x in recorder.seen] == [
        (a.user_id, (own.pk,), None, "sent")
    ]

    sync_account_once(a.pk)  # the Sent copy joins the row stored at send time
    assert Location.objects.filter(message=own, folder__role="sent").count() == 1
    sync_account_once(b.pk)
    received = Message.objects.get(user=b.user, message_id=sent.message_id)
    assert [(x.user_id, x.message_ids, x.source) for x in recorder.seen[1:]] == [
        (b.user_id, (received.pk,), "sync")
    ]
    assert recorder.seen[1].folder_id == _inbox(b).pk


@pytest.mark.parametrize("sync_first", [False, True])
def test_an_appended_draft_is_announced_once(
    dovecot: DovecotServer,
    mail_user: MailUser,
    settings: Any,
    recorder: Recorder,
    sync_first: bool,
) -> None:
    account = make_account(dovecot, mail_user, settings)
    dovecot.create_folder(mail_user, "Drafts")
    sync_account_once(account.pk)
    drafts = Folder.objects.get(account=account, name="Drafts")
    raw = message("my draft", msgid="<my.draft@Example.test>")

    services.do_append(account.user, drafts, raw, ["\\Draft", "\\Seen"])
    assert recorder.seen == []  # provisional until the server has it

    if sync_first:
        # Killed after the APPEND; a sync stores the server's copy before the retry.
        faults.arm("action_after_server")
        with pytest.raises(faults.SimulatedCrash):
            actions.run_account_actions(account.pk)
        sync_account_once(account.pk)
        _claims_run_out()
        assert account.pk in actions.sweep()
    actions.run_account_actions(account.pk)
    sync_account_once(account.pk)
    actions.run_account_actions(account.pk)
    sync_account_once(account.pk)

    stored = Message.objects.get(user=account.user, subject="my draft")
    assert Location.objects.filter(message=stored, folder=drafts).count() == 1
    assert [(x.message_ids, x.folder_id) for x in recorder.seen] == [((stored.pk,), drafts.pk)]
    assert recorder.seen[0].source == ("sync" if sync_first else "appended")
    assert_mirrored(dovecot, mail_user, account)
