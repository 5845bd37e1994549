"""No code path of Posta sends a plain EXPUNGE or a CLOSE: either would remove every
\\Deleted message of the folder (RFC 3501 §6.4.2, §6.4.3), also those another
client marked and has not expunged yet. Checked twice: no source line can ask for
one, and on Dovecot another client's \\Deleted messages survive every Posta
operation that removes mail (remote actions, drafts, the copy helpers), on a server
with UIDPLUS and MOVE and on one without them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import posta
from posta.accounts.models import Folder
from posta.delivery import drafts
from posta.mail import services
from posta.mail.models import Location, Message, RemoteAction
from posta.mailproto.imap.client import PlainExpungeRefused
from posta.remote import connect, copies
from posta.sync import actions
from tests.integration.test_drafts import save
from tests.integration.test_send import make_sender, write
from tests.servers.dovecot import DovecotServer, MailUser
from tests.servers.smtp import SmtpServer

pytestmark = pytest.mark.django_db(transaction=True)

SOURCE = Path(posta.__file__).parent
# What would send a plain EXPUNGE or a CLOSE: IMAPClient's expunge() without UIDs
# and close_folder(), imaplib's expunge() and close(), or the raw commands.
FORBIDDEN = [
    re.compile(r"\.expunge\(\s*\)"),
    re.compile(r"\.expunge\(\s*(messages\s*=\s*)?None\s*\)"),
    re.compile(r"\.close_folder\("),
    re.compile(r"_imap\.(expunge|close)\("),
    re.compile(r"""_?(simple_)?command\(\s*["'](EXPUNGE|CLOSE)["']""", re.I),
]
# Dovecot's capabilities less UIDPLUS and MOVE (imap_capability replaces the list).
WITHOUT_UIDPLUS = (
    "imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE UNSELECT "
    "CHILDREN NAMESPACE LIST-EXTENDED CONDSTORE QRESYNC ESEARCH SEARCHRES LIST-STATUS "
    "LITERAL+ SPECIAL-USE\n"
)
FOLDERS = ["INBOX", "Archive", "Trash", "Drafts"]


def test_no_source_line_asks_for_a_plain_expunge_or_close() -> None:
    found = []
    checked = 0
    for path in sorted(SOURCE.rglob("*.py")):
        text = path.read_text()
        checked += 1
        for number, line in enumerate(text.splitlines(), 1):
            if any(pattern.search(line) for pattern in FORBIDDEN):
                found.append(f"{path.relative_to(SOURCE)}:{number}: {line.strip()}")
    assert checked > 100  # the whole package was read
    assert found == []
    # The patterns do catch what they are for.
    for line in ("client.expunge()", "imap._simple_command('EXPUNGE')", "c.close_folder()",
                 "client._imap.close()", "client.expunge(messages=None)"):
        assert any(pattern.search(line) for pattern in FORBIDDEN), line
    assert not any(p.search("client.uid_expunge([uid])") for p in FORBIDDEN)


def _theirs(dovecot: DovecotServer, user: MailUser, folder: str) -> None:
    """A message another client marked \\Deleted in `folder` and has not expunged."""
    mid = f"<theirs-{folder.lower()}@example.test>"
    raw = (f"From: other@example.test\r\nTo: {user.address}\r\nSubject: theirs\r\n"
           f"Message-ID: {mid}\r\n\r\nstill wanted\r\n").encode()
    dovecot.deliver(user, raw, folder=folder, flags="\\Deleted")


def _theirs_left(dovecot: DovecotServer, user: MailUser) -> dict[str, int]:
    left = {}
    client = dovecot.imap(user)
    try:
        for folder in FOLDERS:
            client.select(folder, readonly=True)
            mid = f"<theirs-{folder.lower()}@example.test>"
            _typ, data = client.uid("SEARCH", "DELETED", "HEADER", "Message-ID", mid)
            left[folder] = len(data[0].split()) if data and data[0] else 0
    finally:
        client.logout()
    return left


@pytest.mark.parametrize("uidplus", [True, False], ids=["UIDPLUS+MOVE", "neither"])
def test_another_clients_deleted_mail_survives_every_posta_operation(
    dovecot_factory: Any, smtp_server: SmtpServer, settings: Any, uidplus: bool
) -> None:
    server: DovecotServer = dovecot_factory(extra_config="" if uidplus else WITHOUT_UIDPLUS)
    user = server.add_user()
    for name in ("Archive", "Trash", "Drafts"):
        server.create_folder(user, name)
    for folder in FOLDERS:
        _theirs(server, user, folder)
    for i in range(4):
        server.deliver(user, f"Subject: ours {i}\r\nMessage-ID: <ours{i}@example.test>\r\n"
                             f"\r\nours\r\n".encode())
    account = make_sender(server, smtp_server, user)  # synced once
    settings.POSTA_ALLOWED_MAIL_HOSTS = [server.host, smtp_server.host]
    owner = account.user
    mine = Message.objects.filter(user=owner, subject__startswith="ours")
    ours = {m.message_id: m.pk for m in mine}
    archive = Folder.objects.get(account=account, name="Archive")
    inbox = Folder.objects.get(account=account, name="INBOX")

    # Remote actions: a flag, a move, a delete to Trash, then a delete from Trash.
    services.do_set_flagged(owner, [ours["ours0@example.test"]], True)
    services.do_move(owner, [ours["ours1@example.test"]], archive)
    services.do_delete(owner, [ours["ours2@example.test"]])
    actions.run_account_actions(account.pk)
    services.do_delete(owner, [ours["ours2@example.test"]])
    actions.run_account_actions(account.pk)
    assert set(RemoteAction.objects.values_list("state", flat=True)) == {"done"}

    # Drafts: saved twice (the older copy removed), then discarded.
    row = write(account, to="bruno@example.test", subject="Draft")
    assert drafts.store_draft(row.pk)
    row = save(row, subject="Draft again")
    assert drafts.store_draft(row.pk)
    row.refresh_from_db()
    assert drafts.discard_copies(row)

    # The session and the copy helpers, directly.
    session = connect.open_imap(account)
    try:
        assert session.uidplus is uidplus and session.can_move is uidplus
        with pytest.raises(PlainExpungeRefused):
            session.client.expunge()
        with pytest.raises(PlainExpungeRefused):
            session.client.close_folder()
        (last,) = copies.find_message_id(session, inbox, "ours3@example.test")
        assert copies.remove_copies(session, inbox, [last]) is uidplus
        assert not Location.objects.filter(folder=inbox, uid=last).exists()
    finally:
        connect.close(session)

    assert _theirs_left(server, user) == dict.fromkeys(FOLDERS, 1)
    ours_left = server.uids(user, "INBOX")
    if uidplus:
        # Only their message and the flagged one of ours are still in INBOX.
        assert len(ours_left) == 2
    else:
        # Without UID EXPUNGE ours stay too, marked \Deleted, for the user's other
        # client to expunge: a plain EXPUNGE would have taken theirs as well.
        assert len(ours_left) == 5
