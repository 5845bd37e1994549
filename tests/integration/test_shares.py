"""Shared conversations (issue 16) over mail synced from the test Dovecot: share
from the reader, the colleague's Shared folder with its badge and read-only view,
comments and mentions, notices, replies from the colleague's own account, and
the share surviving a UIDVALIDITY reset and a move, with later mail shown."""

from __future__ import annotations

import email
import email.policy
import imaplib
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from posta.delivery import sending
from posta.mail import blobs, keepers
from posta.mail.models import Location, Message, OutgoingMessage
from posta.shares import comments, conversation, services
from posta.shares.models import Access, Comment, Share, ShareRecipient
from posta.sync.account_pass import sync_account_once
from posta.users.models import User
from tests.integration.shares_world import Colleagues, two_colleagues
from tests.integration.test_send import send_now
from tests.integration.test_sync_checker import message
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp import SmtpServer
from tests.wakeups import recorded_wakeups

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def quiet_queue(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr("posta.sync.tasks.enqueue_account_actions", lambda ids: None)
    with recorded_wakeups(sends=[]):
        yield


@pytest.fixture
def world(dovecot: DovecotServer, smtp_server: SmtpServer, settings: Any) -> Colleagues:
    return two_colleagues(dovecot, smtp_server, settings)


def as_user(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def share(world: Colleagues, *, access: str = Access.REPLY, comment: str = "",
          follow: bool = True) -> Share:
    form = {"people": world.b.username, "access": access, "comment": comment}
    if follow:
        form["follow"] = "1"
    answer = as_user(world.a).post(reverse("share_new", args=[world.answer.pk]), form)
    assert answer.status_code == 302, answer.content.decode()[:500]
    return Share.objects.get(owner=world.a)


def opened(client: Client, share_id: int) -> str:
    response = client.get(reverse("share_open", args=[share_id]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    return response.content.decode()


def shared_badge(client: Client) -> str:
    page = client.get(reverse("mail_special", args=["shared"])).content.decode()
    found = re.search(r'id="shared-unread">(\d+)<', page)
    return found.group(1) if found else ""


def test_a_shares_with_a_comment_b_finds_it_with_the_badge_and_reads_it_only(
    world: Colleagues,
) -> None:
    made = share(world, comment="Puoi seguire tu il preventivo?")
    assert set(made.anchors.values_list("identity", flat=True)) == {
        world.first.identity, world.answer.identity
    }
    b = as_user(world.b)
    listing = b.get(reverse("mail_special", args=["shared"])).content.decode()
    assert "Preventivo impianto" in listing and "Puoi seguire tu il preventivo?" in listing
    assert "private offer" not in listing
    assert shared_badge(b) == "1"
    pane = opened(b, made.pk)
    assert "Ci mandate un preventivo?" in pane and "E i tempi?" in pane
    assert "not for colleagues" not in pane and "my draft" not in pane
    # Read-only on the owner's copies: none of the mail screen's actions are offered.
    assert "data-act=" not in pane and "mail_act" not in pane
    assert shared_badge(b) == ""
    people = as_user(world.a).get(reverse("share_people", args=[made.pk])).content.decode()
    assert "Seen " in people and world.b.username in people
    # The owner's own reader leads to the share's comments, from every message of it.
    for mine in (world.first, world.answer):
        pane = as_user(world.a).get(
            reverse("mail_message", args=[mine.pk]), HTTP_HX_REQUEST="true"
        ).content.decode()
        assert reverse("share_open", args=[made.pk]) in pane
    other = as_user(world.a).get(
        reverse("mail_message", args=[world.private.pk]), HTTP_HX_REQUEST="true"
    ).content.decode()
    assert reverse("share_new", args=[world.private.pk]) in other


def test_comments_mentions_replies_edit_window_and_notices(world: Colleagues) -> None:
    made = share(world, access=Access.READ)
    b, a = as_user(world.b), as_user(world.a)
    a.get(reverse("mail_poll"))  # A's notices so far are taken
    posted = b.post(
        reverse("share_comment", args=[made.pk]),
        {"body": f"Ci penso io, @{world.a.username}: see https://example.test/x"},
        HTTP_HX_REQUEST="true",
    )
    assert posted.status_code == 200
    comment = Comment.objects.get(share=made)
    assert comment.mentions == [world.a.pk]
    assert 'href="https://example.test/x"' in posted.content.decode()
    # A hears of it once through the live poll, and has the badge.
    notice = a.get(reverse("mail_poll")).content.decode()
    assert "commented on" in notice and reverse("share_open", args=[made.pk]) in notice
    assert "commented on" not in a.get(reverse("mail_poll")).content.decode()
    assert shared_badge(a) == "1"
    assert "Ci penso io" in opened(a, made.pk)
    # A replies to the comment; a mention of someone outside the share offers to add them.
    carlo = User.objects.create_user("carlo", password="pw-unused-123")
    answer = a.post(
        reverse("share_comment", args=[made.pk]),
        {"body": "Grazie @carlo", "parent": str(comment.pk)}, HTTP_HX_REQUEST="true",
    ).content.decode()
    assert "cannot see this conversation" in answer and 'value="carlo"' in answer
    reply = Comment.objects.get(share=made, parent=comment)
    assert reply.author == world.a
    # Only the author edits, and only within the window.
    url = reverse("share_comment_edit", args=[made.pk, comment.pk])
    assert a.post(url, {"body": "hijack"}).status_code == 403
    assert b.post(url, {"body": "Ci penso io, domani"}).status_code == 302
    comment.refresh_from_db()
    assert comment.body == "Ci penso io, domani" and comment.edited_at is not None
    Comment.objects.filter(pk=comment.pk).update(created_at=timezone.now() - timedelta(hours=1))
    assert b.post(url, {"body": "late"}).status_code == 403
    assert b.post(reverse("share_comment_delete", args=[made.pk, comment.pk])).status_code == 403
    fresh = Comment.objects.create(share=made, author=world.b, body="oops")
    assert b.post(reverse("share_comment_delete", args=[made.pk, fresh.pk])).status_code == 302
    assert not Comment.objects.filter(pk=fresh.pk).exists()
    # Comments are plain text: markup is shown, never run.
    b.post(reverse("share_comment", args=[made.pk]), {"body": "<script>alert(1)</script>"})
    assert "<script>alert(1)" not in opened(a, made.pk)
    assert carlo.pk not in ShareRecipient.objects.values_list("user_id", flat=True)


def test_read_access_cannot_reply_and_reply_access_replies_from_own_account(
    world: Colleagues, smtp_server: SmtpServer
) -> None:
    made = share(world, access=Access.READ)
    b = as_user(world.b)
    url = reverse("share_reply", args=[made.pk, world.answer.pk])
    assert b.post(url, {"kind": "reply"}).status_code == 403
    assert not OutgoingMessage.objects.filter(user=world.b).exists()
    ShareRecipient.objects.filter(share=made).update(access=Access.REPLY)
    started = b.post(url, {"kind": "reply"})
    assert started.status_code == 302
    draft = OutgoingMessage.objects.get(user=world.b)
    assert started["Location"] == reverse("compose_edit", args=[draft.pk])
    assert draft.account == world.b_account and draft.original is None
    assert draft.in_reply_to == "p2@example.test"
    assert draft.references == ["p1@example.test", "p2@example.test"]
    assert draft.to == [["Carla", "carla@example.test"]]
    sent = send_now(draft)
    assert sent.state == OutgoingMessage.State.SENT
    received = email.message_from_bytes(smtp_server.messages[-1].data,
                                        policy=email.policy.default)
    assert received["In-Reply-To"] == "<p2@example.test>"
    assert "<p1@example.test>" in str(received["References"])
    # The reply joins the conversation for both: B's own copy, shown to A in the share.
    theirs = Message.objects.get(user=world.b, message_id=sent.message_id)
    assert theirs in conversation.messages(made)
    assert "reply from the share" in opened(as_user(world.a), made.pk)
    # ...and under the owner's own conversation in the mail screen.
    assert world.answer.thread_id is not None
    thread = as_user(world.a).get(
        reverse("mail_thread", args=[world.answer.thread_id]), HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "Replies from colleagues" in thread
    assert theirs.from_email == world.b_account.email
    assert f"<strong>{theirs.from_name or theirs.from_email}</strong>" in thread
    # A's copies were not touched (no Answered flag written for B's reply).
    assert not world.a.mail_actions.exists()


def _move(dovecot: DovecotServer, world: Colleagues, message_id: str, target: str) -> None:
    client = dovecot.imap(world.a_mailbox)
    try:
        client.select("INBOX")
        _typ, data = client.uid("SEARCH", "HEADER", "Message-ID", message_id)
        uid = data[0].split()[0].decode()
        typ, _data = client.uid("MOVE", uid, target)
        assert typ == "OK"
    except imaplib.IMAP4.error as exc:  # pragma: no cover - a broken server
        raise AssertionError(exc) from exc
    finally:
        client.logout()


def test_a_share_survives_a_uidvalidity_reset_and_a_move_and_shows_later_mail(
    world: Colleagues, dovecot: DovecotServer
) -> None:
    made = share(world)
    b = as_user(world.b)
    dovecot.reset_uidvalidity(world.a_mailbox, "INBOX")
    sync_account_once(world.a_account.pk)
    pane = opened(b, made.pk)
    assert "Ci mandate un preventivo?" in pane and "E i tempi?" in pane
    _move(dovecot, world, "p2@example.test", "Work")
    sync_account_once(world.a_account.pk)
    assert "E i tempi?" in opened(b, made.pk)
    dovecot.deliver(world.a_mailbox, message(
        "Re: Preventivo impianto", msgid="<p3@example.test>", body="Allora?\n",
        from_="Carla <carla@example.test>", to=world.a_mailbox.address,
        date="Tue, 03 Mar 2026 09:00:00 +0100", in_reply_to="<p2@example.test>",
        references="<p1@example.test> <p2@example.test>",
    ))
    sync_account_once(world.a_account.pk)
    assert "Allora?" in opened(b, made.pk)
    later = Message.objects.get(user=world.a, message_id="p3@example.test")
    assert b.get(reverse("share_body", args=[made.pk, later.pk])).status_code == 200
    # Without "follow later mail", only what was shared is shown.
    as_user(world.a).post(reverse("share_manage", args=[made.pk]), {"action": "unfollow"})
    pane = opened(b, made.pk)
    assert "Allora?" not in pane and "E i tempi?" in pane


def test_everyone_share_and_revoke(world: Colleagues) -> None:
    a = as_user(world.a)
    a.post(reverse("share_new", args=[world.first.pk]), {"everyone": "1", "access": "read"})
    made = Share.objects.get(owner=world.a)
    carlo = User.objects.create_user("carlo", password="pw-unused-123")
    c = as_user(carlo)
    assert "Preventivo impianto" in opened(c, made.pk)
    assert ShareRecipient.objects.get(share=made, user=carlo).first_seen_at is not None
    a.post(reverse("share_manage", args=[made.pk]), {"action": "everyone_off"})
    assert c.get(reverse("share_open", args=[made.pk])).status_code == 404
    assert "Preventivo impianto" not in c.get(
        reverse("mail_special", args=["shared"])
    ).content.decode()


def test_compose_shares_the_conversation_at_send_time(world: Colleagues) -> None:
    a = as_user(world.a)
    form = {
        "origin": "reply", "source": str(world.answer.pk), "draft_key": "b" * 32,
        "account": str(world.a_account.pk), "to": "Carla <carla@example.test>",
        "subject": "Re: Preventivo impianto", "body": "<p>In arrivo.</p>", "action": "send",
    }
    refused = a.post(reverse("compose_start"), {**form, "share_with": "nobody-here"})
    assert refused.status_code == 200 and "not a colleague" in refused.content.decode()
    assert not OutgoingMessage.objects.filter(user=world.a).exclude(
        state=OutgoingMessage.State.DRAFT
    ).exists()
    sent = a.post(reverse("compose_start"), {**form, "share_with": world.b.username})
    assert sent.status_code == 302
    row = OutgoingMessage.objects.get(user=world.a, draft_key="b" * 32)
    made = Share.objects.get(owner=world.a)
    assert made.recipients.get().user == world.b
    assert made.anchors.filter(message_key=row.message_id).exists()
    assert row.send_at is not None and sending.deliver(row.pk, now=row.send_at)
    pane = opened(as_user(world.b), made.pk)
    assert "E i tempi?" in pane
    own = Message.objects.get(user=world.a, message_id=row.message_id)
    assert own in conversation.messages(made)


def test_the_email_notice_is_off_by_default_and_leaves_from_the_shared_sender(
    world: Colleagues,
) -> None:
    root = User.objects.get(username="root")
    sender = world.a_account.__class__.objects.create(
        user=root, email="crm@example.test", description="CRM", is_shared_sender=True,
        smtp_host="127.0.0.1", smtp_port=25,
    )
    share(world)
    assert not OutgoingMessage.objects.filter(account=sender).exists()
    b = as_user(world.b)
    assert b.post(reverse("share_settings"), {"email_notice": "1"}).status_code == 302
    Share.objects.all().delete()
    made = share(world, comment="Guarda qui")
    notice = OutgoingMessage.objects.get(account=sender)
    assert notice.to == [[str(world.b), world.b.email]]
    assert notice.state == OutgoingMessage.State.QUEUED
    assert "shared a conversation with you" in notice.subject
    as_user(world.a).post(reverse("share_comment", args=[made.pk]), {"body": "Novità?"})
    comment_notice = OutgoingMessage.objects.filter(account=sender).latest("id")
    assert comment_notice.body_text == "Novità?" and "commented on" in comment_notice.subject


def test_a_shared_message_whose_last_copy_goes_is_kept_and_still_shown(
    world: Colleagues, dovecot: DovecotServer
) -> None:
    made = share(world)
    inbox = world.inbox()
    for shared in (world.first, world.private):
        uid = Location.objects.get(message=shared, folder=inbox).uid
        assert uid is not None
        dovecot.expunge(world.a_mailbox, "INBOX", uid)
    sync_account_once(world.a_account.pk)
    keepers.do_sweep(now=timezone.now() + timedelta(days=1), grace=timedelta(0))
    # The shared one stays (with its body), the other one goes.
    kept = Message.objects.get(pk=world.first.pk)
    assert not kept.locations.exists() and blobs.exists(kept.blob_key)
    assert not Message.objects.filter(pk=world.private.pk).exists()
    pane = opened(as_user(world.b), made.pk)
    assert "Ci mandate un preventivo?" in pane
    # Stopping the share lets it go with the next sweep.
    as_user(world.a).post(reverse("share_manage", args=[made.pk]), {"action": "stop"})
    keepers.do_sweep(now=timezone.now() + timedelta(days=2), grace=timedelta(0))
    assert not Message.objects.filter(pk=world.first.pk).exists()


def test_the_shared_folder_and_the_poll_read_a_fixed_number_of_queries(
    world: Colleagues, dovecot: DovecotServer
) -> None:
    for i in range(12):
        dovecot.deliver(world.a_mailbox, message(f"Pratica {i}", msgid=f"<pr{i}@example.test>"))
    sync_account_once(world.a_account.pk)
    b = as_user(world.b)

    def counts() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as listing:
            assert b.get(reverse("mail_special", args=["shared"])).status_code == 200
        with CaptureQueriesContext(connection) as poll:
            assert b.get(reverse("mail_poll")).status_code == 200
        return len(listing), len(poll)

    def share_some(names: list[str]) -> None:
        for name in names:
            shared = Message.objects.get(user=world.a, message_id=f"{name}@example.test")
            made = services.do_share(world.a, shared, people=[world.b], access=Access.READ)
            comments.check_comment(services.access_share(world.a, made.pk), f"Nota {name}")

    share_some(["pr0", "pr1"])
    counts()  # the first poll takes the notices of the shares so far
    few = counts()
    share_some([f"pr{i}" for i in range(2, 12)])
    counts()
    many = counts()
    assert few == many, (few, many)
    page = b.get(reverse("mail_special", args=["shared"])).content.decode()
    assert page.count('<li class="msg') == 12 and "Nota pr11" in page
