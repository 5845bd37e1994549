"""The account test against a real Dovecot and a real SMTP server, on loopback."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest
from pytest_django import Settings as SettingsWrapper

from posta.accounts.models import Account, CompanySettings
from posta.core.crypto import seal
from posta.remote.probe import ProbeResult, probe_account
from posta.users.models import User
from tests.servers.dovecot import DovecotServer, MailUser
from tests.servers.smtp import SmtpServer

pytestmark = pytest.mark.django_db

HOST = "127.0.0.1"


def allow_loopback() -> None:
    company = CompanySettings.load()
    company.allowed_mail_hosts = HOST
    company.save()


def make_account(user: MailUser, **fields: Any) -> Account:
    """An Account for `user` on 127.0.0.1, plain text; `fields` override (ports!)."""
    owner = User.objects.create_user(username=f"owner-{user.name}", password="pw-unused-123")
    values: dict[str, Any] = {
        "user": owner,
        "username": user.name,
        "email": user.address,
        "description": "Test",
        "password_secret": seal(user.password),
        "imap_host": HOST,
        "imap_security": "none",
        "smtp_custom": True,
        "smtp_host": HOST,
        "smtp_security": "none",
        "smtp_auth": True,
    }
    values.update(fields)
    return Account.objects.create(**values)


def closed_port() -> int:
    sock = socket.socket()
    sock.bind((HOST, 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


def assert_no_secret(result: ProbeResult, *secrets: str) -> None:
    text = repr(result)
    for secret in secrets:
        assert secret not in text


@pytest.fixture
def account_for(
    dovecot: DovecotServer, smtp_server: SmtpServer
) -> Callable[..., tuple[Account, MailUser]]:
    """A mailbox on the session Dovecot with an Account row pointing at it; the SMTP
    server demands that mailbox's credentials. 127.0.0.1 is allowed."""

    def factory(**fields: Any) -> tuple[Account, MailUser]:
        allow_loopback()
        user = dovecot.add_user(password="s3cret-Pass")
        smtp_server.require_auth(user.name, user.password)
        fields.setdefault("imap_port", dovecot.imap_port)
        fields.setdefault("smtp_port", smtp_server.port)
        account = make_account(user, **fields)
        return account, user

    return factory


def test_good_login_lists_folders_and_special_use_roles(
    dovecot: DovecotServer, account_for: Callable[..., tuple[Account, MailUser]]
) -> None:
    account, user = account_for()
    for name in ("Sent", "Drafts", "Trash", "Junk", "Clienti/Rossi"):
        dovecot.create_folder(user, name)

    result = probe_account(account)

    assert result.ok, (result.imap, result.smtp)
    names = {f.name for f in result.folders}
    assert {"INBOX", "Sent", "Drafts", "Trash", "Junk", "Clienti/Rossi"} <= names
    by_name = {f.name: f for f in result.folders}
    assert by_name["Sent"].special_use == "\\Sent"
    assert by_name["Clienti/Rossi"].special_use == ""
    assert by_name["Clienti/Rossi"].delimiter == "/"
    assert result.roles == {
        "inbox": "INBOX",
        "sent": "Sent",
        "drafts": "Drafts",
        "trash": "Trash",
        "spam": "Junk",
    }
    assert "IMAP4REV1" in result.capabilities
    assert "SPECIAL-USE" in result.capabilities


def test_gmail_italian_special_use_folders(
    dovecot: DovecotServer, account_for: Callable[..., tuple[Account, MailUser]]
) -> None:
    account, user = account_for()
    for name in (
        "[Gmail]/Posta inviata",
        "[Gmail]/Bozze",
        "[Gmail]/Cestino",
        "[Gmail]/Spam",
        "[Gmail]/Tutti i messaggi",
        "[Gmail]/Speciali",
    ):
        dovecot.create_folder(user, name)

    result = probe_account(account)

    assert result.imap is None, result.imap
    assert result.roles == {
        "inbox": "INBOX",
        "sent": "[Gmail]/Posta inviata",
        "drafts": "[Gmail]/Bozze",
        "trash": "[Gmail]/Cestino",
        "spam": "[Gmail]/Spam",
        "archive": "[Gmail]/Tutti i messaggi",
    }
    flagged = next(f for f in result.folders if f.name == "[Gmail]/Speciali")
    assert flagged.special_use == "\\Flagged"


def test_roles_by_name_without_special_use_and_non_ascii_names(
    dovecot: DovecotServer, account_for: Callable[..., tuple[Account, MailUser]]
) -> None:
    account, user = account_for()
    for name in ("Posta inviata", "Bozze", "Cestino", "Posta indesiderata", "Entwürfe alt"):
        dovecot.create_folder(user, name)

    result = probe_account(account)

    assert result.imap is None, result.imap
    assert result.roles == {
        "inbox": "INBOX",
        "sent": "Posta inviata",
        "drafts": "Bozze",
        "trash": "Cestino",
        "spam": "Posta indesiderata",
    }
    assert all(f.special_use == "" for f in result.folders)
    german = next(f for f in result.folders if f.display_name == "Entwürfe alt")
    assert german.name == "Entw&APw-rfe alt"  # raw modified UTF-7, what SELECT needs


def test_wrong_password(account_for: Callable[..., tuple[Account, MailUser]]) -> None:
    account, user = account_for()

    result = probe_account(account, password="not-the-password")

    assert result.imap is not None
    assert (result.imap.protocol, result.imap.code) == ("imap", "auth_failed")
    assert result.folders == []
    assert result.roles == {}
    assert not result.ok
    # The SMTP password defaults to the IMAP one given, so SMTP refuses it too.
    assert result.smtp is not None and result.smtp.code == "auth_failed"
    assert_no_secret(result, "not-the-password", user.password)


def test_closed_port(account_for: Callable[..., tuple[Account, MailUser]]) -> None:
    account, _user = account_for(imap_port=closed_port(), smtp_port=closed_port())

    result = probe_account(account)

    assert result.imap is not None and result.imap.code == "connection_refused"
    assert result.smtp is not None and result.smtp.code == "connection_refused"


def test_starttls_not_offered(account_for: Callable[..., tuple[Account, MailUser]]) -> None:
    # The session Dovecot runs with ssl = no, so it does not offer STARTTLS; neither
    # does the plain SMTP server.
    account, _user = account_for(imap_security="starttls", smtp_security="starttls")

    result = probe_account(account)

    assert result.imap is not None and result.imap.code == "starttls_missing"
    assert result.smtp is not None and result.smtp.code == "starttls_missing"


def test_ssl_against_a_plain_port(account_for: Callable[..., tuple[Account, MailUser]]) -> None:
    account, _user = account_for(imap_security="ssl", smtp_security="ssl")

    result = probe_account(account)

    assert result.imap is not None and result.imap.code == "tls_failed"
    assert result.smtp is not None and result.smtp.code == "tls_failed"


def test_certificate_not_trusted(
    dovecot_factory: Callable[..., DovecotServer],
    smtp_server: SmtpServer,
    settings: SettingsWrapper,
) -> None:
    settings.POSTA_EXTRA_CA_FILE = ""
    allow_loopback()
    server = dovecot_factory(tls=True)
    assert server.imaps_port is not None
    user = server.add_user(password="s3cret-Pass")
    account = make_account(
        user, imap_port=server.imaps_port, smtp_port=smtp_server.port, imap_security="ssl"
    )

    result = probe_account(account)

    assert result.imap is not None and result.imap.code == "certificate_invalid"
    assert result.imap.detail  # says why, for the details line
    assert result.folders == []


def test_trusted_with_the_ca_file_implicit_tls_and_starttls(
    dovecot_factory: Callable[..., DovecotServer],
    smtp_server: SmtpServer,
    settings: SettingsWrapper,
) -> None:
    allow_loopback()
    server = dovecot_factory(tls=True)
    assert server.imaps_port is not None and server.ca_file is not None
    settings.POSTA_EXTRA_CA_FILE = server.ca_file
    user = server.add_user(password="s3cret-Pass")
    server.create_folder(user, "Sent")
    smtp_server.require_auth(user.name, user.password)

    implicit = make_account(
        user, imap_port=server.imaps_port, smtp_port=smtp_server.port, imap_security="ssl"
    )
    result = probe_account(implicit)
    assert result.ok, (result.imap, result.smtp)
    assert result.roles["sent"] == "Sent"

    # ssl = yes also makes the plain port offer STARTTLS (RFC 3501 §6.2.1).
    implicit.imap_port = server.imap_port
    implicit.imap_security = "starttls"
    implicit.save()
    result = probe_account(implicit)
    assert result.ok, (result.imap, result.smtp)
    assert "STARTTLS" not in result.capabilities  # capabilities after TLS and login


def test_host_refused_by_the_guard(
    dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    # 127.0.0.1 is NOT in the company allow list here.
    assert CompanySettings.load().allowed_hosts_list() == []
    user = dovecot.add_user(password="s3cret-Pass")
    account = make_account(user, imap_port=dovecot.imap_port, smtp_port=smtp_server.port)

    result = probe_account(account)

    assert result.imap is not None and result.imap.code == "host_not_allowed"
    assert result.smtp is not None and result.smtp.code == "host_not_allowed"
    assert "loopback" in result.imap.detail
    assert smtp_server.messages == []


def test_host_not_found(account_for: Callable[..., tuple[Account, MailUser]]) -> None:
    # RFC 6761 §6.4: names under .invalid never resolve.
    account, _user = account_for(imap_host="nonexistent.invalid", smtp_host="nonexistent.invalid")

    result = probe_account(account)

    assert result.imap is not None and result.imap.code == "host_not_found"
    assert result.smtp is not None and result.smtp.code == "host_not_found"


def test_smtp_wrong_password(
    smtp_server: SmtpServer, account_for: Callable[..., tuple[Account, MailUser]]
) -> None:
    account, user = account_for()
    smtp_server.require_auth(user.name, "another-password")

    result = probe_account(account)

    assert result.imap is None, result.imap
    assert result.folders  # IMAP still worked and listed
    assert result.smtp is not None
    assert (result.smtp.protocol, result.smtp.code) == ("smtp", "auth_failed")
    assert_no_secret(result, user.password)


def test_smtp_own_user_and_password(
    smtp_server: SmtpServer, account_for: Callable[..., tuple[Account, MailUser]]
) -> None:
    account, _user = account_for()
    account.smtp_username = "relay-user"
    account.smtp_password_secret = seal("relay-pass-ü")  # non-ASCII: SASL PLAIN in UTF-8
    account.save()
    smtp_server.require_auth("relay-user", "relay-pass-ü")

    assert probe_account(account).ok

    result = probe_account(account, smtp_password="wrong")
    assert result.smtp is not None and result.smtp.code == "auth_failed"


def test_smtp_without_authentication(
    smtp_server: SmtpServer, account_for: Callable[..., tuple[Account, MailUser]]
) -> None:
    account, _user = account_for(smtp_auth=False)
    smtp_server.require_auth(None)

    result = probe_account(account, password="wrong")

    assert result.imap is not None and result.imap.code == "auth_failed"
    assert result.smtp is None
