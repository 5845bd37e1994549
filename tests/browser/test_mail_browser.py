"""The mail screen in Chromium over a synced Dovecot account (issue 4): unified inbox
with snippets, the thread switch, flag / move / delete reaching the server, and new
mail appearing without a reload."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from posta.accounts.models import Account
from posta.sync import actions
from posta.sync.account_pass import sync_account_once
from tests.integration.test_mail_screen import setup_account
from tests.integration.test_sync_checker import message
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-unused-123"  # tests.integration.test_sync_checker.make_account


@pytest.fixture(autouse=True)
def no_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test runs the action executor itself, as the worker would."""
    monkeypatch.setattr("posta.sync.tasks.enqueue_account_actions", lambda ids: None)


def log_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")


def flagged_uids(dovecot: DovecotServer, user: MailUser) -> list[bytes]:
    client = dovecot.imap(user)
    try:
        client.select("INBOX")
        _typ, data = client.uid("SEARCH", "FLAGGED")
        return list(data[0].split())
    finally:
        client.logout()


def row(page: Page, subject: str) -> Any:
    return page.locator("#msglist li.msg", has_text=subject)


def test_unified_inbox_threads_actions_and_live_mail(
    page: Page, live_server: object, dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    base = str(live_server)
    account = setup_account(dovecot, mail_user, settings)
    user = account.user
    user.thread_view = False
    user.undo_send_seconds = 0  # no undo window: the worker may run each move at once
    user.save()
    dovecot.deliver(mail_user, message("Budget 2026", body="Numbers for the budget\n"))
    dovecot.deliver(
        mail_user,
        message(
            "Re: Budget 2026",
            body="Looks fine to me\n",
            date="Mon, 02 Mar 2026 11:00:00 +0100",
            from_="Bob <bob@example.test>",
            to="Alice <alice@example.test>",
            In_Reply_To="<Budget.2026@example.test>",
            References="<Budget.2026@example.test>",
        ),
    )
    for subject in ("Flag me", "Move me", "Delete me"):
        dovecot.deliver(mail_user, message(subject, date="Sun, 01 Mar 2026 09:00:00 +0100"))
    dovecot.deliver(mail_user, message("Filed away"), folder="Work")
    sync_account_once(account.pk)

    log_in(page, base, user.username)
    expect(page).to_have_url(re.compile(r"/mail/u/inbox/$"))
    # The unified inbox lists the inbox mail with snippets, not the Work folder's.
    expect(row(page, "Flag me")).to_be_visible()
    expect(row(page, "Re: Budget 2026")).to_contain_text("Looks fine to me")
    expect(page.locator("#msglist li.msg")).to_have_count(5)
    expect(row(page, "Filed away")).to_have_count(0)

    # The thread switch groups the conversation into one row of two.
    page.click("#view-switch")
    expect(page.locator("#msglist li.msg")).to_have_count(4)
    budget = row(page, "Budget 2026")
    expect(budget).to_have_count(1)
    expect(budget.locator(".count")).to_have_text("2")
    budget.locator("a.open").click()
    expect(page.locator("#reader-thread .thread-item")).to_have_count(2)
    page.click("#view-switch")
    expect(page.locator("#msglist li.msg")).to_have_count(5)

    # Flag: from the reader; the row shows it at once, Flagged lists it, the
    # worker's action puts \Flagged on the server.
    row(page, "Flag me").locator("a.open").click()
    expect(page.locator("#reader-message h2.subject")).to_have_text("Flag me")
    page.locator("#reader-message").get_by_role("button", name="Flag", exact=True).click()
    expect(row(page, "Flag me").locator(".mark-flag")).to_be_visible()
    actions.run_account_actions(account.pk)
    assert len(flagged_uids(dovecot, mail_user)) == 1
    page.get_by_role("link", name="Flagged").click()
    expect(row(page, "Flag me")).to_be_visible()
    expect(page.locator("#msglist li.msg")).to_have_count(1)

    # Move: select the row, pick the target folder.
    page.get_by_role("link", name="Inbox").first.click()
    row(page, "Move me").locator("input.pick").check()
    work_id = str(account.folders.get(name="Work").pk)
    page.select_option("#move-to", work_id)
    expect(row(page, "Move me")).to_have_count(0)
    actions.run_account_actions(account.pk)
    assert len(dovecot.uids(mail_user, "Work")) == 2

    # Delete with the keyboard: open it, press "#".
    row(page, "Delete me").locator("a.open").click()
    expect(page.locator("#reader-message h2.subject")).to_have_text("Delete me")
    page.locator("body").press("#")
    expect(row(page, "Delete me")).to_have_count(0)
    actions.run_account_actions(account.pk)
    assert len(dovecot.uids(mail_user, "Trash")) == 1

    # New mail delivered through LMTP appears without a reload, and the tab title
    # carries the unread count.
    page.evaluate("window.__same_page = true")
    dovecot.deliver(mail_user, message("Live arrival", body="Fresh news\n"))
    sync_account_once(account.pk)
    expect(row(page, "Live arrival")).to_be_visible(timeout=20_000)
    assert page.evaluate("window.__same_page") is True
    expect(page).to_have_title(re.compile(r"^\(\d+\) "))
    assert Account.objects.filter(pk=account.pk).exists()
