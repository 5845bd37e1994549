"""Writing, sending and scheduling mail in Chromium (issue 5)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from posta.delivery import drafts, sending
from posta.mail import outbox
from posta.mail.models import OutgoingMessage
from posta.users.models import User
from posta.web.middleware import SetupMiddleware
from tests.integration.test_send import make_sender, parsed
from tests.servers.dovecot import DovecotServer, MailUser
from tests.servers.smtp import SmtpServer
from tests.wakeups import recorded_wakeups

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "Scrivere-Posta-26"


DRAFT_WAKES: list[int] = []


@pytest.fixture(autouse=True)
def quiet_queue() -> Iterator[None]:
    DRAFT_WAKES.clear()
    with recorded_wakeups(drafts=DRAFT_WAKES):
        yield


def log_in(page: Page, base: str, user: User) -> None:
    user.set_password(PASSWORD)
    user.save()
    User.objects.create_superuser("admin", password=PASSWORD)
    SetupMiddleware.set_ready()
    page.goto(f"{base}/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")


def fill_message(page: Page, *, to: str, subject: str, body: str) -> None:
    page.fill("#id_to", to)
    page.fill("#id_subject", subject)
    page.locator("#field-body [contenteditable=true]").click()
    page.keyboard.type(body)


def test_compose_with_attachment_send_and_find_it_in_sent(
    page: Page, live_server: object, dovecot: DovecotServer, smtp_server: SmtpServer,
    tmp_path: Path,
) -> None:
    base = str(live_server)
    mail_user = dovecot.add_user()
    account = make_sender(dovecot, smtp_server, mail_user)
    log_in(page, base, account.user)

    page.goto(f"{base}/compose/")
    expect(page.locator("#send-button")).to_be_visible()
    assert not OutgoingMessage.objects.exists()  # opening the editor stores nothing
    report = tmp_path / "report.pdf"
    report.write_bytes(b"%PDF-1.4 quarterly report")
    page.set_input_files("#id_files", str(report))
    expect(page.locator("#attachment-list li")).to_contain_text("report.pdf")
    # The upload stored the draft; the page is now the stored draft's own.
    (stored,) = OutgoingMessage.objects.filter(user=account.user)
    expect(page).to_have_url(re.compile(rf"/compose/{stored.pk}/$"))

    fill_message(page, to="Bruno <bruno@example.test>", subject="Report", body="Here it is")
    page.click("#send-button")
    expect(page.locator("#undo-button")).to_be_visible()
    page.goto("about:blank")  # the page makes no more requests while the worker runs

    row = OutgoingMessage.objects.get(user=account.user, subject="Report")
    assert row.state == OutgoingMessage.State.QUEUED
    assert row.send_at is not None
    assert sending.deliver(row.pk, now=row.send_at)
    row.refresh_from_db()
    assert row.state == OutgoingMessage.State.SENT

    (received,) = smtp_server.messages
    msg = parsed(received.data)
    assert [p.get_filename() for p in msg.iter_attachments()] == ["report.pdf"]
    html = msg.get_body(preferencelist=("html",))
    assert html is not None and "Here it is" in html.get_content()
    assert len(dovecot.uids(mail_user, "Sent")) == 1

    page.goto(f"{base}/compose/{row.pk}/sending/")
    expect(page.locator("#sending-status")).to_have_text("Sent.")


def test_schedule_appears_in_scheduled_and_leaves_at_its_time(
    page: Page, live_server: object, dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    base = str(live_server)
    account = make_sender(dovecot, smtp_server, dovecot.add_user())
    user = account.user
    log_in(page, base, user)

    page.goto(f"{base}/compose/")
    fill_message(page, to="carla@example.test", subject="Later", body="See you")
    # The scheduling fields wait behind the Send button's menu.
    expect(page.locator("#schedule-fields")).to_be_hidden()
    page.click("#send-menu > summary")
    page.click("#schedule-open")
    expect(page.locator("#schedule-fields")).to_be_visible()
    when = timezone.localtime(timezone.now() + timedelta(seconds=6), outbox.user_timezone(user))
    page.fill("#id_send_at", when.strftime("%Y-%m-%dT%H:%M:%S"))
    page.click("#schedule-button")
    expect(page).to_have_url(re.compile(r"/compose/scheduled/$"))
    expect(page.locator("#scheduled-list")).to_contain_text("Later")

    row = OutgoingMessage.objects.get(user=user, subject="Later")
    assert row.state == OutgoingMessage.State.SCHEDULED
    assert row.send_at == when.replace(microsecond=0)
    # Before its time a worker leaves it waiting.
    assert sending.deliver_due(now=row.send_at - timedelta(seconds=1)) == 0
    assert smtp_server.messages == []
    while timezone.now() < row.send_at:
        time.sleep(0.2)
    assert sending.deliver_due() == 1
    assert len(smtp_server.messages) == 1
    page.reload()
    expect(page.locator("#scheduled-empty")).to_be_visible()


def run_draft_worker() -> None:
    """What the queue does with the wake-ups the autosaves asked for."""
    for outgoing_id in sorted(set(DRAFT_WAKES)):
        drafts.store_draft(outgoing_id)
    DRAFT_WAKES.clear()


def server_drafts(dovecot: DovecotServer, mail_user: MailUser) -> list[EmailMessage]:
    client = dovecot.imap(mail_user)
    try:
        client.select("Drafts")
        _typ, data = client.uid("SEARCH", "ALL")
        found = []
        for uid in data[0].split() if data and data[0] else []:
            _typ, fetched = client.uid("FETCH", uid, "(BODY.PEEK[])")
            item = fetched[0]
            assert isinstance(item, tuple)
            found.append(parsed(item[1]))
        return found
    finally:
        client.logout()


def test_autosave_keeps_one_draft_on_the_server_and_sending_removes_it(
    page: Page, live_server: object, dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    base = str(live_server)
    mail_user = dovecot.add_user()
    account = make_sender(dovecot, smtp_server, mail_user)
    log_in(page, base, account.user)

    page.goto(f"{base}/compose/")
    fill_message(page, to="carla@example.test", subject="Budget", body="First thoughts")
    status = page.locator("#autosave-status")
    expect(status).to_contain_text("Draft saved at", timeout=15000)
    first_status = status.inner_text()
    # The first autosave stored one draft, and the page switched to its URL.
    (stored,) = OutgoingMessage.objects.filter(user=account.user)
    expect(page).to_have_url(re.compile(rf"/compose/{stored.pk}/$"))
    assert page.locator("#compose-form").get_attribute("action") == f"/compose/{stored.pk}/"
    assert DRAFT_WAKES
    assert set(DRAFT_WAKES) == {stored.pk}
    run_draft_worker()
    (draft,) = server_drafts(dovecot, mail_user)
    assert draft["Subject"] == "Budget"
    html = draft.get_body(preferencelist=("html",))
    assert html is not None and "First thoughts" in html.get_content()

    page.locator("#field-body [contenteditable=true]").click()
    page.keyboard.press("End")
    page.keyboard.type(" and second thoughts")
    expect(status).not_to_have_text(first_status, timeout=15000)
    run_draft_worker()
    (draft,) = server_drafts(dovecot, mail_user)
    html = draft.get_body(preferencelist=("html",))
    assert html is not None and "second thoughts" in html.get_content()

    # Reloading the page opens the same draft: no second row.
    page.reload()
    expect(page.locator("#id_subject")).to_have_value("Budget")
    assert OutgoingMessage.objects.filter(user=account.user).count() == 1

    page.click("#send-button")
    expect(page.locator("#undo-button")).to_be_visible()
    page.goto("about:blank")  # the page makes no more requests while the worker runs
    run_draft_worker()  # a wake-up for a draft that left is harmless
    row = OutgoingMessage.objects.get(user=account.user, subject="Budget")
    assert row.send_at is not None
    assert sending.deliver(row.pk, now=row.send_at)
    row.refresh_from_db()
    assert row.state == OutgoingMessage.State.SENT
    assert server_drafts(dovecot, mail_user) == []
    assert len(dovecot.uids(mail_user, "Sent")) == 1
    assert len(smtp_server.messages) == 1


def test_a_forward_is_stored_by_its_first_autosave_with_its_attachments(
    page: Page, live_server: object, dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    from posta.mail.models import Message
    from posta.sync.account_pass import sync_account_once
    from tests.integration.test_compose_get_safe import offer

    base = str(live_server)
    mail_user = dovecot.add_user()
    account = make_sender(dovecot, smtp_server, mail_user)
    dovecot.deliver(mail_user, offer(mail_user.address))
    sync_account_once(account.pk)
    original = Message.objects.get(user=account.user, message_id="offer-1@example.test")
    log_in(page, base, account.user)

    page.goto(f"{base}/compose/forward/{original.pk}/")
    expect(page.locator("#attachment-list li")).to_contain_text("offer.pdf")
    expect(page.locator("#id_subject")).to_have_value("Fwd: Offer")
    assert not OutgoingMessage.objects.exists()

    page.fill("#id_to", "dario@example.test")
    expect(page.locator("#autosave-status")).to_contain_text("Draft saved at", timeout=15000)
    (stored,) = OutgoingMessage.objects.filter(user=account.user)
    expect(page).to_have_url(re.compile(rf"/compose/{stored.pk}/$"))
    assert stored.kind == OutgoingMessage.Kind.FORWARD
    assert [att.filename for att in stored.attachments.all()] == ["offer.pdf"]
    page.reload()
    expect(page.locator("#attachment-list li")).to_contain_text("offer.pdf")
    expect(page.locator("#attachment-list button")).to_have_text("Remove")
    assert OutgoingMessage.objects.filter(user=account.user).count() == 1
