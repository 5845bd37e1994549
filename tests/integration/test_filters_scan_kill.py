""""Apply to existing mail" over 2,000 messages while the process running it is
SIGKILLed again and again: every matching message is acted on exactly once (one
intent each), none of the others, and the job ends with every message counted."""

from __future__ import annotations

import imaplib
import random
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from posta.accounts.models import Folder
from posta.mail.models import Message, RemoteAction
from posta.rules import scan
from posta.rules.models import ScanJob
from posta.sync.account_pass import sync_account_once
from tests.filters_harness import save_rule
from tests.integration.test_scheduled_send import REPO, worker_env
from tests.integration.test_sync_checker import make_account
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

MESSAGES = 2000
KILLS = 8
RUNNER = "import django; django.setup(); from posta.rules import scan; scan.run_scan({job})"


def _append_all(dovecot: DovecotServer, user: MailUser, folder: str) -> None:
    client = imaplib.IMAP4(dovecot.host, dovecot.imap_port, timeout=60)
    client.login(user.name, user.password)
    try:
        for i in range(MESSAGES):
            msg = EmailMessage()
            msg["From"] = "Alice <alice@example.test>"
            msg["To"] = user.address
            msg["Subject"] = f"{'even' if i % 2 == 0 else 'odd'} {i}"
            msg["Message-ID"] = f"<scan-{i}@example.test>"
            msg["Date"] = "Mon, 02 Mar 2026 10:00:00 +0100"
            msg.set_content(f"message {i}\n")
            client.append(folder, "", None, msg.as_bytes())
    finally:
        client.logout()


def _runner(env: dict[str, str], job_id: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-c", RUNNER.format(job=job_id)],
            env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
        )


def test_a_scan_killed_again_and_again_acts_on_each_message_once(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("posta.sync.tasks.enqueue_account_actions", lambda ids: None)
    account = make_account(dovecot, mail_user, settings)
    dovecot.create_folder(mail_user, "Archive")
    _append_all(dovecot, mail_user, "Archive")
    for _pass in range(4):  # bodies come 1,000 a pass
        sync_account_once(account.pk)
    archive = Folder.objects.get(account=account, name="Archive")
    assert Message.objects.filter(user=account.user, body_state="stored").count() == MESSAGES
    save_rule(account, "even ones", [{"field": "subject", "op": "begins", "value": "even "}],
              [{"kind": "flag"}])
    job = scan.do_start_scan(account.user, archive.pk)
    env = worker_env(
        POSTA_ALLOWED_MAIL_HOSTS=",".join(settings.POSTA_ALLOWED_MAIL_HOSTS),
        POSTA_ACTION_LEASE_SECONDS="1",
        POSTA_LOG_LEVEL="WARNING",
    )
    log = tmp_path / "scan.log"
    rng = random.Random(20261202)
    kills = 0
    while kills < KILLS:
        before = ScanJob.objects.get(pk=job.pk).done
        runner = _runner(env, job.pk, log)
        # Killed at a random moment after it made some progress of its own.
        want = before + rng.randint(1, MESSAGES // (KILLS + 2))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and ScanJob.objects.get(pk=job.pk).done < want:
            if runner.poll() is not None:
                break
            time.sleep(0.01)
        time.sleep(rng.uniform(0, 0.05))
        runner.kill()
        runner.wait(timeout=30)
        kills += 1
        time.sleep(1.1)  # the dead runner's claim runs out
        if ScanJob.objects.get(pk=job.pk).state == ScanJob.State.DONE:
            break
    # The last run, to the end (what the sweep would start).
    time.sleep(1.1)
    assert scan.run_scan(job.pk) == ScanJob.State.DONE, log.read_text()[-2000:]

    job.refresh_from_db()
    assert kills >= 3
    assert job.done == job.total == MESSAGES
    assert job.acted == MESSAGES // 2
    flags = RemoteAction.objects.filter(account=account, kind="flag")
    per_message: dict[str, int] = {}
    for subject in flags.values_list("message__subject", flat=True):
        per_message[subject] = per_message.get(subject, 0) + 1
    assert len(per_message) == MESSAGES // 2
    assert set(per_message.values()) == {1}
    assert all(subject.startswith("even ") for subject in per_message)
