"""The account wizard in Chromium, in English and Italian (issue 19): name, address
and password; Posta reads the domain's autoconfig file (Mozilla's ISPDB format),
served here from 127.0.0.1, tries the servers it names (the test Dovecot and SMTP
server) and offers "Add account" and "Edit settings", the full form filled in.
No real DNS is asked: the wizard's network edge is replaced by one that knows only
the test's names, and every address still passes the address guard."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from posta.accounts.models import Account
from posta.remote import discovery
from tests.browser.test_account_form_browser import ENGLISH, ITALIAN, Words, admin_page
from tests.servers.dovecot import DovecotServer, MailUser
from tests.servers.smtp import SmtpServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CONFIG = """<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="{domain}">
    <domain>{domain}</domain>
    <incomingServer type="imap">
      <hostname>127.0.0.1</hostname><port>{imap}</port><socketType>plain</socketType>
      <username>%EMAILADDRESS%</username><authentication>password-cleartext</authentication>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>127.0.0.1</hostname><port>{smtp}</port><socketType>plain</socketType>
      <username>%EMAILADDRESS%</username><authentication>password-cleartext</authentication>
    </outgoingServer>
  </emailProvider>
</clientConfig>
"""


class AutoconfigServer:
    """Serves one autoconfig file on 127.0.0.1 and records the paths asked for."""

    def __init__(self, body: bytes) -> None:
        self.paths: list[str] = []
        seen = self.paths

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append(f"{self.headers.get('Host')}{self.path}")
                found = self.path.startswith("/mail/config-v1.1.xml")
                self.send_response(200 if found else 404)
                self.send_header("Content-Type", "application/xml")
                self.end_headers()
                if found:
                    self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class LoopbackNetwork(discovery.Network):
    """DNS that knows `autoconfig.<domain>` only, at 127.0.0.1; no MX, no SRV."""

    def __init__(self, domain: str, http_port: int, closed_port: int) -> None:
        self.domain = domain
        self.ports = {"http": http_port, "https": closed_port}

    def addresses(self, host: str, port: int) -> list[str]:
        if host == f"autoconfig.{self.domain}":
            return ["127.0.0.1"]
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    def mx(self, domain: str) -> list[str]:
        raise OSError("no MX in this test")

    def srv(self, name: str) -> list[discovery.Srv]:
        raise OSError("no SRV in this test")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(
    dovecot: DovecotServer, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[MailUser, AutoconfigServer]]:
    mail_user = dovecot.add_user()
    domain = mail_user.address.rpartition("@")[2]
    body = CONFIG.format(domain=domain, imap=dovecot.imap_port, smtp=smtp_server.port)
    server = AutoconfigServer(body.encode())
    monkeypatch.setattr(discovery, "NETWORK", LoopbackNetwork(domain, server.port, closed_port()))
    yield mail_user, server
    server.stop()


WIZARD = {
    "en": {"add": "Add an account", "find": "Find my servers", "edit": "Edit settings",
           "add_account": "Add account",
           "ok": "Found with the configuration published by the domain, and the login works."},
    "it": {"add": "Aggiungi un account", "find": "Trova i miei server",
           "edit": "Modifica impostazioni", "add_account": "Aggiungi account",
           "ok": "Trovati con la configurazione pubblicata dal dominio, e l'accesso funziona."},
}  # fmt: skip


@pytest.mark.parametrize(("words", "language"), [(ENGLISH, "en"), (ITALIAN, "it")],
                         ids=["en", "it"])  # fmt: skip
def test_the_wizard_finds_a_local_autoconfig_tries_it_and_fills_the_full_form(
    new_page: Callable[..., Page], live_server: object, served: tuple[MailUser, AutoconfigServer],
    dovecot: DovecotServer, smtp_server: SmtpServer, words: Words, language: str,
) -> None:
    mail_user, server = served
    said = WIZARD[language]
    base = str(live_server)
    page = admin_page(new_page, base, words)
    page.goto(base + "/settings/accounts/")
    page.get_by_role("link", name=said["add"]).click()
    page.fill("#id_name", "Ufficio vendite")
    page.fill("#id_email", mail_user.address)
    page.fill("#id_password", mail_user.password)
    page.get_by_role("button", name=said["find"]).click()

    expect(page.locator("#wizard-ok")).to_have_text(said["ok"])
    expect(page.locator("#wizard-imap")).to_contain_text(f"127.0.0.1:{dovecot.imap_port}")
    expect(page.locator("#wizard-smtp")).to_contain_text(f"127.0.0.1:{smtp_server.port}")
    domain = mail_user.address.rpartition("@")[2]
    assert any(p.startswith(f"autoconfig.{domain}/mail/config-v1.1.xml?emailaddress=")
               for p in server.paths)  # fmt: skip
    assert not Account.objects.exists()  # found and tried, not saved yet

    if language == "en":
        # "Edit settings": the full form, filled in with what was found.
        page.get_by_role("button", name=said["edit"]).click()
        expect(page.locator("#id_imap_host")).to_have_value("127.0.0.1")
        expect(page.locator("#id_imap_port")).to_have_value(str(dovecot.imap_port))
        expect(page.locator("#id_smtp_port")).to_have_value(str(smtp_server.port))
        expect(page.locator("#id_password")).to_have_value(mail_user.password)
        expect(page.locator("#id_description")).to_have_value("Ufficio vendite")
        page.locator("#account-save").click()
    else:
        page.get_by_role("button", name=said["add_account"]).click()
    expect(page.get_by_text(words.saved)).to_be_visible()
    account = Account.objects.get(email=mail_user.address)
    assert (account.imap_host, account.imap_port) == ("127.0.0.1", dovecot.imap_port)
    assert (account.smtp_port, account.description) == (smtp_server.port, "Ufficio vendite")
