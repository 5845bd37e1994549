"""The mail screen on a phone (issue 19), 390 × 844 in Chromium, in English and
Italian: one pane at a time, the folders in a drawer, the top bar's links behind a
menu, targets of at least 44 px, and Back (ours and the browser's) returning to the
list where it was scrolled."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from posta.sync.account_pass import sync_account_once
from tests.browser.test_csp_browser import Violations
from tests.browser.test_mail_browser import log_in, row
from tests.integration.test_mail_screen import setup_account
from tests.integration.test_sync_checker import message
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
WORDS = {
    "en": {"locale": "en-US", "back": "Back to the list", "folders": "Folders",
           "menu": "Menu", "logout": "Log out", "inbox": "Inbox"},
    "it": {"locale": "it-IT", "back": "Torna all'elenco", "folders": "Cartelle",
           "menu": "Menu", "logout": "Esci", "inbox": "Posta in arrivo"},
}  # fmt: skip
MIN_TARGET = 44


def height(page: Page, selector: str) -> float:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, selector
    return float(box["height"])


def list_scroll(page: Page) -> int:
    return int(page.eval_on_selector("#list", "el => el.scrollTop"))


def assert_list_back_at(page: Page, top: int) -> None:
    expect(page.locator("#mail-list")).to_be_visible()
    expect(page.locator("#reader-message")).to_be_hidden()
    expect(page).not_to_have_url(re.compile(r"[?&]m="))
    # A function, not an expression string: the page's policy forbids eval.
    page.wait_for_function("top => document.getElementById('list').scrollTop === top", arg=top)


@pytest.mark.parametrize("language", ["en", "it"])
def test_phone_layout_opens_a_message_and_back_keeps_the_scroll_position(
    new_page: Callable[..., Page], live_server: object, dovecot: DovecotServer,
    mail_user: MailUser, settings: Any, language: str,
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
    page = new_page(locale=words["locale"], viewport=PHONE)
    seen = Violations(page)
    log_in(page, str(live_server), user.username)
    expect(row(page, "Ordine 40")).to_be_visible()
    page.wait_for_load_state("load")  # every stylesheet applied

    # One pane: the list fills the screen; the reader and the folders are not shown.
    expect(page.locator(".mail-reader")).to_be_hidden()
    expect(page.locator("#mail-folders")).to_be_hidden()
    list_box = page.locator("#mail-list").bounding_box()
    assert list_box is not None and list_box["width"] == PHONE["width"]

    # The top bar never clips "Log out": it is behind the menu, inside the screen.
    logout = page.get_by_role("button", name=words["logout"])
    expect(logout).to_be_hidden()
    page.get_by_role("button", name=words["menu"]).click()
    expect(logout).to_be_visible()
    box = logout.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    assert box["height"] >= MIN_TARGET
    page.get_by_role("button", name=words["menu"]).click()
    expect(logout).to_be_hidden()

    # Touch targets of at least 44 px.
    for selector in ("#menu-toggle", "#drawer-toggle", "#msglist li.msg a.open",
                     "#msglist li.msg input.pick", ".toolbar button", "#mail-search"):  # fmt: skip
        if page.locator(selector).count():
            assert height(page, selector) >= MIN_TARGET, selector

    # The folder drawer opens over the list and closes again.
    page.get_by_role("button", name=words["folders"], exact=True).click()
    drawer = page.locator("#mail-folders")
    expect(drawer).to_be_visible()
    inbox = drawer.locator("a.folder", has_text=words["inbox"]).first
    expect(inbox).to_be_visible()
    assert height(page, "#mail-folders a.folder") >= MIN_TARGET
    page.keyboard.press("Escape")
    expect(drawer).to_be_hidden()

    # Scroll down the list, open a message: the reader takes the screen, at its top.
    target = row(page, "Ordine 12")
    target.scroll_into_view_if_needed()
    top = list_scroll(page)
    assert top > 300
    target.locator("a.open").click()
    expect(page.locator("#reader-message h2.subject")).to_have_text("Ordine 12")
    expect(page.locator("#mail-list")).to_be_hidden()
    seen.assert_none("phone")
    expect(page).to_have_url(re.compile(r"[?&]m=\d+"))
    reader_box = page.locator("#reader-message").bounding_box()
    assert reader_box is not None and reader_box["y"] < PHONE["height"] / 2
    back = page.get_by_role("button", name=words["back"])
    assert height(page, "#back-to-list") >= MIN_TARGET

    # Our Back button: the list again, where it was.
    back.click()
    assert_list_back_at(page, top)

    # The browser's Back does the same, and Forward opens the message again.
    row(page, "Ordine 12").locator("a.open").click()
    expect(page.locator("#reader-message h2.subject")).to_have_text("Ordine 12")
    page.go_back()
    assert_list_back_at(page, top)
    page.go_forward()
    expect(page.locator("#reader-message h2.subject")).to_have_text("Ordine 12")
    expect(page.locator("#mail-list")).to_be_hidden()
    seen.assert_none("phone")
