"""The worker's build of an outgoing row: the MIME parts, signature and quote in
place, handed to posta.mailproto.mime.compose (which checks every header field
again). Sending and the draft worker build the same way."""

from __future__ import annotations

import email.message
from datetime import datetime

from posta.mail import blobs
from posta.mail.models import OutgoingAttachment, OutgoingMessage
from posta.mailproto.mime import compose


def sender_mailbox(row: OutgoingMessage) -> compose.Mailbox:
    account = row.account
    if account.user_id == row.user_id:
        name = row.user.get_full_name()
    else:
        name = account.description if account.description != account.email else ""
    mailbox = compose.parse_mailbox(account.email)
    return compose.Mailbox(name=name, address=mailbox.address)


def mailboxes(pairs: list[list[str]]) -> list[compose.Mailbox]:
    out = []
    for name, address in pairs:
        out.append(compose.Mailbox(name=name, address=compose.check_addr_spec(address)))
    return out


def composition_for(row: OutgoingMessage, *, date: datetime) -> compose.Composition:
    """The MIME parts of `row`, with its signature and quote in place."""
    attachments: list[compose.FilePart] = []
    inline: list[compose.FilePart] = []
    forwarded: list[bytes] = []
    forwarded_names: list[str] = []
    for att in OutgoingAttachment.objects.filter(outgoing=row).order_by("id"):
        data = blobs.get(att.blob_key)
        if att.content_type == "message/rfc822":
            forwarded.append(data)
            forwarded_names.append(att.filename)
            continue
        part = compose.FilePart(att.filename, att.content_type, data, att.content_id)
        (inline if att.content_id else attachments).append(part)
    # The plain-text alternative is assembled from its own parts, so that its
    # signature starts with the "-- " line (RFC 3676 §4.3) that readers recognize.
    text = compose.assemble_text(
        row.body_text if row.plain_text else compose.text_from_html(row.body_html),
        signature=compose.text_from_html(row.signature_html) if row.signature_html else "",
        quote=row.quote_text or compose.text_from_html(row.quote_html),
    )
    html_body = ""
    if not row.plain_text:
        html_body = compose.assemble_html(
            row.body_html, signature=row.signature_html, quote=row.quote_html
        )
    return compose.Composition(
        sender=sender_mailbox(row),
        to=mailboxes(row.to),
        cc=mailboxes(row.cc),
        subject=row.subject,
        text=text,
        html=html_body,
        message_id=row.message_id,
        date=date,
        in_reply_to=row.in_reply_to,
        references=list(row.references),
        attachments=attachments,
        inline=inline,
        forwarded=forwarded,
        forwarded_names=forwarded_names,
    )


def build_message(row: OutgoingMessage, *, date: datetime) -> email.message.EmailMessage:
    return compose.build(composition_for(row, date=date))
