"""The signature editors' "Insert field" menu (issue 19): the company signature and
a custom account signature list the merge fields by their names for people, in the
user's language, and a chosen field is inserted at the cursor as `$Users||code$`."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from posta.accounts.models import CompanySettings
from tests.browser.test_account_form_browser import ENGLISH, ITALIAN, Words, admin_page
from tests.browser.test_csp_browser import Violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MENU = {"en": ("Insert field", "First name", "Office phone"),
        "it": ("Inserisci campo", "Nome", "Telefono ufficio")}  # fmt: skip
LANGUAGES = pytest.mark.parametrize(("words", "language"), [(ENGLISH, "en"), (ITALIAN, "it")],
                                    ids=["en", "it"])  # fmt: skip


def insert_field(page: Page, field: str, title: str, name: str) -> None:
    page.locator(f'#{field} button[title="{title}"]').click()
    menu = page.get_by_role("menu", name=title)
    expect(menu).to_be_visible()
    menu.get_by_role("menuitem", name=name, exact=True).click()
    expect(menu).to_be_hidden()


@LANGUAGES
def test_the_company_signature_inserts_a_merge_field_at_the_cursor(
    new_page: Callable[..., Page], live_server: object, words: Words, language: str
) -> None:
    title, first_name, office_phone = MENU[language]
    base = str(live_server)
    page = admin_page(new_page, base, words)
    seen = Violations(page)
    page.goto(base + "/manage/company/")
    signature = page.locator("#field-company_signature [contenteditable=true]")
    signature.click()
    page.keyboard.type("Saluti, ")
    insert_field(page, "field-company_signature", title, first_name)
    page.keyboard.type(" tel. ")
    insert_field(page, "field-company_signature", title, office_phone)
    expect(signature).to_have_text("Saluti, $Users||first_name$ tel. $Users||phone_work$")
    page.get_by_role("button", name=words.save, exact=True).click()
    expect(page.get_by_text(words.company_saved)).to_be_visible()
    stored = CompanySettings.load().company_signature
    assert re.fullmatch(r"<p>Saluti, \$Users\|\|first_name\$ tel\. \$Users\|\|phone_work\$</p>",
                        stored), stored  # fmt: skip
    seen.assert_none("merge-field menu")


@LANGUAGES
def test_a_custom_account_signature_offers_the_same_menu(
    new_page: Callable[..., Page], live_server: object, words: Words, language: str
) -> None:
    title, first_name, _office_phone = MENU[language]
    base = str(live_server)
    page = admin_page(new_page, base, words)
    page.goto(base + "/settings/accounts/new/")
    page.select_option("#id_signature_kind", "custom")
    signature = page.locator("#field-signature_html [contenteditable=true]")
    signature.click()
    insert_field(page, "field-signature_html", title, first_name)
    expect(signature).to_have_text("$Users||first_name$")
