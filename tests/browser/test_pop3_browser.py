"""The POP3 tab in Chromium (issue 14): add a source pointing at the test
Dovecot's POP3 listener (another test user's mailbox), choose an IMAP folder, and
see the messages appear there with their dates; the tab shows what was imported,
in English and in Italian. The test runs the worker's job itself, as the worker
would, and the sync pass that brings the copies into Posta."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from posta.accounts.models import Folder
from posta.rules import pop3_job
from posta.rules.pop3_models import Pop3Source
from posta.sync.account_pass import sync_account_once
from tests.browser.test_mail_browser import log_in
from tests.integration.pop3_setup import numbered
from tests.integration.test_mail_screen import setup_account
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def wakeups(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sources the page woke the worker for (no worker runs here)."""
    woken: list[int] = []
    monkeypatch.setattr("posta.rules.pop3_tasks.fetch_pop3_source", woken.append)
    return woken


@pytest.mark.parametrize(
    ("locale", "save", "saved", "imported", "fetch"),
    [
        ("en-US", "Save and test", "POP3 source saved and connected.", "3 messages imported",
         "Fetch now"),
        ("it-IT", "Salva e verifica", "Casella POP3 salvata e connessa.", "3 messaggi importati",
         "Scarica ora"),
    ],
    ids=["en", "it"],
)
def test_add_a_source_and_see_its_mail_arrive_with_its_dates(
    new_page: Any, live_server: object, dovecot: DovecotServer, mail_user: MailUser,
    settings: Any, wakeups: list[int], locale: str, save: str, saved: str, imported: str,
    fetch: str,
) -> None:
    base = str(live_server)
    account = setup_account(dovecot, mail_user, settings)
    sync_account_once(account.pk)
    pop_user = dovecot.add_user()
    for i in range(3):
        dovecot.deliver(pop_user, numbered(i, date=f"Tue, 0{i + 3} Feb 2026 08:30:00 +0100"))
    page: Page = new_page(locale=locale)
    log_in(page, base, account.user.username)
    page.goto(f"{base}/settings/pop3/")
    page.click("#pop3-add")
    page.fill("#id_host", dovecot.host)
    page.fill("#id_port", str(dovecot.pop3_port))
    page.select_option("#id_security", "none")
    page.fill("#id_username", pop_user.name)
    page.fill("#id_password", "not-the-password")
    work = Folder.objects.get(account=account, name="Work")
    page.select_option("#id_target", str(work.pk))
    page.get_by_role("button", name=save).click()
    # A refused login: said once, nothing saved, the form kept.
    expect(page.locator("#pop3-test-error")).to_contain_text("POP3")
    assert not Pop3Source.objects.exists()
    expect(page.locator("#id_username")).to_have_value(pop_user.name)
    page.fill("#id_password", pop_user.password)
    page.get_by_role("button", name=save).click()
    expect(page.get_by_text(saved)).to_be_visible()
    source = Pop3Source.objects.get()
    assert wakeups == [source.pk]
    assert (source.account_id, source.folder_name) == (account.pk, "Work")

    # The worker's batch, then the sync of the target folder.
    page.get_by_role("button", name=fetch).click()
    expect(page.locator("#pop3-sources .pop3-state .status")).to_be_visible()
    assert pop3_job.fetch_source(source.pk) is False
    expect(page.locator("#pop3-sources")).to_contain_text(imported, timeout=10_000)
    assert dovecot.status(pop_user, "INBOX")["messages"] == 0
    sync_account_once(account.pk)

    page.goto(f"{base}/mail/f/{work.pk}/")
    rows = page.locator("#msglist li.msg")
    expect(rows).to_have_count(3)
    for i in range(3):
        row = page.locator("#msglist li.msg", has_text=f"pop3 message {i}")
        row.locator("a.open").click()
        expect(page.locator("#reader-message h2.subject")).to_have_text(f"pop3 message {i}")
        stamp = page.locator("#reader-message time").first.get_attribute("datetime") or ""
        assert re.match(rf"2026-02-0{i + 3}T0[78]:30:00", stamp), stamp
