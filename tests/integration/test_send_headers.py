"""No header injection, end to end: what the real SMTP server (aiosmtpd) receives
holds exactly the header fields Posta meant to write.

The hostile values are typed by the sender or come from a received message
(subject, Message-IDs, attachment names) that is answered and forwarded.
"""

from __future__ import annotations

import base64
import re
from email.message import EmailMessage

import pytest

from posta.core.errors import PostaError
from posta.mail import blobs, outbox, replies
from posta.mail.models import Message, OutgoingMessage
from posta.mailproto.mime.headers import parse_envelope
from posta.sync.account_pass import sync_account_once
from tests.integration.test_send import make_sender, quiet_queue, send_now, write
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp import SmtpServer

pytestmark = pytest.mark.django_db(transaction=True)
__all__ = ["quiet_queue"]  # the autouse fixture, imported so that it applies here

State = OutgoingMessage.State


def q_word(text: str) -> str:
    data = "".join(
        ch if ch.isalnum() and ch.isascii() else "".join(f"={b:02X}" for b in ch.encode())
        for ch in text
    )
    return f"=?utf-8?q?{data}?="


def b_word(text: str) -> str:
    return f"=?utf-8?b?{base64.b64encode(text.encode()).decode()}?="


def header_blocks(data: bytes) -> list[list[str]]:
    """The field names (lower-cased) of every header block in a message: the top
    one and each MIME part's, read from the bytes as a receiver splits lines."""
    blocks = [data.split(b"\r\n\r\n", 1)[0]]
    for boundary in re.findall(rb'boundary="([^"]+)"', data):
        for piece in data.split(b"\r\n--" + boundary + b"\r\n")[1:]:
            blocks.append(piece.split(b"\r\n\r\n", 1)[0])
    names = []
    for block in blocks:
        lines = re.split(rb"\r\n|\r|\n", block)
        names.append([
            m.group(1).decode().lower()
            for line in lines
            if (m := re.match(rb"([!-9;-~]+):", line))
        ])
    return names


def test_typed_values_that_look_encoded_arrive_as_typed(
    dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    account = make_sender(dovecot, smtp_server, dovecot.add_user(), first_name="Anna")
    typed = "=?utf-8?q?caf=C3=A9?="
    row = write(
        account, to=f'"{typed}" <bob@example.test>', cc=f'"{b_word("Hi")}" <c@example.test>',
        subject=f"Re: {typed} {b_word('Hi')}",
    )
    outbox.check_add_attachment(
        account.user, row, filename=f"{typed}.pdf", content_type="application/pdf",
        data=b"%PDF",
    )
    assert send_now(row).state == State.SENT

    (received,) = smtp_server.messages
    top, *parts = header_blocks(received.data)
    assert top == [
        "from", "to", "cc", "subject", "date", "message-id", "mime-version", "content-type",
    ]
    assert all("x-injected" not in block for block in parts)
    msg = received.message()
    assert msg["Subject"] == f"Re: {typed} {b_word('Hi')}"
    assert msg["To"].addresses[0].display_name == typed
    assert msg["Cc"].addresses[0].display_name == b_word("Hi")
    assert [p.get_filename() for p in msg.iter_attachments()] == [f"{typed}.pdf"]
    envelope = parse_envelope(received.data)
    assert envelope.subject == f"Re: {typed} {b_word('Hi')}"


@pytest.mark.parametrize("encode", [q_word, b_word], ids=["q", "b"])
@pytest.mark.parametrize("where", ["subject", "to", "cc", "bcc", "attachment"])
def test_encoded_line_breaks_are_refused_and_nothing_is_sent(
    dovecot: DovecotServer, smtp_server: SmtpServer, where: str, encode: object
) -> None:
    assert callable(encode)
    account = make_sender(dovecot, smtp_server, dovecot.add_user())
    hostile = encode("Hi\r\nX-Injected: 1")
    row = write(account, to="bob@example.test")
    with pytest.raises(PostaError) as caught:
        if where == "subject":
            row = write(account, to="bob@example.test", subject=hostile)
        elif where == "attachment":
            outbox.check_add_attachment(
                account.user, row, filename=f"{hostile}.pdf", content_type="application/pdf",
                data=b"%PDF",
            )
        else:
            fields = {"to": "bob@example.test", where: f'"{hostile}" <carla@example.test>'}
            row = write(account, **fields)
            send_now(row)
    assert caught.value.code == "header_newline"
    assert caught.value.field == ("attachments" if where == "attachment" else where)
    assert OutgoingMessage.objects.get(pk=row.pk).state == State.DRAFT
    assert smtp_server.messages == []


def test_hostile_received_mail_answered_and_forwarded_injects_nothing(
    dovecot: DovecotServer, smtp_server: SmtpServer
) -> None:
    mail_b = dovecot.add_user()
    b = make_sender(dovecot, smtp_server, mail_b)
    hostile = q_word("Offer\r\nX-Injected: 1")
    original = EmailMessage()
    original["From"] = "Carla <carla@example.test>"
    original["To"] = mail_b.address
    original["Subject"] = "SUBJECT"  # replaced below: the package would decode it
    original["Message-ID"] = "<offer-7@example.test>"
    original["Date"] = "Mon, 02 Mar 2026 10:00:00 +0100"
    original.set_content("Here is our offer.\n")
    original.add_attachment(b"%PDF", maintype="application", subtype="pdf", filename="x.pdf")
    raw = original.as_bytes()
    # Headers the email package would not write as given: an encoded break in the
    # subject, in the attachment's name and in an id of References.
    raw = raw.replace(b"Subject: SUBJECT", b"Subject: " + hostile.encode())
    raw = raw.replace(b'filename="x.pdf"', b'filename="' + q_word("a\r\nX-Injected: 3").encode()
                      + b'.pdf"')
    raw = raw.replace(
        b"Message-ID: <offer-7@example.test>",
        b"Message-ID: <offer-7@example.test>\nReferences: <root@example.test> <"
        + q_word("r\r\nX-Injected: 2").encode() + b"@evil.test>",
    )
    dovecot.deliver(mail_b, raw)
    sync_account_once(b.pk)
    message = Message.objects.get(user=b.user, message_id="offer-7@example.test")

    reply = replies.do_start_reply(b.user, message)
    forward = replies.do_start_forward(b.user, message)
    attached = replies.do_start_forward(b.user, message, as_attachment=True)
    for row in (reply, forward, attached):
        outbox.check_save_draft(
            b.user, row,
            outbox.Draft(account_id=b.pk, to="carla@example.test", subject=row.subject,
                         body_html="<p>Thanks</p>"),
        )
        assert send_now(row).state == State.SENT

    answered, forwarded, as_attachment = smtp_server.messages
    for received in (answered, forwarded, as_attachment):
        assert all("x-injected" not in block for block in header_blocks(received.data))
        assert b"\nX-Injected" not in received.data.split(b"\r\n\r\n", 1)[0]
    top = header_blocks(answered.data)[0]
    assert top == [
        "from", "to", "subject", "date", "message-id", "in-reply-to", "references",
        "mime-version", "content-type",
    ]
    msg = answered.message()
    # The sync stored the decoded subject without its line break; the reply
    # carries it as text of its one Subject field.
    assert message.subject.startswith("Offer") and "\n" not in message.subject
    assert msg["Subject"] == f"Re: {message.subject}"
    # The id that could not be written is left out; the thread keeps the others.
    assert msg["References"] == "<root@example.test> <offer-7@example.test>"
    (attachment,) = forwarded.message().iter_attachments()
    assert "\n" not in (attachment.get_filename() or "")
    # Forwarded as an attachment: the original's bytes, never decoded and rewritten.
    stored = re.sub(rb"\r\n|\r|\n", b"\r\n", blobs.get(message.blob_key))
    assert stored in as_attachment.data
    (enclosed,) = as_attachment.message().iter_attachments()
    assert enclosed.get_content_type() == "message/rfc822"
