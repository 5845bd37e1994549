"""The paths that store one message at a time (sent, imported, a copy split off)
build the same Message row from the same bytes (posta.mail.envelope_rows)."""

from __future__ import annotations

from email.message import EmailMessage

import pytest
from django.utils import timezone

from posta.mail import blobs
from posta.mail.envelope_rows import message_from_raw
from posta.mail.ingest import do_store_imported, do_store_sent
from posta.mail.models import Message
from posta.users.models import User

pytestmark = pytest.mark.django_db

FIELDS = (
    "message_id", "subject", "from_name", "from_email", "to", "cc", "reply_to", "date",
    "in_reply_to", "references", "size", "snippet", "has_attachments", "body_state",
)


def _raw() -> bytes:
    msg = EmailMessage()
    msg["From"] = "Giulia Bianchi <giulia@example.test>"
    msg["To"] = "Vendite <vendite@example.test>"
    msg["Cc"] = "ufficio@example.test"
    msg["Reply-To"] = "ordini@example.test"
    msg["Subject"] = "Preventivo luglio"
    msg["Message-ID"] = "<preventivo.7@example.test>"
    msg["In-Reply-To"] = "<richiesta.1@example.test>"
    msg["References"] = "<richiesta.1@example.test>"
    msg["Date"] = "Mon, 02 Mar 2026 10:00:00 +0100"
    msg.set_content("Buongiorno, in allegato il preventivo richiesto.\n")
    msg.add_attachment(b"%PDF-1.4 ", maintype="application", subtype="pdf", filename="p.pdf")
    return msg.as_bytes()


def _fields(message: Message) -> dict[str, object]:
    return {name: getattr(message, name) for name in FIELDS}


def test_sent_and_imported_mail_get_the_same_row() -> None:
    raw = _raw()
    sender = User.objects.create_user(username="sender", password="unused-pw-41")
    importer = User.objects.create_user(username="importer", password="unused-pw-42")
    sent = do_store_sent(user_id=sender.pk, raw=raw, blob_key=blobs.put(raw), now=timezone.now())
    imported, new = do_store_imported(user_id=importer.pk, raw=raw)
    assert sent is not None and new
    assert _fields(Message.objects.get(pk=sent.pk)) == _fields(
        Message.objects.get(pk=imported.pk)
    )
    row = Message.objects.get(pk=sent.pk)
    assert row.reply_to == [["", "ordini@example.test"]]
    assert row.cc == [["", "ufficio@example.test"]]
    assert row.snippet.startswith("Buongiorno, in allegato")
    assert row.has_attachments
    assert (row.message_id, row.in_reply_to) == (
        "preventivo.7@example.test", "richiesta.1@example.test",
    )


def test_a_split_copy_takes_what_its_bytes_lack_from_the_message() -> None:
    user = User.objects.create_user(username="split", password="unused-pw-43")
    like = Message(
        user=user, message_id="orig@example.test", subject="Original", from_name="Ada",
        from_email="ada@example.test", date=timezone.now(),
    )
    bare = b"To: someone@example.test\r\n\r\nno sender, no subject\r\n"
    made = message_from_raw(
        bare, user_id=user.pk, identity="x", blob_key="", date=like.date, like=like
    )
    assert (made.message_id, made.subject, made.from_name, made.from_email, made.date) == (
        "orig@example.test", "Original", "Ada", "ada@example.test", like.date,
    )
    assert made.snippet == "no sender, no subject"
