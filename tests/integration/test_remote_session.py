"""A package that is neither sync nor delivery talks to an account's server
through posta.remote: it opens the account's IMAP session on the real Dovecot,
finds a message by Message-ID, moves it, appends one, and sees the results from
another client. This module imports posta.remote, posta.mailproto and the models
below them, never posta.sync or posta.delivery (checked below, with the import
graph of posta.remote itself)."""

from __future__ import annotations

import ast
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import grimp
import pytest
from django.dispatch import Signal

from posta.accounts.models import Account, Folder
from posta.core.crypto import seal
from posta.mail import signals
from posta.mailproto import errors
from posta.remote import connect, copies
from posta.users.models import User
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = pytest.mark.django_db(transaction=True)


def _account(dovecot: DovecotServer, mail_user: MailUser, settings: Any) -> Account:
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


def _message(message_id: str, **headers: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Alice <alice@example.test>"
    msg["To"] = "Bob <bob@example.test>"
    msg["Subject"] = "remote"
    msg["Message-ID"] = message_id
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content("Hello\n")
    return msg.as_bytes()


def _count(dovecot: DovecotServer, user: MailUser, folder: str, message_id: str) -> int:
    """Copies of `message_id` in `folder`, seen by another client (plain imaplib)."""
    client = dovecot.imap(user)
    try:
        client.select(folder, readonly=True)
        _typ, data = client.uid("SEARCH", "HEADER", "Message-ID", f"<{message_id}>")
        return len(data[0].split()) if data and data[0] else 0
    finally:
        client.logout()


@pytest.mark.parametrize("use_move", [True, False], ids=["MOVE", "COPY+UID EXPUNGE"])
def test_a_new_package_opens_the_session_and_moves_a_message(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, use_move: bool
) -> None:
    account = _account(dovecot, mail_user, settings)
    dovecot.create_folder(mail_user, "Archive")
    dovecot.deliver(mail_user, _message("<move-me@example.test>"))
    dovecot.deliver(mail_user, _message("<stay@example.test>"))

    session = connect.open_imap(account)
    try:
        assert session.uidplus and session.can_move  # what Dovecot offers
        session.can_move = use_move
        session.select("INBOX")
        uids = session.search_message_id("move-me@example.test")
        assert len(uids) == 1
        assert session.move(uids, "Archive") is True
        session.examine("Archive")
        assert len(session.search_message_id("move-me@example.test")) == 1
    finally:
        connect.close(session)

    assert _count(dovecot, mail_user, "INBOX", "move-me@example.test") == 0
    assert _count(dovecot, mail_user, "Archive", "move-me@example.test") == 1
    assert _count(dovecot, mail_user, "INBOX", "stay@example.test") == 1


def test_append_reports_where_the_message_went_and_header_search_quotes(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    account = _account(dovecot, mail_user, settings)
    dovecot.create_folder(mail_user, "Archive")
    tricky = 'caffè "speciale" \\ 1'
    session = connect.open_imap(account)
    try:
        appended = session.append(
            "Archive", _message("<appended@example.test>", X_Tag=tricky), flags=["\\Seen"]
        )
        status = session.client.folder_status("Archive", ["UIDVALIDITY"])
        assert appended.uidvalidity == status[b"UIDVALIDITY"]
        assert appended.uid is not None
        session.select("Archive")
        assert session.search_message_id("appended@example.test") == [appended.uid]
        assert session.search_header("X-Tag", tricky) == [appended.uid]
        assert session.search_header("X-Tag", "not there") == []
        # An empty value would match every message carrying the header: none here.
        assert session.search_header("X-Tag", "") == []
        assert session.has_uid(appended.uid)
        assert session.expunge_uids([appended.uid]) is True
        assert not session.has_uid(appended.uid)
    finally:
        connect.close(session)
    assert dovecot.uids(mail_user, "Archive") == []


def test_copies_helpers_find_and_remove_by_uid_only(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    account = _account(dovecot, mail_user, settings)
    inbox = Folder.objects.create(account=account, name="INBOX", display_name="INBOX",
                                  role=Folder.Role.INBOX)
    dovecot.deliver(mail_user, _message("<ours@example.test>"))
    dovecot.deliver(mail_user, _message("<theirs@example.test>"))
    (theirs,) = [u for u in dovecot.uids(mail_user) if u != min(dovecot.uids(mail_user))]
    dovecot.set_flags(mail_user, "INBOX", theirs, "\\Deleted")  # another client's

    session = connect.open_imap(account)
    try:
        assert copies.folder_with_role(account, Folder.Role.INBOX) == inbox
        ours = copies.find_message_id(session, inbox, "ours@example.test")
        assert len(ours) == 1
        assert copies.remove_copies(session, inbox, ours) is True
        assert copies.find_message_id(session, inbox, "ours@example.test") == []
    finally:
        connect.close(session)
    assert dovecot.uids(mail_user) == [theirs]


def test_host_and_secret_errors_are_defined_once_in_remote(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    account = _account(dovecot, mail_user, settings)
    settings.POSTA_ALLOWED_MAIL_HOSTS = []  # loopback is an internal address
    with pytest.raises(connect.HostRefused) as refused:
        connect.open_imap(account)
    with pytest.raises(connect.HostRefused):
        connect.smtp_settings(account)
    assert isinstance(refused.value, errors.MailError)
    assert refused.value.code == "host_not_allowed"

    settings.POSTA_ALLOWED_MAIL_HOSTS = [dovecot.host]
    Account.objects.filter(pk=account.pk).update(password_secret="not-a-sealed-secret")
    account.refresh_from_db()
    with pytest.raises(connect.SecretUnreadable):
        connect.open_imap(account)


def test_neither_this_module_nor_remote_imports_sync_or_delivery() -> None:
    tree = ast.parse(Path(__file__).read_text())
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    } | {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
         for alias in node.names}
    ours = {name for name in imported if name.startswith("posta")}
    assert "posta.remote" in ours
    assert not {n for n in ours if n.startswith(("posta.sync", "posta.delivery"))}

    graph = grimp.build_graph("posta")
    reached = graph.find_upstream_modules("posta.remote", as_package=True)
    assert "posta.mailproto.imap.session" in reached  # the graph is the real one
    assert not {n for n in reached if n.startswith(("posta.sync", "posta.delivery"))}
    # The stored-mail hook such a package subscribes to is as far from them.
    assert isinstance(signals.messages_stored, Signal)
    reached = graph.find_upstream_modules("posta.mail.signals")
    assert not {n for n in reached if n.startswith(("posta.sync", "posta.delivery"))}
