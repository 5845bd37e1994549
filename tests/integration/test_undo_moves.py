"""Undo of a move or delete (issue 19): the intent waits out the undo window, an
undo inside it means the server never hears of the move, an undo after the worker
took it moves the copy back, and a ticket is the asking user's only."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from posta.accounts.models import Folder
from posta.mail.models import Location, Message, RemoteAction
from posta.sync import actions
from posta.sync.account_pass import sync_account_once
from posta.users.models import User
from tests.integration.test_mail_screen import login, setup_account
from tests.integration.test_sync_checker import message
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = pytest.mark.django_db(transaction=True)
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def no_queue(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[int], Any]]:
    """The test runs the action executor itself; wake-ups are recorded."""
    woken: list[tuple[list[int], Any]] = []
    monkeypatch.setattr(
        "posta.sync.tasks.enqueue_account_actions", lambda ids: woken.append((list(ids), None))
    )
    monkeypatch.setattr(
        "posta.sync.tasks.schedule_account_actions",
        lambda ids, when: woken.append((list(ids), when)),
    )
    return woken


def _event(response: Any) -> dict[str, Any]:
    assert response.status_code == 204
    detail: dict[str, Any] = json.loads(response["HX-Trigger"])["mail-changed"]
    return detail


def _age_holds() -> None:
    """The undo window ends (as if its seconds had passed)."""
    RemoteAction.objects.filter(next_attempt_at__gt=timezone.now()).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def test_a_held_delete_undone_in_its_window_never_reaches_the_server(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, client: Client,
    no_queue: list[tuple[list[int], Any]],
) -> None:
    account = setup_account(dovecot, mail_user, settings)
    dovecot.deliver(mail_user, message("keep me"))
    sync_account_once(account.pk)
    login(client, account.user)
    msg = Message.objects.get(user=account.user, subject="keep me")
    inbox_uids = dovecot.uids(mail_user, "INBOX")

    event = _event(client.post(
        reverse("mail_act"), {"action": "delete", "ids": msg.pk, "undo": "1"}, **HX
    ))
    assert event["toast"] == "Message moved to Trash."
    assert event["undo"] and event["seconds"] == account.user.undo_send_seconds
    # Shown in Trash at once; the worker is woken for the end of the window only.
    assert Location.objects.get(message=msg).folder.role == Folder.Role.TRASH
    assert no_queue[-1][1] is not None and no_queue[-1][1] > timezone.now()
    assert actions.run_account_actions(account.pk) == 0  # held: nothing is done
    assert dovecot.uids(mail_user, "INBOX") == inbox_uids

    undone = _event(client.post(reverse("mail_undo"), {"ticket": event["undo"]}, **HX))
    assert undone["toast"] == "Undone: the message is back."
    loc = Location.objects.get(message=msg)
    assert loc.folder.role == Folder.Role.INBOX and loc.uid == int(inbox_uids[0])
    _age_holds()
    actions.run_account_actions(account.pk)
    assert not RemoteAction.objects.filter(state__in=["pending", "running"]).exists()
    assert dovecot.uids(mail_user, "INBOX") == inbox_uids
    assert dovecot.uids(mail_user, "Trash") == []


def test_a_held_archive_leaves_once_when_the_window_ends_and_undo_after_moves_back(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, client: Client
) -> None:
    account = setup_account(dovecot, mail_user, settings)
    dovecot.deliver(mail_user, message("archive me"))
    sync_account_once(account.pk)
    login(client, account.user)
    msg = Message.objects.get(user=account.user, subject="archive me")

    event = _event(client.post(
        reverse("mail_act"), {"action": "archive", "ids": msg.pk, "undo": "1"}, **HX
    ))
    assert event["toast"] == "Message archived."
    # The page closes: nothing more comes from it. The window ends; the worker runs.
    _age_holds()
    assert actions.run_account_actions(account.pk) == 1
    actions.run_account_actions(account.pk)
    assert dovecot.uids(mail_user, "INBOX") == []
    assert len(dovecot.uids(mail_user, "Archive")) == 1
    assert RemoteAction.objects.filter(kind="move", state="done").count() == 1

    # Undo after the move was done: a move back, carried out by the worker.
    _event(client.post(reverse("mail_undo"), {"ticket": event["undo"]}, **HX))
    assert Location.objects.get(message=msg).folder.role == Folder.Role.INBOX
    actions.run_account_actions(account.pk)
    assert len(dovecot.uids(mail_user, "INBOX")) == 1
    assert dovecot.uids(mail_user, "Archive") == []


def test_without_the_page_asking_nothing_is_held_and_tickets_are_the_users_own(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, client: Client
) -> None:
    account = setup_account(dovecot, mail_user, settings)
    dovecot.deliver(mail_user, message("move me"))
    sync_account_once(account.pk)
    login(client, account.user)
    msg = Message.objects.get(user=account.user, subject="move me")
    work = Folder.objects.get(account=account, name="Work")

    event = _event(client.post(
        reverse("mail_act"), {"action": "move", "ids": msg.pk, "target": work.pk}, **HX
    ))
    assert event["undo"] == "" and event["toast"] == "Message moved to Work."
    assert RemoteAction.objects.get(kind="move").next_attempt_at is None

    # A ticket of the same user works once there is one; another user's is refused.
    Location.objects.filter(message=msg).update(folder=work)
    held = _event(client.post(
        reverse("mail_act"), {"action": "spam", "ids": msg.pk, "undo": "1"}, **HX
    ))
    other = User.objects.create_user("mallory", password="pw-unused-123")
    intruder = Client()
    intruder.force_login(other)
    refused = intruder.post(reverse("mail_undo"), {"ticket": held["undo"]}, **HX)
    assert refused.status_code == 404
    assert Location.objects.get(message=msg).folder.role == Folder.Role.SPAM
    assert client.post(reverse("mail_undo"), {"ticket": "forged"}, **HX).status_code == 400

    # In Italian, the toast's words too.
    client.cookies["django_language"] = "it"
    italian = _event(client.post(
        reverse("mail_act"), {"action": "notspam", "ids": msg.pk, "undo": "1"}, **HX,
        HTTP_ACCEPT_LANGUAGE="it",
    ))
    assert italian["toast"] == "Messaggio spostato in Posta in arrivo."
