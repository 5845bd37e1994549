"""Resync paths against Dovecot: QRESYNC on one long-lived connection, the full
comparison for servers without CONDSTORE, an unreadable stored secret, and a body
asked for when its message is opened."""

from __future__ import annotations

from typing import Any

import pytest

from posta.accounts.models import Account, Folder
from posta.core.crypto import seal
from posta.mail import services
from posta.mail.models import Location, Message
from posta.mailproto.imap.client import close_quietly
from posta.mailproto.imap.session import Session
from posta.remote import connect
from posta.sync import account_pass, bodies, folder_state, tasks
from tests.integration.test_sync_checker import assert_mirrored, make_account, message
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = pytest.mark.django_db(transaction=True)


def _count_calls(monkeypatch: pytest.MonkeyPatch, name: str) -> list[str]:
    calls: list[str] = []
    original = getattr(folder_state, name)

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        return original(*args, **kwargs)

    monkeypatch.setattr(folder_state, name, spy)
    return calls


def test_two_passes_on_one_connection_resync_through_qresync(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = make_account(dovecot, mail_user, settings)
    for i in range(8):
        dovecot.deliver(mail_user, message(f"q{i}"))
    client = connect.open_account(account)
    try:
        session = account_pass.sync_account(client, account)
        assert session.qresync  # Dovecot offers QRESYNC (RFC 7162)
        assert_mirrored(dovecot, mail_user, account)

        uids = dovecot.uids(mail_user, "INBOX")
        dovecot.set_flags(mail_user, "INBOX", uids[0], "\\Flagged")
        dovecot.set_flags(mail_user, "INBOX", uids[1], "\\Seen $Work")
        dovecot.expunge(mail_user, "INBOX", uids[2])
        dovecot.expunge(mail_user, "INBOX", uids[5])
        dovecot.deliver(mail_user, message("after"))
        flag_fetches = _count_calls(monkeypatch, "fetch_flags")
        uid_lists = _count_calls(monkeypatch, "fetch_uids")

        # Same connection, no session passed: ENABLE must not be sent again
        # (RFC 5161 §3.1 forbids it once a folder is selected).
        again = account_pass.sync_account(client, account)
        assert again is session
    finally:
        close_quietly(client)
    assert_mirrored(dovecot, mail_user, account)
    # Flag changes and expunges came with the EXAMINE (RFC 7162 §3.2.5); only the
    # new message needed its UID list.
    assert flag_fetches == []
    assert uid_lists == ["fetch_uids"]
    inbox = Folder.objects.get(account=account, name="INBOX")
    assert Location.objects.get(folder=inbox, uid=uids[0]).flagged
    assert Location.objects.get(folder=inbox, uid=uids[1]).keywords == ["$Work"]
    assert not Location.objects.filter(folder=inbox, uid__in=[uids[2], uids[5]]).exists()


def test_qresync_examine_as_first_selection_leaves_the_connection_usable(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    account = make_account(dovecot, mail_user, settings)
    for i in range(3):
        dovecot.deliver(mail_user, message(f"r{i}"))
    account_pass.sync_account_once(account.pk)
    inbox = Folder.objects.get(account=account, name="INBOX")
    client = connect.open_account(account)
    try:
        session = Session.start(client)
        assert session.qresync
        raw, resync = folder_state._examine(session, inbox)  # QRESYNC: the folder is synced
        assert resync is not None and raw[b"UIDVALIDITY"] == inbox.uidvalidity
        # Commands through IMAPClient itself (NOOP, IDLE, STATUS) still work.
        client.noop()
        assert client.folder_status("INBOX", ["MESSAGES"])[b"MESSAGES"] == 3
    finally:
        close_quietly(client)


def test_body_mirror_steps_take_the_accounts_newest_pending_copies(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    account = make_account(dovecot, mail_user, settings)
    other_box = dovecot.add_user()
    other = Account.objects.create(
        user=account.user,
        username=other_box.name,
        email=other_box.address,
        password_secret=seal(other_box.password),
        description="second",
        imap_host=dovecot.host,
        imap_port=dovecot.imap_port,
        imap_security="none",
    )
    for day in (3, 5, 4):
        dovecot.deliver(mail_user, message(f"a{day}", date=f"Mon, 0{day} Mar 2026 10:00:00 +0100"))
    dovecot.create_folder(mail_user, "Clienti")
    oldest = message("c1", date="Mon, 01 Mar 2026 10:00:00 +0100")
    dovecot.deliver(mail_user, oldest, folder="Clienti")
    dovecot.deliver(other_box, message("b9", date="Mon, 09 Mar 2026 10:00:00 +0100"))
    for each in (account, other):
        client = connect.open_account(each)
        try:
            account_pass.sync_account(client, each, bodies=False)
        finally:
            close_quietly(client)
    assert bodies.bodies_pending(account) and bodies.bodies_pending(other)

    client = connect.open_account(account)
    try:
        session = Session.start(client)
        # A watcher's step: the copies in its folder only, however old.
        clienti = Folder.objects.get(account=account, name="Clienti")
        assert bodies.fetch_pending_bodies(session, account, limit=2, folder_id=clienti.pk) == 1
        assert Message.objects.get(subject="c1").body_state == Message.BodyState.STORED
        # One step of two: the two newest of this account, not the other's newer one.
        assert bodies.fetch_pending_bodies(session, account, limit=2) == 2
        stored = set(
            Message.objects.filter(body_state=Message.BodyState.STORED).values_list(
                "subject", flat=True
            )
        )
        assert stored == {"c1", "a5", "a4"}
        assert bodies.fetch_pending_bodies(session, account, limit=2) == 1
    finally:
        close_quietly(client)
    assert not bodies.bodies_pending(account)
    assert bodies.bodies_pending(other)  # its copy is another account's to fetch


def _stored_flags(account: Account) -> dict[int, frozenset[str]]:
    rows = Location.objects.filter(folder__account=account, folder__name="INBOX")
    return {loc.uid or 0: frozenset(f.lower() for f in loc.flag_names()) for loc in rows}


def _server_flags(dovecot: DovecotServer, user: MailUser) -> dict[int, frozenset[str]]:
    imap = dovecot.imap(user)
    try:
        imap.select("INBOX", readonly=True)
        typ, data = imap.uid("FETCH", "1:*", "(UID FLAGS)")
        assert typ == "OK"
        out: dict[int, frozenset[str]] = {}
        for item in data:
            assert isinstance(item, bytes)
            head, _, rest = item.partition(b"FLAGS (")
            uid = int(head.split(b"UID ")[1].split()[0]) if b"UID " in head else None
            if uid is None:  # "FLAGS (...) UID n"
                uid = int(rest.split(b"UID ")[1].split(b")")[0])
            flags = rest.split(b")")[0].decode().lower().split()
            out[uid] = frozenset(f for f in flags if f != "\\recent")
        return out
    finally:
        imap.logout()


def test_without_condstore_a_full_comparison_finds_every_change(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    account = make_account(dovecot, mail_user, settings)
    for i in range(6):
        dovecot.deliver(mail_user, message(f"p{i}"))
    client = connect.open_account(account)
    try:
        session = Session.start(client, modseq=False)
        assert not session.condstore and not session.qresync
        account_pass.sync_account(client, account, session=session)
        assert _stored_flags(account) == _server_flags(dovecot, mail_user)

        uids = dovecot.uids(mail_user, "INBOX")
        dovecot.set_flags(mail_user, "INBOX", uids[3], "\\Answered \\Seen")
        dovecot.set_flags(mail_user, "INBOX", uids[0], "$Later")
        dovecot.expunge(mail_user, "INBOX", uids[1])
        account_pass.sync_account(client, account)
    finally:
        close_quietly(client)
    assert _stored_flags(account) == _server_flags(dovecot, mail_user)
    assert len(_stored_flags(account)) == 5


def test_an_unreadable_stored_password_is_an_account_error(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    account = make_account(dovecot, mail_user, settings)
    Account.objects.filter(pk=account.pk).update(password_secret="gAAAAA-not-a-token")
    with pytest.raises(connect.SecretUnreadable):
        account_pass.sync_account_once(account.pk)
    account.refresh_from_db()
    assert account.sync_state == Account.SyncState.ERROR
    assert account.last_error_code == "secret_unreadable"


def test_opening_a_message_before_its_body_arrived_fetches_it(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = make_account(dovecot, mail_user, settings)
    dovecot.deliver(mail_user, message("open me", body="The body you asked for\n"))
    dovecot.deliver(mail_user, message("not me"))
    client = connect.open_account(account)
    try:
        account_pass.sync_account(client, account, bodies=False)
    finally:
        close_quietly(client)
    wanted = Message.objects.get(user=account.user, subject="open me")
    assert wanted.body_state == Message.BodyState.PENDING
    # The queue is not consumed in tests: the receiver's enqueue runs the task's
    # work inline, as the worker would.
    queued: list[tuple[int, list[int]]] = []

    def run_now(account_id: int, message_ids: list[int]) -> None:
        queued.append((account_id, message_ids))
        bodies.fetch_bodies_now(account_id, message_ids)

    monkeypatch.setattr(tasks, "enqueue_body_fetch", run_now)

    assert services.request_body_fetch(account.user, wanted.pk)

    assert queued == [(account.pk, [wanted.pk])]
    wanted.refresh_from_db()
    assert wanted.body_state == Message.BodyState.STORED
    assert wanted.snippet == "The body you asked for"
    other = Message.objects.get(user=account.user, subject="not me")
    assert other.body_state == Message.BodyState.PENDING
    # Asking again for a stored body does nothing.
    assert not services.request_body_fetch(account.user, wanted.pk)
    assert len(queued) == 1


def test_news_on_the_selected_folder_arrive_without_selecting_it_again(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = make_account(dovecot, mail_user, settings)
    for i in range(5):
        dovecot.deliver(mail_user, message(f"s{i}"))
    client = connect.open_account(account)
    try:
        session = account_pass.sync_account(client, account)
        inbox = Folder.objects.get(account=account, name="INBOX")
        session.examine("INBOX")  # what the service's IDLE leaves selected
        uids = dovecot.uids(mail_user, "INBOX")
        dovecot.set_flags(mail_user, "INBOX", uids[0], "\\Seen \\Flagged")
        dovecot.expunge(mail_user, "INBOX", uids[3])
        dovecot.deliver(mail_user, message("pushed"))
        selects = _count_calls(monkeypatch, "_examine")

        assert folder_state.sync_selected(session, Folder.objects.get(pk=inbox.pk))
        assert selects == []
        inbox.refresh_from_db()
        assert _stored_flags(account) == _server_flags(dovecot, mail_user)
        assert inbox.message_count == 5
        assert Message.objects.filter(user=account.user, subject="pushed").exists()
        # Another folder selected: the caller must run sync_folder.
        dovecot.create_folder(mail_user, "Other")
        account_pass.sync_account(client, account)
        session.examine("Other")
        assert not folder_state.sync_selected(session, inbox)
    finally:
        close_quietly(client)
    assert_mirrored(dovecot, mail_user, account)
