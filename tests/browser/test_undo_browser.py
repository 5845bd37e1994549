"""Undo and the next message on the mail screen (issue 19), in Chromium, in English
and Italian: deleting or archiving the open message shows a toast with Undo and
opens the next message instead of an empty reader; Undo puts the message back
before the server ever hears of the move; a move left alone leaves once its undo
window ends."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from posta.accounts.models import Account
from posta.mail.models import RemoteAction
from posta.sync import actions
from posta.sync.account_pass import sync_account_once
from tests.browser.test_csp_browser import Violations
from tests.browser.test_mail_browser import log_in, row
from tests.integration.test_mail_screen import setup_account
from tests.integration.test_sync_checker import message
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WORDS = {
    "en": {"locale": "en-US", "delete": "Delete", "undo": "Undo",
           "deleted": "Message moved to Trash.", "archived": "Message archived.",
           "undone": "Undone: the message is back."},
    "it": {"locale": "it-IT", "delete": "Elimina", "undo": "Annulla",
           "deleted": "Messaggio spostato nel cestino.", "archived": "Messaggio archiviato.",
           "undone": "Annullato: il messaggio è tornato al suo posto."},
}  # fmt: skip


@pytest.fixture(autouse=True)
def no_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test runs the action executor itself, as the worker would."""
    monkeypatch.setattr("posta.sync.tasks.enqueue_account_actions", lambda ids: None)
    monkeypatch.setattr("posta.sync.tasks.schedule_account_actions", lambda ids, when: None)


def end_undo_windows() -> None:
    RemoteAction.objects.filter(next_attempt_at__gt=timezone.now()).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def inbox_of(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, language: str, *subjects: str
) -> Account:
    """A synced account whose user reads single messages in `language`; the
    `subjects` arrive one a day, oldest first."""
    account = setup_account(dovecot, mail_user, settings)
    user = account.user
    user.language = language
    user.thread_view = False
    user.save()
    for day, subject in enumerate(subjects, start=1):
        dovecot.deliver(mail_user, message(subject, date=f"Mon, 0{day} Mar 2026 09:00:00 +0100"))
    sync_account_once(account.pk)
    return account


def delete_from_reader(page: Page, subject: str, delete: str) -> None:
    row(page, subject).locator("a.open").click()
    expect(page.locator("#reader-message h2.subject")).to_have_text(subject)
    page.locator("#reader-message").get_by_role("button", name=delete, exact=True).click()


@pytest.mark.parametrize("language", ["en", "it"])
def test_delete_shows_undo_opens_the_next_message_and_undo_brings_it_back(
    new_page: Callable[..., Page], live_server: object, dovecot: DovecotServer,
    mail_user: MailUser, settings: Any, language: str,
) -> None:
    words = WORDS[language]
    subjects = ("Oldest", "Middle", "Newest", "Latest")
    account = inbox_of(dovecot, mail_user, settings, language, *subjects)
    user = account.user
    inbox_before = dovecot.uids(mail_user, "INBOX")
    page = new_page(locale=words["locale"], viewport={"width": 1440, "height": 900})
    seen = Violations(page)
    log_in(page, str(live_server), user.username)

    # Delete the open message from the reader: the next one (older, below) opens.
    delete_from_reader(page, "Middle", words["delete"])
    toast = page.locator("#mail-toast")
    expect(toast).to_be_visible()
    expect(toast.locator("#mail-toast-text")).to_have_text(words["deleted"])
    expect(page.locator("#reader-message h2.subject")).to_have_text("Oldest")
    expect(row(page, "Middle")).to_have_count(0)
    expect(row(page, "Oldest")).to_have_class(re.compile(r"\bactive\b"))

    # Undo: the row is back, the message opens again, the server never moved it.
    toast.get_by_role("button", name=words["undo"], exact=True).click()
    expect(toast.locator("#mail-toast-text")).to_have_text(words["undone"])
    expect(row(page, "Middle")).to_be_visible()
    expect(page.locator("#reader-message h2.subject")).to_have_text("Middle")
    end_undo_windows()
    actions.run_account_actions(account.pk)
    assert dovecot.uids(mail_user, "INBOX") == inbox_before
    assert dovecot.uids(mail_user, "Trash") == []

    # Archive with the keyboard ("e"), and leave it: it leaves once the window ends.
    row(page, "Newest").locator("a.open").click()
    expect(page.locator("#reader-message h2.subject")).to_have_text("Newest")
    page.locator("body").press("e")
    expect(toast.locator("#mail-toast-text")).to_have_text(words["archived"])
    expect(page.locator("#reader-message h2.subject")).to_have_text("Middle")
    expect(row(page, "Newest")).to_have_count(0)
    actions.run_account_actions(account.pk)  # the read marks go; the move waits
    assert len(dovecot.uids(mail_user, "Archive")) == 0
    assert RemoteAction.objects.get(kind="move").state == "pending"
    page.close()  # the page goes away during the window: the move is not lost
    end_undo_windows()
    actions.run_account_actions(account.pk)
    assert RemoteAction.objects.get(kind="move").state == "done"
    assert len(dovecot.uids(mail_user, "Archive")) == 1
    assert len(dovecot.uids(mail_user, "INBOX")) == 3
    seen.assert_none("undo and next message")


@pytest.mark.parametrize("language", ["en", "it"])
def test_without_script_a_move_returns_to_the_list_with_an_undo_button(
    new_page: Callable[..., Page], live_server: object, dovecot: DovecotServer,
    mail_user: MailUser, settings: Any, language: str,
) -> None:
    words = WORDS[language]
    account = inbox_of(dovecot, mail_user, settings, language, "Oldest", "Middle", "Newest")
    user = account.user
    inbox_before = dovecot.uids(mail_user, "INBOX")
    page = new_page(
        locale=words["locale"], viewport={"width": 1440, "height": 900}, java_script_enabled=False
    )
    log_in(page, str(live_server), user.username)

    # Delete from the reader with a plain form: back to the list, with the notice.
    delete_from_reader(page, "Middle", words["delete"])
    notice = page.locator("#mail-notice")
    expect(notice).to_contain_text(words["deleted"])
    expect(row(page, "Middle")).to_have_count(0)
    expect(page).to_have_url(re.compile(r"/mail/u/inbox/$"))
    actions.run_account_actions(account.pk)  # held for the undo window
    assert dovecot.uids(mail_user, "Trash") == []

    # Undo is a form button too: the message is back, the server never moved it.
    notice.get_by_role("button", name=words["undo"], exact=True).click()
    expect(page.locator("#mail-notice")).to_contain_text(words["undone"])
    expect(page.locator("#mail-notice").get_by_role("button")).to_have_count(0)
    expect(row(page, "Middle")).to_be_visible()
    end_undo_windows()
    actions.run_account_actions(account.pk)
    assert dovecot.uids(mail_user, "INBOX") == inbox_before
    assert dovecot.uids(mail_user, "Trash") == []

    # A move to a chosen folder names it; a reload no longer offers the Undo.
    row(page, "Newest").locator("a.open").click()
    tools = page.locator("#reader-message .reader-tools")
    tools.locator("select[name=target]").select_option(label="Work")
    tools.locator("button[value=move]").click()
    expect(page.locator("#mail-notice")).to_contain_text("Work")
    expect(page.locator("#mail-notice").get_by_role("button", name=words["undo"])).to_be_visible()
    expect(row(page, "Newest")).to_have_count(0)
    page.reload()
    expect(page.locator("#mail-notice")).to_have_count(0)
    end_undo_windows()
    actions.run_account_actions(account.pk)
    assert len(dovecot.uids(mail_user, "Work")) == 1
