"""Drafts on the server (Dovecot): autosave replaces the copy in Drafts, a kill
leaves at most one extra copy that the next run removes, sending or cancelling
removes it, and a draft opened from Drafts continues editing.

The worker's own code (posta.delivery.drafts) is run by the tests where the queue
would run it; `faults.arm` stands for a kill at a named point.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from posta.accounts.models import Account, Folder
from posta.core import faults
from posta.core.crypto import seal
from posta.delivery import drafts, followups
from posta.mail import outbox, outbox_models, replies
from posta.mail.models import Location, Message, OutgoingMessage
from posta.sync.account_pass import sync_account_once
from posta.users.models import User
from tests.integration.editor_page import open_editor
from tests.integration.test_probe import closed_port
from tests.integration.test_send import make_sender, parsed, send_now, write
from tests.servers.dovecot import DovecotServer, MailUser
from tests.servers.smtp import SmtpServer
from tests.wakeups import recorded_wakeups

pytestmark = pytest.mark.django_db(transaction=True)

State = OutgoingMessage.State
WOKEN: list[int] = []


@pytest.fixture(autouse=True)
def quiet_queue() -> Iterator[None]:
    WOKEN.clear()
    with recorded_wakeups(drafts=WOKEN):
        yield


def save(row: OutgoingMessage, **fields: Any) -> OutgoingMessage:
    """One autosave, as the editor posts it."""
    values = {"account_id": row.account_id, "to": "bruno@example.test", "subject": "Draft",
              "body_html": "<p>draft</p>"}
    values.update(fields)
    return outbox.check_save_draft(row.user, row, outbox.Draft(**values))


def copies(dovecot: DovecotServer, user: MailUser, folder: str = "Drafts") -> list[bytes]:
    """Every message in `folder` on the server, as raw bytes."""
    client = dovecot.imap(user)
    try:
        client.select(folder)
        _typ, data = client.uid("SEARCH", "ALL")
        out = []
        for uid in data[0].split() if data and data[0] else []:
            _typ, fetched = client.uid("FETCH", uid, "(FLAGS BODY.PEEK[])")
            item = fetched[0]
            assert isinstance(item, tuple)
            flags = item[0]
            assert b"\\Draft" in flags and b"\\Seen" in flags
            out.append(item[1])
        return out
    finally:
        client.logout()


def logged_in(user: User) -> Client:
    """A web client of `user`, past the first-run setup (an administrator exists)."""
    if not User.objects.filter(is_superuser=True).exists():
        User.objects.create_superuser("admin", password="pw-unused-admin-123")
    client = Client()
    client.force_login(user)
    return client


def body_text(raw: bytes) -> str:
    msg = parsed(raw)
    part = msg.get_body(preferencelist=("html", "plain"))
    assert part is not None
    return str(part.get_content())


# ---------------------------------------------------------------------------- tests


def test_many_saves_leave_one_draft_with_the_last_content_and_sending_removes_it(
    dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    mail_a = dovecot.add_user()
    a = make_sender(dovecot, smtp_server, mail_a)
    row = outbox.do_new_draft(a.user, account=a)
    for i in range(6):
        row = save(row, subject=f"Offer v{i}", body_html=f"<p>text {i}</p>",
                   bcc="hidden@example.test")
        if i % 2:  # the worker runs now and then; saves in between are never appended
            assert drafts.store_draft(row.pk)
    assert WOKEN == [row.pk] * 6
    # Nothing newer than the copy: a run does nothing.
    assert not drafts.store_draft(row.pk)

    (raw,) = copies(dovecot, mail_a)
    msg = parsed(raw)
    assert msg["Subject"] == "Offer v5"
    assert "text 5" in body_text(raw)
    assert msg[outbox_models.DRAFT_ID_HEADER] == row.draft_key
    assert msg[outbox_models.DRAFT_REVISION_HEADER] == "6"
    assert msg["Bcc"] == "hidden@example.test"
    row.refresh_from_db()
    assert row.draft_saved_revision == row.draft_revision == 6
    assert row.draft_folder is not None and row.draft_folder.role == Folder.Role.DRAFTS
    assert [row.draft_uid] == dovecot.uids(mail_a, "Drafts")

    sent = send_now(row)
    assert sent.state == State.SENT
    assert dovecot.uids(mail_a, "Drafts") == []
    assert sent.draft_cleanup == OutgoingMessage.FollowUp.DONE
    (delivered,) = smtp_server.messages
    assert outbox_models.DRAFT_ID_HEADER.encode() not in delivered.data
    assert b"hidden@example.test" not in delivered.data
    assert len(dovecot.uids(mail_a, "Sent")) == 1


@pytest.mark.parametrize("kill_at", [drafts.KILL_AFTER_APPEND, drafts.KILL_AFTER_REMOVE])
def test_a_kill_leaves_at_most_one_extra_copy_which_the_next_run_removes(
    dovecot: DovecotServer, smtp_server: SmtpServer, kill_at: str
) -> None:
    mail_a = dovecot.add_user()
    a = make_sender(dovecot, smtp_server, mail_a)
    row = save(outbox.do_new_draft(a.user, account=a), subject="first")
    assert drafts.store_draft(row.pk)
    row = save(row, subject="second")
    faults.arm(kill_at)
    with pytest.raises(faults.SimulatedCrash):
        drafts.store_draft(row.pk)
    left = copies(dovecot, mail_a)
    assert 1 <= len(left) <= 2
    assert parsed(left[-1])["Subject"] == "second"
    row.refresh_from_db()
    assert row.draft_saved_revision < row.draft_revision  # the sweep will run it again
    assert row.pk in drafts.drafts_due(now=row.updated_at + drafts.DEBOUNCE)

    # The sweep's run adopts the copy the dead run appended rather than appending again.
    assert drafts.store_draft(row.pk)
    (raw,) = copies(dovecot, mail_a)
    assert parsed(raw)["Subject"] == "second"
    row.refresh_from_db()
    assert row.draft_saved_revision == row.draft_revision
    assert [row.draft_uid] == dovecot.uids(mail_a, "Drafts")


def test_a_kill_then_the_next_save_removes_every_older_copy(
    dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    mail_a = dovecot.add_user()
    a = make_sender(dovecot, smtp_server, mail_a)
    row = save(outbox.do_new_draft(a.user, account=a), subject="one")
    assert drafts.store_draft(row.pk)
    row = save(row, subject="two")
    faults.arm(drafts.KILL_AFTER_APPEND)
    with pytest.raises(faults.SimulatedCrash):
        drafts.store_draft(row.pk)
    assert len(copies(dovecot, mail_a)) == 2
    row = save(row, subject="three")
    assert drafts.store_draft(row.pk)
    (raw,) = copies(dovecot, mail_a)
    assert parsed(raw)["Subject"] == "three"


def test_changing_the_from_moves_the_draft_and_cancelling_removes_it(
    dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    mail_a, mail_b = dovecot.add_user(), dovecot.add_user()
    a = make_sender(dovecot, smtp_server, mail_a)
    for name in ("Sent", "Drafts"):
        dovecot.create_folder(mail_b, name)
    second = Account.objects.create(
        user=a.user, username=mail_b.name, email=mail_b.address,
        password_secret=seal(mail_b.password), description="second",
        imap_host=a.imap_host, imap_port=a.imap_port, imap_security="none",
        smtp_host=a.smtp_host, smtp_port=a.smtp_port, smtp_security="none",
    )
    sync_account_once(second.pk)
    row = save(outbox.do_new_draft(a.user, account=a), subject="from A")
    assert drafts.store_draft(row.pk)
    assert len(copies(dovecot, mail_a)) == 1

    row = save(row, account_id=second.pk, subject="from B")
    assert drafts.store_draft(row.pk)
    assert copies(dovecot, mail_a) == []
    (raw,) = copies(dovecot, mail_b)
    assert parsed(raw)["Subject"] == "from B"

    assert outbox.do_cancel(a.user, row)
    assert WOKEN[-1] == row.pk
    assert drafts.store_draft(row.pk)
    assert copies(dovecot, mail_b) == []
    row.refresh_from_db()
    assert row.draft_uid is None
    assert row.pk not in drafts.drafts_due()


def another_clients_draft(to: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "me@example.test"
    msg["To"] = to
    msg["Cc"] = "Carla <carla@example.test>"
    msg["Bcc"] = "secret@example.test"
    msg["Subject"] = "Written elsewhere"
    msg["Message-ID"] = "<elsewhere-1@example.test>"
    msg["Date"] = "Mon, 02 Mar 2026 10:00:00 +0100"
    msg.set_content("plain version\n")
    msg.add_alternative("<p>Half <b>written</b></p>", subtype="html")
    msg.add_attachment(b"%PDF-1.4 plan", maintype="application", subtype="pdf",
                       filename="plan.pdf")
    return msg


def synced(account: Account, **lookup: Any) -> Message:
    sync_account_once(account.pk)
    message = Message.objects.get(user=account.user, **lookup)
    assert message.body_state == Message.BodyState.STORED
    return message


def test_a_draft_from_another_client_opens_in_the_editor_and_its_save_replaces_it(
    dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    mail_a = dovecot.add_user()
    a = make_sender(dovecot, smtp_server, mail_a)
    dovecot.deliver(mail_a, another_clients_draft("Bruno <bruno@example.test>"),
                    folder="Drafts", flags="\\Draft")
    message = synced(a, message_id="elsewhere-1@example.test")
    (foreign_uid,) = dovecot.uids(mail_a, "Drafts")

    browser = logged_in(a.user)
    page = open_editor(browser, f"/compose/draft/{message.pk}/")
    assert not OutgoingMessage.objects.exists()  # opening it stores nothing
    assert page.fields["subject"] == "Written elsewhere"
    # The first autosave stores the draft as the page showed it.
    saved = browser.post(page.urls["autosave"], page.fields)
    assert saved.status_code == 200, saved.content
    row = OutgoingMessage.objects.get(user=a.user, subject="Written elsewhere")
    assert saved.json()["urls"]["edit"] == f"/compose/{row.pk}/"
    assert row.state == State.DRAFT
    assert row.to == [["Bruno", "bruno@example.test"]]
    assert row.cc == [["Carla", "carla@example.test"]]
    assert row.bcc == [["", "secret@example.test"]]
    # The page holds the body as the other client wrote it (the editor in the
    # browser posts its own markup for it; the raw post here keeps the text).
    assert "Half <b>written</b>" in page.fields["body"]
    assert "Half" in row.body_html and "written" in row.body_html
    assert [att.filename for att in row.attachments.all()] == ["plan.pdf"]
    assert row.draft_uid == foreign_uid
    # Opening it again continues the same draft.
    assert browser.get(f"/compose/draft/{message.pk}/")["Location"] == f"/compose/{row.pk}/"
    assert OutgoingMessage.objects.filter(user=a.user).count() == 1

    row = save(row, to="bruno@example.test", subject="Written elsewhere",
               body_html="<p>Now finished</p>")
    assert drafts.store_draft(row.pk)
    (raw,) = copies(dovecot, mail_a)
    msg = parsed(raw)
    assert msg[outbox_models.DRAFT_ID_HEADER] == row.draft_key
    assert [p.get_filename() for p in msg.iter_attachments()] == ["plan.pdf"]
    assert foreign_uid not in dovecot.uids(mail_a, "Drafts")

    # Our own copy, once synced, opens the same draft rather than a new one.
    own = synced(a, message_id=str(msg["Message-ID"]).strip("<>"))
    assert browser.get(f"/compose/draft/{own.pk}/")["Location"] == f"/compose/{row.pk}/"
    assert OutgoingMessage.objects.filter(user=a.user).count() == 1


def test_opening_a_draft_is_scoped_to_its_owner(
    dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    mail_a = dovecot.add_user()
    a = make_sender(dovecot, smtp_server, mail_a)
    dovecot.deliver(mail_a, another_clients_draft("bruno@example.test"), folder="Drafts",
                    flags="\\Draft")
    message = synced(a, message_id="elsewhere-1@example.test")
    intruder = User.objects.create_user(username="intruder", password="pw-unused-123")
    browser = logged_in(intruder)
    assert browser.get(f"/compose/draft/{message.pk}/").status_code == 404
    assert browser.get(f"/compose/again/{message.pk}/").status_code == 404
    assert not OutgoingMessage.objects.exists()


def test_send_again_from_sent(dovecot: DovecotServer, smtp_server: SmtpServer) -> None:
    mail_a = dovecot.add_user()
    a = make_sender(dovecot, smtp_server, mail_a)
    first = write(a, to="Bruno <bruno@example.test>", subject="Minutes",
                  body="<p>The minutes</p>", bcc="boss@example.test")
    outbox.check_add_attachment(a.user, first, filename="minutes.pdf",
                                content_type="application/pdf", data=b"%PDF-1.4 minutes")
    first = send_now(first)
    own = Message.objects.get(user=a.user, message_id=first.message_id)

    browser = logged_in(a.user)
    page = open_editor(browser, f"/compose/again/{own.pk}/")
    assert OutgoingMessage.objects.filter(user=a.user).count() == 1
    response = browser.post(page.urls["edit"], {**page.fields, "action": "save"})
    again = OutgoingMessage.objects.exclude(pk=first.pk).get(user=a.user)
    assert response["Location"] == f"/compose/{again.pk}/"
    assert again.state == State.DRAFT
    assert (again.to, again.bcc, again.subject) == (first.to, first.bcc, "Minutes")
    assert again.body_html == "<p>The minutes</p>"
    assert again.message_id == ""  # its own Message-ID when it is queued
    assert [att.filename for att in again.attachments.all()] == ["minutes.pdf"]

    # A message another client sent: its stored copy is the source.
    other = EmailMessage()
    other["From"] = mail_a.address
    other["To"] = "Dario <dario@example.test>"
    other["Subject"] = "Sent elsewhere"
    other["Message-ID"] = "<sent-elsewhere@example.test>"
    other["Date"] = "Mon, 02 Mar 2026 10:00:00 +0100"
    other.set_content("Sent from the phone\n")
    dovecot.deliver(mail_a, other, folder="Sent", flags="\\Seen")
    elsewhere = synced(a, message_id="sent-elsewhere@example.test")
    copy = replies.do_send_again(a.user, elsewhere)
    assert copy.account == a
    assert copy.to == [["Dario", "dario@example.test"]]
    assert copy.plain_text and "Sent from the phone" in copy.body_text
    assert copy.draft_uid is None  # a new message: the Sent copy is not replaced
    assert Location.objects.filter(message=elsewhere, folder__role="sent").exists()


def test_a_draft_not_downloaded_yet_says_so(
    dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    from posta.core.errors import PostaError

    mail_a = dovecot.add_user()
    a = make_sender(dovecot, smtp_server, mail_a)
    dovecot.deliver(mail_a, another_clients_draft("bruno@example.test"), folder="Drafts",
                    flags="\\Draft")
    message = synced(a, message_id="elsewhere-1@example.test")
    Message.objects.filter(pk=message.pk).update(blob_key="", body_state="pending")
    message.refresh_from_db()
    with pytest.raises(PostaError) as caught:
        replies.do_open_draft(a.user, message)
    assert caught.value.code == "not_downloaded"


def test_the_draft_worker_leaves_a_sent_message_alone_and_removes_late_copies(
    dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    """A copy the row never recorded (a save that landed after the send began) is
    found by its draft id: the draft worker appends nothing for a sent message, and
    the send's clean-up removes the copy."""
    mail_a = dovecot.add_user()
    a = make_sender(dovecot, smtp_server, mail_a)
    row = save(outbox.do_new_draft(a.user, account=a), subject="late")
    sent = send_now(row)
    assert sent.state == State.SENT
    assert dovecot.uids(mail_a, "Drafts") == []
    # The row says "draft" to a run that read it before the send.
    OutgoingMessage.objects.filter(pk=row.pk).update(state=State.DRAFT)
    folder = drafts.drafts_folder(a)
    assert folder is not None
    stale = OutgoingMessage.objects.get(pk=row.pk)
    raw = drafts.draft_bytes(stale, revision=stale.draft_revision, date=stale.updated_at)
    OutgoingMessage.objects.filter(pk=row.pk).update(state=State.SENT)
    pool = drafts.Connections()
    try:
        client = pool.get(a)
        drafts._append(client, folder, raw, stale.draft_key)
        assert len(dovecot.uids(mail_a, "Drafts")) == 1
        assert not drafts.store_draft(row.pk)  # sent: nothing appended
        OutgoingMessage.objects.filter(pk=row.pk).update(
            draft_cleanup=OutgoingMessage.FollowUp.PENDING
        )
        followups.run_follow_ups(row.pk)
    finally:
        pool.close()
    assert dovecot.uids(mail_a, "Drafts") == []
    assert email.message_from_bytes(raw, policy=email.policy.default)["Subject"] == "late"


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", [drafts.KILL_AFTER_APPEND, drafts.KILL_AFTER_REMOVE])
def test_worker_process_killed_while_saving_a_draft(
    dovecot: DovecotServer, smtp_server: SmtpServer, kill_at: str
) -> None:
    """SIGKILL of a real `posta delivery_worker` at each point of a draft save."""
    from tests.integration.test_scheduled_send import start_worker, worker_env

    env = worker_env()
    mail_a = dovecot.add_user()
    a = make_sender(dovecot, smtp_server, mail_a)
    row = save(outbox.do_new_draft(a.user, account=a), subject="v1")
    assert drafts.store_draft(row.pk)
    row = save(row, subject="v2")
    OutgoingMessage.objects.filter(pk=row.pk).update(
        updated_at=row.updated_at - drafts.DEBOUNCE  # due for the sweep at once
    )
    killed = start_worker({**env, "POSTA_KILL_AT": kill_at}, "--once")
    killed.communicate(timeout=60)
    assert killed.returncode == -9
    assert 1 <= len(copies(dovecot, mail_a)) <= 2

    survivor = start_worker(env, "--once")
    output, _err = survivor.communicate(timeout=60)
    assert survivor.returncode == 0, output.decode(errors="replace")
    (raw,) = copies(dovecot, mail_a)
    assert parsed(raw)["Subject"] == "v2"
    row.refresh_from_db()
    assert row.draft_saved_revision == row.draft_revision


def test_a_draft_the_server_refuses_is_not_retried_and_the_editor_says_why(
    dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    mail_a = dovecot.add_user()
    a = make_sender(dovecot, smtp_server, mail_a)
    row = save(outbox.do_new_draft(a.user, account=a), subject="Refused")
    # Another client removed the folder: SELECT and APPEND get NO, for good.
    dovecot.delete_folder(mail_a, "Drafts")
    later = timezone.now() + timedelta(minutes=5)
    assert row.pk in drafts.drafts_due(now=later)
    assert not drafts.store_draft(row.pk)
    row.refresh_from_db()
    assert row.error_code == outbox_models.DRAFT_REFUSED and row.error_detail
    assert row.pk not in drafts.drafts_due(now=later)  # the sweep stops asking
    client = logged_in(a.user)
    page = client.get(f"/compose/{row.pk}/").content.decode()
    assert "The server refused to keep this draft in its Drafts folder" in page
    italian = client.get(f"/compose/{row.pk}/", HTTP_ACCEPT_LANGUAGE="it").content.decode()
    assert "Il server ha rifiutato di conservare questa bozza" in italian

    # The next save asks again; once a copy is stored the words are gone.
    dovecot.create_folder(mail_a, "Drafts")
    row = save(row, subject="Accepted")
    assert row.pk in drafts.drafts_due(now=later)
    assert drafts.store_draft(row.pk)
    row.refresh_from_db()
    assert (row.error_code, row.error_detail) == ("", "")
    (raw,) = copies(dovecot, mail_a)
    assert parsed(raw)["Subject"] == "Accepted"
    assert "refused to keep" not in client.get(f"/compose/{row.pk}/").content.decode()


def test_a_server_out_of_reach_is_still_retried(
    dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    mail_a = dovecot.add_user()
    a = make_sender(dovecot, smtp_server, mail_a)
    row = save(outbox.do_new_draft(a.user, account=a), subject="Later")
    Account.objects.filter(pk=a.pk).update(imap_port=closed_port())
    assert not drafts.store_draft(row.pk)
    row.refresh_from_db()
    assert row.error_code == "" and row.draft_saved_revision < row.draft_revision
    assert row.pk in drafts.drafts_due(now=timezone.now() + timedelta(minutes=5))
