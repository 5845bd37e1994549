"""A user's actions on one message end on the server as the user last asked: a
flag, read mark or move on a copy whose move has not reached the server yet waits
for that move (or is folded into it), and a dead worker's claim runs out."""

from __future__ import annotations

import datetime as dt
import email
import imaplib
import re
import threading
import time
from typing import Any

import pytest
from django.db import connections, transaction
from django.utils import timezone
from huey.contrib import djhuey

from posta.accounts.models import Folder
from posta.mail import services
from posta.mail.models import Location, Message, RemoteAction
from posta.mailproto.imap.session import Session
from posta.sync import actions, claims, tasks
from posta.sync.account_pass import sync_account_once
from tests.integration.test_sync_checker import assert_mirrored, make_account, message
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = pytest.mark.django_db(transaction=True)

_FETCH = re.compile(rb"UID (\d+) FLAGS \(([^)]*)\)")


@pytest.fixture(autouse=True)
def no_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test runs the executor itself; the queue is not consumed here."""
    monkeypatch.setattr("posta.sync.tasks.enqueue_account_actions", lambda ids: None)


def server_copies(
    dovecot: DovecotServer, user: MailUser, folders: list[str]
) -> dict[str, list[tuple[str, frozenset[str]]]]:
    """{Message-ID: [(folder, flags), ...]}: every copy of every message on the
    server, read over IMAP."""
    found: dict[str, list[tuple[str, frozenset[str]]]] = {}
    client = dovecot.imap(user)
    try:
        for name in folders:
            typ, _ = client.select(f'"{name}"', readonly=True)
            assert typ == "OK", name
            typ, data = client.uid("SEARCH", "ALL")
            if not data or not data[0]:
                continue
            typ, data = client.uid(
                "FETCH", "1:*", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"
            )
            assert typ == "OK", name
            for item in data:
                if not isinstance(item, tuple):
                    continue
                head = _FETCH.search(item[0])
                assert head is not None, item[0]
                flags = frozenset(f.decode() for f in head.group(2).split())
                mid = str(email.message_from_bytes(item[1])["Message-ID"]).strip()
                found.setdefault(mid, []).append((name, flags))
    finally:
        try:
            client.logout()
        except (imaplib.IMAP4.error, OSError):
            pass
    return found


def _setup(dovecot: DovecotServer, mail_user: MailUser, settings: Any) -> Any:
    account = make_account(dovecot, mail_user, settings)
    for name in ("Trash", "Archive", "Clienti"):
        dovecot.create_folder(mail_user, name)
    for i in range(3):
        dovecot.deliver(mail_user, message(f"c{i}"))
    sync_account_once(account.pk)
    return account


def _folder(account: Any, name: str) -> Folder:
    return Folder.objects.get(account=account, name=name)


def _run_out_claims() -> None:
    """What a lease's time does to a dead worker's claims, without waiting."""
    RemoteAction.objects.filter(state="running").update(
        lease_until=timezone.now() - claims.lease()
    )


def test_actions_on_a_copy_whose_move_is_running_wait_for_it(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    account = _setup(dovecot, mail_user, settings)
    user = account.user
    msg = Message.objects.get(user=user, subject="c0")
    inbox, archive, clienti = (_folder(account, n) for n in ("INBOX", "Archive", "Clienti"))

    assert services.do_move(user, [msg.pk], archive, from_folders=[inbox.pk]) == 1
    first = RemoteAction.objects.get(kind="move")
    # A worker takes the move and dies holding it.
    assert claims.claim(first.pk, "dead-worker")
    # Meanwhile the user flags it, moves it on, marks it read: none is dropped.
    assert services.do_set_flagged(user, [msg.pk], True) == 1
    assert services.do_move(user, [msg.pk], clienti, from_folders=[archive.pk]) == 1
    assert services.do_set_seen(user, [msg.pk], True) == 1
    chain = list(RemoteAction.objects.order_by("id"))
    assert [a.kind for a in chain] == ["move", "flag", "move", "seen"]
    assert [a.after_id for a in chain] == [None, chain[0].pk, chain[1].pk, chain[2].pk]
    loc = Location.objects.get(message=msg)
    assert (loc.folder_id, loc.uid, loc.flagged, loc.seen) == (clienti.pk, None, True, True)

    # While the dead worker's claim lasts, nothing runs: the others wait for it.
    assert actions.run_account_actions(account.pk) == 0
    assert RemoteAction.objects.filter(state="pending").count() == 3
    _run_out_claims()
    assert actions.run_account_actions(account.pk) == 4

    assert set(RemoteAction.objects.values_list("state", flat=True)) == {"done"}
    copies = server_copies(dovecot, mail_user, ["INBOX", "Archive", "Clienti"])
    assert copies["<c0@example.test>"] == [("Clienti", frozenset({"\\Seen", "\\Flagged"}))]
    assert len(copies) == 3
    loc.refresh_from_db()
    assert loc.folder_id == clienti.pk and loc.uid is not None
    assert loc.flagged and loc.seen
    sync_account_once(account.pk)
    assert_mirrored(dovecot, mail_user, account)


def test_a_second_move_before_the_worker_is_one_move(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    account = _setup(dovecot, mail_user, settings)
    user = account.user
    moved, back = (Message.objects.get(user=user, subject=s) for s in ("c0", "c1"))
    inbox, archive, clienti = (_folder(account, n) for n in ("INBOX", "Archive", "Clienti"))
    old_uid = Location.objects.get(message=back).uid

    services.do_move(user, [moved.pk, back.pk], archive, from_folders=[inbox.pk])
    assert services.do_move(user, [moved.pk], clienti, from_folders=[archive.pk]) == 1
    assert services.do_move(user, [back.pk], inbox, from_folders=[archive.pk]) == 1
    # A->B then B->C is one move A->C; A->B then B->A is no move at all.
    open_moves = RemoteAction.objects.filter(state="pending")
    assert [(a.message_id, a.target_folder_id) for a in open_moves] == [(moved.pk, clienti.pk)]
    home = Location.objects.get(message=back)
    assert (home.folder_id, home.uid) == (inbox.pk, old_uid)
    assert Folder.objects.get(pk=archive.pk).unread_count == 0

    assert actions.run_account_actions(account.pk) == 1
    copies = server_copies(dovecot, mail_user, ["INBOX", "Archive", "Clienti"])
    assert [f for f, _ in copies["<c0@example.test>"]] == ["Clienti"]
    assert [f for f, _ in copies["<c1@example.test>"]] == ["INBOX"]
    sync_account_once(account.pk)
    assert_mirrored(dovecot, mail_user, account)


def test_a_move_the_worker_began_is_not_folded(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    account = _setup(dovecot, mail_user, settings)
    user = account.user
    msg = Message.objects.get(user=user, subject="c2")
    inbox, archive = _folder(account, "INBOX"), _folder(account, "Archive")

    services.do_move(user, [msg.pk], archive, from_folders=[inbox.pk])
    first = RemoteAction.objects.get()
    assert claims.claim(first.pk, "dead-worker")
    _run_out_claims()
    # The sweep gives it back as pending, but it was tried once: it may have
    # reached the server, so the move back is a move of its own.
    actions.sweep()
    assert RemoteAction.objects.get(pk=first.pk).state == "pending"
    services.do_delete(user, [msg.pk], from_folders=[archive.pk])
    kinds = list(RemoteAction.objects.order_by("id").values_list("kind", "after"))
    assert kinds == [("move", None), ("delete", first.pk)]
    assert actions.run_account_actions(account.pk) == 2
    copies = server_copies(dovecot, mail_user, ["INBOX", "Archive", "Trash"])
    assert [f for f, _ in copies["<c2@example.test>"]] == ["Trash"]
    sync_account_once(account.pk)
    assert_mirrored(dovecot, mail_user, account)


def test_deleting_for_good_a_copy_still_on_its_way_to_trash(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    account = _setup(dovecot, mail_user, settings)
    user = account.user
    msg = Message.objects.get(user=user, subject="c1")
    trash = _folder(account, "Trash")

    services.do_delete(user, [msg.pk])
    assert claims.claim(RemoteAction.objects.get().pk, "dead-worker")
    # From Trash, delete is for good: the copy leaves the list at once, and the
    # EXPUNGE waits for the move to give it the copy's UID in Trash.
    assert services.do_delete(user, [msg.pk], from_folders=[trash.pk]) == 1
    assert not Location.objects.filter(message=msg).exists()
    _run_out_claims()
    assert actions.run_account_actions(account.pk) == 2
    copies = server_copies(dovecot, mail_user, ["INBOX", "Trash"])
    assert "<c1@example.test>" not in copies
    assert dovecot.uids(mail_user, "Trash") == []
    sync_account_once(account.pk)
    assert_mirrored(dovecot, mail_user, account)


def test_a_live_workers_claim_is_renewed_and_a_dead_ones_runs_out(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    account = _setup(dovecot, mail_user, settings)
    settings.POSTA_ACTION_LEASE_SECONDS = 1.5
    user = account.user
    msg = Message.objects.get(user=user, subject="c0")
    services.do_set_flagged(user, [msg.pk], True)
    action = RemoteAction.objects.get()

    assert claims.claim(action.pk, "live-worker")
    first = RemoteAction.objects.get(pk=action.pk).lease_until
    assert first is not None
    with claims.heartbeat("live-worker"):
        deadline = time.monotonic() + 30
        renewed = first
        while renewed <= first and time.monotonic() < deadline:
            time.sleep(0.1)
            renewed = RemoteAction.objects.get(pk=action.pk).lease_until or first
        assert renewed > first, "the heartbeat did not renew the claim"
        assert not claims.claim(action.pk, "other-worker")
        assert actions.run_account_actions(account.pk) == 0
    # The heartbeat stopped (the worker died): the claim runs out on its own.
    deadline = time.monotonic() + 30
    while not claims.claim(action.pk, "other-worker") and time.monotonic() < deadline:
        time.sleep(0.1)
    taken = RemoteAction.objects.get(pk=action.pk)
    assert taken.claimed_by == "other-worker" and taken.attempts == 2
    _run_out_claims()
    assert actions.run_account_actions(account.pk) == 1
    copies = server_copies(dovecot, mail_user, ["INBOX"])
    assert copies["<c0@example.test>"] == [("INBOX", frozenset({"\\Flagged"}))]


def test_two_workers_claiming_one_action_at_once(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    """The second claim waits for the first one's transaction, then sees the
    action running and backs off (on PostgreSQL too, where an UPDATE re-checks
    its conditions on the row it waited for)."""
    account = _setup(dovecot, mail_user, settings)
    msg = Message.objects.get(user=account.user, subject="c0")
    services.do_set_flagged(account.user, [msg.pk], True)
    services.do_set_seen(account.user, [msg.pk], True)
    first, second = RemoteAction.objects.order_by("id")
    results: dict[str, bool] = {}

    def other_worker() -> None:
        try:
            results["first"] = claims.claim(first.pk, "worker-b")
            results["second"] = claims.claim(second.pk, "worker-b")
        finally:
            connections.close_all()

    thread = threading.Thread(target=other_worker)
    with transaction.atomic():
        assert claims.claim(first.pk, "worker-a")
        thread.start()
        thread.join(timeout=0.5)  # it now waits for this transaction
    thread.join(timeout=60)
    assert results == {"first": False, "second": False}  # the second waits for the first
    assert RemoteAction.objects.get(pk=first.pk).claimed_by == "worker-a"
    assert RemoteAction.objects.get(pk=first.pk).attempts == 1


def test_a_pass_that_meets_a_claim_looks_again_when_it_runs_out(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    """No waiting for the minute sweep: the worker queues itself a look at the
    moment the other worker's claim runs out."""
    account = _setup(dovecot, mail_user, settings)
    msg = Message.objects.get(user=account.user, subject="c0")
    services.do_set_flagged(account.user, [msg.pk], True)
    action = RemoteAction.objects.get()
    assert claims.claim(action.pk, "dead-worker")
    until = RemoteAction.objects.get(pk=action.pk).lease_until
    assert until is not None
    djhuey.HUEY.flush()

    assert tasks.run_actions.call_local(account.pk) == 0
    queued = [*djhuey.HUEY.pending(), *djhuey.HUEY.scheduled()]
    looks = [t for t in queued if t.name.endswith("run_actions")]
    assert [t.args for t in looks] == [(account.pk,)]
    assert looks[0].eta >= until.astimezone(dt.UTC).replace(tzinfo=None)
    djhuey.HUEY.flush()


def test_a_move_another_session_made_meanwhile_is_done(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The copy leaves the source between the worker's check and its MOVE (a
    worker that lost its claim, another client): the server answers NO
    [EXPUNGEISSUED], and the move is done, not failed and undone."""
    account = _setup(dovecot, mail_user, settings)
    msg = Message.objects.get(user=account.user, subject="c1")
    archive = _folder(account, "Archive")
    uid = Location.objects.get(message=msg).uid
    services.do_move(account.user, [msg.pk], archive)
    original = Session.start

    def racing(client: Any) -> Any:
        session = original(client)
        real_move = session.client.move

        def move(uids: Any, folder: str) -> Any:
            other = dovecot.imap(mail_user)
            other.select("INBOX")
            typ, _ = other.uid("MOVE", str(uid), "Archive")
            assert typ == "OK"
            other.logout()
            return real_move(uids, folder)

        monkeypatch.setattr(session.client, "move", move)
        return session

    monkeypatch.setattr(Session, "start", racing)
    assert actions.run_account_actions(account.pk) == 1
    assert RemoteAction.objects.get().state == "done"
    copies = server_copies(dovecot, mail_user, ["INBOX", "Archive"])
    assert [f for f, _ in copies["<c1@example.test>"]] == ["Archive"]
    loc = Location.objects.get(message=msg)
    assert loc.folder_id == archive.pk and loc.uid is not None
