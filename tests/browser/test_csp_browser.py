"""A walk through Posta in Chromium under its Content-Security-Policy: the mail
screen, a message, compose with the rich editor and an attachment, the sending page,
the settings and administrator pages. The browser reports no violation, and each
feature that used to be inline script still works."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from posta.sync.account_pass import sync_account_once
from posta.users.models import User
from posta.web.middleware import SetupMiddleware
from tests.integration.test_mail_screen import PNG, rich_message
from tests.integration.test_mail_screen_words import add_account
from tests.integration.test_send import make_sender
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp import SmtpServer
from tests.wakeups import recorded_wakeups

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "Politica-Sicura-26"

# Runs in every document and frame before the page's own scripts; Playwright's init
# scripts are not subject to the page's policy.
RECORDER = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.reportCspViolation(
    [e.violatedDirective, e.blockedURI, e.documentURI, e.sourceFile + ":" + e.lineNumber,
     e.sample].join(" | "));
});
"""


@pytest.fixture(autouse=True)
def quiet_queue(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr("posta.sync.tasks.enqueue_account_actions", lambda ids: None)
    with recorded_wakeups():
        yield


class Violations:
    """What the browser said about the policy, from the event and the console."""

    def __init__(self, page: Page) -> None:
        self.events: list[str] = []
        self.console: list[str] = []
        self.errors: list[str] = []
        page.context.expose_function("reportCspViolation", self._event)
        page.context.add_init_script(RECORDER)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _event(self, text: str) -> None:
        self.events.append(text)

    def _console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.console.append(message.text)

    def assert_none(self, where: str) -> None:
        assert self.events == [], where
        assert self.console == [], where
        assert self.errors == [], where


def test_walk_through_posta_without_a_policy_violation(
    page: Page, live_server: object, dovecot: DovecotServer, smtp_server: SmtpServer,
    tmp_path: Path,
) -> None:
    base = str(live_server)
    mail_user = dovecot.add_user()
    dovecot.create_folder(mail_user, "Work")
    dovecot.create_folder(mail_user, "Work/Clients")
    dovecot.deliver(mail_user, rich_message("Preventivo", "<p>Hello <b>Bob</b></p>"))
    account = make_sender(dovecot, smtp_server, mail_user)
    sync_account_once(account.pk)
    # A second account: the merged inbox then names each row's account.
    sync_account_once(add_account(dovecot, account.user).account.pk)
    account.signature_kind = "custom"
    account.signature_html = '<p style="text-align: center">Anna, Ufficio acquisti</p>'
    account.save()
    user = account.user
    user.set_password(PASSWORD)
    user.is_staff = True
    user.save()
    User.objects.create_superuser("root", "root@example.test", "Radice-Posta-26")
    SetupMiddleware.set_ready()
    seen = Violations(page)

    # Sign-in page: the language list switches language by itself (posta.js).
    page.goto(f"{base}/login/")
    page.select_option("select[name=language]", "it")
    expect(page.locator("html")).to_have_attribute("lang", "it")
    page.select_option("select[name=language]", "en")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/mail/u/inbox/$"))
    seen.assert_none("sign-in")

    # Mail screen: the nested folder is indented, a message opens with its body frame.
    expect(page.locator("#folders li[data-depth='1']")).to_have_count(1)
    indent = page.locator("#folders li[data-depth='1']").evaluate(
        "el => getComputedStyle(el).paddingLeft"
    )
    assert indent != "0px"
    row = page.locator("#msglist li.msg", has_text="Preventivo")
    # The unified list's account badge has its colour from mail.css.
    hue = row.locator(".acct").evaluate("el => getComputedStyle(el).getPropertyValue('--hue')")
    assert hue.strip() != ""
    row.locator("a.open").click()
    expect(page.locator("#reader-message h2.subject")).to_have_text("Preventivo")
    frame = page.frame_locator("iframe.body-frame")
    expect(frame.locator("body")).to_contain_text("Hello Bob")
    expect(page.locator("#reader")).to_contain_text("preventivo 2026.pdf")
    seen.assert_none("mail screen")

    # Compose: the rich editor takes typing and bold, an attachment uploads.
    page.goto(f"{base}/compose/")  # nothing is stored until the page's first POST
    page.fill("#id_to", "Bruno <bruno@example.test>")
    page.fill("#id_subject", "Under the policy")
    editor = page.locator("#field-body [contenteditable=true]")
    editor.click()
    page.keyboard.type("Plain words ")
    page.keyboard.press("Control+b")
    page.keyboard.type("bold words")
    expect(editor.locator("strong")).to_have_text("bold words")
    # The signature keeps its alignment, a style attribute of the user's text that
    # editor pages admit.
    expect(page.locator("#signature-preview p")).to_have_css("text-align", "center")
    # The editor's base rules reach it from posta.css, not from an injected <style>.
    assert editor.evaluate("el => getComputedStyle(el).whiteSpace") in ("pre-wrap", "break-spaces")
    picture = tmp_path / "pic.png"
    picture.write_bytes(PNG)
    page.set_input_files("#id_files", str(picture))
    expect(page.locator("#attachment-list li")).to_contain_text("pic.png")
    expect(page).to_have_url(re.compile(r"/compose/\d+/$"))  # the upload stored the draft
    seen.assert_none("compose")

    # Sending page: the undo countdown runs (sending.js), Undo calls the message back.
    page.click("#send-button")
    counter = page.locator("#undo-seconds")
    expect(counter).to_be_visible()
    first = int(counter.inner_text())
    expect(counter).not_to_have_text(str(first), timeout=5000)
    assert int(counter.inner_text()) < first
    page.click("#undo-button")
    expect(page).to_have_url(re.compile(r"/compose/\d+/$"))
    seen.assert_none("sending")

    # Settings: profile, layout, the account list (its delete asks on a page of its own), the
    # account form (the type fills the servers), the folders.
    settings_pages = ["/settings/profile/", "/settings/layout/"]
    for path in [*settings_pages, f"/settings/accounts/{account.pk}/folders/"]:
        page.goto(base + path)
        expect(page.locator("main h1")).to_be_visible()
    page.goto(f"{base}/settings/accounts/")
    page.locator("a.danger", has_text="Delete").first.click()
    expect(page.locator("#kept-count")).to_be_visible()
    page.locator("main a", has_text="Cancel").click()
    expect(page.locator("table.list")).to_contain_text(account.email)
    page.goto(f"{base}/settings/accounts/{account.pk}/")
    page.select_option("#id_account_type", "gmail")
    expect(page.locator("#id_imap_host")).to_have_value("imap.gmail.com")
    seen.assert_none("settings")

    # Administrator: users, servers, the company signature with its live preview.
    page.goto(f"{base}/manage/users/")
    expect(page.locator("#login-locks")).to_be_visible()
    page.goto(f"{base}/manage/servers/")
    page.goto(f"{base}/manage/company/")
    signature = page.locator("#field-company_signature [contenteditable=true]")
    signature.click()
    page.keyboard.type("Greetings from $Users||first_name$ at the office")
    expect(page.locator("#signature-preview")).to_contain_text("at the office", timeout=5000)
    seen.assert_none("administrator pages")


def test_a_preview_opened_directly_has_an_opaque_origin(
    page: Page, live_server: object, dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    from email.message import EmailMessage

    from posta.mail.models import Message

    base = str(live_server)
    mail_user = dovecot.add_user()
    msg = EmailMessage()
    msg["From"] = "carla@example.test"
    msg["To"] = "bob@example.test"
    msg["Subject"] = "a picture"
    msg.set_content("see it\n")
    msg.add_attachment(PNG, maintype="image", subtype="png", filename="pic.png")
    dovecot.deliver(mail_user, msg.as_bytes())
    account = make_sender(dovecot, smtp_server, mail_user)
    user = account.user
    user.set_password(PASSWORD)
    user.save()
    User.objects.create_superuser("root", "root@example.test", "Radice-Posta-26")
    SetupMiddleware.set_ready()
    stored = Message.objects.get(user=user, subject="a picture")
    page.goto(f"{base}/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/mail/"))

    page.goto(f"{base}/mail/m/{stored.pk}/part/2/?preview=1")
    origin: Any = page.evaluate("window.origin")
    assert origin == "null"
    cookies: Any = page.evaluate(
        "(() => { try { return document.cookie; } catch (e) { return 'denied'; } })()"
    )
    assert cookies in ("", "denied")
    page.goto(f"{base}/settings/profile/")
    assert page.evaluate("window.origin") == base.rstrip("/")
