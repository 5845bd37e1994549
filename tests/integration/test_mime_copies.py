"""Two different messages that agree on every field of the identity (Message-ID,
sender, date, subject) are two messages once their bodies are known; true copies
(another folder, other trace lines) stay one. Through Dovecot, the sync, the body
download, the list and the reader's URLs."""

from __future__ import annotations

import re
from email.message import EmailMessage
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from posta.accounts.models import Account, Folder
from posta.core import faults
from posta.mail import blobs, copies
from posta.mail.models import Location, Message
from posta.sync import bodies
from posta.sync.account_pass import sync_account_once
from tests.integration.test_mail_screen import setup_account
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = pytest.mark.django_db(transaction=True)

_PART_LINK = re.compile(r"/mail/m/\d+/part/([0-9.]+)/")


def twin(text: str, filename: str) -> bytes:
    """A message whose identity fields are always the same; `text` and the
    attached file make its content."""
    msg = EmailMessage()
    msg["From"] = "Newsletter <news@example.test>"
    msg["To"] = "Bob <bob@example.test>"
    msg["Subject"] = "Your monthly report"
    msg["Date"] = "Mon, 02 Mar 2026 10:00:00 +0100"
    msg["Message-ID"] = "<report-2026-03@example.test>"
    msg.set_content(text + "\n")
    msg.add_attachment(
        f"%PDF-1.4 {text}".encode(), maintype="application", subtype="pdf", filename=filename
    )
    return msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def mirror(account: Account) -> None:
    """Sync the account and download every body and every copy to compare."""
    sync_account_once(account.pk)
    for _step in range(5):
        if not bodies.bodies_pending(account):
            return
        sync_account_once(account.pk)
    raise AssertionError("the bodies are still pending")


def listed(client: Client, folder: Folder) -> list[int]:
    """The list's rows, one per copy (conversations off)."""
    url = reverse("mail_folder", args=[folder.pk]) + "?view=messages"
    page = client.get(url).content.decode()
    return [int(i) for i in re.findall(r'<li class="[^"]*" data-id="(\d+)"', page)]


def test_two_different_messages_with_one_identity_are_two(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, client: Client
) -> None:
    account = setup_account(dovecot, mail_user, settings)
    dovecot.deliver(mail_user, twin("January figures", "january.pdf"))
    dovecot.deliver(mail_user, twin("February figures", "february.pdf"), flags="\\Flagged")
    mirror(account)

    messages = list(Message.objects.filter(user=account.user).order_by("id"))
    assert len(messages) == 2
    assert len({m.identity for m in messages}) == 2
    assert all(m.body_state == Message.BodyState.STORED for m in messages)
    assert all(m.thread_id is not None for m in messages)
    assert not Location.objects.filter(content_pending=True).exists()
    by_text: dict[str, Message] = {}
    for msg in messages:
        (loc,) = msg.locations.all()
        text = "January" if "January" in msg.snippet else "February"
        by_text[text] = msg
        # The flags are the copy's own: only February's was flagged on the server.
        assert loc.flagged is (text == "February")
        assert msg.has_attachments
    assert set(by_text) == {"January", "February"}

    client.force_login(account.user)
    inbox = Folder.objects.get(account=account, name="INBOX")
    assert sorted(listed(client, inbox)) == sorted(m.pk for m in messages)
    for text, msg in by_text.items():
        other = "February" if text == "January" else "January"
        frame = client.get(reverse("mail_body", args=[msg.pk])).content.decode()
        assert f"{text} figures" in frame and other not in frame
        reader = client.get(reverse("mail_message", args=[msg.pk]), HTTP_HX_REQUEST="true")
        page = reader.content.decode()
        assert f"{text.lower()}.pdf" in page and f"{other.lower()}.pdf" not in page
        (part,) = set(_PART_LINK.findall(page))
        download = client.get(reverse("mail_part", args=[msg.pk, part]))
        assert download.content == f"%PDF-1.4 {text} figures".encode()
        eml = client.get(reverse("mail_eml", args=[msg.pk])).content
        assert f"{text} figures".encode() in eml and other.encode() not in eml


def test_true_copies_stay_one_message(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any, client: Client
) -> None:
    account = setup_account(dovecot, mail_user, settings)
    raw = twin("March figures", "march.pdf")
    dovecot.deliver(mail_user, raw)  # LMTP: Return-Path, Delivered-To, Received
    relayed = (
        b"Received: from relay.example.test by mx.example.test; Mon, 2 Mar 2026 10:00:05 +0100\r\n"
        b"X-Original-To: bob+reports@example.test\r\n" + raw
    )
    dovecot.deliver(mail_user, relayed)  # the same message along another route
    dovecot.deliver(mail_user, raw.replace(b"\r\n", b"\n"), folder="Archive")
    mirror(account)

    (msg,) = Message.objects.filter(user=account.user)
    assert msg.locations.count() == 3
    assert not Location.objects.filter(content_pending=True).exists()
    client.force_login(account.user)
    inbox = Folder.objects.get(account=account, name="INBOX")
    assert listed(client, inbox) == [msg.pk, msg.pk]  # a folder lists each copy


def test_a_kill_while_splitting_and_a_rerun_give_one_result(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    account = setup_account(dovecot, mail_user, settings)
    dovecot.deliver(mail_user, twin("April figures", "april.pdf"))
    dovecot.deliver(mail_user, twin("May figures", "may.pdf"))
    faults.arm(copies.SPLIT_POINT)
    with pytest.raises(faults.SimulatedCrash):
        mirror(account)  # headers, the first body, then the copy to compare: killed
    # Nothing of the split was kept: one message, its other copy still to compare.
    assert Message.objects.filter(user=account.user).count() == 1
    pending = Location.objects.filter(content_pending=True)
    assert pending.count() == 1

    mirror(account)
    mirror(account)  # and once more: nothing changes
    messages = Message.objects.filter(user=account.user)
    assert messages.count() == 2
    assert sorted(m.locations.count() for m in messages) == [1, 1]
    assert {("April" in m.snippet, "May" in m.snippet) for m in messages} == {
        (True, False),
        (False, True),
    }
    assert not pending.exists()


def test_an_appended_message_that_differs_from_its_twin_is_its_own(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    from posta.mail import services
    from posta.sync import actions

    account = setup_account(dovecot, mail_user, settings)
    dovecot.deliver(mail_user, twin("June figures", "june.pdf"))
    mirror(account)
    (known,) = Message.objects.filter(user=account.user)
    archive = Folder.objects.get(account=account, name="Archive")

    services.do_append(account.user, archive, twin("July figures", "july.pdf"), ["\\Seen"])
    actions.run_account_actions(account.pk)
    mirror(account)

    messages = Message.objects.filter(user=account.user)
    assert messages.count() == 2
    july = messages.exclude(pk=known.pk).get()
    assert b"July figures" in blobs.get(july.blob_key)
    assert list(july.locations.values_list("folder__name", flat=True)) == ["Archive"]
    assert list(known.locations.values_list("folder__name", flat=True)) == ["INBOX"]
    assert not Location.objects.filter(content_pending=True).exists()


def test_an_append_is_not_taken_as_done_for_another_message_with_its_message_id(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    """The target already holds a different message with the same Message-ID: the
    appended one still reaches the server, and the other stays as it was."""
    from posta.mail import services
    from posta.sync import actions

    account = setup_account(dovecot, mail_user, settings)
    dovecot.deliver(mail_user, twin("June figures", "june.pdf"))
    mirror(account)
    (known,) = Message.objects.filter(user=account.user)
    inbox = Folder.objects.get(account=account, name="INBOX")

    services.do_append(account.user, inbox, twin("July figures", "july.pdf"), ["\\Seen"])
    actions.run_account_actions(account.pk)
    mirror(account)

    bodies = sorted(
        b"July figures" in blobs.get(m.blob_key)
        for m in Message.objects.filter(user=account.user)
    )
    assert bodies == [False, True]
    assert Location.objects.filter(folder=inbox).count() == 2
    assert list(known.locations.values_list("folder__name", flat=True)) == ["INBOX"]
