"""The scale-out queue: a flag set in one process reaches Dovecot through Redis and a
separate `posta worker` process (Huey on Redis, POSTA_REDIS_URL)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection

from posta.mail.models import Message
from posta.sync.account_pass import sync_account_once
from tests.integration.test_sync_checker import make_account, message
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

REDIS = ("127.0.0.1", 6379)
REDIS_URL = "redis://127.0.0.1:6379/13"


def _redis_up() -> bool:
    try:
        with socket.create_connection(REDIS, timeout=1):
            return True
    except OSError:
        return False


def _env() -> dict[str, str]:
    conf = connection.settings_dict
    if connection.vendor == "sqlite":
        if connection.is_in_memory_db():
            pytest.skip("needs a database shared with a subprocess")
        url = f"sqlite:///{conf['NAME']}"
    else:
        url = (
            f"postgres://{conf['USER'] or 'postgres'}@{conf['HOST']}:{conf['PORT']}/{conf['NAME']}"
        )
    env = dict(os.environ)
    env.update(
        POSTA_DATABASE_URL=url,
        POSTA_REDIS_URL=REDIS_URL,
        POSTA_ALLOWED_MAIL_HOSTS=",".join(django_settings.POSTA_ALLOWED_MAIL_HOSTS),
        POSTA_ENCRYPTION_KEYS=",".join(django_settings.POSTA_ENCRYPTION_KEYS),
    )
    return env


def test_flag_reaches_the_server_through_redis_and_a_worker_process(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    if not _redis_up():
        pytest.skip("no Redis on 127.0.0.1:6379")
    account = make_account(dovecot, mail_user, settings)
    dovecot.deliver(mail_user, message("over redis"))
    sync_account_once(account.pk)
    msg = Message.objects.get(user=account.user, subject="over redis")
    env = _env()
    cli = [sys.executable, "-m", "posta.cli"]
    # Empty the test's Redis database, then let another process flag the message:
    # its intent goes into the Redis queue, not into this process.
    script = (
        "import redis; redis.Redis.from_url('" + REDIS_URL + "').flushdb();"
        "from posta.users.models import User; from posta.mail import services;"
        f"services.do_set_flagged(User.objects.get(pk={account.user_id}), [{msg.pk}], True)"
    )
    subprocess.run([*cli, "shell", "-c", script], env=env, check=True, timeout=60)
    import redis

    queued = redis.Redis.from_url(REDIS_URL)
    lists = [key for key in queued.keys("huey*") if queued.type(key) == b"list"]
    assert sum(queued.llen(key) for key in lists) >= 1, "nothing was queued in Redis"
    worker = subprocess.Popen([*cli, "worker"], env=env)
    try:
        deadline = time.monotonic() + 60
        flagged = False
        while time.monotonic() < deadline and not flagged:
            client = dovecot.imap(mail_user)
            client.select("INBOX", readonly=True)
            _typ, data = client.uid("SEARCH", "FLAGGED")
            client.logout()
            flagged = bool(data and data[0].split())
            if not flagged:
                time.sleep(0.2)
        assert flagged, "the worker on Redis did not carry the flag to the server"
    finally:
        worker.terminate()
        worker.wait(timeout=30)
