"""The rich-text editor's tooltips in Italian (issue 19): the toolbar of the
account form's signature editor says "Grassetto", not "bold", and the editor's own
gettext words come from Posta's catalog; in English they stay English."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_account_form_browser import ENGLISH, ITALIAN, Words, admin_page
from tests.browser.test_csp_browser import Violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TOOLTIPS = {"en": ("bold", "italic"),
            "it": ("Grassetto", "Corsivo")}  # fmt: skip


@pytest.mark.parametrize(("words", "language"), [(ENGLISH, "en"), (ITALIAN, "it")],
                         ids=["en", "it"])  # fmt: skip
def test_the_signature_editor_speaks_the_users_language(
    new_page: Callable[..., Page], live_server: object, words: Words, language: str,
) -> None:
    base = str(live_server)
    page = admin_page(new_page, base, words)
    seen = Violations(page)
    page.goto(base + "/settings/accounts/new/")
    page.select_option("#id_signature_kind", "custom")
    for title in TOOLTIPS[language]:
        expect(page.locator(f'button[title="{title}"]').first).to_be_attached()
    bold = page.locator(f'button[title="{TOOLTIPS[language][0]}"]').first
    expect(bold).to_have_attribute("aria-label", TOOLTIPS[language][0])
    seen.assert_none("editor words")
