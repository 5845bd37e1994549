"""Sending mail through a real SMTP server (aiosmtpd) that hands it to Dovecot.

Test state is built with the services the web layer calls (posta.mail.outbox) and
sent by the worker's own code (posta.delivery.sending); the "clock" a worker sees
is passed as `now` where a retry or the undo window would otherwise make the test
wait.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from django.utils import timezone

from posta.accounts.models import Account, CompanySettings, Folder
from posta.core.crypto import seal
from posta.delivery import followups, sending
from posta.mail import addresses, outbox, outbox_sentences, replies
from posta.mail.models import Location, Message, OutgoingMessage
from posta.sync.account_pass import sync_account_once
from posta.users.models import User
from tests.servers.dovecot import DovecotServer, MailUser
from tests.servers.smtp import SmtpServer
from tests.wakeups import recorded_wakeups

pytestmark = pytest.mark.django_db(transaction=True)

State = OutgoingMessage.State


# The send wake-ups of the running test (tests.wakeups).
WAKES: list[tuple[int, Any]] = []


@pytest.fixture(autouse=True)
def quiet_queue() -> Iterator[None]:
    WAKES.clear()
    with recorded_wakeups(sends=WAKES):
        yield


def allow_loopback() -> None:
    company = CompanySettings.load()
    company.allowed_mail_hosts = "127.0.0.1"
    company.save()


def make_sender(
    dovecot: DovecotServer,
    smtp: SmtpServer,
    mail_user: MailUser,
    *,
    preset: str = "custom",
    smtp_password: str | None = None,
    first_name: str = "",
    username: str | None = None,
) -> Account:
    """A CRM user with an account on the test Dovecot that sends through `smtp`,
    folders synced (Sent and Drafts exist and have their roles)."""
    allow_loopback()
    user = User.objects.create_user(
        username=username or mail_user.name, password="pw-unused-123", first_name=first_name
    )
    existing = dovecot.folders(mail_user)
    for name in ("Sent", "Drafts"):
        if name not in existing:
            dovecot.create_folder(mail_user, name)
    account = Account.objects.create(
        user=user,
        preset=preset,
        username=mail_user.name,
        email=mail_user.address,
        password_secret=seal(mail_user.password),
        description=mail_user.name,
        is_main=True,
        imap_host=dovecot.host,
        imap_port=dovecot.imap_port,
        imap_security="none",
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        smtp_security="none",
        smtp_auth=True,
        smtp_password_secret=seal(smtp_password if smtp_password is not None else "x"),
    )
    sync_account_once(account.pk)
    return account


def write(
    account: Account, *, to: str, subject: str = "Hello", body: str = "<p>Hello there</p>",
    cc: str = "", bcc: str = "",
) -> OutgoingMessage:
    user = account.user
    draft = outbox.do_new_draft(user, account=account)
    return outbox.check_save_draft(
        user, draft,
        outbox.Draft(account_id=account.pk, to=to, cc=cc, bcc=bcc, subject=subject,
                     body_html=body),
    )


def send_now(row: OutgoingMessage) -> OutgoingMessage:
    """Queue as the Send button does, then run the worker once the undo window ends."""
    queued = outbox.check_send(row.user, row)
    assert queued.state == State.QUEUED
    assert queued.send_at is not None
    assert sending.deliver(queued.pk, now=queued.send_at)
    queued.refresh_from_db()
    return queued


def parsed(data: bytes) -> EmailMessage:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def server_copies(dovecot: DovecotServer, user: MailUser, folder: str, message_id: str) -> int:
    client = dovecot.imap(user)
    try:
        client.select(folder)
        _typ, data = client.uid("SEARCH", "HEADER", "Message-ID", f"<{message_id}>")
        return len(data[0].split()) if data and data[0] else 0
    finally:
        client.logout()


def server_flags(dovecot: DovecotServer, user: MailUser, folder: str, uid: int) -> bytes:
    client = dovecot.imap(user)
    try:
        client.select(folder)
        _typ, data = client.uid("FETCH", str(uid), "(FLAGS)")
        item = data[0]
        return item if isinstance(item, bytes) else b""
    finally:
        client.logout()


# ---------------------------------------------------------------------------- tests


def test_a_sends_to_b_and_the_reply_is_threaded(
    dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    smtp_server.relay_to_lmtp(dovecot)
    mail_a, mail_b = dovecot.add_user(), dovecot.add_user()
    a = make_sender(dovecot, smtp_server, mail_a, first_name="Anna")
    b = make_sender(dovecot, smtp_server, mail_b)

    sent = send_now(write(a, to=mail_b.address, subject="Quarterly figures"))
    assert sent.state == State.SENT
    # Linked for A at once, before any sync.
    own = Message.objects.get(user=a.user, message_id=sent.message_id)
    assert own.thread is not None

    sync_account_once(b.pk)
    received = Message.objects.get(user=b.user, message_id=sent.message_id)
    assert received.subject == "Quarterly figures"
    assert Location.objects.filter(message=received, folder__role="inbox").exists()

    reply = replies.do_start_reply(b.user, received)
    assert reply.account == b
    outbox.check_save_draft(
        b.user, reply,
        outbox.Draft(account_id=b.pk, to=addresses.format_addresses(reply.to),
                     subject=reply.subject, body_html="<p>Thanks</p>"),
    )
    answered = send_now(reply)
    assert answered.state == State.SENT

    sync_account_once(a.pk)
    back = Message.objects.get(user=a.user, message_id=answered.message_id)
    assert back.thread_id == own.thread_id
    assert Location.objects.filter(message=back, folder__role="inbox").exists()
    # The sync found A's Sent copy and attached it to the row stored at send time.
    assert Location.objects.filter(message=own, folder__role="sent").count() == 1


def test_reply_sets_headers_marks_answered_and_files_one_sent_copy(
    dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    mail_b = dovecot.add_user()
    b = make_sender(dovecot, smtp_server, mail_b)
    original = EmailMessage()
    original["From"] = "Carla <carla@example.test>"
    original["To"] = mail_b.address
    original["Cc"] = "Dario <dario@example.test>"
    original["Subject"] = "Offer"
    original["Message-ID"] = "<offer-1@example.test>"
    original["References"] = "<root@example.test>"
    original["In-Reply-To"] = "<root@example.test>"
    original["Date"] = "Mon, 02 Mar 2026 10:00:00 +0100"
    original.set_content("Here is our offer.\n")
    dovecot.deliver(mail_b, original.as_bytes())
    sync_account_once(b.pk)
    message = Message.objects.get(user=b.user, message_id="offer-1@example.test")

    reply = replies.do_start_reply(b.user, message, reply_all=True)
    assert [p[1] for p in reply.to] == ["carla@example.test"]
    assert [p[1] for p in reply.cc] == ["dario@example.test"]
    outbox.check_save_draft(
        b.user, reply,
        outbox.Draft(account_id=b.pk, to=addresses.format_addresses(reply.to),
                     cc=addresses.format_addresses(reply.cc), subject=reply.subject,
                     body_html="<p>Accepted</p>"),
    )
    done = send_now(reply)

    (received,) = smtp_server.messages
    msg = parsed(received.data)
    assert msg["Subject"] == "Re: Offer"
    assert msg["In-Reply-To"] == "<offer-1@example.test>"
    assert msg["References"] == "<root@example.test> <offer-1@example.test>"
    assert sorted(received.rcpt_tos) == ["carla@example.test", "dario@example.test"]
    body = msg.get_body(preferencelist=("plain",))
    assert body is not None
    assert "> Here is our offer." in body.get_content()

    (inbox_uid,) = dovecot.uids(mail_b, "INBOX")
    assert b"\\Answered" in server_flags(dovecot, mail_b, "INBOX", inbox_uid)
    assert server_copies(dovecot, mail_b, "Sent", done.message_id) == 1
    assert done.sent_copy == OutgoingMessage.FollowUp.DONE
    # Running the follow-ups again (a retry after a lost record) files nothing more.
    OutgoingMessage.objects.filter(pk=done.pk).update(sent_copy=OutgoingMessage.FollowUp.PENDING)
    followups.run_follow_ups(done.pk)
    assert server_copies(dovecot, mail_b, "Sent", done.message_id) == 1


def test_gmail_like_provider_gets_no_sent_copy(
    dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    mail_a = dovecot.add_user()
    a = make_sender(dovecot, smtp_server, mail_a, preset="gmail")
    done = send_now(write(a, to="someone@example.test"))
    assert done.state == State.SENT
    assert len(smtp_server.messages) == 1
    assert done.sent_copy == OutgoingMessage.FollowUp.NONE
    assert dovecot.uids(mail_a, "Sent") == []


def test_company_signature_is_merged_and_follows_the_from(
    dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    company = CompanySettings.load()
    company.company_signature = "<p>$Users||first_name$ $Users||last_name$ · $Users||title$</p>"
    company.save()
    mail_a = dovecot.add_user()
    a = make_sender(dovecot, smtp_server, mail_a, first_name="Giulia")
    User.objects.filter(pk=a.user_id).update(last_name="Bianchi")
    a.signature_kind = Account.Signature.COMPANY
    a.save()
    second = Account.objects.create(
        user=a.user, username=a.username, email="giulia.sales@example.test",
        password_secret=a.password_secret, description="Sales", imap_host=a.imap_host,
        imap_port=a.imap_port, imap_security="none", smtp_host=a.smtp_host,
        smtp_port=a.smtp_port, smtp_security="none", smtp_password_secret=a.smtp_password_secret,
        signature_kind=Account.Signature.CUSTOM, signature_html="<p>Sales team</p>",
    )
    user = User.objects.get(pk=a.user_id)
    assert outbox.signature_for(a, user) == "<p>Giulia Bianchi · </p>"
    assert outbox.signatures_by_account(user)[str(second.pk)] == "<p>Sales team</p>"

    first = send_now(write(a, to="x@example.test", subject="one"))
    draft = write(a, to="x@example.test", subject="two")
    # The user picks the other From in the editor: the signature swaps with it.
    outbox.check_save_draft(
        user, draft, outbox.Draft(account_id=second.pk, to="x@example.test", subject="two",
                                  body_html="<p>Hello there</p>"),
    )
    swapped = send_now(draft)
    assert first.state == swapped.state == State.SENT
    one, two = (parsed(m.data) for m in smtp_server.messages)
    html_one = one.get_body(preferencelist=("html",))
    html_two = two.get_body(preferencelist=("html",))
    assert html_one is not None and html_two is not None
    assert "Giulia Bianchi" in html_one.get_content()
    assert "Sales team" not in html_one.get_content()
    assert "Sales team" in html_two.get_content()
    assert "Giulia Bianchi" not in html_two.get_content()
    assert two["From"].addresses[0].addr_spec == "giulia.sales@example.test"
    text_two = two.get_body(preferencelist=("plain",))
    assert text_two is not None
    assert "\n-- \nSales team" in text_two.get_content().replace("\r\n", "\n")


def test_451_then_250_is_sent_once(dovecot: DovecotServer, smtp_server: SmtpServer) -> None:
    a = make_sender(dovecot, smtp_server, dovecot.add_user())
    smtp_server.reply_with(451, stage="DATA")
    row = outbox.check_send(a.user, write(a, to="x@example.test"))
    assert row.send_at is not None
    assert sending.deliver(row.pk, now=row.send_at)
    row.refresh_from_db()
    assert row.state == State.QUEUED
    assert row.error_code == "smtp_451"
    assert smtp_server.messages == []
    # Not due yet: a worker passing by now leaves it alone.
    assert sending.deliver_due(now=timezone.now()) == 0
    assert row.send_at is not None
    assert sending.deliver_due(now=row.send_at) == 1
    row.refresh_from_db()
    assert row.state == State.SENT
    assert row.error_code == ""
    assert len(smtp_server.messages) == 1
    assert sending.deliver_due(now=row.send_at + timedelta(days=1)) == 0
    assert len(smtp_server.messages) == 1


def test_550_for_one_of_two_recipients(dovecot: DovecotServer, smtp_server: SmtpServer) -> None:
    a = make_sender(dovecot, smtp_server, dovecot.add_user())
    smtp_server.reply_with(550, stage="RCPT", recipient="gone@example.test")
    row = send_now(write(a, to="gone@example.test, here@example.test"))
    assert row.state == State.SENT
    (received,) = smtp_server.messages
    assert received.rcpt_tos == ["here@example.test"]
    assert [f["address"] for f in row.failed_recipients] == ["gone@example.test"]
    assert row.failed_recipients[0]["code"] == 550
    assert "refused some recipients" in outbox_sentences.outgoing_error_message(row)


def test_every_recipient_refused_permanently_fails(
    dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    a = make_sender(dovecot, smtp_server, dovecot.add_user())
    smtp_server.reply_with(550, stage="RCPT")
    row = send_now(write(a, to="gone@example.test"))
    assert row.state == State.FAILED
    assert row.error_code == "recipients_refused"
    assert smtp_server.messages == []


def test_wrong_smtp_password_waits_with_an_error_leading_to_settings(
    dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    mail_a = dovecot.add_user()
    smtp_server.require_auth(mail_a.name, "right-password")
    a = make_sender(dovecot, smtp_server, mail_a, smtp_password="wrong-password")
    row = send_now(write(a, to="x@example.test"))
    assert row.state == State.QUEUED  # waiting, not lost
    assert row.error_code == "auth_failed"
    assert outbox_sentences.leads_to_settings(row)
    assert "refused the user name or password" in outbox_sentences.outgoing_error_message(row)
    assert smtp_server.messages == []
    # Fixed password: the next attempt goes.
    Account.objects.filter(pk=a.pk).update(smtp_password_secret=seal("right-password"))
    assert outbox.do_send_now(a.user, row)
    assert sending.deliver(row.pk)
    row.refresh_from_db()
    assert row.state == State.SENT
    assert smtp_server.messages[0].authenticated_as == mail_a.name


def test_undo_within_the_delay_sends_nothing(
    dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    a = make_sender(dovecot, smtp_server, dovecot.add_user())
    row = outbox.check_send(a.user, write(a, to="x@example.test"))
    assert row.send_at is not None
    assert row.send_at > timezone.now() + timedelta(seconds=5)  # the default 10 s window
    assert sending.deliver_due(now=timezone.now()) == 0
    assert outbox.do_undo_send(a.user, row)
    row.refresh_from_db()
    assert row.state == State.DRAFT
    assert sending.deliver_due(now=timezone.now() + timedelta(days=1)) == 0
    assert smtp_server.messages == []
    # Once a worker has taken it, undo no longer applies.
    row = outbox.check_send(a.user, row)
    assert row.send_at is not None
    assert sending.deliver(row.pk, now=row.send_at)
    assert not outbox.do_undo_send(a.user, row)
    assert len(smtp_server.messages) == 1


def test_bcc_is_an_envelope_recipient_only_and_idn_is_punycoded(
    dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    a = make_sender(dovecot, smtp_server, dovecot.add_user())
    send_now(write(a, to="Jörg <jörg@bücher.example>", bcc="hidden@example.test"))
    (received,) = smtp_server.messages
    assert sorted(received.rcpt_tos) == ["hidden@example.test", "jörg@xn--bcher-kva.example"]
    assert "SMTPUTF8" in received.mail_options
    msg = parsed(received.data)
    assert msg["Bcc"] is None
    assert b"hidden@example.test" not in received.data


def test_invalid_address_is_refused_before_sending(
    dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    from posta.core.errors import PostaError

    a = make_sender(dovecot, smtp_server, dovecot.add_user())
    row = write(a, to="not-an-address, ok@example.test")
    with pytest.raises(PostaError) as caught:
        outbox.check_send(a.user, row)
    assert caught.value.code == "invalid_address"
    assert "not-an-address" in str(caught.value)
    row.refresh_from_db()
    assert row.state == State.DRAFT
    with pytest.raises(PostaError):
        outbox.check_save_draft(
            a.user, row, outbox.Draft(account_id=a.pk, to="ok@example.test",
                                      subject="Hi\r\nBcc: evil@example.test"),
        )


def test_attachment_over_the_limit_is_refused(
    dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    from posta.core.errors import PostaError

    a = make_sender(dovecot, smtp_server, dovecot.add_user())
    company = CompanySettings.load()
    company.max_attachment_mb = 1
    company.save()
    row = write(a, to="x@example.test")
    outbox.check_add_attachment(
        a.user, row, filename="small.pdf", content_type="application/pdf", data=b"%PDF" * 1000
    )
    with pytest.raises(PostaError) as caught:
        outbox.check_add_attachment(
            a.user, row, filename="big.bin", content_type="application/octet-stream",
            data=b"x" * (1024 * 1024),
        )
    assert caught.value.code == "attachments_too_large"
    assert "1 MB" in str(caught.value)
    done = send_now(row)
    msg = parsed(smtp_server.messages[0].data)
    assert [p.get_filename() for p in msg.iter_attachments()] == ["small.pdf"]
    assert done.state == State.SENT


def test_forward_keeps_attachments_and_marks_forwarded(
    dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    mail_b = dovecot.add_user()
    b = make_sender(dovecot, smtp_server, mail_b)
    original = EmailMessage()
    original["From"] = "Carla <carla@example.test>"
    original["To"] = mail_b.address
    original["Subject"] = "Contract"
    original["Message-ID"] = "<contract-1@example.test>"
    original["Date"] = "Mon, 02 Mar 2026 10:00:00 +0100"
    original.set_content("See attached.\n")
    original.add_attachment(b"%PDF-1.4 contract", maintype="application", subtype="pdf",
                            filename="contract.pdf")
    dovecot.deliver(mail_b, original.as_bytes())
    sync_account_once(b.pk)
    message = Message.objects.get(user=b.user, message_id="contract-1@example.test")
    if message.body_state != Message.BodyState.STORED:
        pytest.skip("the sync did not store the body")

    fwd = replies.do_start_forward(b.user, message)
    assert fwd.subject == "Fwd: Contract"
    outbox.check_save_draft(
        b.user, fwd, outbox.Draft(account_id=b.pk, to="eve@example.test", subject=fwd.subject,
                                  body_html="<p>FYI</p>"),
    )
    send_now(fwd)
    msg = parsed(smtp_server.messages[0].data)
    (att,) = list(msg.iter_attachments())
    assert att.get_filename() == "contract.pdf"
    assert att.get_content() == b"%PDF-1.4 contract"
    assert "See attached." in str(msg.get_body(preferencelist=("plain",)).get_content())  # type: ignore[union-attr]
    (uid,) = dovecot.uids(mail_b, "INBOX")
    assert b"$Forwarded" in server_flags(dovecot, mail_b, "INBOX", uid)
    sent_folder = Folder.objects.get(account=b, role="sent")
    assert sent_folder is not None


def test_an_undo_delay_of_zero_sends_at_once(
    dovecot: DovecotServer, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    WAKES.clear()
    a = make_sender(dovecot, smtp_server, dovecot.add_user())
    User.objects.filter(pk=a.user_id).update(undo_send_seconds=0)
    user = User.objects.get(pk=a.user_id)
    row = write(a, to="x@example.test")
    before = timezone.now()
    row = outbox.check_send(user, row)
    assert row.state == State.QUEUED
    assert row.send_at is not None and row.send_at <= timezone.now()
    # The worker is woken now, not at the end of a window.
    assert WAKES == [(row.pk, None)]
    # Undo has nothing to undo once a worker passes by, and one passes by at once.
    assert sending.deliver_due(now=timezone.now()) == 1
    row.refresh_from_db()
    assert row.state == State.SENT
    assert row.sent_at is not None and row.sent_at >= before
    assert len(smtp_server.messages) == 1
    assert not outbox.do_undo_send(user, row)

    # The user's own delay is honoured too: 30 s, nothing leaves before then.
    User.objects.filter(pk=a.user_id).update(undo_send_seconds=30)
    user = User.objects.get(pk=a.user_id)
    later = outbox.check_send(user, write(a, to="y@example.test"))
    assert later.send_at is not None
    assert later.send_at >= timezone.now() + timedelta(seconds=25)
    assert WAKES[-1] == (later.pk, later.send_at)
    assert sending.deliver_due(now=later.send_at - timedelta(seconds=1)) == 0
    assert len(smtp_server.messages) == 1
