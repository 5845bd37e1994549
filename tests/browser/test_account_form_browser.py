"""The account form and the new-user form in Chromium, in English and Italian: a failed
test shows its error once beside the settings it concerns and keeps what was typed;
saving shows progress; a Custom account has no "Custom SMTP server" switch; a new user
gets the profile fields the company signature merges."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from playwright.sync_api import Page, expect

from posta.accounts.models import Account, CompanySettings
from posta.users.models import User
from tests.servers.dovecot import DovecotServer, MailUser
from tests.servers.smtp import SmtpServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ADMIN_PASSWORD = "Amministra-2026!"
WRONG_PASSWORD = "not-the-password-9z"


@dataclass(frozen=True)
class Words:
    locale: str
    save_and_test: str
    refused: str
    connecting: str
    saved: str
    save: str
    admin_help: str
    company_saved: str


ENGLISH = Words(
    locale="en-US",
    save_and_test="Save and test",
    refused="refused the user name or password",
    connecting="Connecting to IMAP… SMTP…",
    saved="Account saved and connected.",
    save="Save",
    admin_help="Can manage users, mail servers and company settings.",
    company_saved="Company settings saved.",
)
ITALIAN = Words(
    locale="it-IT",
    save_and_test="Salva e verifica",
    refused="ha rifiutato il nome utente o la password",
    connecting="Connessione a IMAP… SMTP…",
    saved="Account salvato e connesso.",
    save="Salva",
    admin_help="Può gestire gli utenti, i server di posta e le impostazioni dell'azienda.",
    company_saved="Impostazioni aziendali salvate.",
)
LANGUAGES = pytest.mark.parametrize("words", [ENGLISH, ITALIAN], ids=["en", "it"])


def admin_page(new_page: Callable[..., Page], base: str, words: Words) -> Page:
    """An administrator signed in, with the loopback servers allowed."""
    User.objects.create_superuser("root", "root@example.test", ADMIN_PASSWORD)
    CompanySettings.objects.update_or_create(pk=1, defaults={"allowed_mail_hosts": "127.0.0.1"})
    page = new_page(locale=words.locale)
    page.goto(f"{base}/login/")
    page.fill("#id_username", "root")
    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    expect(page).not_to_have_url(re.compile(r"/login/"))
    return page


def fill_custom_account(
    page: Page, mail_user: MailUser, password: str, dovecot: DovecotServer, smtp: SmtpServer
) -> None:
    page.fill("#id_username", mail_user.name)
    page.fill("#id_password", password)
    page.fill("#id_description", "Ufficio vendite")
    page.fill("#id_imap_host", "127.0.0.1")
    page.fill("#id_imap_port", str(dovecot.imap_port))
    page.select_option("#id_imap_security", "none")
    page.fill("#id_smtp_host", "127.0.0.1")
    page.fill("#id_smtp_port", str(smtp.port))
    page.select_option("#id_smtp_security", "none")


def submit_held(page: Page, words: Words) -> None:
    """Click Save and test with the submission held back in the page, check that the
    page shows progress and a disabled button meanwhile, then let the form go."""
    # A listener on window runs after the form's own (bubbling order), so the page's
    # script has reacted to the submit before this one cancels the navigation.
    page.evaluate(
        """() => {
            window.heldSubmits = 0;
            window.holdSubmit = (e) => { window.heldSubmits += 1; e.preventDefault(); };
            window.addEventListener("submit", window.holdSubmit);
        }"""
    )
    button = page.locator("#account-save")
    button.click()
    expect(button).to_be_disabled()
    expect(button).to_have_attribute("aria-busy", "true")
    expect(page.locator("#account-progress")).to_be_visible()
    expect(page.locator("#account-progress")).to_have_text(words.connecting)
    assert page.evaluate("() => window.heldSubmits") == 1
    with page.expect_navigation():
        page.evaluate(
            """() => {
                window.removeEventListener("submit", window.holdSubmit);
                document.getElementById("account-form").submit();
            }"""
        )


@LANGUAGES
def test_wrong_password_shows_one_error_by_imap_and_keeps_what_was_typed(
    new_page: Callable[..., Page],
    live_server: object,
    dovecot: DovecotServer,
    smtp_server: SmtpServer,
    words: Words,
) -> None:
    base = str(live_server)
    page = admin_page(new_page, base, words)
    mail_user = dovecot.add_user()
    page.goto(base + "/settings/accounts/new/")
    fill_custom_account(page, mail_user, WRONG_PASSWORD, dovecot, smtp_server)
    page.uncheck("#id_smtp_auth")
    submit_held(page, words)

    imap_error = page.locator("#imap-settings .error-box")
    expect(imap_error).to_have_count(1)
    expect(imap_error).to_contain_text(words.refused)
    # Once on the whole page, and nothing beside the SMTP settings.
    expect(page.get_by_text(re.compile(re.escape(words.refused)))).to_have_count(1)
    expect(page.locator(".error-box")).to_have_count(1)
    expect(page.locator("#smtp-settings .error-box")).to_have_count(0)
    # What was typed is still there, the password included.
    expect(page.locator("#id_password")).to_have_value(WRONG_PASSWORD)
    expect(page.locator("#id_username")).to_have_value(mail_user.name)
    expect(page.locator("#id_description")).to_have_value("Ufficio vendite")
    expect(page.locator("#id_imap_port")).to_have_value(str(dovecot.imap_port))
    expect(page.locator("#id_smtp_auth")).not_to_be_checked()
    expect(page.locator("#account-save")).to_be_enabled()
    expect(page.locator("#account-progress")).to_be_hidden()
    assert not Account.objects.exists()

    # Corrected, it saves; the mistyped password reaches no other page.
    page.fill("#id_password", mail_user.password)
    page.locator("#account-save").click()
    expect(page.get_by_text(words.saved)).to_be_visible()
    account = Account.objects.get(username=mail_user.name)
    assert account.description == "Ufficio vendite"
    assert WRONG_PASSWORD not in page.content()
    page.goto(base + "/settings/accounts/")
    assert WRONG_PASSWORD not in page.content()
    page.goto(f"{base}/settings/accounts/{account.pk}/")
    assert mail_user.password not in page.content()


@LANGUAGES
def test_smtp_failure_is_shown_by_the_smtp_settings_only(
    new_page: Callable[..., Page],
    live_server: object,
    dovecot: DovecotServer,
    smtp_server: SmtpServer,
    words: Words,
) -> None:
    base = str(live_server)
    page = admin_page(new_page, base, words)
    mail_user = dovecot.add_user()
    smtp_server.require_auth(mail_user.name, "only-the-smtp-password")
    page.goto(base + "/settings/accounts/new/")
    fill_custom_account(page, mail_user, mail_user.password, dovecot, smtp_server)
    page.check("#id_smtp_auth")
    page.locator("#account-save").click()

    smtp_error = page.locator("#smtp-settings .error-box")
    expect(smtp_error).to_have_count(1)
    expect(smtp_error).to_contain_text("SMTP")
    expect(page.locator(".error-box")).to_have_count(1)
    expect(page.locator("#imap-settings .error-box")).to_have_count(0)
    expect(page.locator("#id_password")).to_have_value(mail_user.password)
    assert not Account.objects.exists()


@LANGUAGES
def test_custom_account_hides_the_custom_smtp_switch(
    new_page: Callable[..., Page], live_server: object, words: Words
) -> None:
    base = str(live_server)
    page = admin_page(new_page, base, words)
    page.goto(base + "/settings/accounts/new/")
    switch = page.locator("#field-smtp_custom")
    expect(page.locator("#id_account_type")).to_have_value("custom")
    expect(switch).to_be_hidden()
    page.select_option("#id_account_type", "gmail")
    expect(switch).to_be_visible()
    page.select_option("#id_account_type", "custom")
    expect(switch).to_be_hidden()


@LANGUAGES
def test_new_user_form_stores_the_signature_fields_and_explains_administrator(
    new_page: Callable[..., Page], live_server: object, words: Words
) -> None:
    base = str(live_server)
    page = admin_page(new_page, base, words)
    page.goto(base + "/manage/users/new/")
    expect(page.locator("#field-is_staff .help")).to_have_text(words.admin_help)
    assert "admin site" not in page.content()
    page.fill("#id_username", "lucia")
    page.fill("#id_first_name", "Lucia")
    page.fill("#id_department", "Amministrazione")
    page.fill("#id_phone_work", "+39 02 1234567")
    page.fill("#id_phone_mobile", "+39 333 7654321")
    page.fill("#id_password1", "Lucia-Sicura-2026")
    page.fill("#id_password2", "Lucia-Sicura-2026")
    page.get_by_role("button", name=words.save, exact=True).click()
    expect(page.get_by_role("link", name="lucia")).to_be_visible()
    lucia = User.objects.get(username="lucia")
    assert (lucia.department, lucia.phone_work, lucia.phone_mobile) == (
        "Amministrazione",
        "+39 02 1234567",
        "+39 333 7654321",
    )
    assert not lucia.is_staff


@LANGUAGES
def test_enter_in_a_signature_makes_a_line_break_not_a_paragraph(
    new_page: Callable[..., Page], live_server: object, words: Words
) -> None:
    base = str(live_server)
    page = admin_page(new_page, base, words)
    page.goto(base + "/manage/company/")
    signature = page.locator("#field-company_signature [contenteditable=true]")
    signature.click()
    page.keyboard.type("Mario Rossi")
    page.keyboard.press("Enter")
    page.keyboard.type("Ufficio vendite")
    expect(signature.locator("br")).to_have_count(1)
    expect(signature.locator("p")).to_have_count(1)
    page.get_by_role("button", name=words.save, exact=True).click()
    expect(page.get_by_text(words.company_saved)).to_be_visible()
    stored = CompanySettings.load().company_signature
    assert re.fullmatch(r"<p>Mario Rossi<br>\s*Ufficio vendite</p>", stored), stored
