"""A new user's first walk through Posta, in Chromium, in English and Italian, on a
desktop and on a phone (issue 19): a fresh install's setup page, the company
settings, the account wizard against the test Dovecot, the mail screen, reading,
reply, a move and its Undo, every settings tab, and log out, with no console
error and no Content-Security-Policy violation on the way.

With POSTA_WALK_SHOTS=DIR each step leaves a full-page screenshot in DIR."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from posta.accounts.models import Account
from posta.sync.account_pass import sync_account_once
from posta.web.middleware import SetupMiddleware
from tests.browser.test_csp_browser import Violations
from tests.browser.test_mail_browser import row
from tests.browser.test_wizard_browser import AutoconfigServer, served  # noqa: F401 - a fixture
from tests.integration.test_mail_screen import rich_message
from tests.integration.test_sync_checker import message
from tests.servers.dovecot import DovecotServer, MailUser
from tests.servers.smtp import SmtpServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ADMIN_PASSWORD = "Amministra-2026!"
SIZES = {"desktop": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}
WORDS = {
    "en": {"locale": "en-US", "create": "Create", "save": "Save", "add": "Add an account",
           "find": "Find my servers", "add_account": "Add account", "reply": "Reply",
           "archive": "Archive", "undo": "Undo", "archived": "Message archived.",
           "undone": "Undone: the message is back.", "logout": "Log out",
           "back": "Back to the list"},
    "it": {"locale": "it-IT", "create": "Crea", "save": "Salva", "add": "Aggiungi un account",
           "find": "Trova i miei server", "add_account": "Aggiungi account", "reply": "Rispondi",
           "archive": "Archivia", "undo": "Annulla", "archived": "Messaggio archiviato.",
           "undone": "Annullato: il messaggio è tornato al suo posto.", "logout": "Esci",
           "back": "Torna all'elenco"},
}  # fmt: skip


class Console:
    """Every console error and uncaught exception of the page."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", self._console)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"{message.text} at {message.location.get('url', '')}")


class Shots:
    """Each step: the page is no wider than the screen (nothing pushed off to the
    side), and with POSTA_WALK_SHOTS a full-page screenshot of it."""

    def __init__(self, page: Page, name: str) -> None:
        target = os.environ.get("POSTA_WALK_SHOTS", "")
        self.page, self.folder, self.name, self.count = page, Path(target), name, 0
        self.on = bool(target)
        if self.on:
            self.folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, step: str) -> None:
        self.page.wait_for_load_state("load")
        wide = self.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert wide <= 1, f"{step}: the page is {wide}px wider than the screen"
        if not self.on:
            return
        self.count += 1
        path = self.folder / f"{self.name}-{self.count:02d}-{step}.png"
        self.page.screenshot(path=str(path), full_page=True)


@pytest.mark.parametrize("size", ["desktop", "phone"])
@pytest.mark.parametrize("language", ["en", "it"])
def test_a_new_user_walks_from_setup_to_log_out_without_an_error(
    new_page: Callable[..., Page],
    live_server: object,
    dovecot: DovecotServer,
    smtp_server: SmtpServer,
    served: tuple[MailUser, AutoconfigServer],  # noqa: F811 - the fixture imported above
    language: str,
    size: str,
) -> None:
    words = WORDS[language]
    base = str(live_server)
    mail_user, _server = served
    for name in ("Sent", "Drafts", "Trash", "Junk", "Archive"):
        dovecot.create_folder(mail_user, name)
    dovecot.deliver(
        mail_user,
        message("Benvenuto", body="Prima riga.\n", date="Mon, 02 Mar 2026 09:00:00 +0100"),
    )
    dovecot.deliver(mail_user, rich_message("Preventivo", "<p>Ecco il <b>preventivo</b>.</p>"))
    SetupMiddleware.set_ready(False)  # a fresh install: no administrator yet
    phone = size == "phone"
    page = new_page(locale=words["locale"], viewport=SIZES[size], is_mobile=phone, has_touch=phone)
    violations, console = Violations(page), Console(page)
    shot = Shots(page, f"{language}-{size}")

    # The first visit leads to the setup page, which creates the administrator.
    page.goto(base + "/")
    expect(page).to_have_url(re.compile(r"/setup/$"))
    shot("setup")
    page.fill("#id_username", "admin")
    page.fill("#id_password1", ADMIN_PASSWORD)
    page.fill("#id_password2", ADMIN_PASSWORD)
    page.fill("#id_company_name", "ACME Srl")
    page.click("button[type=submit]")
    expect(page).not_to_have_url(re.compile(r"/setup/$"))
    shot("after-setup")

    # The administrator allows the on-premise server for mail accounts.
    page.goto(base + "/manage/company/")
    shot("company")
    page.fill("#id_allowed_mail_hosts", "127.0.0.1")
    page.locator("main").get_by_role("button", name=words["save"], exact=True).first.click()
    expect(page.locator("[role=status], .flash li").first).to_be_visible()

    # The wizard finds the servers and adds the account.
    page.goto(base + "/settings/accounts/")
    shot("accounts-empty")
    page.get_by_role("link", name=words["add"]).first.click()
    shot("wizard")
    page.fill("#id_email", mail_user.address)
    page.fill("#id_password", mail_user.password)
    page.get_by_role("button", name=words["find"]).click()
    expect(page.locator("#wizard-ok")).to_be_visible()
    shot("wizard-found")
    page.get_by_role("button", name=words["add_account"]).click()
    expect(page.locator(".flash li").first).to_be_visible()
    shot("account-saved")
    account = Account.objects.get(email=mail_user.address)
    sync_account_once(account.pk)  # what the sync service does on its own

    # The mail screen: read, reply, archive and undo.
    page.goto(base + "/mail/")
    expect(row(page, "Preventivo")).to_be_visible()
    shot("inbox")
    row(page, "Preventivo").locator("a.open").click()
    reader = page.locator("#reader-message")
    expect(reader.locator("h2.subject")).to_have_text("Preventivo")
    expect(
        page.frame_locator("#reader iframe.body-frame").get_by_text("preventivo")
    ).to_be_visible()
    shot("reader")
    reader.get_by_role("link", name=words["reply"], exact=True).click()
    inline = page.locator(".mail-reader .compose-panel.inline")  # the reply, under the message
    expect(inline).to_be_visible()
    expect(page.frame_locator(".compose-panel iframe").locator("#id_subject")).to_have_value(
        "Re: Preventivo"
    )
    shot("reply")
    inline.locator(".compose-close").click()  # closed, its draft kept
    expect(inline).to_have_count(0)
    expect(reader.locator("h2.subject")).to_have_text("Preventivo")
    reader.get_by_role("button", name=words["archive"], exact=True).click()
    toast = page.locator("#mail-toast")
    expect(toast.locator("#mail-toast-text")).to_have_text(words["archived"])
    shot("archived")
    toast.get_by_role("button", name=words["undo"], exact=True).click()
    expect(toast.locator("#mail-toast-text")).to_have_text(words["undone"])
    if phone:
        page.get_by_role("button", name=words["back"]).click()
    expect(row(page, "Preventivo")).to_be_visible()
    shot("undone")

    # Every settings tab, then log out.
    page.goto(base + "/settings/accounts/")
    tabs = page.locator("nav.tabs a")
    hrefs = [tabs.nth(i).get_attribute("href") or "" for i in range(tabs.count())]
    assert len(hrefs) >= 6
    for href in hrefs:
        page.goto(base + href)
        expect(page.locator("nav.tabs a[aria-current=page]")).to_have_count(1)
        shot("settings-" + href.strip("/").replace("/", "-"))
    if phone:
        page.locator("#menu-toggle").click()  # the top bar's links fold into its menu
    page.get_by_role("button", name=words["logout"]).click()
    expect(page).to_have_url(re.compile(r"/login/"))
    shot("logged-out")

    violations.assert_none(f"first walk {language} {size}")
    assert console.errors == [], console.errors
