"""The sync process killed with SIGKILL at random points of a first sync, again and
again: after it finally completes, the database equals the server, no duplicates.

A subprocess needs a database it can share with the test: PostgreSQL only (the
SQLite test database lives in this process's memory).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from posta.mail.models import Location, Message
from posta.sync.models import SyncLease
from tests.integration.test_sync_checker import assert_mirrored, make_account, message
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _sync_command(account_id: int) -> list[str]:
    command = ["sync_service", "--once", "--account", str(account_id)]
    return [sys.executable, "-m", "posta.cli", *command]


def _env(settings: Any) -> dict[str, str]:
    db = connection.settings_dict
    env = dict(os.environ)
    if connection.vendor == "sqlite":
        env["POSTA_DATABASE_URL"] = f"sqlite:///{db['NAME']}"
    else:
        env["POSTA_DATABASE_URL"] = (
            f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
        )
    env["POSTA_ALLOWED_MAIL_HOSTS"] = ",".join(settings.POSTA_ALLOWED_MAIL_HOSTS)
    env["POSTA_ENCRYPTION_KEYS"] = ",".join(settings.POSTA_ENCRYPTION_KEYS)
    return env


def _expire_leases() -> None:
    """A killed process's lease would expire within LEASE_SECONDS; skip the wait."""
    SyncLease.objects.update(expires_at=timezone.now() - timedelta(seconds=1))


def test_first_sync_killed_at_random_points(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.skip("needs a database shared with a subprocess")
    account = make_account(dovecot, mail_user, settings)
    dovecot.create_folder(mail_user, "Second")
    for i in range(1500):
        dovecot.deliver(mail_user, message(f"k{i}", body="y" * 100))
    for i in range(20):
        dovecot.deliver(mail_user, message(f"s{i}"), folder="Second")
    env = _env(settings)
    env["POSTA_SYNC_BATCH"] = "100"
    rng = random.Random(1234)
    kills = 0
    for _ in range(10):
        _expire_leases()
        proc = subprocess.Popen(_sync_command(account.pk), env=env)
        time.sleep(rng.uniform(0.3, 2.0))
        if proc.poll() is None:
            proc.kill()
            kills += 1
        proc.wait(timeout=60)
    # And a few deaths at the named point right after a FETCH, before its write.
    for n in (1, 3):
        _expire_leases()
        env_kill = dict(env, POSTA_KILL_AT=f"sync_batch_fetched:{n}")
        subprocess.run(_sync_command(account.pk), env=env_kill, timeout=120, check=False)
    _expire_leases()
    result = subprocess.run(_sync_command(account.pk), env=env, timeout=300, check=False)
    assert result.returncode == 0
    assert kills > 0
    assert_mirrored(dovecot, mail_user, account)
    assert Message.objects.filter(user=account.user).count() == 1520
    assert Location.objects.filter(folder__account=account).count() == 1520
