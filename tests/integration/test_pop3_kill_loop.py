"""The POP3 import of 2,000 messages while a real `posta worker` process (Huey)
is SIGKILLed at random instants, at least 50 times during the import: at the end
the target folder holds each message exactly once and the POP3 mailbox is empty
(untouched in keep mode, on a smaller mailbox).

The worker is a separate process sharing the test database and the Huey queue
file. Its lease on the source lasts 1 s (POSTA_POP3_LEASE_SECONDS) and a batch is
100 messages (POSTA_POP3_BATCH), so a killed worker's source is taken over within
the run and kills fall between and inside batches; production uses 60 s and 500.
"""

from __future__ import annotations

import random
import re
import smtplib
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from huey.contrib import djhuey

from posta.rules import pop3_tasks
from posta.rules.pop3_models import Pop3Import, Pop3Source
from tests.integration.pop3_setup import make_source, make_target, numbered
from tests.integration.test_scheduled_send import REPO, worker_env
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

_MESSAGE_ID = re.compile(rb"Message-ID:\s*<([^>]+)>", re.I)


def _fill(dovecot: DovecotServer, user: MailUser, count: int) -> None:
    """`count` messages delivered to `user` over one LMTP connection."""
    with smtplib.LMTP(dovecot.host, dovecot.lmtp_port, timeout=60) as lmtp:
        for i in range(count):
            lmtp.sendmail("alice@example.test", [user.name], numbered(i))


def _message_ids(dovecot: DovecotServer, user: MailUser) -> Counter[str]:
    client = dovecot.imap(user)
    try:
        client.select("INBOX", readonly=True)
        typ, data = client.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        assert typ == "OK", data
        found: Counter[str] = Counter()
        for item in data:
            if isinstance(item, tuple):
                match = _MESSAGE_ID.search(item[1])
                found[match.group(1).decode() if match else "(none)"] += 1
        return found
    finally:
        client.logout()


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "posta.cli", "worker"],
            env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
        )


def _wait(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


@pytest.mark.parametrize(
    ("total", "kills", "keep"), [(2000, 50, False), (600, 10, True)], ids=["delete", "keep"]
)
def test_import_survives_sigkill_of_the_worker(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, tmp_path: Path,
    total: int, kills: int, keep: bool,
) -> None:
    account = make_target(dovecot, mail_user, settings)
    pop_user = dovecot.add_user()
    _fill(dovecot, pop_user, total)
    source = make_source(account, host=dovecot.host, port=dovecot.pop3_port,
                         username=pop_user.name, password=pop_user.password,
                         keep_on_server=keep)
    djhuey.HUEY.flush()  # items other tests left in the shared queue file
    env = worker_env(
        POSTA_ALLOWED_MAIL_HOSTS=",".join(settings.POSTA_ALLOWED_MAIL_HOSTS),
        POSTA_POP3_LEASE_SECONDS="1",
        POSTA_POP3_BATCH="100",
        POSTA_LOG_LEVEL="WARNING",
    )
    log = tmp_path / "worker.log"
    rng = random.Random(20261202 + total)
    stored = Pop3Import.objects.filter(source=source, state="stored")
    touched = Pop3Import.objects.filter(source=source)
    killed = mid_import = 0
    worker = _start_worker(env, log)
    try:
        # Until `kills` kills have fallen while the import was under way (a faster
        # machine imports more per life, so the number of lives is not fixed).
        while mid_import < kills and stored.count() < total:
            pop3_tasks.fetch_pop3_source(source.pk)  # what "Fetch now" or the sweep does
            before = stored.count()
            # Kill it once this life has stored something, at a random instant after.
            _wait(lambda before=before: touched.filter(state="stored").count() > before,
                  timeout=30)
            time.sleep(rng.uniform(0, 0.1))
            mid_import += stored.count() < total
            worker.kill()
            worker.wait(timeout=30)
            killed += 1
            worker = _start_worker(env, log)
        pop3_tasks.fetch_pop3_source(source.pk)
        done = _wait(
            lambda: stored.count() == total
            and not Pop3Source.objects.filter(pk=source.pk, running=True).exists()
            and (keep or dovecot.status(pop_user, "INBOX")["messages"] == 0),
            timeout=300,
        )
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    ids = _message_ids(dovecot, mail_user)
    doubled = {mid: n for mid, n in ids.items() if n > 1}
    left = dovecot.status(pop_user, "INBOX")["messages"]
    source.refresh_from_db()
    print(
        f"\npop3 kill loop: messages={total} kills={killed} mid_import={mid_import}"
        f" in_folder={sum(ids.values())} doubled={len(doubled)} left_on_pop3={left}"
        f" imported_count={source.imported_count}"
    )
    assert done, log.read_text()[-3000:]
    assert mid_import >= kills, "kills should fall during the import"
    assert doubled == {}
    assert set(ids) == {f"pop3-{i}@example.test" for i in range(total)}
    assert left == (total if keep else 0)
    assert source.imported_count == total
    assert not Pop3Import.objects.filter(source=source, state="pending").exists()
