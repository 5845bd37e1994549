"""Waiting actions survive a server that renumbers a folder (UIDVALIDITY change with
new UIDs, RFC 3501 §2.3.1.1): each one acts on its own message or fails with its
reason, and no other message changes."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from posta.accounts.models import Account, Folder
from posta.mail import services
from posta.mail.models import Location, Message, RemoteAction
from posta.sync import actions
from posta.sync.account_pass import sync_account_once
from posta.users.models import User
from tests.integration.test_sync_checker import (
    assert_mirrored,
    make_account,
    message,
    server_view,
)
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = pytest.mark.django_db(transaction=True)

Mail = dict[str, tuple[str, frozenset[str]]]


@pytest.fixture(autouse=True)
def no_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test runs the executor itself; the queue is not consumed here."""
    monkeypatch.setattr("posta.sync.tasks.enqueue_account_actions", lambda ids: None)


def _server_mail(dovecot: DovecotServer, user: MailUser) -> Mail:
    """{subject: (folder, flags)} of every message of every folder on the server."""
    output = dovecot.doveadm(
        "-f", "tab", "fetch", "-u", user.name, "mailbox flags hdr.subject", "all"
    )
    mail: Mail = {}
    for line in output.splitlines()[1:]:
        folder, flags, subject = line.split("\t")
        assert subject not in mail, f"{subject} is on the server twice"
        names = frozenset(f.lower() for f in flags.split() if f.lower() != "\\recent")
        mail[subject] = (folder, names)
    return mail


def _ids(account: Account) -> dict[str, int]:
    return dict(Message.objects.filter(user=account.user).values_list("subject", "pk"))


def _wait_over() -> None:
    """What REPAIR_WAIT later brings: the waiting actions are due again."""
    RemoteAction.objects.filter(state="pending").update(next_attempt_at=None)


def _states(account: Account) -> dict[tuple[str, str], tuple[str, str]]:
    """{(kind, subject): (state, error_code)} of the account's actions."""
    subjects = {pk: subject for subject, pk in _ids(account).items()}
    return {
        (a.kind, subjects[a.message_id or 0]): (a.state, a.error_code)
        for a in RemoteAction.objects.filter(account=account)
    }


def test_waiting_actions_follow_their_messages_through_a_renumbering(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    account = make_account(dovecot, mail_user, settings)
    for name in ("Archive", "Trash", "Spam"):
        dovecot.create_folder(mail_user, name)
    for i in range(16):
        flags = {9: "\\Flagged", 12: "\\Seen", 14: "\\Flagged $Work"}.get(i, "")
        dovecot.deliver(mail_user, message(f"m{i}"), flags=flags)
    for i in range(12):
        dovecot.deliver(mail_user, message(f"t{i}"), folder="Trash", flags="\\Seen")
    for i in range(8):
        dovecot.deliver(mail_user, message(f"s{i}"), folder="Spam")
    sync_account_once(account.pk)
    user = account.user
    ids = _ids(account)
    folders = {f.name: f for f in Folder.objects.filter(account=account)}
    old_uid = {
        loc.message.subject: loc.uid
        for loc in Location.objects.filter(folder=folders["INBOX"]).select_related("message")
    }

    # The worker is down while the user acts. The lowest five UIDs of each folder
    # are about to disappear; the others are about to be numbered from 1, so every
    # UID remembered from m5-m9, t5, t6 and s5-s7 will name another message.
    services.do_move(user, [ids["m5"], ids["m0"]], folders["Archive"])
    services.do_set_seen(user, [ids["m6"], ids["m1"]], True)
    services.do_set_flagged(user, [ids["m7"]], True)
    services.do_delete(user, [ids["m8"]])  # to Trash
    services.do_set_flagged(user, [ids["m9"]], False)
    services.do_delete(user, [ids["t5"], ids["t6"], ids["t0"]])  # from Trash: for good
    assert services.do_expunge_folder(user, folders["Spam"]) == 8
    assert RemoteAction.objects.filter(source_uidvalidity__isnull=True).count() == 0

    for name in ("INBOX", "Trash", "Spam"):
        old = folders[name].uidvalidity
        assert dovecot.renumber(mail_user, name, drop_lowest=5) != old
    # Mail that arrives after the renumbering takes UIDs the emptying remembered.
    dovecot.deliver(mail_user, message("s-new1"), folder="Spam")
    dovecot.deliver(mail_user, message("s-new2"), folder="Spam")
    renumbered = _server_mail(dovecot, mail_user)
    assert renumbered["m10"] == ("INBOX", frozenset())

    # The worker comes back before the sync has seen the change: nothing happens
    # on the server, every action waits, and a sync pass is asked for.
    actions.run_account_actions(account.pk)
    assert _server_mail(dovecot, mail_user) == renumbered
    assert set(RemoteAction.objects.values_list("state", flat=True)) == {"pending"}
    assert set(RemoteAction.objects.values_list("error_code", flat=True)) == {
        "uidvalidity_changed"
    }
    assert set(RemoteAction.objects.values_list("attempts", flat=True)) == {0}
    assert Account.objects.get(pk=account.pk).sync_requested_at is not None

    # The sync re-pairs: the actions of messages still there follow them, the
    # others fail with their reason.
    sync_account_once(account.pk)
    renumbering_failed = {
        ("move", "m0"),
        ("seen", "m1"),
        ("expunge", "t0"),
        *(("expunge", f"s{i}") for i in range(5)),
    }
    states = _states(account)
    assert {k for k, (state, _code) in states.items() if state == "failed"} == renumbering_failed
    assert {code for k, (_s, code) in states.items() if k in renumbering_failed} == {"renumbered"}
    assert {state for k, (state, _c) in states.items() if k not in renumbering_failed} == {
        "pending"
    }
    failed = RemoteAction.objects.get(kind="move", message_id=ids["m0"])
    assert "renumbered" in failed.failure_reason and "Move" in failed.failure_reason
    # The copy shown on its way to Archive is on the server nowhere: gone locally too.
    assert not Location.objects.filter(message_id=ids["m0"]).exists()
    inbox = Folder.objects.get(pk=folders["INBOX"].pk)
    # The user's changes still show; the copies leaving INBOX are not back in it.
    assert Location.objects.get(message_id=ids["m6"], folder=inbox).seen
    assert Location.objects.get(message_id=ids["m7"], folder=inbox).flagged
    assert not Location.objects.get(message_id=ids["m9"], folder=inbox).flagged
    assert not Location.objects.filter(message_id__in=[ids["m5"], ids["m8"]], folder=inbox)

    # Another client flags m11, which now holds the UID m6 had: its pin (the seen
    # change waiting for the worker) must not hide that.
    m11_uid = Location.objects.get(message_id=ids["m11"], folder=inbox).uid
    assert m11_uid == old_uid["m6"]  # Dovecot numbers the files in delivery order
    dovecot.set_flags(mail_user, "INBOX", m11_uid, "\\Flagged")
    sync_account_once(account.pk)
    assert Location.objects.get(message_id=ids["m11"], folder=inbox).flagged
    assert Location.objects.get(message_id=ids["m6"], folder=inbox).seen

    _wait_over()
    actions.run_account_actions(account.pk)
    states = _states(account)
    assert {k for k, (state, _c) in states.items() if state != "done"} == renumbering_failed

    # Every message is where the user asked, with the flags asked for; the others
    # are exactly as the server had them.
    final = _server_mail(dovecot, mail_user)
    expected = dict(renumbered)
    expected["m5"] = ("Archive", renumbered["m5"][1])
    expected["m6"] = ("INBOX", frozenset({"\\seen"}))
    expected["m7"] = ("INBOX", frozenset({"\\flagged"}))
    expected["m8"] = ("Trash", renumbered["m8"][1])
    expected["m9"] = ("INBOX", frozenset())
    expected["m11"] = ("INBOX", frozenset({"\\flagged"}))
    for gone in ("t5", "t6", "s5", "s6", "s7"):
        del expected[gone]
    assert final == expected

    # The moved copies carry the MODSEQ the server gave them, before any sync.
    view = server_view(dovecot, mail_user)
    for subject, name in (("m5", "Archive"), ("m8", "Trash")):
        loc = Location.objects.get(message_id=ids[subject], folder__name=name)
        assert loc.uid is not None and loc.modseq is not None
        assert loc.modseq == view[name]["copies"][loc.uid][1]
    sync_account_once(account.pk)
    assert_mirrored(dovecot, mail_user, account)


def test_an_action_running_during_the_repairing_fails_when_its_copy_is_gone(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    account = make_account(dovecot, mail_user, settings)
    dovecot.create_folder(mail_user, "Archive")
    for i in range(8):
        dovecot.deliver(mail_user, message(f"r{i}"))
    sync_account_once(account.pk)
    ids = _ids(account)
    archive = Folder.objects.get(account=account, name="Archive")
    services.do_move(account.user, [ids["r1"], ids["r6"]], archive)
    dovecot.renumber(mail_user, "INBOX", drop_lowest=2)
    before = _server_mail(dovecot, mail_user)

    # A worker claimed r1's move just before the sync re-paired INBOX: the sync
    # leaves a running action to its worker. The sweep hands it back later.
    RemoteAction.objects.filter(message_id=ids["r1"]).update(state="running")
    sync_account_once(account.pk)
    RemoteAction.objects.filter(state="running").update(state="pending")

    actions.run_account_actions(account.pk)
    # r1's UID now names r3: nothing is done to it; the action fails with its reason.
    r1 = RemoteAction.objects.get(message_id=ids["r1"])
    assert (r1.state, r1.error_code) == ("failed", "renumbered")
    assert r1.failure_reason
    assert RemoteAction.objects.get(message_id=ids["r6"]).state == "done"
    after = _server_mail(dovecot, mail_user)
    assert after == {**before, "r6": ("Archive", before["r6"][1])}
    sync_account_once(account.pk)
    assert_mirrored(dovecot, mail_user, account)


def test_a_failed_renumbered_action_tells_the_user_why(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, client: Any
) -> None:
    account = make_account(dovecot, mail_user, settings)
    for i in range(3):
        dovecot.deliver(mail_user, message(f"w{i}"))
    sync_account_once(account.pk)
    ids = _ids(account)
    services.do_set_flagged(account.user, [ids["w0"]], True)
    dovecot.renumber(mail_user, "INBOX", drop_lowest=1)
    sync_account_once(account.pk)
    assert RemoteAction.objects.get().error_code == "renumbered"

    # An installed Posta: an administrator exists (else every page leads to setup).
    User.objects.create_superuser("root", "root@example.test", "pw-unused-123")
    client.force_login(account.user)
    url = reverse("mail_message", args=[ids["w0"]])
    page = client.get(url, HTTP_HX_REQUEST="true")
    assert page.status_code == 200
    assert "The server renumbered its messages; “Flag” was not done." in page.content.decode()
    page = client.get(url, HTTP_HX_REQUEST="true", HTTP_ACCEPT_LANGUAGE="it")
    assert "Il server ha rinumerato i suoi messaggi" in page.content.decode()
