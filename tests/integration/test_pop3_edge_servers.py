"""POP3 servers Dovecot does not imitate (tests/servers/pop3.py): one without
UIDL, read in keep-on-server mode with content-hash de-duplication; one that
drops the connection in the middle of a RETR, after which nothing is lost,
doubled or deleted. And the save-time test with its per-failure words."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from posta.accounts.models import Folder
from posta.rules import pop3_job
from posta.rules.pop3_models import Pop3Import, Pop3Source
from posta.rules.pop3_services import check_save_source, source_error_message
from posta.users.models import User
from tests.integration.pop3_setup import folder_contents, make_source, make_target, numbered
from tests.servers.dovecot import DovecotServer, MailUser
from tests.servers.pop3 import Pop3Server

pytestmark = pytest.mark.django_db(transaction=True)


def _subjects(dovecot: DovecotServer, user: MailUser) -> list[str]:
    return sorted(s for s, *_ in folder_contents(dovecot, user))


def test_a_server_without_uidl_keeps_every_message_and_imports_each_once(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any,
    pop3_factory: Callable[..., Pop3Server],
) -> None:
    server = pop3_factory(messages=[numbered(i) for i in range(4)], uidl=False)
    account = make_target(dovecot, mail_user, settings)
    # Asked to delete, but a server without UIDL can only be read.
    source = make_source(account, host=server.host, port=server.port,
                         username=server.username, password="secret")
    pop3_job.fetch_source(source.pk)
    source.refresh_from_db()
    assert not source.has_uidl and not source.deletes_on_server
    assert _subjects(dovecot, mail_user) == [f"pop3 message {i}" for i in range(4)]
    assert len(server.messages) == 4 and "DELE" not in server.commands
    server.mailbox.messages.append(numbered(4))
    pop3_job.fetch_source(source.pk)
    assert _subjects(dovecot, mail_user) == [f"pop3 message {i}" for i in range(5)]
    assert all(r.uidl.startswith("sha256:") for r in Pop3Import.objects.filter(source=source))
    assert "DELE" not in server.commands
    source.refresh_from_db()
    assert source.imported_count == 5


def test_the_page_says_why_deleting_is_not_offered(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any,
    pop3_factory: Callable[..., Pop3Server], client: Any,
) -> None:
    server = pop3_factory(messages=[numbered(1)], uidl=False)
    account = make_target(dovecot, mail_user, settings)
    source = make_source(account, host=server.host, port=server.port,
                         username=server.username, password="secret")
    pop3_job.fetch_source(source.pk)
    User.objects.create_superuser("root", "root@example.test", "pw-unused-123")
    client.force_login(account.user)
    response = client.get("/settings/pop3/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "lacks UIDL" in page


@pytest.mark.parametrize("uidl", [True, False])
def test_a_drop_mid_retr_loses_and_doubles_nothing(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any,
    pop3_factory: Callable[..., Pop3Server], uidl: bool,
) -> None:
    server = pop3_factory(messages=[numbered(i) for i in range(5)], uidl=uidl)
    account = make_target(dovecot, mail_user, settings)
    source = make_source(account, host=server.host, port=server.port,
                         username=server.username, password="secret",
                         keep_on_server=not uidl)
    server.drop_after_lines = 3
    pop3_job.fetch_source(source.pk)
    assert server.drops == 1
    source.refresh_from_db()
    assert source.last_error_code == "network_error"
    assert "interrupted" in source_error_message(source)
    assert len(server.messages) == 5  # no QUIT: nothing deleted
    pop3_job.fetch_source(source.pk)
    assert _subjects(dovecot, mail_user) == [f"pop3 message {i}" for i in range(5)]
    assert len(server.messages) == (5 if not uidl else 0)
    source.refresh_from_db()
    assert (source.last_error_code, source.imported_count) == ("", 5)


def _form_source(account: Any, server: Pop3Server) -> Pop3Source:
    return Pop3Source(host=server.host, port=server.port, security="none",
                      username=server.username)


def test_a_source_is_saved_only_after_a_real_test(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any,
    pop3_factory: Callable[..., Pop3Server],
) -> None:
    server = pop3_factory(messages=[numbered(1)])
    account = make_target(dovecot, mail_user, settings)
    inbox = Folder.objects.get(account=account, name="INBOX")
    outcome = check_save_source(account.user, _form_source(account, server), folder=inbox,
                                password="wrong")
    assert not outcome.saved
    assert outcome.error == f"The server POP3 {server.host} refused the user name or password."
    assert not Pop3Source.objects.exists()
    kept = check_save_source(account.user, _form_source(account, server), folder=inbox,
                             password="wrong", save_anyway=True)
    assert kept.saved and kept.source.last_error_code == "auth_failed"
    assert "wrong" not in kept.source.password_secret
    good = check_save_source(account.user, _form_source(account, server), folder=inbox,
                             password="secret")
    assert good.saved and good.error == ""
    assert good.source.folder_name == "INBOX" and good.source.account_id == account.pk


def test_the_address_guard_and_tls_words(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any,
    pop3_factory: Callable[..., Pop3Server],
) -> None:
    server = pop3_factory()
    account = make_target(dovecot, mail_user, settings)
    inbox = Folder.objects.get(account=account, name="INBOX")
    settings.POSTA_ALLOWED_MAIL_HOSTS = []
    refused = check_save_source(account.user, _form_source(account, server), folder=inbox,
                                password="secret")
    assert not refused.saved and "private or local network address" in refused.error
    settings.POSTA_ALLOWED_MAIL_HOSTS = [server.host]
    source = _form_source(account, server)
    source.security = "starttls"
    no_stls = check_save_source(account.user, source, folder=inbox, password="secret")
    assert "does not offer STARTTLS" in no_stls.error
    source = _form_source(account, server)
    source.security = "ssl"
    tls = check_save_source(account.user, source, folder=inbox, password="secret")
    assert "secure connection" in tls.error


def test_tls_with_dovecot_verifies_the_certificate(
    dovecot_factory: Callable[..., DovecotServer], mail_user: MailUser, settings: Any,
    dovecot: DovecotServer,
) -> None:
    secure = dovecot_factory(tls=True)
    pop_user = secure.add_user()
    account = make_target(dovecot, mail_user, settings)
    inbox = Folder.objects.get(account=account, name="INBOX")
    settings.POSTA_ALLOWED_MAIL_HOSTS = [secure.host]
    for security, port in (("ssl", secure.pop3s_port), ("starttls", secure.pop3_port)):
        source = Pop3Source(host=secure.host, port=port, security=security,
                            username=pop_user.name)
        untrusted = check_save_source(account.user, source, folder=inbox,
                                      password=pop_user.password)
        assert "certificate" in untrusted.error, security
        assert secure.tls_files is not None
        settings.POSTA_EXTRA_CA_FILE = str(secure.tls_files.ca_file)
        trusted = check_save_source(account.user, source, folder=inbox,
                                    password=pop_user.password)
        assert trusted.error == "", (security, trusted.error)
        settings.POSTA_EXTRA_CA_FILE = ""
