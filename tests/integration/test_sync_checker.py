"""The consistency checker every sync test uses, its helpers, and the first-sync tests.

`assert_mirrored(dovecot, user, account)` compares the database with what a fresh
IMAP session sees: the folder list, and per folder UIDVALIDITY, the UIDs, each
copy's flags and MODSEQ, the counts; and that no copy is left without a UID or set
aside, and no message is stored twice.
"""

from __future__ import annotations

import imaplib
import re
from email.message import EmailMessage
from typing import Any

import pytest
from django.db.models import Count

from posta.accounts.models import Account, Folder
from posta.core.crypto import seal
from posta.mail.models import Location, Message
from posta.sync.account_pass import sync_account_once
from posta.users.models import User
from tests.servers.dovecot import DovecotServer, MailUser

FETCH_LINE = re.compile(rb"UID (\d+).*?FLAGS \(([^)]*)\).*?MODSEQ \((\d+)\)")
FETCH_LINE_2 = re.compile(rb"MODSEQ \((\d+)\).*?UID (\d+).*?FLAGS \(([^)]*)\)")


def make_account(dovecot: DovecotServer, mail_user: MailUser, settings: Any) -> Account:
    """An Account of a new CRM user for `mail_user` on the test Dovecot."""
    settings.POSTA_ALLOWED_MAIL_HOSTS = [dovecot.host]
    user = User.objects.create_user(username=mail_user.name, password="pw-unused-123")
    return Account.objects.create(
        user=user,
        username=mail_user.name,
        email=mail_user.address,
        password_secret=seal(mail_user.password),
        description="test",
        is_main=True,
        imap_host=dovecot.host,
        imap_port=dovecot.imap_port,
        imap_security="none",
    )


def message(
    subject: str, *, msgid: str | None = None, body: str = "Hello\n", **headers: str
) -> bytes:
    msg = EmailMessage()
    msg["From"] = headers.pop("from_", "Alice <alice@example.test>")
    msg["To"] = headers.pop("to", "Bob <bob@example.test>")
    msg["Subject"] = subject
    msg["Date"] = headers.pop("date", "Mon, 02 Mar 2026 10:00:00 +0100")
    if msgid is not False:
        msg["Message-ID"] = msgid or f"<{subject.replace(' ', '.')}@example.test>"
    for key, value in headers.items():
        msg[key.replace("_", "-")] = value
    msg.set_content(body)
    return msg.as_bytes()


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def server_view(dovecot: DovecotServer, user: MailUser) -> dict[str, dict[str, Any]]:
    """{folder name: {uidvalidity, highestmodseq, copies: {uid: (flags, modseq)}}}."""
    client = dovecot.imap(user)
    try:
        client.enable("CONDSTORE")
        typ, lines = client.list()
        assert typ == "OK"
        names = []
        for line in lines:
            assert isinstance(line, bytes)
            match = re.match(rb'^\(([^)]*)\) "[^"]*" "?(.*?)"?$', line)
            assert match
            if b"\\noselect" in match.group(1).lower():
                continue
            names.append(match.group(2).decode())
        view: dict[str, dict[str, Any]] = {}
        for name in names:
            typ, _ = client.select(_quote(name), readonly=True)
            assert typ == "OK", name
            uidvalidity = int(client.response("UIDVALIDITY")[1][0] or 0)
            hms = client.response("HIGHESTMODSEQ")[1][0]
            copies: dict[int, tuple[frozenset[str], int]] = {}
            typ, count = client.response("EXISTS")
            if int(client.untagged_responses.get("EXISTS", [b"0"])[-1] or 0) or True:
                typ, data = client.uid("FETCH", "1:*", "(UID FLAGS MODSEQ)")
                for item in data:
                    if not isinstance(item, bytes):
                        continue
                    m = FETCH_LINE.search(item)
                    if m:
                        uid, flags, modseq = int(m.group(1)), m.group(2), int(m.group(3))
                    else:
                        m2 = FETCH_LINE_2.search(item)
                        if not m2:
                            continue
                        modseq, uid, flags = int(m2.group(1)), int(m2.group(2)), m2.group(3)
                    names_ = frozenset(
                        f.decode().lower() for f in flags.split() if f.lower() != b"\\recent"
                    )
                    copies[uid] = (names_, modseq)
            view[name] = {
                "uidvalidity": uidvalidity,
                "highestmodseq": int(hms) if hms else None,
                "copies": copies,
            }
        return view
    finally:
        try:
            client.logout()
        except (imaplib.IMAP4.error, OSError):
            pass


def assert_mirrored(dovecot: DovecotServer, user: MailUser, account: Account) -> None:
    """The database mirrors the server exactly (see the module docstring)."""
    view = server_view(dovecot, user)
    folders = {f.name: f for f in Folder.objects.filter(account=account)}
    selectable = {n for n, f in folders.items() if f.selectable}
    assert selectable == set(view), (selectable, set(view))
    for name, seen in view.items():
        folder = folders[name]
        assert folder.uidvalidity == seen["uidvalidity"], name
        rows = Location.objects.filter(folder=folder)
        assert not rows.filter(uid__isnull=True).exists(), name
        assert not rows.filter(uid__lt=0).exists(), f"{name}: copies left set aside"
        stored = {
            loc.uid: (frozenset(f.lower() for f in loc.flag_names()), loc.modseq) for loc in rows
        }
        assert set(stored) == set(seen["copies"]), (name, set(stored) ^ set(seen["copies"]))
        for uid, (flags, modseq) in seen["copies"].items():
            assert stored[uid][0] == flags, (name, uid, stored[uid][0], flags)
            assert stored[uid][1] == modseq, (name, uid, stored[uid][1], modseq)
        assert folder.message_count == len(seen["copies"]), name
        unread = sum(1 for f, _m in seen["copies"].values() if "\\seen" not in f)
        assert folder.unread_count == unread, name
        if seen["highestmodseq"] is not None:
            assert folder.highestmodseq == seen["highestmodseq"], name
    dupes = (
        Location.objects.filter(folder__account=account)
        .values("folder", "message")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    # Two deliveries of the very same bytes are one message with two copies; the
    # tests here never deliver a message twice into one folder.
    assert not dupes.exists(), list(dupes)


def refreshed(account: Account) -> Account:
    return Account.objects.get(pk=account.pk)


# ------------------------------------------------------------------------- tests


@pytest.mark.django_db(transaction=True)
def test_first_sync_of_a_folder_tree(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    account = make_account(dovecot, mail_user, settings)
    dovecot.create_folder(mail_user, "Projects")
    dovecot.create_folder(mail_user, "Projects/Alpha")
    dovecot.create_folder(mail_user, "Progetti è")
    for i in range(30):
        dovecot.deliver(mail_user, message(f"inbox {i}"))
    dovecot.deliver(
        mail_user, message("flagged one"), folder="Projects/Alpha", flags="\\Flagged \\Seen"
    )
    dovecot.deliver(mail_user, message("keyword"), folder="Progetti è", flags="$Forwarded")
    dovecot.create_folder(mail_user, "Sent")
    dovecot.deliver(mail_user, message("sent copy"), folder="Sent", flags="\\Seen")

    sync_account_once(account.pk)

    assert_mirrored(dovecot, mail_user, account)
    account = refreshed(account)
    assert account.sync_state == Account.SyncState.IDLE
    assert account.last_success_at is not None
    assert account.sync_progress_done == account.sync_progress_total == 33
    roles = dict(Folder.objects.filter(account=account).values_list("name", "role"))
    assert roles["INBOX"] == "inbox"
    assert roles["Sent"] == "sent"
    msg = Message.objects.get(user=account.user, subject="flagged one")
    assert msg.locations.get().flagged
    assert msg.locations.get().role == ""
    # Bodies came after the headers: stored in the blob store, snippet filled.
    assert msg.body_state == Message.BodyState.STORED
    assert msg.snippet == "Hello"
    assert Location.objects.filter(folder__account=account, role="inbox").count() == 30

    # A second pass with no change is a no-op and still mirrored.
    sync_account_once(account.pk)
    assert_mirrored(dovecot, mail_user, account)
    assert Message.objects.filter(user=account.user).count() == 33


@pytest.mark.django_db(transaction=True)
def test_copies_of_one_message_are_one_message(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    account = make_account(dovecot, mail_user, settings)
    raw = message("same everywhere")
    dovecot.deliver(mail_user, raw)
    dovecot.create_folder(mail_user, "Archive2")
    dovecot.deliver(mail_user, raw, folder="Archive2", flags="\\Seen")
    sync_account_once(account.pk)
    assert_mirrored(dovecot, mail_user, account)
    msg = Message.objects.get(user=account.user)
    assert msg.locations.count() == 2


@pytest.mark.django_db(transaction=True)
def test_threads_follow_references_whatever_the_order(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    account = make_account(dovecot, mail_user, settings)
    # The reply is delivered first: the newest-first sync meets it before its parent.
    dovecot.deliver(
        mail_user,
        message(
            "Re: plan",
            msgid="<r1@x>",
            In_Reply_To="<root@x>",
            References="<root@x>",
            from_="Bob <bob@example.test>",
            to="Alice <alice@example.test>",
        ),
    )
    dovecot.deliver(mail_user, message("plan", msgid="<root@x>"))
    dovecot.deliver(mail_user, message("Hello", msgid="<h1@x>"))
    dovecot.deliver(
        mail_user, message("Hello", msgid="<h2@x>", from_="Eve <eve@example.test>", to="z@z.test")
    )
    sync_account_once(account.pk)
    by_id = {m.message_id: m for m in Message.objects.filter(user=account.user)}
    assert by_id["r1@x"].thread_id == by_id["root@x"].thread_id
    # Same subject, unrelated people: never one thread.
    assert by_id["h1@x"].thread_id != by_id["h2@x"].thread_id
    assert by_id["h1@x"].thread_id != by_id["root@x"].thread_id
    assert by_id["root@x"].thread is not None
    assert by_id["root@x"].thread.message_count == 2
