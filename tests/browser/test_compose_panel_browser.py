"""Writing without leaving the mail screen (issue 19), in Chromium, in English and
Italian: "New message" opens the editor in a panel over the screen, files dropped
on the panel attach, Send closes the panel and shows a toast with Undo, Undo brings
the message back into the panel, and a message sent again leaves from the worker
while the list stays on screen; Reply opens the editor under the message; the
panel minimises and comes back; "Schedule send…" in the Send button's menu
schedules."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Frame, Page, expect

from posta.accounts.models import Account
from posta.delivery import sending
from posta.mail import outbox
from posta.mail.models import Message, OutgoingMessage
from posta.sync.account_pass import sync_account_once
from tests.browser.test_compose_browser import PASSWORD, log_in
from tests.browser.test_csp_browser import Violations
from tests.browser.test_mail_browser import row
from tests.integration.test_send import make_sender, parsed
from tests.integration.test_sync_checker import message
from tests.servers.dovecot import DovecotServer, MailUser
from tests.servers.smtp import SmtpServer
from tests.wakeups import recorded_wakeups

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WORDS = {
    "en": {"locale": "en-US", "sending": "Sending…", "undo": "Undo", "sent": "Message sent.",
           "reply": "Reply", "schedule": "Schedule send…",
           "scheduled": "The message is scheduled.", "minimise": "Minimise",
           "restore": "Restore"},
    "it": {"locale": "it-IT", "sending": "Invio in corso…", "undo": "Annulla",
           "sent": "Messaggio inviato.", "reply": "Rispondi", "schedule": "Programma l'invio…",
           "scheduled": "Il messaggio è stato programmato.", "minimise": "Riduci",
           "restore": "Ripristina"},
}  # fmt: skip

SENDS: list[tuple[int, datetime | None]] = []


@pytest.fixture(autouse=True)
def recorded_queue() -> Iterator[None]:
    """The worker's wake-ups are recorded; the test runs the worker itself."""
    SENDS.clear()
    with recorded_wakeups(sends=SENDS, drafts=[]):
        yield


def writer(
    dovecot: DovecotServer, smtp_server: SmtpServer, language: str
) -> tuple[Account, MailUser]:
    """A user whose inbox holds one message, with a signature and a short undo window."""
    mail_user = dovecot.add_user()
    account = make_sender(dovecot, smtp_server, mail_user)
    account.signature_kind = "custom"
    account.signature_html = "<p>Bob, sales office</p>"
    account.save()
    user = account.user
    user.language = language
    user.undo_send_seconds = 5
    user.thread_view = False
    user.save()
    dovecot.deliver(mail_user, message("Offer for March", body="Shall we meet?\n"))
    sync_account_once(account.pk)
    return account, mail_user


def panel_frame(page: Page) -> Frame:
    handle = page.locator(".compose-panel iframe").element_handle()
    assert handle is not None
    frame = handle.content_frame()
    assert frame is not None
    return frame


def drop_file(frame: Frame, selector: str, name: str, text: str) -> None:
    """Drop a file on `selector` as a file dragged from the desktop would be."""
    frame.evaluate(
        """([selector, name, text]) => {
          const data = new DataTransfer();
          data.items.add(new File([text], name, {type: "text/plain"}));
          const target = document.querySelector(selector);
          for (const type of ["dragenter", "dragover", "drop"]) {
            const init = {bubbles: true, cancelable: true, dataTransfer: data};
            target.dispatchEvent(new DragEvent(type, init));
          }
        }""",
        [selector, name, text],
    )


def wait_for(condition: Callable[[], Any], *, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


def run_worker(row: OutgoingMessage) -> None:
    """What the queue does with the send wake-up the Send asked for: at its time,
    the worker's pass over what is due."""
    assert (row.pk, row.send_at) in SENDS
    assert row.send_at is not None
    wait_for(lambda: timezone.now() >= row.send_at)
    assert sending.deliver_due() == 1


@pytest.mark.parametrize("language", ["en", "it"])
def test_new_message_in_the_panel_drop_send_undo_and_send_again(
    new_page: Callable[..., Page],
    live_server: object,
    dovecot: DovecotServer,
    smtp_server: SmtpServer,
    language: str,
) -> None:
    words = WORDS[language]
    base = str(live_server)
    account, _mail_user = writer(dovecot, smtp_server, language)
    user = account.user
    page = new_page(locale=words["locale"], viewport={"width": 1440, "height": 900})
    seen = Violations(page)
    log_in(page, base, user)
    page.goto(f"{base}/mail/")
    expect(row(page, "Offer for March")).to_be_visible()
    screen_url = page.url

    opener = page.locator("a[data-compose=panel]")
    opener.click()
    panel = page.locator(".compose-panel")
    expect(panel).to_be_visible()
    expect(panel).to_have_attribute("role", "dialog")
    assert panel.get_attribute("aria-labelledby") == "compose-panel-title"
    frame = panel_frame(page)
    # Focus moves into the panel, on the recipients.
    expect(frame.locator("#id_to")).to_be_focused()
    assert page.evaluate("document.activeElement.classList.contains('compose-frame')")
    assert not OutgoingMessage.objects.exists()  # opening the panel stores nothing

    frame.fill("#id_to", "Bruno <bruno@example.test>")
    frame.fill("#id_subject", "Panel note")
    frame.locator("#field-body [contenteditable=true]").click()
    page.keyboard.type("Written over the list")
    # The signature shows inside the body, under the text; scheduling is closed.
    body = frame.locator(".compose-body")
    signature = body.locator("#signature-preview")
    expect(signature).to_contain_text("Bob, sales office")
    editor_box = frame.locator("#field-body [contenteditable=true]").bounding_box()
    signature_box = signature.bounding_box()
    assert editor_box and signature_box
    assert signature_box["y"] >= editor_box["y"] + editor_box["height"]
    expect(frame.locator("#schedule-fields")).to_be_hidden()

    # A file dropped on the subject (anywhere on the panel) attaches.
    drop_file(frame, "#id_subject", "notes.txt", "the notes")
    frame = panel_frame(page)
    expect(frame.locator("#attachment-list li")).to_contain_text("notes.txt")
    (stored,) = OutgoingMessage.objects.filter(user=user)
    assert [a.filename for a in stored.attachments.all()] == ["notes.txt"]
    expect(frame.locator("#id_subject")).to_have_value("Panel note")

    # Send: the panel closes, the screen stays, the toast offers Undo.
    frame.locator("#send-button").click()
    expect(panel).to_have_count(0)
    toast = page.locator("#compose-toast")
    expect(toast.locator("#compose-toast-text")).to_have_text(words["sending"])
    assert page.url == screen_url
    stored.refresh_from_db()
    assert stored.state == OutgoingMessage.State.QUEUED
    toast.get_by_role("button", name=words["undo"], exact=True).click()

    # Undo: the message is back in the panel, with its attachment.
    expect(panel).to_be_visible()
    frame = panel_frame(page)
    expect(frame.locator("#id_subject")).to_have_value("Panel note")
    expect(frame.locator("#attachment-list li")).to_contain_text("notes.txt")
    stored.refresh_from_db()
    assert stored.state == OutgoingMessage.State.DRAFT
    assert smtp_server.messages == []

    # Send again and leave it: it leaves from the worker; the list stays on screen.
    frame.locator("#send-button").click()
    expect(panel).to_have_count(0)
    expect(toast.locator("#compose-toast-text")).to_have_text(words["sending"])
    stored.refresh_from_db()
    run_worker(stored)
    expect(toast.locator("#compose-toast-text")).to_have_text(words["sent"], timeout=20000)
    expect(row(page, "Offer for March")).to_be_visible()
    assert page.url == screen_url
    (received,) = smtp_server.messages
    sent = parsed(received.data)
    assert sent["Subject"] == "Panel note"
    assert [p.get_filename() for p in sent.iter_attachments()] == ["notes.txt"]
    html = sent.get_body(preferencelist=("html",))
    assert html is not None and "Written over the list" in html.get_content()
    assert "Bob, sales office" in html.get_content()
    seen.assert_none("compose panel")


@pytest.mark.parametrize("language", ["en", "it"])
def test_inline_reply_minimise_restore_and_schedule_from_the_send_menu(
    new_page: Callable[..., Page],
    live_server: object,
    dovecot: DovecotServer,
    smtp_server: SmtpServer,
    language: str,
) -> None:
    words = WORDS[language]
    base = str(live_server)
    account, _mail_user = writer(dovecot, smtp_server, language)
    user = account.user
    original = Message.objects.get(user=user, subject="Offer for March")
    page = new_page(locale=words["locale"], viewport={"width": 1440, "height": 900})
    seen = Violations(page)
    log_in(page, base, user)
    page.goto(f"{base}/mail/")
    row(page, "Offer for March").locator("a.open").click()
    reader = page.locator("#reader-message")
    expect(reader.locator("h2.subject")).to_have_text("Offer for March")

    # Reply opens the editor under the message, in the reader, not on a page of its own.
    reader.get_by_role("link", name=words["reply"], exact=True).click()
    inline = page.locator(".mail-reader .compose-panel.inline")
    expect(inline).to_be_visible()
    reader_box = page.locator("#reader").bounding_box()
    inline_box = inline.bounding_box()
    assert reader_box and inline_box
    assert inline_box["y"] >= reader_box["y"] + reader_box["height"] - 1
    frame = panel_frame(page)
    expect(frame.locator("#id_subject")).to_have_value("Re: Offer for March")
    expect(frame.locator("#field-body [contenteditable=true]")).to_be_focused()
    page.keyboard.type("Thursday works")
    frame.locator("#send-button").click()
    expect(inline).to_have_count(0)
    toast = page.locator("#compose-toast")
    expect(toast.locator("#compose-toast-text")).to_have_text(words["sending"])
    reply = OutgoingMessage.objects.get(user=user, subject="Re: Offer for March")
    expect(reader.locator("h2.subject")).to_have_text("Offer for March")
    # The page goes away during the undo window: the reply leaves all the same.
    page.close()
    run_worker(reply)
    reply.refresh_from_db()
    assert reply.state == OutgoingMessage.State.SENT
    (received,) = smtp_server.messages
    assert parsed(received.data)["In-Reply-To"] == f"<{original.message_id}>"

    # A new message: minimise keeps it, Esc minimises too, restore brings it back.
    page = new_page(locale=words["locale"], viewport={"width": 1440, "height": 900})
    seen = Violations(page)
    page.goto(f"{base}/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{base}/mail/")
    opener = page.locator("a[data-compose=panel]")
    opener.click()
    panel = page.locator(".compose-panel")
    frame = panel_frame(page)
    expect(frame.locator("#id_to")).to_be_focused()
    frame.fill("#id_to", "carla@example.test")
    frame.fill("#id_subject", "Later on")
    minimise = panel.locator(".compose-minimise")
    minimise.click()
    expect(panel).to_have_class("compose-panel minimised")
    expect(panel.locator("iframe")).to_be_hidden()
    expect(opener).to_be_focused()  # focus goes back where it came from
    expect(minimise).to_have_attribute("aria-label", words["restore"])
    minimise.click()
    expect(panel.locator("iframe")).to_be_visible()
    expect(minimise).to_have_attribute("aria-label", words["minimise"])
    frame = panel_frame(page)
    expect(frame.locator("#id_subject")).to_have_value("Later on")
    frame.locator("#id_subject").press("Escape")
    expect(panel.locator("iframe")).to_be_hidden()
    expect(opener).to_be_focused()
    minimise.click()
    frame = panel_frame(page)

    # "Schedule send…" in the Send button's menu opens the scheduling fields.
    expect(frame.locator("#schedule-fields")).to_be_hidden()
    frame.locator("#send-menu > summary").click()
    frame.get_by_role("button", name=words["schedule"], exact=True).click()
    expect(frame.locator("#schedule-fields")).to_be_visible()
    when = timezone.localtime(timezone.now() + timedelta(hours=2), outbox.user_timezone(user))
    frame.fill("#id_send_at", when.strftime("%Y-%m-%dT%H:%M:%S"))
    frame.locator("#schedule-button").click()
    expect(panel).to_have_count(0)
    expect(page.locator("#compose-toast-text")).to_have_text(words["scheduled"])
    later = OutgoingMessage.objects.get(user=user, subject="Later on")
    assert later.state == OutgoingMessage.State.SCHEDULED
    assert later.send_at == when.replace(microsecond=0)
    seen.assert_none("inline reply and schedule")
