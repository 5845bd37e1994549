"""SIGKILL of the out-of-office responder, again and again: never two replies.

Twenty new inbox messages from twenty senders wait for their reply; a real
`posta autoreply run` process sends them and is killed by SIGKILL right after the
server's 250 and before the record (kill point `autoreply.after_accept`), or
after RCPT and before DATA (`autoreply.before_data`), at a random pass each
time, until nothing is left. Every message then got exactly one reply at the
SMTP server: a kill after the 250 leaves the row `uncertain` (counted as
answered, never resent); a kill before DATA sends it on the next run.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time

import pytest

from posta.accounts.models import Folder
from posta.mail.models import Message
from posta.rules import autoreply_step
from posta.rules.autoreply_models import AutoReply
from posta.sync.account_pass import sync_account_once
from tests.integration.test_autoreply_responder import turn_on
from tests.integration.test_scheduled_send import REPO, worker_env
from tests.integration.test_send import make_sender, quiet_queue  # noqa: F401 - fixture
from tests.integration.test_sync_checker import message
from tests.servers.dovecot import DovecotServer, MailUser
from tests.servers.smtp import SmtpServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SENDERS = 20
POINTS = ("autoreply.after_accept", "autoreply.before_data")


def _run(env: dict[str, str]) -> int:
    done = subprocess.run(
        [sys.executable, "-m", "posta.cli", "autoreply", "run", "--until-done"],
        env=env, cwd=REPO, capture_output=True, timeout=120, check=False,
    )
    return done.returncode


def test_killed_again_and_again_never_replies_twice(
    dovecot: DovecotServer, smtp_server: SmtpServer, mail_user: MailUser
) -> None:
    account = make_sender(dovecot, smtp_server, mail_user)
    turn_on(account)
    for n in range(SENDERS):
        dovecot.deliver(mail_user, message(
            f"Question {n}", from_=f"person{n}@example.test", to=mail_user.address,
            msgid=f"<question.{n}@example.test>",
        ))
    sync_account_once(account.pk)
    inbox = Folder.objects.get(account=account, role=Folder.Role.INBOX)
    ids = list(Message.objects.filter(user=account.user).values_list("pk", flat=True))
    assert len(autoreply_step.do_queue(
        user_id=account.user_id, message_ids=ids, folder_id=inbox.pk
    )) == SENDERS

    chance = random.Random(13)
    kills = 0
    for _round in range(100):
        open_rows = AutoReply.objects.filter(state__in=("pending", "sending")).count()
        if not open_rows:
            break
        point = chance.choice(POINTS)
        env = worker_env(
            POSTA_KILL_AT=f"{point}:{chance.randint(1, 2)}", POSTA_AUTOREPLY_LEASE_SECONDS="1",
        )
        if _run(env) == -9:
            kills += 1
        time.sleep(1.2)  # the killed run's lease runs out
    else:
        pytest.fail("replies still open after 100 runs")
    assert kills >= 8

    replies: dict[str, int] = {}
    for received in smtp_server.messages:
        assert received.mail_from == ""
        parent = received.message()["In-Reply-To"]
        replies[parent] = replies.get(parent, 0) + 1
    assert replies == {f"<question.{n}@example.test>": 1 for n in range(SENDERS)}
    states = set(AutoReply.objects.values_list("state", flat=True))
    assert states <= {"sent", "uncertain"}
    assert "uncertain" in states
