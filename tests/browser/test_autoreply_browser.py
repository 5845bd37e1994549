"""Out of office in Chromium (issue 13): a user turns it on for a period; mail
delivered through LMTP gets one reply at the test SMTP server; a second mail
from the same sender within the days gets none, a mailing-list message none,
mail after the end none; the banner on the mail screen turns it off."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from posta.rules import arrivals, autoreply_responder
from posta.rules.autoreply_models import AutoReply, AutoReplySettings
from posta.sync.account_pass import sync_account_once
from tests.browser.test_compose_browser import log_in
from tests.integration.test_send import make_sender
from tests.integration.test_sync_checker import message
from tests.servers.dovecot import DovecotServer, MailUser
from tests.servers.smtp import SmtpServer
from tests.wakeups import recorded_wakeups

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def quiet_queue() -> Iterator[None]:
    with recorded_wakeups():
        yield


def worker_pass(account_id: int, user_id: int) -> None:
    """What the sync service and the worker do when mail arrives."""
    sync_account_once(account_id)
    arrivals.process_pending(user_id)
    autoreply_responder.respond_due()


def test_a_period_one_reply_then_none_and_the_banner_turns_it_off(
    page: Page, live_server: object, dovecot: DovecotServer, smtp_server: SmtpServer,
) -> None:
    base = str(live_server)
    mail_user: MailUser = dovecot.add_user()
    account = make_sender(dovecot, smtp_server, mail_user, first_name="Marta")
    log_in(page, base, account.user)

    page.goto(f"{base}/settings/autoreply/")
    now = timezone.localtime()
    page.check("#id_enabled")
    page.fill("#id_starts_at", (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    page.fill("#id_ends_at", (now + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M"))
    page.locator("#field-body_html [contenteditable=true]").click()
    page.keyboard.type("I am at a conference until Friday.")
    page.fill("#id_days", "3")
    page.click("#autoreply-form button[type=submit]")
    expect(page.locator("body")).to_contain_text("Out-of-office settings saved.")
    found = AutoReplySettings.objects.get(user=account.user)
    assert found.enabled and found.days == 3 and found.ends_at is not None

    dovecot.deliver(mail_user, message(
        "Preventivo", from_="Luca <luca@example.test>", to=mail_user.address,
        msgid="<preventivo@example.test>",
    ))
    worker_pass(account.pk, account.user_id)
    (reply,) = smtp_server.wait_for(1)
    assert (reply.mail_from, reply.rcpt_tos) == ("", ["luca@example.test"])
    parsed = reply.message()
    assert parsed["Auto-Submitted"] == "auto-replied"
    assert parsed["In-Reply-To"] == "<preventivo@example.test>"
    assert parsed["Subject"] == "Auto: Preventivo"
    assert "I am at a conference until Friday." in parsed.get_body(("plain",)).get_content()

    dovecot.deliver(mail_user, message(
        "Preventivo bis", from_="Luca <luca@example.test>", to=mail_user.address,
    ))
    dovecot.deliver(mail_user, message(
        "Weekly digest", from_="digest@lists.example.test", to=mail_user.address,
        List_Unsubscribe="<mailto:leave@lists.example.test>",
    ))
    worker_pass(account.pk, account.user_id)
    assert len(smtp_server.messages) == 1

    # The tab lists what happened, and why not, in words.
    page.goto(f"{base}/settings/autoreply/")
    table = page.locator(".autoreply-recent")
    expect(table).to_contain_text("already got this reply within the last 3 days")
    expect(table).to_contain_text("the message came from a mailing list")

    # The banner on the mail screen, with its end and the switch.
    page.goto(f"{base}/mail/")
    banner = page.locator("#autoreply-banner")
    expect(banner).to_contain_text("Automatic replies are on until")
    page.click("#autoreply-off")
    expect(page.locator("#autoreply-banner")).to_have_count(0)
    assert not AutoReplySettings.objects.get(user=account.user).enabled

    # Outside the period: on again, but the period is over by the time mail comes.
    found.refresh_from_db()
    found.enabled = True
    found.starts_at = timezone.now() - timedelta(days=3)
    found.ends_at = timezone.now() - timedelta(minutes=1)
    found.save()
    dovecot.deliver(mail_user, message(
        "Late", from_="nora@example.test", to=mail_user.address,
    ))
    worker_pass(account.pk, account.user_id)
    assert len(smtp_server.messages) == 1
    assert AutoReply.objects.get(message__subject="Late").reason_code == "after_end"


def test_the_tab_in_italian(
    page_it: Page, live_server: object, dovecot: DovecotServer, smtp_server: SmtpServer,
) -> None:
    base = str(live_server)
    mail_user: MailUser = dovecot.add_user()
    account = make_sender(dovecot, smtp_server, mail_user)
    log_in(page_it, base, account.user)
    page_it.goto(f"{base}/settings/autoreply/")
    expect(page_it.locator("nav.tabs")).to_contain_text("Fuori ufficio")
    expect(page_it.locator("form#autoreply-form")).to_contain_text("Invia risposte automatiche")
    page_it.check("#id_enabled")
    page_it.click("#autoreply-form button[type=submit]")
    expect(page_it.locator("#autoreply-form")).to_contain_text(
        "Scrivi il messaggio che riceveranno."
    )
