"""Filters in Chromium: a person creates a rule in the Filters tab; a message
delivered through LMTP lands in the rule's folder on the server, run there by
Sieve; with server filters switched off in the tab, the same rule gives the same
result through Posta's executor. The order changes by drag and by the arrows."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from posta.rules import sieve_upload
from posta.rules.filter_models import FilterRule, FilterServer
from posta.sync.account_pass import sync_account_once
from tests.browser.test_mail_browser import log_in
from tests.filters_harness import run_posta, server_state, use_test_port
from tests.integration.test_mail_screen import setup_account
from tests.integration.test_sync_checker import message
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def workers_inline(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the rules worker would do on each change, done at once; the test runs
    the action executor and the pipeline itself."""
    monkeypatch.setattr("posta.sync.tasks.enqueue_account_actions", lambda ids: None)
    monkeypatch.setattr("posta.rules.tasks.enqueue_arrivals", lambda user_id: None)
    monkeypatch.setattr(
        "posta.rules.tasks.enqueue_filter_servers",
        lambda ids: [sieve_upload.do_sync_server(i) for i in ids],
    )


def test_a_rule_made_in_the_browser_runs_on_the_server_and_in_posta(
    page: Page, live_server: object, dovecot: DovecotServer, mail_user: MailUser,
    settings: Any,
) -> None:
    base = str(live_server)
    account = setup_account(dovecot, mail_user, settings)
    dovecot.create_folder(mail_user, "Clienti")
    dovecot.create_folder(mail_user, "Clienti/Acme")
    use_test_port(account, dovecot)
    sync_account_once(account.pk)
    log_in(page, base, account.user.username)

    page.goto(f"{base}/settings/filters/")
    page.click("#filter-new")
    page.fill("#f-name", "Acme")
    condition = page.locator("tr.condition").first
    condition.locator("select[name=cond_field]").select_option("from")
    condition.locator("select[name=cond_op]").select_option("contains")
    condition.locator("input[name=cond_value]").fill("@acme.it")
    action = page.locator("tr.action").first
    action.locator("select[name=act_kind]").select_option("move")
    action.locator("select[name=act_folder]").select_option(
        label=f"{account.email} · Clienti/Acme"
    )
    page.click("#filter-save")
    expect(page).to_have_url(re.compile(r"/settings/filters/$"))
    item = page.locator("#filter-list li.filter").first
    expect(item).to_contain_text("From contains “@acme.it” → move to Clienti/Acme")
    expect(item).to_contain_text("running on the server")
    assert FilterServer.objects.get(account=account).state == FilterServer.State.SERVER

    # Sieve at delivery: straight into the folder, without Posta doing anything.
    dovecot.deliver(mail_user, message("by sieve", from_="Mario <mario@acme.it>"))
    assert server_state(dovecot, mail_user)["by sieve"] == {("Clienti/Acme", "")}

    # Server filters off: the script is no longer active; Posta does the same.
    page.locator(f"#filter-server-{account.pk} .filter-server-switch").click()
    expect(page.locator(f"#filter-server-{account.pk}")).to_contain_text("Posta runs")
    expect(page.locator("#filter-list li.filter").first).to_contain_text("run by Posta")
    dovecot.deliver(mail_user, message("by posta", from_="Mario <mario@acme.it>"))
    assert server_state(dovecot, mail_user)["by posta"] == {("INBOX", "")}
    run_posta(account)
    assert server_state(dovecot, mail_user)["by posta"] == {("Clienti/Acme", "")}
    dovecot.deliver(mail_user, message("not acme", from_="x@example.test"))
    run_posta(account)
    assert server_state(dovecot, mail_user)["not acme"] == {("INBOX", "")}


def test_the_order_changes_by_drag_and_by_the_arrows(
    page: Page, live_server: object, dovecot: DovecotServer, mail_user: MailUser,
    settings: Any,
) -> None:
    base = str(live_server)
    account = setup_account(dovecot, mail_user, settings)
    sync_account_once(account.pk)
    from tests.filters_harness import save_rule

    for name in ("first", "second", "third"):
        save_rule(account, name, [{"field": "subject", "op": "contains", "value": name}],
                  [{"kind": "flag"}])
    log_in(page, base, account.user.username)
    page.goto(f"{base}/settings/filters/")
    names = page.locator("#filter-list .filter-name")
    expect(names).to_have_text(["first", "second", "third"])

    page.locator("#filter-list li.filter", has_text="third").locator(".filter-up").click()
    expect(names).to_have_text(["first", "third", "second"])

    third = page.locator("#filter-list li.filter", has_text="third")
    third.drag_to(page.locator("#filter-list li.filter", has_text="first"),
                  target_position={"x": 10, "y": 2})
    expect(names).to_have_text(["third", "first", "second"])
    # Saved at once: the page reloads with the stored order.
    page.wait_for_load_state("load")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if list(FilterRule.objects.values_list("name", flat=True)) == [
            "third", "first", "second"
        ]:
            break
        time.sleep(0.1)
    assert list(FilterRule.objects.values_list("name", flat=True)) == [
        "third", "first", "second"
    ]
    # The script reloads the page with the stored order.
    expect(names).to_have_text(["third", "first", "second"])
