"""Push beyond INBOX: IDLE watchers on other folders, their budget, and the folder lock."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.utils import timezone

from posta.accounts.models import Account, Folder
from posta.mail.models import Message
from posta.mailproto.imap.session import Session
from posta.sync import account_pass, folder_state, service, watchers
from tests.integration.test_sync_checker import make_account, message
from tests.integration.test_sync_service import wait_for
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def start_service() -> Iterator[Callable[[], service.SyncService]]:
    """Start a SyncService whose resync never comes during a test: only IDLE (or a
    "sync now") can bring mail in after the first pass. Stopped at teardown."""
    started: list[tuple[service.SyncService, threading.Thread]] = []

    def start() -> service.SyncService:
        svc = service.SyncService(
            tick=0.2, timing=watchers.Timing(idle_check=0.2, resync=3600, backoff_base=0.1)
        )
        thread = threading.Thread(target=svc.run, daemon=True)
        thread.start()
        started.append((svc, thread))
        return svc

    yield start
    for svc, thread in started:
        svc.stop()
        thread.join(timeout=30)


def worker_of(svc: service.SyncService, account: Account) -> service.AccountWorker | None:
    return svc.workers.get(account.pk)


def chosen(svc: service.SyncService, account: Account) -> tuple[int, ...] | None:
    """The folders the account thread chose at its last full pass (None before)."""
    worker = worker_of(svc, account)
    return worker.chosen if worker is not None else None


def watching(svc: service.SyncService, account: Account) -> set[int]:
    """Folders whose watcher is connected and waits in IDLE."""
    worker = worker_of(svc, account)
    if worker is None:
        return set()
    with worker.watchers_lock:
        return {f for f, w in worker.watchers.items() if w.is_alive() and w.waiting.is_set()}


def watcher_threads(account: Account) -> list[threading.Thread]:
    prefix = f"posta-idle-{account.pk}-"
    return [t for t in threading.enumerate() if t.name.startswith(prefix)]


def imap_connections(dovecot: DovecotServer, user: MailUser) -> int:
    """How many IMAP connections the server counts for `user` (``doveadm who``)."""
    lines = dovecot.doveadm("who", "-1", user.name).splitlines()
    return sum(1 for line in lines if line.split()[:2] == [user.name, "imap"])


def folder_named(account: Account, name: str) -> Folder:
    return Folder.objects.get(account=account, name=name)


def dated(subject: str, day: int) -> bytes:
    return message(subject, date=f"{day:02d} Mar 2026 10:00:00 +0100")


def test_busiest_folders_first_ties_by_role(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    account = make_account(dovecot, mail_user, settings)
    for name in ("Clienti", "Fornitori", "Junk", "Sent", "Trash", "Vuota"):
        dovecot.create_folder(mail_user, name)
    dovecot.deliver(mail_user, dated("inbox newest", 9))
    dovecot.deliver(mail_user, dated("thrown away", 8), folder="Trash")
    dovecot.deliver(mail_user, dated("client", 6), folder="Clienti")
    dovecot.deliver(mail_user, dated("old client", 1), folder="Clienti")
    dovecot.deliver(mail_user, dated("supplier", 4), folder="Fornitori")
    dovecot.deliver(mail_user, dated("spam", 4), folder="Junk")
    account_pass.sync_account_once(account.pk)
    ids = {f.name: f.pk for f in Folder.objects.filter(account=account)}
    expected = [ids[n] for n in ("Clienti", "Junk", "Fornitori", "Sent", "Vuota")]
    assert watchers.folders_to_watch(account.pk, budget=10) == expected
    assert watchers.folders_to_watch(account.pk, budget=1) == expected[:1]
    assert watchers.folders_to_watch(account.pk, budget=0) == []


def test_mail_filed_into_another_folder_is_pushed(
    dovecot: DovecotServer,
    mail_user: MailUser,
    settings: Any,
    start_service: Callable[[], service.SyncService],
) -> None:
    account = make_account(dovecot, mail_user, settings)
    dovecot.create_folder(mail_user, "Clienti")
    svc = start_service()
    wait_for(lambda: chosen(svc, account) is not None)
    clienti = folder_named(account, "Clienti")
    wait_for(lambda: watching(svc, account) == {clienti.pk})
    # The resync is an hour away: only the watcher's IDLE can bring this in.
    dovecot.deliver(mail_user, message("filed by a rule"), folder="Clienti")
    wait_for(lambda: Message.objects.filter(user=account.user, subject="filed by a rule").exists())
    wait_for(
        lambda: Message.objects.get(user=account.user, subject="filed by a rule").body_state
        == Message.BodyState.STORED
    )


def test_budget_of_one_watches_the_busiest_folder_and_follows_activity(
    dovecot: DovecotServer,
    mail_user: MailUser,
    settings: Any,
    start_service: Callable[[], service.SyncService],
) -> None:
    settings.POSTA_IDLE_FOLDERS = 1
    account = make_account(dovecot, mail_user, settings)
    for name, day in (("Clienti", 5), ("Fornitori", 3), ("Progetti", 1)):
        dovecot.create_folder(mail_user, name)
        dovecot.deliver(mail_user, dated(f"in {name}", day), folder=name)
    svc = start_service()
    wait_for(lambda: chosen(svc, account) is not None)
    clienti = folder_named(account, "Clienti")
    assert chosen(svc, account) == (clienti.pk,)
    wait_for(lambda: watching(svc, account) == {clienti.pk})
    assert len(watcher_threads(account)) == 1
    wait_for(lambda: imap_connections(dovecot, mail_user) == 2)  # INBOX + one watcher

    # Progetti becomes the busiest; the next full pass ("sync now") moves the watcher.
    progetti = folder_named(account, "Progetti")
    dovecot.deliver(mail_user, dated("new project", 9), folder="Progetti")
    Account.objects.filter(pk=account.pk).update(sync_requested_at=timezone.now())
    wait_for(lambda: chosen(svc, account) == (progetti.pk,))
    wait_for(lambda: watching(svc, account) == {progetti.pk})
    assert [t.name for t in watcher_threads(account)] == [
        f"posta-idle-{account.pk}-{progetti.pk}"
    ]
    wait_for(lambda: imap_connections(dovecot, mail_user) == 2)

    # Stopping the service ends the watchers and logs their connections out.
    svc.stop()
    wait_for(lambda: not svc.workers)
    assert watcher_threads(account) == []
    wait_for(lambda: imap_connections(dovecot, mail_user) == 0)


def test_budget_of_zero_starts_no_watcher(
    dovecot: DovecotServer,
    mail_user: MailUser,
    settings: Any,
    start_service: Callable[[], service.SyncService],
) -> None:
    settings.POSTA_IDLE_FOLDERS = 0
    account = make_account(dovecot, mail_user, settings)
    dovecot.create_folder(mail_user, "Clienti")
    dovecot.deliver(mail_user, message("client"), folder="Clienti")
    svc = start_service()
    wait_for(lambda: chosen(svc, account) == ())
    worker = worker_of(svc, account)
    assert worker is not None and worker.watchers == {}
    assert watcher_threads(account) == []
    wait_for(lambda: imap_connections(dovecot, mail_user) == 1)


def test_folder_lock_serializes_and_hands_over_the_stored_state(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    account = make_account(dovecot, mail_user, settings)
    account_pass.sync_account_once(account.pk)
    inbox = folder_named(account, "INBOX")
    locks = watchers.FolderLocks()
    assert locks.lock_of(inbox.pk) is locks.lock_of(inbox.pk)
    assert locks.lock_of(inbox.pk) is not locks.lock_of(inbox.pk + 1)

    stale = Folder.objects.get(pk=inbox.pk)
    seen: list[int | None] = []

    def second_syncer() -> None:
        with locks.syncing(stale):
            seen.append(stale.uidnext)

    with locks.syncing(inbox):
        other = threading.Thread(target=second_syncer)
        other.start()
        # What this holder stores before letting go is what the next one starts from.
        Folder.objects.filter(pk=inbox.pk).update(uidnext=4242)
    other.join(timeout=30)
    assert seen == [4242]


def test_full_pass_and_watcher_never_sync_one_folder_at_once(
    dovecot: DovecotServer,
    mail_user: MailUser,
    settings: Any,
    start_service: Callable[[], service.SyncService],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    account = make_account(dovecot, mail_user, settings)
    dovecot.create_folder(mail_user, "Clienti")
    active: Counter[int] = Counter()
    overlaps: list[int] = []
    unlocked: list[int] = []
    syncers: dict[int, set[str]] = {}
    guard = threading.Lock()

    def watched(sync: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(session: Session, folder: Folder, **kwargs: Any) -> Any:
            if folder.name == "INBOX":
                return sync(session, folder, **kwargs)
            with guard:
                active[folder.pk] += 1
                if active[folder.pk] > 1:
                    overlaps.append(folder.pk)
                if not watchers.FOLDER_LOCKS.lock_of(folder.pk).locked():
                    unlocked.append(folder.pk)
                syncers.setdefault(folder.pk, set()).add(threading.current_thread().name)
            try:
                return sync(session, folder, **kwargs)
            finally:
                with guard:
                    active[folder.pk] -= 1

        return wrapper

    monkeypatch.setattr(folder_state, "sync_folder", watched(folder_state.sync_folder))
    monkeypatch.setattr(folder_state, "sync_selected", watched(folder_state.sync_selected))
    svc = start_service()
    wait_for(lambda: chosen(svc, account) is not None)
    clienti = folder_named(account, "Clienti")
    wait_for(lambda: watching(svc, account) == {clienti.pk})
    for i in range(6):
        # Mail for the watcher while a "sync now" sends the full pass over the folder.
        dovecot.deliver(mail_user, message(f"client {i}"), folder="Clienti")
        Account.objects.filter(pk=account.pk).update(sync_requested_at=timezone.now())
    wait_for(
        lambda: Message.objects.filter(user=account.user, subject__startswith="client ").count()
        == 6
    )
    assert overlaps == []
    assert unlocked == []
    names = syncers[clienti.pk]
    assert any(n.startswith("posta-sync-") for n in names)
    assert any(n.startswith("posta-idle-") for n in names)
