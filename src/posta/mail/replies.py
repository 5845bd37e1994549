"""Drafts that start from something: a new message, a reply, a forward, a draft
opened from the Drafts folder, "send again" of a sent message.

Opening the editor never writes (a cross-site link must not be able to create
drafts, RFC 9110 §9.2.1: GET is safe). The editor is shown from a `Prepared`
draft: an unsaved `OutgoingMessage` and the attachments it would carry. The
page carries the draft's origin and a fresh draft key; its first POST (autosave,
attach, save, send, schedule) calls `check_start_draft`, which checks the origin
again with the same access functions, and stores the row under that key::

    GET  /compose/reply/7/ ──prepare──> editor page (origin reply:7, key K)
    POST autosave/save/send (origin, K) ──check_start_draft──> row with key K
    POST again with K (a second tab of the request, a double click) ──> same row

The key is unique per user in the database (outbox.OutgoingMessage.Meta), so two
POSTs racing make one row: the loser's INSERT fails and it reads the winner's.
"""

from __future__ import annotations

import email
import email.policy
import logging
import re
from dataclasses import dataclass, field
from email.message import EmailMessage

import nh3
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import escape, linebreaks
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from posta.accounts.models import Account, Folder
from posta.accounts.services import sender_accounts
from posta.core.errors import PostaError, not_found
from posta.mail import blobs, headers_check
from posta.mail.addresses import format_addresses
from posta.mail.models import Location, Message, OutgoingAttachment, OutgoingMessage
from posta.mail.outbox import (
    _safe_filename,
    access_message,
    default_sender,
    user_timezone,
)
from posta.mail.outbox_models import DRAFT_ID_HEADER, new_draft_key
from posta.mailproto.mime import compose
from posta.users.models import User

log = logging.getLogger(__name__)

Kind = OutgoingMessage.Kind


class Origin:
    """Where a draft starts from; the value the editor page carries."""

    NEW = "new"
    REPLY = "reply"
    REPLY_ALL = "reply_all"
    FORWARD = "forward"
    FORWARD_ATTACHED = "forward_attached"
    DRAFT = "draft"  # a message of the Drafts folder, to continue
    AGAIN = "again"  # a sent message, to send once more
    ALL = frozenset({NEW, REPLY, REPLY_ALL, FORWARD, FORWARD_ATTACHED, DRAFT, AGAIN})


# new_draft_key() makes 32 hexadecimal digits; anything else did not come from a page.
_DRAFT_KEY = re.compile(r"[0-9a-f]{32}")


@dataclass
class PendingAttachment:
    """A file the draft will carry once stored: bytes already in the blob store
    (`blob_key`) or taken from the original when the row is made (`data`)."""

    filename: str
    content_type: str
    size: int
    content_id: str = ""
    blob_key: str = ""
    data: bytes | None = None


@dataclass
class Prepared:
    """A draft ready to be written and not stored: `outgoing` is unsaved. When the
    origin already has a draft being written (a draft of ours opened from Drafts),
    `existing` is that row and the editor opens it instead."""

    outgoing: OutgoingMessage
    attachments: list[PendingAttachment] = field(default_factory=list)
    existing: OutgoingMessage | None = None


def _no_account() -> PostaError:
    return PostaError("no_account", _("Add a mail account before writing mail."))


# --------------------------------------------------------------------- preparing


def prepare(
    user: User, origin: str, *, message_id: int | None = None, account: Account | None = None
) -> Prepared:
    """The draft `origin` starts, read-only; PostaError 404 when the source message
    is not the user's, PostaError when nothing can be written (no account, no body)."""
    if origin not in Origin.ALL:
        raise PostaError("unknown_origin", _("Unknown kind of message."), status=400)
    if origin == Origin.NEW:
        return prepare_new(user, account=account)
    if message_id is None:
        raise not_found(_("This message does not exist, or it was deleted."))
    message = access_message(user, message_id)
    if origin in (Origin.REPLY, Origin.REPLY_ALL):
        return prepare_reply(user, message, reply_all=origin == Origin.REPLY_ALL)
    if origin in (Origin.FORWARD, Origin.FORWARD_ATTACHED):
        return prepare_forward(user, message, as_attachment=origin == Origin.FORWARD_ATTACHED)
    if origin == Origin.DRAFT:
        return prepare_open_draft(user, message)
    return prepare_send_again(user, message)


def prepare_new(user: User, *, account: Account | None = None) -> Prepared:
    sender = account or default_sender(user)
    if sender is None:
        raise _no_account()
    return Prepared(OutgoingMessage(user=user, account=sender))


# --- quoting


def _original_parts(message: Message) -> tuple[EmailMessage | None, str, str]:
    """The parsed original and its HTML and text bodies (empty when not stored)."""
    if not message.blob_key:
        return None, "", ""
    try:
        parsed = email.message_from_bytes(blobs.get(message.blob_key), policy=email.policy.default)
    except Exception:  # a broken original must not block replying to it
        log.warning("message %s: body unreadable for quoting", message.pk, exc_info=True)
        return None, "", ""
    assert isinstance(parsed, EmailMessage)  # noqa: S101 - policy.default makes these
    html_text = text = ""
    html_part = parsed.get_body(preferencelist=("html",))
    text_part = parsed.get_body(preferencelist=("plain",))
    try:
        if html_part is not None:
            html_text = str(html_part.get_content())
        if text_part is not None:
            text = str(text_part.get_content())
    except (LookupError, ValueError, KeyError):
        pass
    return parsed, html_text, text


def _attribution(message: Message, user: User) -> str:
    when = timezone.localtime(message.date, user_timezone(user))
    sender = message.from_name or message.from_email
    if message.from_name and message.from_email:
        sender = f"{message.from_name} <{message.from_email}>"
    return str(
        format_lazy(
            _("On {date}, {sender} wrote:"),
            date=date_format(when, "DATETIME_FORMAT"),
            sender=sender,
        )
    )


def _quote(message: Message, user: User, *, forward: bool) -> tuple[str, str]:
    _parsed, html_body, text_body = _original_parts(message)
    if forward:
        lines = [
            str(_("---------- Forwarded message ----------")),
            f"{_('From')}: {format_addresses([[message.from_name, message.from_email]])}",
            f"{_('Date')}: {date_format(timezone.localtime(message.date, user_timezone(user)), 'DATETIME_FORMAT')}",  # noqa: E501
            f"{_('Subject')}: {message.subject}",
            f"{_('To')}: {format_addresses([list(p) for p in message.to])}",
        ]
        head_text = "\n".join(lines)
        head_html = "<br>".join(escape(line) for line in lines)
        body_html = nh3.clean(html_body) if html_body else linebreaks(escape(text_body))
        return (
            f"<p>{head_html}</p>{body_html}",
            f"{head_text}\n\n{text_body or ''}",
        )
    attribution = _attribution(message, user)
    if html_body:
        body_html = nh3.clean(html_body)
    else:
        body_html = linebreaks(escape(text_body or message.snippet))
    quoted_text = "\n".join(
        f">{'' if line.startswith('>') else ' '}{line}".rstrip()
        for line in (text_body or message.snippet).splitlines()
    )
    return (
        f"<p>{escape(attribution)}</p><blockquote type=\"cite\">{body_html}</blockquote>",
        f"{attribution}\n{quoted_text}",
    )


def _own_addresses(user: User) -> set[str]:
    return {a.email.lower() for a in sender_accounts(user)}




def prepare_reply(user: User, message: Message, *, reply_all: bool = False) -> Prepared:
    """A draft replying to `message`: recipients, subject, quote, In-Reply-To and
    References (RFC 5322 §3.6.4) filled in."""
    sender = default_sender(user, message)
    if sender is None:
        raise _no_account()
    mine = _own_addresses(user)
    reply_to = [list(p) for p in message.reply_to] or [[message.from_name, message.from_email]]
    to = [p for p in reply_to if p[1]]
    cc: list[list[str]] = []
    if reply_all:
        taken = {p[1].lower() for p in to} | mine
        for pair in [*message.to, *message.cc]:
            if pair[1] and pair[1].lower() not in taken:
                cc.append(list(pair))
                taken.add(pair[1].lower())
    quote_html, quote_text = _quote(message, user, forward=False)
    refs = compose.reply_references(
        [str(r) for r in message.references], message.in_reply_to, message.message_id
    )
    return Prepared(
        OutgoingMessage(
            user=user,
            account=sender,
            kind=Kind.REPLY_ALL if reply_all else Kind.REPLY,
            to=to,
            cc=cc,
            subject=compose.reply_subject(headers_check.fold_line_breaks(message.subject)),
            quote_html=quote_html,
            quote_text=quote_text,
            original=message,
            in_reply_to=message.message_id,
            references=refs,
        )
    )


def prepare_forward(user: User, message: Message, *, as_attachment: bool = False) -> Prepared:
    """A draft forwarding `message`, inline (quoted, with its attachments) or as an
    attached message/rfc822."""
    sender = default_sender(user, message)
    if sender is None:
        raise _no_account()
    outgoing = OutgoingMessage(
        user=user, account=sender, kind=Kind.FORWARD_ATTACHED if as_attachment else Kind.FORWARD,
        subject=compose.forward_subject(headers_check.fold_line_breaks(message.subject)),
        original=message,
    )
    if as_attachment:
        attached = []
        if message.blob_key:
            attached.append(
                PendingAttachment(
                    filename=headers_check.stored_filename(
                        _safe_filename(f"{message.subject or 'message'}.eml"),
                        fallback="message.eml",
                    ),
                    content_type="message/rfc822", size=len(blobs.get(message.blob_key)),
                    blob_key=message.blob_key,
                )
            )
        return Prepared(outgoing, attached)
    outgoing.quote_html, outgoing.quote_text = _quote(message, user, forward=True)
    parsed, _html, _text = _original_parts(message)
    return Prepared(outgoing, _attachments_of(parsed) if parsed is not None else [])


def _attachments_of(parsed: EmailMessage) -> list[PendingAttachment]:
    """The attachments and inline images of `parsed` (RFC 2392 Content-IDs kept)."""
    found = []
    for part in parsed.iter_attachments():
        try:
            data = part.get_payload(decode=True)
        except Exception:  # a broken part must not block the rest
            log.warning("unreadable attachment of a stored message skipped", exc_info=True)
            continue
        if not isinstance(data, bytes):
            continue
        found.append(
            PendingAttachment(
                filename=headers_check.stored_filename(
                    _safe_filename(part.get_filename() or "attachment")
                ),
                content_type=part.get_content_type()[:255],
                size=len(data),
                content_id=(str(part.get("Content-ID", "")).strip("<> ")[:250]
                            if part.get_content_disposition() == "inline" else ""),
                data=data,
            )
        )
    return found


# --- drafts from the server, and "send again"

_ASSEMBLED = re.compile(
    r'^<div class="posta-body">(?P<body>.*)</div>\n<div class="posta-quote">(?P<quote>.*)</div>$',
    re.S,
)
_ASSEMBLED_BODY = re.compile(r'^<div class="posta-body">(?P<body>.*)</div>$', re.S)


def _split_assembled(markup: str) -> tuple[str, str]:
    """Body and quote of HTML that posta.mailproto.mime.compose.assemble_html made
    for a draft copy (no signature); any other HTML is all body."""
    markup = markup.strip()
    found = _ASSEMBLED.match(markup)
    if found:
        return found["body"], found["quote"]
    found = _ASSEMBLED_BODY.match(markup)
    if found and "<div" not in found["body"]:
        return found["body"], ""
    return markup, ""


def _header_pairs(parsed: EmailMessage, name: str) -> list[list[str]]:
    try:
        header = parsed.get(name)
        addresses = getattr(header, "addresses", ()) if header is not None else ()
        return [[a.display_name, a.addr_spec] for a in addresses if a.addr_spec]
    except Exception:  # a malformed header yields no recipients rather than an error
        log.warning("unreadable %s header in a stored message", name, exc_info=True)
        return []


def _parsed_blob(message: Message) -> EmailMessage:
    if not message.blob_key:
        raise PostaError(
            "not_downloaded",
            _("This message has not been downloaded yet; try again in a moment."),
            status=409,
        )
    try:
        parsed = email.message_from_bytes(blobs.get(message.blob_key), policy=email.policy.default)
    except Exception as exc:
        log.warning("message %s: stored copy unreadable", message.pk, exc_info=True)
        raise PostaError(
            "unreadable", _("This message cannot be read, so it cannot be edited."), status=409
        ) from exc
    assert isinstance(parsed, EmailMessage)  # noqa: S101 - policy.default makes these
    return parsed


def _draft_from_parsed(
    user: User, message: Message, parsed: EmailMessage, *, sender: Account, with_bcc: bool
) -> Prepared:
    """A draft holding what `parsed` holds: recipients, subject, body, quote,
    references and attachments."""
    _p, html_body, text_body = _original_parts(message)
    outgoing = OutgoingMessage(
        user=user,
        account=sender,
        to=_header_pairs(parsed, "To"),
        cc=_header_pairs(parsed, "Cc"),
        bcc=_header_pairs(parsed, "Bcc") if with_bcc else [],
        subject=headers_check.fold_line_breaks(message.subject)[:998],
    )
    if html_body:
        body, quote = _split_assembled(html_body)
        outgoing.body_html = nh3.clean(body)
        outgoing.quote_html = nh3.clean(quote) if quote else ""
    else:
        outgoing.plain_text = True
        outgoing.body_text = text_body
    if message.in_reply_to:
        outgoing.in_reply_to = message.in_reply_to
        outgoing.references = [str(r) for r in message.references]
        outgoing.original = Message.objects.filter(
            user=user, message_id=message.in_reply_to
        ).first()
        outgoing.kind = Kind.REPLY
    return Prepared(outgoing, _attachments_of(parsed))


def _draft_location(user: User, message: Message) -> Location | None:
    """The copy of `message` in one of the user's Drafts folders, if any."""
    return (
        Location.objects.filter(
            message=message, folder__account__user=user, folder__role=Folder.Role.DRAFTS,
            uid__gt=0,
        )
        .select_related("folder__account")
        .order_by("-uid")
        .first()
    )


def prepare_open_draft(user: User, message: Message) -> Prepared:
    """The draft to continue editing for a message of the user's Drafts folder.

    A copy Posta saved carries its draft's X-Posta-Draft-Id: that draft is
    `existing` while it is still being written. Any other copy (another mail
    client's, or one of a draft already sent) becomes a new draft that remembers
    the server copy, so that its first save replaces it (posta.delivery.drafts);
    once stored, opening the same copy again finds it.
    """
    parsed = _parsed_blob(message)
    key = str(parsed.get(DRAFT_ID_HEADER, "") or "").strip()
    if key:
        own = (
            OutgoingMessage.objects.filter(
                user=user, draft_key=key, state__in=OutgoingMessage.EDITABLE_STATES
            )
            .order_by("-id")
            .first()
        )
        if own is not None:
            return Prepared(own, existing=own)
    location = _draft_location(user, message)
    if location is not None:
        already = OutgoingMessage.objects.filter(
            user=user, state=OutgoingMessage.State.DRAFT,
            draft_folder=location.folder, draft_uid=location.uid,
        ).first()
        if already is not None:
            return Prepared(already, existing=already)
    sender = location.folder.account if location is not None else default_sender(user, message)
    if sender is None:
        raise _no_account()
    prepared = _draft_from_parsed(user, message, parsed, sender=sender, with_bcc=True)
    if location is not None:
        prepared.outgoing.draft_folder = location.folder
        prepared.outgoing.draft_uid = location.uid
    return prepared


def prepare_send_again(user: User, message: Message) -> Prepared:
    """A new draft with the recipients, subject, body and attachments of a message
    the user sent ("send again" from Sent). When Posta sent it, the outbox row is
    the source (it knows the Bcc and keeps the quote apart)."""
    source = (
        OutgoingMessage.objects.filter(
            user=user, message_id=message.message_id, state=OutgoingMessage.State.SENT
        ).first()
        if message.message_id
        else None
    )
    if source is None:
        sender = default_sender(user, message)
        if sender is None:
            raise _no_account()
        return _draft_from_parsed(user, message, _parsed_blob(message), sender=sender,
                                  with_bcc=True)
    sender = source.account
    if sender.pk not in {account.pk for account in sender_accounts(user)}:
        sender = default_sender(user) or sender
    outgoing = OutgoingMessage(
        user=user, account=sender, kind=source.kind, subject=source.subject,
        to=source.to, cc=source.cc, bcc=source.bcc, body_html=source.body_html,
        body_text=source.body_text, plain_text=source.plain_text,
        quote_html=source.quote_html, quote_text=source.quote_text,
        original=source.original, in_reply_to=source.in_reply_to,
        references=source.references,
    )
    attached = [
        PendingAttachment(
            filename=att.filename, content_type=att.content_type, size=att.size,
            blob_key=att.blob_key, content_id=att.content_id,
        )
        for att in source.attachments.all()
    ]
    return Prepared(outgoing, attached)


# ---------------------------------------------------------------------- storing


def check_start_draft(
    user: User, origin: str, *, draft_key: str, message_id: int | None = None
) -> OutgoingMessage:
    """The draft of the editor page that carries `draft_key`: stored by the page's
    first POST, found again by every later one (also when two race). The origin
    is checked again as when the page was shown (the source message must still be
    the user's); a draft of ours opened from Drafts returns that draft."""
    if not _DRAFT_KEY.fullmatch(draft_key):
        raise PostaError(
            "bad_draft_key", _("This page is out of date: open the editor again."), status=400
        )
    found = _by_key(user, draft_key)
    if found is not None:
        return found
    prepared = prepare(user, origin, message_id=message_id)
    if prepared.existing is not None:
        return prepared.existing
    try:
        with transaction.atomic():
            return _store(prepared, draft_key=draft_key)
    except IntegrityError:
        # Another POST of the same page stored it between our look and our INSERT.
        found = _by_key(user, draft_key)
        if found is None:
            raise
        return found


def _by_key(user: User, draft_key: str) -> OutgoingMessage | None:
    return (
        OutgoingMessage.objects.select_related("account")
        .filter(user=user, draft_key=draft_key)
        .first()
    )


def _store(prepared: Prepared, *, draft_key: str) -> OutgoingMessage:
    """The row and its attachments (a forward's files are copied now, not when the
    editor was shown)."""
    outgoing = prepared.outgoing
    outgoing.draft_key = draft_key
    outgoing.save(force_insert=True)
    for pending in prepared.attachments:
        OutgoingAttachment.objects.create(
            outgoing=outgoing, filename=pending.filename, content_type=pending.content_type,
            size=pending.size, content_id=pending.content_id,
            blob_key=pending.blob_key or blobs.put(pending.data or b""),
        )
    return outgoing


@transaction.atomic
def do_store(prepared: Prepared) -> OutgoingMessage:
    """Store a prepared draft under a new key (or return the draft it continues):
    for services that start a draft outside the editor."""
    if prepared.existing is not None:
        return prepared.existing
    return _store(prepared, draft_key=new_draft_key())


def do_start_reply(user: User, message: Message, *, reply_all: bool = False) -> OutgoingMessage:
    return do_store(prepare_reply(user, message, reply_all=reply_all))


def do_start_forward(
    user: User, message: Message, *, as_attachment: bool = False
) -> OutgoingMessage:
    return do_store(prepare_forward(user, message, as_attachment=as_attachment))


def do_open_draft(user: User, message: Message) -> OutgoingMessage:
    return do_store(prepare_open_draft(user, message))


def do_send_again(user: User, message: Message) -> OutgoingMessage:
    return do_store(prepare_send_again(user, message))
