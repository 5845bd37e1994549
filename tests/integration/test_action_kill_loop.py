"""Random chains of flag / read / move requests on 60 messages, posted to the mail
screen while a real `posta worker` process (Huey) carrying them out is SIGKILLed
20 times: afterwards every message is on the server exactly once, in the folder
the user last chose, with the read and flag marks the user last set.

The worker is a separate process sharing the test database (PostgreSQL, or the
SQLite test file) and the Huey queue file. Its claims last 2 s
(POSTA_ACTION_LEASE_SECONDS), so a killed worker's actions are taken over within
the run; production uses 30 s.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from huey.contrib import djhuey

from posta.accounts.models import Folder
from posta.mail.models import Location, Message, RemoteAction
from posta.sync import tasks
from posta.sync.account_pass import sync_account_once
from posta.users.models import User
from tests.integration.test_action_chain import server_copies
from tests.integration.test_scheduled_send import REPO, worker_env
from tests.integration.test_sync_checker import make_account, message
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

MESSAGES = 60
KILLS = 20
REQUESTS = 200
FOLDERS = ["INBOX", "Archive", "Clienti", "Progetti"]
OPEN = ("pending", "running")


@dataclass
class Wish:
    """What the user last asked for one message."""

    folder: str
    seen: bool = False
    flagged: bool = False


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "posta.cli", "worker"],
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _wait(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


class ScreenUser:
    """Posts what a user clicks on the mail screen, remembering the last wish."""

    def __init__(self, client: Client, folders: dict[str, Folder], ids: list[int]) -> None:
        self.client = client
        self.folders = folders
        self.wishes = {pk: Wish("INBOX") for pk in ids}
        self.requests = 0
        self.answered_zero = 0

    def post(self, pk: int, action: str, *, target: str = "") -> None:
        wish = self.wishes[pk]
        data = {"action": action, "ids": str(pk), "folder": str(self.folders[wish.folder].pk)}
        if target:
            data["target"] = str(self.folders[target].pk)
        response = self.client.post(reverse("mail_act"), data, HTTP_HX_REQUEST="true")
        assert response.status_code == 204, response.content
        self.requests += 1
        if json.loads(response["HX-Trigger"])["mail-changed"]["changed"] == 0:
            self.answered_zero += 1
        if action == "move":
            wish.folder = target
        elif action in ("seen", "unseen"):
            wish.seen = action == "seen"
        else:
            wish.flagged = action == "flag"

    def random_request(self, rng: random.Random, recent: list[int]) -> None:
        # Half of the requests go to a message acted on just before: chains.
        pk = rng.choice(recent) if recent and rng.random() < 0.5 else rng.choice(list(self.wishes))
        wish = self.wishes[pk]
        choice = rng.random()
        if choice < 0.45:
            self.post(pk, "move", target=rng.choice([f for f in FOLDERS if f != wish.folder]))
        elif choice < 0.7:
            self.post(pk, "unseen" if wish.seen else "seen")
        else:
            self.post(pk, "unflag" if wish.flagged else "flag")
        recent.append(pk)
        del recent[:-5]


def _history(message_pk: int) -> list[tuple[Any, ...]]:
    """The message's actions, for a failure message."""
    return list(
        RemoteAction.objects.filter(message_id=message_pk)
        .order_by("id")
        .values_list(
            "id", "kind", "source_folder__name", "source_uid", "target_folder__name",
            "after", "attempts", "state",
        )
    )


def _mismatches(
    dovecot: DovecotServer, mail_user: MailUser, wishes: dict[int, Wish]
) -> list[tuple[int, str]]:
    found = server_copies(dovecot, mail_user, FOLDERS)
    ids = dict(Message.objects.filter(pk__in=wishes).values_list("pk", "message_id"))
    wrong = []
    for pk, wish in wishes.items():
        copies = found.get(f"<{ids[pk]}>", [])
        want = [(wish.folder, wish.seen, wish.flagged)]
        have = [(name, "\\Seen" in flags, "\\Flagged" in flags) for name, flags in copies]
        if have != want:
            wrong.append((pk, f"{ids[pk]}: asked {want}, server has {have}"))
    return wrong


def test_random_chains_while_the_worker_is_killed(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, tmp_path: Path
) -> None:
    account = make_account(dovecot, mail_user, settings)
    # An installed Posta: an administrator exists (else every page leads to setup).
    User.objects.create_superuser("root", "root@example.test", "pw-unused-123")
    for name in FOLDERS[1:]:
        dovecot.create_folder(mail_user, name)
    for i in range(MESSAGES):
        dovecot.deliver(mail_user, message(f"chain {i}"))
    sync_account_once(account.pk)
    folders = {f.name: f for f in Folder.objects.filter(account=account)}
    ids = sorted(Message.objects.filter(user=account.user).values_list("pk", flat=True))
    assert len(ids) == MESSAGES
    djhuey.HUEY.flush()  # items other tests left in the shared queue file
    env = worker_env(
        POSTA_ALLOWED_MAIL_HOSTS=",".join(settings.POSTA_ALLOWED_MAIL_HOSTS),
        POSTA_ACTION_LEASE_SECONDS="2",
        POSTA_LOG_LEVEL="WARNING",
    )
    log = tmp_path / "worker.log"
    client = Client()
    client.force_login(account.user)
    user = ScreenUser(client, folders, ids)
    rng = random.Random(20261202)
    recent: list[int] = []
    kills = mid_action = 0

    worker = _start_worker(env, log)
    try:
        for round_ in range(KILLS):
            share = REQUESTS * (round_ + 1) // KILLS - user.requests
            for _ in range(share):
                user.random_request(rng, recent)
                time.sleep(rng.uniform(0, 0.03))
            # Kill it while it holds an action, when it gets that far.
            running = RemoteAction.objects.filter(
                account=account, state="running", claimed_by__contains=f":{worker.pid}:"
            )
            _wait(running.exists, timeout=5)
            time.sleep(rng.uniform(0, 0.05))  # at a random step of that action
            mid_action += running.exists()
            worker.kill()
            worker.wait(timeout=30)
            kills += 1
            worker = _start_worker(env, log)
        # What the minute sweep would do: wake the account once; the rest
        # (claims of the dead worker running out) is the worker's own business.
        tasks.enqueue_account_actions([account.pk])
        settled = _wait(
            lambda: not RemoteAction.objects.filter(account=account, state__in=OPEN).exists(),
            timeout=120,
        )
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    failed_rows = list(
        RemoteAction.objects.filter(account=account, state="failed").values_list(
            "message", "id", "kind", "attempts", "error_code", "error_detail"
        )
    )
    failed = len(failed_rows)
    wrong = _mismatches(dovecot, mail_user, user.wishes)
    print(
        f"\nkill loop: requests={user.requests} kills={kills} mid_action_kills={mid_action}"
        f" answered_changed_0={user.answered_zero} failed_actions={failed}"
        f" actions={RemoteAction.objects.filter(account=account).count()}"
        f" mismatches={len(wrong)}"
    )
    assert settled, log.read_text()[-3000:]
    assert wrong == [], [(w, _history(pk)) for pk, w in wrong]
    assert (user.requests, kills) == (REQUESTS, KILLS)
    assert user.answered_zero == 0
    assert failed_rows == [], [(row, _history(row[0])) for row in failed_rows]
    # And the mail screen shows what the server has, before and after a sync:
    # one copy per message, with the server's UID, where the user put it. (Not
    # the whole-mirror check: the sync does not refresh the MODSEQ of a copy the
    # worker numbered above the folder's stored UIDNEXT and then changed.)
    for _pass in range(2):
        for name in FOLDERS:
            server = set(dovecot.uids(mail_user, name))
            for loc in Location.objects.filter(folder=folders[name]):
                assert loc.uid in server, (name, loc.uid, _history(loc.message_id))
            assert Location.objects.filter(folder=folders[name]).count() == len(server), name
        for pk, wish in user.wishes.items():
            loc = Location.objects.select_related("folder").get(message_id=pk)
            assert (loc.folder.name, loc.seen, loc.flagged) == (
                wish.folder, wish.seen, wish.flagged
            ), pk
        sync_account_once(account.pk)
