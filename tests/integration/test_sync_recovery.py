"""Recovery after a server outage: a healthy account's pause is capped, and the
first connection back into a server wakes the others of that server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from posta.accounts.models import Account
from posta.mail.models import Message
from posta.sync import account_pass, reconnect, service, watchers
from posta.sync.reconnect import HOST_WAKEUPS, Failure
from tests.integration.test_sync_checker import make_account, message
from tests.integration.test_sync_service import wait_for
from tests.servers.dovecot import DovecotServer, MailUser
from tests.servers.net import OutageProxy

pytestmark = pytest.mark.django_db(transaction=True)

# Far longer than any wait below: without the cap, or without the wake-up, the
# first pause after a dropped connection is at least LONG_BASE seconds
# (backoff_base * 2**1, times the jitter's 0.5).
LONG_BASE = 30.0


@pytest.fixture
def proxy(dovecot: DovecotServer) -> Iterator[OutageProxy]:
    outage = OutageProxy(dovecot.imap_port)
    yield outage
    outage.close()


def through(proxy: OutageProxy, account: Account) -> None:
    Account.objects.filter(pk=account.pk).update(imap_port=proxy.port)


def timing(*, backoff_base: float) -> watchers.Timing:
    return watchers.Timing(
        idle_check=0.2, resync=3600, backoff_base=backoff_base, wake_spread=0.5
    )


def has(account: Account, subject: str) -> bool:
    return Message.objects.filter(user=account.user, subject=subject).exists()


def synced(account: Account, subject: str) -> None:
    """Wait until `subject` is stored and the account's pass completed (healthy)."""
    wait_for(lambda: has(account, subject))
    wait_for(lambda: Account.objects.get(pk=account.pk).sync_state == "idle")


@pytest.fixture
def workers() -> Iterator[list[service.AccountWorker]]:
    started: list[service.AccountWorker] = []
    yield started
    for worker in started:
        worker.stop()
    for worker in started:
        worker.join(timeout=30)


def start(
    started: list[service.AccountWorker], account: Account, *, backoff_base: float
) -> service.AccountWorker:
    worker = service.AccountWorker(account.pk, timing=timing(backoff_base=backoff_base))
    started.append(worker)
    worker.start()
    return worker


@pytest.mark.slow
def test_a_healthy_account_is_back_within_the_cap_after_an_outage(
    dovecot: DovecotServer,
    mail_user: MailUser,
    settings: Any,
    proxy: OutageProxy,
    workers: list[service.AccountWorker],
) -> None:
    settings.POSTA_IDLE_FOLDERS = 0
    settings.POSTA_SYNC_RECONNECT_CAP = 0.5
    account = make_account(dovecot, mail_user, settings)
    through(proxy, account)
    dovecot.deliver(mail_user, message("before"))
    worker = start(workers, account, backoff_base=LONG_BASE)
    synced(account, "before")

    proxy.down()  # the IDLE connection drops; reconnects find no server
    # Four failures in a row: uncapped, the pauses between them alone would take
    # at least 30 + 60 + 120 s, and the next one 240 s.
    wait_for(lambda: worker.failures >= 4 and proxy.refused >= 3)
    assert Account.objects.get(pk=account.pk).last_error_code == "network_error"

    proxy.up()
    dovecot.deliver(mail_user, message("after"))
    wait_for(lambda: has(account, "after"), timeout=20)
    wait_for(lambda: worker.failures == 0)  # a full pass completed again
    assert worker.is_alive()


@pytest.mark.slow
def test_a_reconnect_wakes_the_other_accounts_of_the_same_server(
    dovecot: DovecotServer,
    settings: Any,
    proxy: OutageProxy,
    workers: list[service.AccountWorker],
) -> None:
    settings.POSTA_IDLE_FOLDERS = 0
    # A cap that does not help within this test: only the wake-up can.
    settings.POSTA_SYNC_RECONNECT_CAP = 600
    quick_user, slow_user = dovecot.add_user(), dovecot.add_user()
    quick_account = make_account(dovecot, quick_user, settings)
    slow_account = make_account(dovecot, slow_user, settings)
    for account, user in ((quick_account, quick_user), (slow_account, slow_user)):
        through(proxy, account)
        dovecot.deliver(user, message(f"before {user.name}"))
    quick = start(workers, quick_account, backoff_base=0.05)
    slow = start(workers, slow_account, backoff_base=LONG_BASE)
    synced(quick_account, f"before {quick_user.name}")
    synced(slow_account, f"before {slow_user.name}")

    proxy.down()
    server = reconnect.server_of(Account.objects.get(pk=slow_account.pk))
    # `slow` failed once and pauses 30 s or more; `quick` keeps trying.
    wait_for(lambda: slow.failures >= 1 and HOST_WAKEUPS.pausing(server) >= 1)
    wait_for(lambda: quick.failures >= 3)

    proxy.up()
    dovecot.deliver(slow_user, message("after"))
    # `quick` gets back in on its own timer and wakes `slow` out of its pause.
    wait_for(lambda: has(slow_account, "after"), timeout=20)
    assert slow.woken


def test_the_cap_applies_to_outages_of_healthy_accounts_only(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    settings.POSTA_SYNC_RECONNECT_CAP = 45
    account = make_account(dovecot, mail_user, settings)
    # Never synced: nothing says the account works.
    assert reconnect.cap_for(account.pk, Failure.OUTAGE, refused_before=False) is None
    account_pass.record_success(account.pk)
    assert reconnect.cap_for(account.pk, Failure.OUTAGE, refused_before=False) == 45
    assert reconnect.cap_for(account.pk, Failure.OUTAGE, refused_before=True) is None
    for kind in (Failure.THROTTLED, Failure.REFUSED, Failure.OTHER):
        assert reconnect.cap_for(account.pk, kind, refused_before=False) is None
    # The last success longer ago than the window: the full backoff again.
    Account.objects.filter(pk=account.pk).update(
        last_success_at=timezone.now() - reconnect.HEALTHY_WINDOW - timedelta(minutes=1)
    )
    assert reconnect.cap_for(account.pk, Failure.OUTAGE, refused_before=False) is None


def test_a_refused_login_is_not_capped(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    """A healthy account whose password stopped working still backs off fully."""
    from posta.core.crypto import seal

    settings.POSTA_SYNC_RECONNECT_CAP = 0.01
    account = make_account(dovecot, mail_user, settings)
    account_pass.record_success(account.pk)
    Account.objects.filter(pk=account.pk).update(password_secret=seal("wrong"))
    worker = service.AccountWorker(account.pk, timing=timing(backoff_base=LONG_BASE))
    delay = worker._connected_once()  # one attempt, on this thread
    assert Account.objects.get(pk=account.pk).last_error_code == "auth_failed"
    assert delay is not None and delay >= LONG_BASE
    assert worker.wake_mark is None  # no wake-up ends this pause either
