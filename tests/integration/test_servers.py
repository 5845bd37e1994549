"""The test servers themselves: what every integration and browser test relies on."""

from __future__ import annotations

import http.server
import imaplib
import os
import poplib
import re
import smtplib
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
import sievelib.managesieve
from playwright.sync_api import Page

from tests.servers.dovecot import SPECIAL_USE, DovecotServer, MailUser
from tests.servers.smtp import SmtpServer

LIST_LINE = re.compile(rb'^\((?P<attrs>[^)]*)\) "(?P<sep>[^"]*)" (?P<name>.+)$')


def _message(subject: str, to: str = "someone@example.test") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Sender <sender@example.test>"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = f"<{subject.replace(' ', '.')}@example.test>"
    message.set_content(f"Body of {subject}\n")
    return message


def _list_attributes(client: imaplib.IMAP4) -> dict[str, set[str]]:
    typ, lines = client.list()
    assert typ == "OK"
    result: dict[str, set[str]] = {}
    for line in lines:
        assert isinstance(line, bytes)
        match = LIST_LINE.match(line)
        assert match, line
        name = match["name"].decode().strip('"')
        result[name] = set(match["attrs"].decode().split())
    return result


def _subjects(client: imaplib.IMAP4, folder: str) -> list[str]:
    typ, _ = client.select(f'"{folder}"', readonly=True)
    assert typ == "OK"
    typ, data = client.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK"
    return [
        part[1].decode().split(":", 1)[1].strip()
        for part in data
        if isinstance(part, tuple)
    ]


# ---------------------------------------------------------------------- Dovecot


def test_imap_login_and_capabilities(dovecot: DovecotServer, mail_user: MailUser) -> None:
    client = imaplib.IMAP4(dovecot.host, dovecot.imap_port)
    try:
        assert client.login(mail_user.name, mail_user.password)[0] == "OK"
        typ, data = client.capability()
        capabilities = set(data[0].decode().upper().split())
        assert {"IDLE", "CONDSTORE", "QRESYNC", "SPECIAL-USE", "UIDPLUS", "MOVE"} <= capabilities
    finally:
        client.logout()


def test_wrong_password_is_refused(dovecot: DovecotServer, mail_user: MailUser) -> None:
    client = imaplib.IMAP4(dovecot.host, dovecot.imap_port)
    try:
        with pytest.raises(imaplib.IMAP4.error):
            client.login(mail_user.name, "not-the-password")
    finally:
        client.shutdown()


def test_special_use_only_on_configured_names(
    dovecot: DovecotServer, mail_user: MailUser
) -> None:
    by_name_only = ["Posta inviata", "Bozze", "Cestino", "Posta indesiderata", "INBOX/Sent"]
    for name in [*SPECIAL_USE, *by_name_only]:
        dovecot.create_folder(mail_user, name)

    client = dovecot.imap(mail_user)
    try:
        attributes = _list_attributes(client)
    finally:
        client.logout()

    for name, flag in SPECIAL_USE.items():
        assert flag in attributes[name], name
    special = {"\\Drafts", "\\Sent", "\\Trash", "\\Junk", "\\Archive", "\\All", "\\Flagged"}
    for name in by_name_only:
        assert not attributes[name] & special, name


def test_special_use_folders_are_not_created_automatically(
    dovecot: DovecotServer, mail_user: MailUser
) -> None:
    assert dovecot.folders(mail_user) == ["INBOX"]


def test_folder_names_utf8_rename_delete(dovecot: DovecotServer, mail_user: MailUser) -> None:
    dovecot.create_folder(mail_user, "Clienti/Già visti")
    dovecot.create_folder(mail_user, "Fatture.2024")
    dovecot.rename_folder(mail_user, "Fatture.2024", "Fatture 2025")
    dovecot.delete_folder(mail_user, "Clienti/Già visti")

    folders = set(dovecot.folders(mail_user))
    assert "Fatture 2025" in folders
    assert "Fatture.2024" not in folders
    assert "Clienti/Già visti" not in folders

    dovecot.create_folder(mail_user, "Clienti/Già visti")
    dovecot.deliver(mail_user, _message("kept"), folder="Clienti/Già visti")
    dovecot.set_flags(mail_user, "Clienti/Già visti", 1, "\\Flagged")
    client = dovecot.imap(mail_user)
    try:
        attributes = _list_attributes(client)
        client.select('"Clienti/Gi&AOA- visti"', readonly=True)
        typ, data = client.uid("FETCH", "1", "(FLAGS)")
        assert b"\\Flagged" in data[0]
    finally:
        client.logout()
    assert "Clienti/Gi&AOA- visti" in attributes  # modified UTF-7 on the wire


def test_lmtp_delivery_arrives_in_inbox(dovecot: DovecotServer, mail_user: MailUser) -> None:
    dovecot.deliver(mail_user, _message("first"))
    dovecot.deliver(mail_user, _message("second").as_bytes())

    assert dovecot.uids(mail_user) == [1, 2]
    client = dovecot.imap(mail_user)
    try:
        assert _subjects(client, "INBOX") == ["first", "second"]
        typ, data = client.uid("FETCH", "1", "(FLAGS)")
        assert b"\\Seen" not in data[0]
    finally:
        client.logout()


def test_lmtp_delivery_wakes_idle(dovecot: DovecotServer, mail_user: MailUser) -> None:
    client = dovecot.imap(mail_user)
    try:
        client.select("INBOX")
        tag = client._new_tag().decode()  # imaplib has no IDLE command of its own
        client.send(f"{tag} IDLE\r\n".encode())
        assert client.readline().startswith(b"+")
        dovecot.deliver(mail_user, _message("push"))
        client.sock.settimeout(10)
        assert re.match(rb"\* 1 EXISTS", client.readline())
        client.send(b"DONE\r\n")
        while not client.readline().startswith(tag.encode()):
            pass
    finally:
        client.logout()


def test_save_into_folder_with_flags(dovecot: DovecotServer, mail_user: MailUser) -> None:
    dovecot.create_folder(mail_user, "Archive")
    dovecot.deliver(mail_user, _message("plain"), folder="Archive")
    dovecot.deliver(mail_user, _message("flagged"), folder="Archive", flags="\\Seen \\Flagged")
    dovecot.deliver(mail_user, _message("inbox seen"), flags="\\Seen")

    assert dovecot.uids(mail_user, "Archive") == [1, 2]
    client = dovecot.imap(mail_user)
    try:
        client.select("Archive", readonly=True)
        typ, data = client.uid("FETCH", "1:2", "(FLAGS)")
        assert b"\\Seen" not in data[0] and b"\\Flagged" not in data[0]
        assert b"\\Seen" in data[1] and b"\\Flagged" in data[1]
        assert _subjects(client, "INBOX") == ["inbox seen"]
    finally:
        client.logout()


def test_second_client_changes_flags_and_expunges(
    dovecot: DovecotServer, mail_user: MailUser
) -> None:
    for subject in ("one", "two", "three"):
        dovecot.deliver(mail_user, _message(subject))
    dovecot.set_flags(mail_user, "INBOX", 2, "\\Seen \\Answered")
    dovecot.set_flags(mail_user, "INBOX", 2, "\\Answered", add=False)
    dovecot.expunge(mail_user, "INBOX", 3)

    assert dovecot.uids(mail_user) == [1, 2]
    client = dovecot.imap(mail_user)
    try:
        client.select("INBOX", readonly=True)
        typ, data = client.uid("FETCH", "2", "(FLAGS)")
        assert b"\\Seen" in data[0] and b"\\Answered" not in data[0]
    finally:
        client.logout()


def test_pop3_sees_delivered_message(dovecot: DovecotServer, mail_user: MailUser) -> None:
    dovecot.deliver(mail_user, _message("by pop"))
    client = poplib.POP3(dovecot.host, dovecot.pop3_port, timeout=10)
    try:
        client.user(mail_user.name)
        client.pass_(mail_user.password)
        count, _size = client.stat()
        assert count == 1
        _response, lines, _octets = client.retr(1)
        assert b"Subject: by pop" in lines
        _response, uidls, _octets = client.uidl()
        assert len(uidls) == 1
    finally:
        client.quit()


def test_managesieve_greeting(dovecot: DovecotServer) -> None:
    with socket.create_connection((dovecot.host, dovecot.managesieve_port), timeout=10) as sock:
        reader = sock.makefile("rb")
        greeting = []
        while True:
            line = reader.readline()
            greeting.append(line)
            if line.startswith((b"OK", b"NO", b"BYE")) or not line:
                break
    assert greeting[-1].startswith(b"OK")
    assert any(line.startswith(b'"SIEVE"') for line in greeting)
    assert any(line.startswith(b'"IMPLEMENTATION"') for line in greeting)


def test_reset_uidvalidity_keeps_messages(dovecot: DovecotServer, mail_user: MailUser) -> None:
    dovecot.create_folder(mail_user, "Kept")
    for subject in ("a", "b"):
        dovecot.deliver(mail_user, _message(subject), folder="Kept")
    before = dovecot.status(mail_user, "Kept")["uidvalidity"]

    new_value = dovecot.reset_uidvalidity(mail_user, "Kept")

    client = dovecot.imap(mail_user)
    try:
        typ, data = client.status("Kept", "(UIDVALIDITY MESSAGES)")
        assert typ == "OK"
        seen = re.search(rb"UIDVALIDITY (\d+)", data[0])
        assert seen and int(seen[1]) == new_value != before
        assert _subjects(client, "Kept") == ["a", "b"]
    finally:
        client.logout()


def test_sieve_script_runs_on_lmtp_delivery(
    dovecot_factory: Callable[..., DovecotServer], smtp_server: SmtpServer
) -> None:
    server = dovecot_factory(extra_config=f"submission_host = 127.0.0.1:{smtp_server.port}")
    user = server.add_user()
    server.create_folder(user, "Invoices")
    client = sievelib.managesieve.Client(server.host, server.managesieve_port)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # plaintext ManageSieve login, on loopback
        assert client.connect(user.name, user.password, starttls=False, authmech="PLAIN")
    script = (
        'require ["fileinto", "vacation"];\n'
        'if header :contains "subject" "invoice" { fileinto "Invoices"; stop; }\n'
        'vacation :days 1 :subject "Away" "Back on Monday.";\n'
    )
    assert client.putscript("main", script)
    assert client.setactive("main")
    client.logout()

    server.deliver(user, _message("invoice 42", to=user.address))
    server.deliver(user, _message("hello", to=user.address))

    assert server.uids(user, "Invoices") == [1]
    assert server.uids(user) == [1]
    (reply,) = smtp_server.wait_for(1)
    assert reply.mail_from == ""
    assert reply.rcpt_tos == ["sender@example.test"]
    assert reply.message()["Auto-Submitted"].startswith("auto-replied")


def test_kick_drops_open_connections(dovecot: DovecotServer, mail_user: MailUser) -> None:
    client = dovecot.imap(mail_user)
    client.select("INBOX")
    dovecot.kick(mail_user)
    with pytest.raises((imaplib.IMAP4.abort, OSError)):
        for _ in range(100):  # the kicked process may take a moment to say BYE
            client.noop()
            time.sleep(0.05)


# ------------------------------------------------------------------------- SMTP


def test_smtp_records_message(smtp_server: SmtpServer) -> None:
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        client.sendmail("a@example.test", ["b@example.test", "c@example.test"],
                        _message("recorded").as_bytes())
    (mail,) = smtp_server.wait_for(1)
    assert mail.mail_from == "a@example.test"
    assert mail.rcpt_tos == ["b@example.test", "c@example.test"]
    assert mail.authenticated_as is None
    assert mail.message()["Subject"] == "recorded"
    smtp_server.clear()
    assert smtp_server.messages == []


def test_smtp_auth_required(smtp_server: SmtpServer) -> None:
    smtp_server.require_auth("sender", "s3cret")
    data = _message("authenticated").as_bytes()
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        client.ehlo()
        assert client.has_extn("auth")
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail("a@example.test", ["b@example.test"], data)
        assert refused.value.smtp_code == 530
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login("sender", "wrong")
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        client.login("sender", "s3cret")
        client.sendmail("a@example.test", ["b@example.test"], data)
    (mail,) = smtp_server.wait_for(1)
    assert mail.authenticated_as == "sender"


def test_smtp_auth_login_mechanism(smtp_server: SmtpServer) -> None:
    smtp_server.require_auth("sender", "s3cret")
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        client.ehlo()
        client.user, client.password = "sender", "s3cret"
        client.auth("LOGIN", client.auth_login)
        client.sendmail("a@example.test", ["b@example.test"], _message("login").as_bytes())
    assert smtp_server.wait_for(1)[0].authenticated_as == "sender"


def test_smtp_reply_with_temporary_failure_then_success(smtp_server: SmtpServer) -> None:
    smtp_server.reply_with(451)
    data = _message("retried").as_bytes()
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        with pytest.raises(smtplib.SMTPDataError) as failed:
            client.sendmail("a@example.test", ["b@example.test"], data)
        assert failed.value.smtp_code == 451
        client.rset()
        client.sendmail("a@example.test", ["b@example.test"], data)
    assert len(smtp_server.wait_for(1)) == 1


def test_smtp_reply_with_per_recipient_and_stage(smtp_server: SmtpServer) -> None:
    smtp_server.reply_with(550, stage="RCPT", recipient="gone@example.test")
    smtp_server.reply_with(452, stage="MAIL")
    data = _message("partial").as_bytes()
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail("a@example.test", ["b@example.test"], data)
        assert refused.value.smtp_code == 452
        rejected = client.sendmail("a@example.test", ["ok@example.test", "gone@example.test"], data)
    assert rejected == {"gone@example.test": (550, b"5.1.1 Mailbox unavailable")}
    (mail,) = smtp_server.wait_for(1)
    assert mail.rcpt_tos == ["ok@example.test"]


def test_smtp_relay_to_lmtp_lands_in_mailbox(
    smtp_server: SmtpServer, dovecot: DovecotServer
) -> None:
    first, second = dovecot.add_user(), dovecot.add_user()
    smtp_server.relay_to_lmtp(dovecot)
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        client.sendmail("a@example.test", [first.address, second.address],
                        _message("relayed", to=first.address).as_bytes())
    smtp_server.wait_for(1)
    for user in (first, second):
        client_imap = dovecot.imap(user)
        try:
            assert _subjects(client_imap, "INBOX") == ["relayed"]
        finally:
            client_imap.logout()


# -------------------------------------------------------------------------- TLS


def test_tls_instance_imaps_and_starttls(
    dovecot_factory: Callable[..., DovecotServer],
) -> None:
    server = dovecot_factory(tls=True)
    assert server.ca_file and server.imaps_port and server.pop3s_port
    user = server.add_user()
    server.deliver(user, _message("secret mail"))
    context = ssl.create_default_context(cafile=server.ca_file)

    for hostname in ("localhost", "127.0.0.1"):
        implicit = imaplib.IMAP4_SSL(hostname, server.imaps_port, ssl_context=context)
        try:
            implicit.login(user.name, user.password)
            assert _subjects(implicit, "INBOX") == ["secret mail"]
        finally:
            implicit.logout()

    upgraded = imaplib.IMAP4("localhost", server.imap_port)
    try:
        assert "STARTTLS" in upgraded.capabilities
        upgraded.starttls(ssl_context=context)
        upgraded.login(user.name, user.password)
    finally:
        upgraded.logout()

    # Plaintext login stays possible on the plain port, for tests of both choices.
    plain = server.imap(user)
    plain.logout()

    pop3 = poplib.POP3_SSL("localhost", server.pop3s_port, context=context)
    try:
        pop3.user(user.name)
        pop3.pass_(user.password)
        assert pop3.stat()[0] == 1
    finally:
        pop3.quit()

    untrusting = ssl.create_default_context()
    with pytest.raises(ssl.SSLCertVerificationError):
        imaplib.IMAP4_SSL("localhost", server.imaps_port, ssl_context=untrusting)


def test_smtp_starttls_and_implicit_tls(smtp_factory: Callable[..., SmtpServer]) -> None:
    starttls = smtp_factory(tls="starttls")
    assert starttls.ca_file
    context = ssl.create_default_context(cafile=starttls.ca_file)
    with smtplib.SMTP("localhost", starttls.port, timeout=10) as client:
        client.starttls(context=context)
        client.login("anyone", "anything")
        client.sendmail("a@example.test", ["b@example.test"], _message("tls").as_bytes())
    (mail,) = starttls.wait_for(1)
    assert mail.used_tls and mail.authenticated_as == "anyone"

    implicit = smtp_factory(tls="implicit", tls_files=starttls.tls_files)
    with smtplib.SMTP_SSL("localhost", implicit.port, context=context, timeout=10) as client:
        client.sendmail("a@example.test", ["b@example.test"], _message("ssl").as_bytes())
    assert implicit.wait_for(1)[0].used_tls


# ---------------------------------------------------------------------- browser


@pytest.fixture
def tiny_site() -> Iterator[str]:
    """A one-page site on a free loopback port; yields its URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            language = self.headers.get("Accept-Language", "")
            body = f"<title>Posta smoke</title><p id=lang>{language}</p>".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.browser
def test_browser_reads_page_title(page: Page, page_it: Page, tiny_site: str) -> None:
    page.goto(tiny_site)
    assert page.title() == "Posta smoke"
    assert page.locator("#lang").inner_text().startswith("en-US")
    page_it.goto(tiny_site)
    assert page_it.locator("#lang").inner_text().startswith("it-IT")


# ------------------------------------------------------------------ environment


def test_settings_use_the_session_data_dir() -> None:
    from django.conf import settings

    data_dir = Path(os.environ["POSTA_DATA_DIR"])
    assert Path(settings.DATA_DIR) == data_dir
    assert data_dir.name.startswith("posta-test-data-") or data_dir.parent.name.startswith(
        "posta-test-data-"
    )
    assert Path(settings.STORAGES["default"]["OPTIONS"]["location"]).is_relative_to(data_dir)
    assert settings.POSTA_ALLOWED_MAIL_HOSTS == []
    if "filename" in settings.HUEY:  # the embedded queue, not Redis
        from huey.contrib.djhuey import HUEY

        assert Path(settings.HUEY["filename"]).is_relative_to(data_dir)
        assert Path(HUEY.storage.filename).is_relative_to(data_dir)
