"""Two colleagues in Chromium (issue 16): A shares a conversation with B with a
comment; B finds it in Shared with the badge, comments back mentioning A and
replies to the sender from B's own account; A sees both in the conversation;
A revokes, and B's Shared no longer has it and its URLs answer 404."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from posta.delivery import sending
from posta.mail.models import Message, OutgoingMessage
from posta.shares.models import Comment, Share
from posta.users.models import User
from posta.web.middleware import SetupMiddleware
from tests.integration.shares_world import two_colleagues
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp import SmtpServer
from tests.wakeups import recorded_wakeups

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-unused-123"  # tests.integration.test_send.make_sender


@pytest.fixture(autouse=True)
def quiet_queue(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr("posta.sync.tasks.enqueue_account_actions", lambda ids: None)
    with recorded_wakeups(sends=[], drafts=[]):
        yield


def log_in(page: Page, base: str, user: User) -> None:
    page.goto(f"{base}/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).not_to_have_url(re.compile(r"/login/"))


def test_two_colleagues_share_comment_reply_and_revoke(
    new_page: Callable[..., Page], live_server: object, dovecot: DovecotServer,
    smtp_server: SmtpServer, settings: Any,
) -> None:
    base = str(live_server)
    world = two_colleagues(dovecot, smtp_server, settings)
    SetupMiddleware.set_ready()
    anna, bruno = new_page(), new_page()

    # A opens the answer in the reader and shares its conversation with B.
    log_in(anna, base, world.a)
    anna.goto(f"{base}/mail/m/{world.answer.pk}/")
    anna.locator("#reader-message").get_by_role("link", name="Share", exact=True).click()
    anna.fill("#share-people", world.b.username)
    anna.get_by_label("Read and reply").check()
    anna.fill("#share-comment", "Puoi seguire tu il preventivo?")
    anna.get_by_role("button", name="Share", exact=True).click()
    expect(anna.locator(f'tr[data-recipient="{world.b.username}"]')).to_contain_text(
        "Not opened yet"
    )
    anna.goto(f"{base}/mail/")

    # B finds it in Shared, with the badge, and opens it.
    log_in(bruno, base, world.b)
    bruno.goto(f"{base}/mail/s/shared/")
    expect(bruno.locator("#shared-unread")).to_have_text("1")
    row = bruno.locator("#shared-rows li.msg", has_text="Preventivo impianto")
    expect(row).to_contain_text("Puoi seguire tu il preventivo?")
    row.locator("a.open").click()
    pane = bruno.locator("#reader-share")
    expect(pane.locator(".shared-message")).to_have_count(2)
    expect(pane).to_contain_text("Ci mandate un preventivo?")
    expect(pane).not_to_contain_text("not for colleagues")
    expect(pane.get_by_role("button", name="Delete")).to_have_count(0)
    # The live poll takes the badge away once it is seen.
    expect(bruno.locator("#shared-unread")).to_have_count(0, timeout=15_000)

    # B comments back, mentioning A.
    # Typing "@" and a few letters suggests the colleague; a click puts the name in.
    bruno.locator("#comment-body").click()
    bruno.keyboard.type(f"Ci penso io, @{world.a.username[:2]}")
    suggestion = bruno.locator("#comment-form ul.mention-list button", has_text=str(world.a))
    expect(suggestion).to_be_visible()
    suggestion.click()
    expect(bruno.locator("#comment-body")).to_have_value(f"Ci penso io, @{world.a.username} ")
    bruno.click("#comment-form button[type=submit].primary")
    expect(bruno.locator("#share-comments .comment")).to_have_count(2)
    assert Comment.objects.get(author=world.b).mentions == [world.a.pk]
    # A hears of it in the page, through the live poll.
    expect(anna.locator("#share-notices")).to_contain_text("commented on", timeout=20_000)

    # B replies to the sender from B's own account.
    bruno.locator(".shared-message").last.get_by_role("button", name="Reply", exact=True).click()
    expect(bruno).to_have_url(re.compile(r"/compose/\d+/$"))
    bruno.locator("#field-body [contenteditable=true]").click()
    bruno.keyboard.type("Le mando il preventivo domani.")
    bruno.click("#send-button")
    expect(bruno.locator("#undo-button")).to_be_visible()
    reply = OutgoingMessage.objects.get(user=world.b)
    assert reply.account == world.b_account
    assert sending.deliver(reply.pk, now=reply.send_at)
    assert Message.objects.filter(user=world.b, message_id=reply.message_id).exists()
    sent = smtp_server.messages[-1]
    assert sent.rcpt_tos == ["carla@example.test"]
    assert sent.message()["In-Reply-To"] == "<p2@example.test>"

    # A sees B's comment and B's reply in the conversation.
    anna.goto(f"{base}/mail/s/shared/")
    anna.locator("#shared-rows li.msg", has_text="Preventivo impianto").locator("a.open").click()
    conversation = anna.locator("#reader-share")
    expect(conversation).to_contain_text("Ci penso io")
    expect(conversation.locator(".shared-message")).to_have_count(3)
    theirs = conversation.locator(".shared-message").last
    expect(theirs).to_contain_text("reply from the share")
    expect(theirs.frame_locator("iframe").locator("body")).to_contain_text(
        "Le mando il preventivo domani."
    )
    expect(conversation.locator(".share-seen")).to_contain_text(str(world.b))

    # A revokes: B's Shared no longer has it, and its URLs answer 404.
    share = Share.objects.get(owner=world.a)
    anna.goto(f"{base}/shares/{share.pk}/people/")
    anna.locator(f'tr[data-recipient="{world.b.username}"]').get_by_role(
        "button", name="Revoke"
    ).click()
    expect(anna.locator(f'tr[data-recipient="{world.b.username}"]')).to_have_count(0)
    bruno.goto(f"{base}/mail/s/shared/")
    expect(bruno.locator("#shared-rows")).to_have_count(0)
    for path in (f"/shares/{share.pk}/", f"/shares/{share.pk}/m/{world.answer.pk}/body/"):
        answer = bruno.goto(f"{base}{path}")
        assert answer is not None and answer.status == 404, path

    # Stopping the share asks first; dismissed, nothing changes.
    answers = [False, True]
    anna.on("dialog", lambda d: d.accept() if answers.pop(0) else d.dismiss())
    stop = anna.get_by_role("button", name="Stop sharing")
    stop.click()
    expect(anna.locator("h1")).to_have_text("Shared conversation")
    assert answers == [True] and Share.objects.filter(pk=share.pk).exists()
    stop.click()
    expect(anna).to_have_url(re.compile(r"/mail/s/shared/$"))
    assert not answers and not Share.objects.filter(pk=share.pk).exists()
