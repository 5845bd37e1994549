"""Changes made on the server by another client arrive; UIDVALIDITY resets keep
the user's rows; hostile messages never stop a folder."""

from __future__ import annotations

from typing import Any

import pytest

from posta.accounts.models import Folder
from posta.mail.models import Location, Message
from posta.sync.account_pass import sync_account_once
from tests.integration.test_sync_checker import assert_mirrored, make_account, message
from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = pytest.mark.django_db(transaction=True)


def test_flags_expunges_new_mail_and_renames_arrive(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    account = make_account(dovecot, mail_user, settings)
    dovecot.create_folder(mail_user, "Work")
    for i in range(6):
        dovecot.deliver(mail_user, message(f"m{i}"))
    dovecot.deliver(mail_user, message("in work"), folder="Work")
    sync_account_once(account.pk)
    assert_mirrored(dovecot, mail_user, account)

    uids = dovecot.uids(mail_user, "INBOX")
    dovecot.set_flags(mail_user, "INBOX", uids[0], "\\Seen \\Flagged")
    dovecot.set_flags(mail_user, "INBOX", uids[1], "$Label1")
    dovecot.expunge(mail_user, "INBOX", uids[2])
    dovecot.deliver(mail_user, message("new one"))
    work = Folder.objects.get(account=account, name="Work")
    work_location = Location.objects.get(folder=work)
    dovecot.rename_folder(mail_user, "Work", "Lavoro")

    sync_account_once(account.pk)
    assert_mirrored(dovecot, mail_user, account)
    assert Location.objects.get(folder__account=account, uid=uids[0], role="inbox").flagged
    # The renamed folder kept its row and its copy.
    work.refresh_from_db()
    assert work.name == "Lavoro"
    assert Location.objects.filter(pk=work_location.pk, folder=work).exists()
    assert Message.objects.filter(user=account.user, subject="new one").exists()

    dovecot.set_flags(mail_user, "INBOX", uids[0], "\\Flagged", add=False)
    dovecot.delete_folder(mail_user, "Lavoro")
    sync_account_once(account.pk)
    assert_mirrored(dovecot, mail_user, account)
    assert not Folder.objects.filter(pk=work.pk).exists()


def test_uidvalidity_reset_keeps_rows_and_flags_without_duplicates(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    account = make_account(dovecot, mail_user, settings)
    dovecot.create_folder(mail_user, "Box")
    for i in range(5):
        dovecot.deliver(mail_user, message(f"b{i}"), folder="Box", flags="\\Seen")
    dovecot.deliver(mail_user, message("no id", msgid=False), folder="Box", flags="\\Flagged")
    sync_account_once(account.pk)
    box = Folder.objects.get(account=account, name="Box")
    before = dict(Location.objects.filter(folder=box).values_list("message_id", "id"))
    messages_before = Message.objects.filter(user=account.user).count()

    old = box.uidvalidity
    dovecot.reset_uidvalidity(mail_user, "Box")
    dovecot.deliver(mail_user, message("after reset"), folder="Box")
    sync_account_once(account.pk)

    assert_mirrored(dovecot, mail_user, account)
    box.refresh_from_db()
    assert box.uidvalidity != old
    after = dict(Location.objects.filter(folder=box).values_list("message_id", "id"))
    # Same Location rows (links on them survive), same Messages, one new.
    for message_id, location_id in before.items():
        assert after[message_id] == location_id
    assert Message.objects.filter(user=account.user).count() == messages_before + 1
    assert Location.objects.get(folder=box, message__subject="no id").flagged


HOSTILE = [
    # Broken MIME: a boundary that never comes, a part with a bogus transfer encoding.
    b"From: a@x.test\r\nSubject: broken mime\r\nMessage-ID: <bm@x>\r\n"
    b'Content-Type: multipart/mixed; boundary="nope"\r\n\r\n--other\r\n'
    b"Content-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!\r\n",
    # No Message-ID, no Date.
    b"From: b@x.test\r\nSubject: no id no date\r\n\r\nbody\r\n",
    # A date no parser can read, and one in year 0.
    b"From: c@x.test\r\nSubject: bad date\r\nDate: yesterday at noon\r\n"
    b"Message-ID: <bd@x>\r\n\r\nx\r\n",
    b"From: c@x.test\r\nSubject: year zero\r\nDate: Mon, 1 Jan 0000 00:00:00 +0000\r\n\r\nx\r\n",
    # Raw 8-bit headers in an undeclared charset.
    b"From: \xc9lodie <e@x.test>\r\nSubject: caf\xe9 \xe0 la cr\xe8me\r\nMessage-ID: <8bit@x>\r\n"
    b"Content-Type: text/plain\r\n\r\nd\xe9j\xe0 vu\r\n",
    # A huge header: 3,000 references and a 20 KB subject.
    b"From: d@x.test\r\nSubject: "
    + b"long " * 4000
    + b"\r\nMessage-ID: <huge@x>\r\nReferences: "
    + b"\r\n ".join(b"<r%d@x>" % i for i in range(3000))
    + b"\r\n\r\nbody\r\n",
    # Nested message/rfc822 twice over.
    b"From: e@x.test\r\nSubject: nested\r\nMessage-ID: <nest@x>\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\n'
    b"outer\r\n--b1\r\nContent-Type: message/rfc822\r\n\r\nFrom: f@x.test\r\nSubject: inner\r\n"
    b'Content-Type: multipart/mixed; boundary="b2"\r\n\r\n'
    b"--b2\r\nContent-Type: message/rfc822\r\n\r\n"
    b"From: g@x.test\r\nSubject: innermost\r\n\r\ndeep\r\n--b2--\r\n--b1--\r\n",
    # A sender address with no address at all, and garbage bytes in From.
    b"From: \xff\xfe<<>>\r\nTo: ;;;\r\nSubject: =?bogus?Q?x?=\r\n\r\nhi\r\n",
]


def test_hostile_messages_sync_without_stopping_the_folder(
    dovecot: DovecotServer, mail_user: MailUser, settings: Any
) -> None:
    account = make_account(dovecot, mail_user, settings)
    dovecot.create_folder(mail_user, "Hostile")
    for raw in HOSTILE:
        dovecot.deliver(mail_user, raw, folder="Hostile")
    dovecot.deliver(mail_user, message("after the hostile ones"), folder="Hostile")
    sync_account_once(account.pk)
    assert_mirrored(dovecot, mail_user, account)
    stored = Message.objects.filter(user=account.user)
    assert stored.count() == len(HOSTILE) + 1
    assert not stored.exclude(body_state=Message.BodyState.STORED).exists()
    assert stored.get(message_id="8bit@x").snippet
    huge = stored.get(message_id="huge@x")
    assert len(huge.references) <= 100
    assert stored.get(message_id="bm@x").defects
