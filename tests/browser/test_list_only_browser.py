"""List-only mode on a wide screen (issue 19), 1440 × 900 in Chromium, in English and
Italian: the "List only" switch gives the list the whole width, a message opens in
its place, Back returns to the list where it was scrolled, and the choice is kept
for the user on the server: after a reload and in another browser."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from posta.sync.account_pass import sync_account_once
from posta.users.models import User
from tests.browser.test_csp_browser import Violations
from tests.browser.test_mail_browser import log_in, row
from tests.browser.test_phone_browser import assert_list_back_at, list_scroll
from tests.integration.test_mail_screen import setup_account
from tests.integration.test_sync_checker import message
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1440, "height": 900}
WORDS = {
    "en": {"locale": "en-US", "switch": "List only", "back": "Back to the list"},
    "it": {"locale": "it-IT", "switch": "Solo elenco", "back": "Torna all'elenco"},
}  # fmt: skip


def wait_saved(page: Page, user: User, *, on: bool) -> None:
    """The switch reached the server (the page changes first)."""
    for _ in range(100):
        user.refresh_from_db()
        if user.list_only is on:
            return
        page.wait_for_timeout(100)
    assert user.list_only is on


@pytest.mark.parametrize("language", ["en", "it"])
def test_list_only_mode_opens_a_message_in_place_of_the_list(
    new_page: Callable[..., Page],
    live_server: object,
    dovecot: DovecotServer,
    mail_user: MailUser,
    settings: Any,
    language: str,
) -> None:
    words = WORDS[language]
    account = setup_account(dovecot, mail_user, settings)
    user = account.user
    user.language = language
    user.thread_view = False
    user.save()
    for n in range(1, 41):
        when = f"Mon, 02 Mar 2026 {n // 4 + 8:02d}:{n % 4 * 10:02d}:00 +0100"
        dovecot.deliver(mail_user, message(f"Ordine {n:02d}", date=when))
    sync_account_once(account.pk)
    page = new_page(locale=words["locale"], viewport=DESKTOP)
    seen = Violations(page)
    log_in(page, str(live_server), user.username)
    expect(row(page, "Ordine 40")).to_be_visible()
    page.wait_for_load_state("load")  # every stylesheet applied

    # Side by side first: the reader pane is there, the list a part of the width.
    expect(page.locator(".mail-reader")).to_be_visible()
    narrow = page.locator("#mail-list").bounding_box()
    assert narrow is not None and narrow["width"] < DESKTOP["width"] / 2

    switch = page.get_by_role("button", name=words["switch"])
    switch.click()
    expect(switch).to_have_attribute("aria-pressed", "true")
    expect(page.locator(".mail-reader")).to_be_hidden()
    expect(page.locator("#split")).to_be_hidden()
    folders = page.locator("#mail-folders").bounding_box()
    wide = page.locator("#mail-list").bounding_box()
    assert folders is not None and wide is not None
    assert wide["width"] >= DESKTOP["width"] - folders["width"] - 2

    # Remembered for the user: a reload keeps the mode, and so does another browser.
    wait_saved(page, user, on=True)
    page.reload()
    expect(page.get_by_role("button", name=words["switch"])).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(page.locator(".mail-reader")).to_be_hidden()
    elsewhere = new_page(locale=words["locale"], viewport=DESKTOP)
    log_in(elsewhere, str(live_server), user.username)
    expect(elsewhere.get_by_role("button", name=words["switch"])).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(elsewhere.locator(".mail-reader")).to_be_hidden()
    elsewhere.close()

    # A message opens in place of the list; Back returns to it where it was.
    target = row(page, "Ordine 12")
    target.scroll_into_view_if_needed()
    top = list_scroll(page)
    assert top > 100
    target.locator("a.open").click()
    expect(page.locator("#reader-message h2.subject")).to_have_text("Ordine 12")
    expect(page.locator("#mail-list")).to_be_hidden()
    expect(page).to_have_url(re.compile(r"[?&]m=\d+"))
    page.get_by_role("button", name=words["back"]).click()
    assert_list_back_at(page, top)
    row(page, "Ordine 12").locator("a.open").click()
    expect(page.locator("#reader-message h2.subject")).to_have_text("Ordine 12")
    page.go_back()
    assert_list_back_at(page, top)

    # Switched off: side by side again, also after a reload.
    page.get_by_role("button", name=words["switch"]).click()
    expect(page.locator(".mail-reader")).to_be_visible()
    wait_saved(page, user, on=False)
    page.reload()
    expect(page.locator(".mail-reader")).to_be_visible()
    seen.assert_none("list only")
