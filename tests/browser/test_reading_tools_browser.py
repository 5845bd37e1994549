"""Reading at 1280 px, in English and Italian (issue 19): the list's and the
reader's toolbars keep to one line, their secondary actions behind "More"; a
conversation folds the quoted text of a reply behind "Show quoted text"."""

from __future__ import annotations

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

WORDS = {
    "en": {"locale": "en-US", "more": "More", "unread": "Mark as unread",
           "quoted": "Show quoted text"},
    "it": {"locale": "it-IT", "more": "Altro", "unread": "Segna come non letto",
           "quoted": "Mostra il testo citato"},
}  # fmt: skip


def one_line(page: Page, selector: str) -> None:
    """Every shown child of the toolbar shares one line: each starts above the
    bottom of every other (a wrapped child would start below them). Measured
    once the page has loaded: a script can lay the page out before a slow
    stylesheet arrives, and that layout is not the one people see."""
    page.wait_for_load_state("load")
    boxes = page.eval_on_selector(
        selector,
        "bar => Array.from(bar.children).filter(c => c.offsetParent !== null)"
        ".map(c => { const r = c.getBoundingClientRect();"
        " return [r.top, r.bottom, r.right, c.tagName + '#' + c.id]; })",
    )
    assert boxes, selector
    assert max(b[0] for b in boxes) < min(b[1] for b in boxes), (selector, boxes)
    # Nothing runs off the toolbar's right edge either.
    right = page.eval_on_selector(selector, "bar => bar.getBoundingClientRect().right")
    assert max(b[2] for b in boxes) <= right + 1, (selector, boxes, right)


@pytest.mark.parametrize("language", ["en", "it"])
def test_toolbars_fit_one_line_at_1280_and_quoted_text_folds(
    new_page: Callable[..., Page], live_server: object, dovecot: DovecotServer,
    mail_user: MailUser, settings: Any, language: str,
) -> None:
    words = WORDS[language]
    account = setup_account(dovecot, mail_user, settings)
    user = account.user
    user.language = language
    user.save()
    dovecot.deliver(mail_user, message("Riunione", msgid="<riunione@example.test>",
                                       body="Shall we meet on Thursday?\n"))  # fmt: skip
    dovecot.deliver(mail_user, message(
        "Re: Riunione", body="Thursday is fine.\n\nOn Mon, 2 Mar 2026 Alice wrote:\n"
        "> Shall we meet on Thursday?\n", date="Mon, 02 Mar 2026 12:00:00 +0100",
        In_Reply_To="<riunione@example.test>", References="<riunione@example.test>",
    ))  # fmt: skip
    sync_account_once(account.pk)
    page = new_page(locale=words["locale"], viewport={"width": 1280, "height": 800})
    seen = Violations(page)
    log_in(page, str(live_server), user.username)

    expect(row(page, "Riunione")).to_be_visible()
    page.evaluate("() => document.fonts.ready.then(() => true)")
    one_line(page, ".list-head .toolbar")
    # The conversation: the reply's new words shown, the quote folded.
    row(page, "Riunione").locator("a.open").click()
    last = page.locator("#reader-thread .thread-item").last
    expect(last.locator(".plain-body > pre.plain")).to_have_text("Thursday is fine.\n")
    fold = last.locator("details.quoted")
    expect(fold.locator("summary")).to_have_text(words["quoted"])
    expect(fold.locator("pre.plain")).to_be_hidden()
    fold.locator("summary").click()
    expect(fold.locator("pre.plain")).to_contain_text("> Shall we meet on Thursday?")

    # One message: one toolbar line; "More" holds the secondary actions and works.
    page.locator("#reader-thread .thread-item").last.get_by_role("link").last.click()
    expect(page.locator("#reader-message")).to_be_visible()
    one_line(page, "#reader-message .reader-tools")
    more = page.locator("#reader-more")
    more.locator("summary").click()
    item = more.get_by_role("button", name=words["unread"])
    expect(item).to_be_visible()
    item.click()
    expect(more).not_to_have_attribute("open", "")
    expect(page.locator("#msglist li.msg.unread")).to_have_count(1)
    seen.assert_none("toolbars and quoted text")
