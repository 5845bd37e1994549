"""The sync service: IDLE push, leases, and a connection cut in the middle of a FETCH."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import OperationalError
from django.utils import timezone

from posta.accounts.models import Account
from posta.mail.models import Message
from posta.mailproto.errors import MailError
from posta.sync import account_pass, folder_state, leases, service, watchers
from posta.sync.models import SyncLease
from tests.integration.test_sync_checker import assert_mirrored, make_account, message
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = pytest.mark.django_db(transaction=True)


def wait_for(condition: Callable[[], bool], *, timeout: float = 30.0) -> None:
    """Poll `condition` until true. A read that meets the service thread's write on
    SQLite may fail with "database is locked": such a read is simply tried again."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except OperationalError:
            pass
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


@pytest.fixture
def running_service() -> Iterator[service.SyncService]:
    svc = service.SyncService(tick=0.2, timing=watchers.Timing(idle_check=0.2, resync=3600))
    thread = threading.Thread(target=svc.run, daemon=True)
    thread.start()
    yield svc
    svc.stop()
    thread.join(timeout=30)


@pytest.mark.slow
def test_idle_delivers_new_mail(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, running_service: Any
) -> None:
    account = make_account(dovecot, mail_user, settings)
    dovecot.deliver(mail_user, message("before"))
    wait_for(lambda: Message.objects.filter(user=account.user, subject="before").exists())
    wait_for(lambda: Account.objects.get(pk=account.pk).sync_state == "idle")
    wait_for(lambda: SyncLease.objects.get(account=account).owner == running_service.owner)
    dovecot.deliver(mail_user, message("pushed"))
    wait_for(lambda: Message.objects.filter(user=account.user, subject="pushed").exists())
    wait_for(
        lambda: Message.objects.get(user=account.user, subject="pushed").body_state == "stored"
    )
    # "Sync now" picks up a change in another folder without waiting for a resync.
    dovecot.create_folder(mail_user, "Other")
    dovecot.deliver(mail_user, message("elsewhere"), folder="Other")
    wait_for(
        lambda: Account.objects.filter(pk=account.pk).update(sync_requested_at=timezone.now())
        == 1
    )
    wait_for(lambda: Message.objects.filter(user=account.user, subject="elsewhere").exists())
    running_service.stop()
    wait_for(lambda: not running_service.workers)
    assert_mirrored(dovecot, mail_user, account)


def test_leases_exclude_a_second_owner_until_expiry(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    account = make_account(dovecot, mail_user, settings)
    assert leases.try_claim(account.pk, "one")
    assert not leases.try_claim(account.pk, "two")
    assert leases.try_claim(account.pk, "one")  # renewal by the holder
    SyncLease.objects.filter(account=account).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert leases.try_claim(account.pk, "two")  # a dead owner's account is taken over
    assert leases.renew("one", [account.pk]) == set()
    assert leases.renew("two", [account.pk]) == {account.pk}


def test_wrong_password_pauses_the_account_after_repeated_refusals(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    from posta.core.crypto import seal

    account = make_account(dovecot, mail_user, settings)
    Account.objects.filter(pk=account.pk).update(password_secret=seal("wrong"))
    worker = service.AccountWorker(account.pk, timing=watchers.Timing(backoff_base=0.01))
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive()
    account.refresh_from_db()
    assert account.sync_state == Account.SyncState.PAUSED
    assert account.last_error_code == "auth_failed"
    assert account.last_error_at is not None
    assert account.pk not in leases.candidate_accounts()
    Account.objects.filter(pk=account.pk).update(sync_requested_at=timezone.now())
    assert account.pk in leases.candidate_accounts()


class CuttingProxy:
    """A loopback TCP proxy that drops the connection after `limit` bytes from the
    server, once; later connections pass untouched."""

    def __init__(self, port: int, limit: int) -> None:
        self.target = port
        self.limit = limit
        self.cuts = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            cut = self.cuts == 0
            if cut:
                self.cuts += 1
            threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, cut), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, cut: bool) -> None:
        sent = 0
        try:
            while True:
                data = src.recv(4096)
                if not data:
                    break
                if cut and sent + len(data) > self.limit:
                    dst.sendall(data[: self.limit - sent])
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def close(self) -> None:
        self.listener.close()


@pytest.mark.slow
def test_connection_cut_mid_fetch_resumes_and_completes(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = make_account(dovecot, mail_user, settings)
    for i in range(1200):
        dovecot.deliver(mail_user, message(f"bulk {i}", body="x" * 200))
    proxy = CuttingProxy(dovecot.imap_port, limit=150_000)
    try:
        Account.objects.filter(pk=account.pk).update(imap_port=proxy.port)
        monkeypatch.setattr(folder_state, "HEADER_BATCH", 300)
        with pytest.raises(MailError):
            account_pass.sync_account_once(account.pk)
        assert proxy.cuts == 1
        stored = Message.objects.filter(user=account.user).count()
        assert 0 < stored < 1200
        account_pass.sync_account_once(account.pk)
    finally:
        proxy.close()
    assert_mirrored(dovecot, mail_user, account)
    assert Message.objects.filter(user=account.user).count() == 1200
