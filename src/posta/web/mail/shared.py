"""The shared conversation as the reader pane shows it (posta.shares): the
messages the share shows, read-only, and the comments beside them."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest
from django.urls import reverse
from django.utils.safestring import mark_safe

from posta.crm import links as crm_links
from posta.mail import sanitize
from posta.mail import services as mail_services
from posta.mail.models import Message
from posta.shares import comments, conversation, services
from posta.shares.models import ShareRecipient
from posta.shares.services import Grant
from posta.users.models import User
from posta.web.mail import reader

# The colleagues a comment box suggests for @mentions.
MENTIONABLE = 200


def _message_item(request: HttpRequest, grant: Grant, message: Message) -> dict[str, Any]:
    item: dict[str, Any] = {"message": message, "body_ready": False,
                            "theirs": message.user_id != grant.share.owner_id}
    if message.body_state == Message.BodyState.PENDING:
        # Not mirrored yet: ask the owner's (or replier's) account for it now.
        mail_services.request_body_fetch(message.user, message.pk)
    if message.body_state != Message.BodyState.STORED or not message.blob_key:
        return item
    try:
        raw = reader.raw_bytes(message)
    except Http404:
        return item
    readable = sanitize.read_message(raw)
    item.update({"body_ready": True, "attachments": readable.downloads,
                 "malformed": bool(readable.defects)})
    if readable.html:
        item["frame_url"] = reverse("share_body", args=[grant.share.pk, message.pk])
    else:
        # Escaped and linkified like the frame's (sanitize.text_to_html).
        item["text_html"] = mark_safe(sanitize.text_to_html(readable.text))  # noqa: S308 - escaped by text_to_html
    return item


def conversation_context(request: HttpRequest, user: User, share_id: int) -> dict[str, Any]:
    """The shared conversation as the reader pane shows it; marks it seen."""
    grant = services.access_share(user, share_id)
    shown = conversation.messages(grant.share)
    services.do_mark_seen(grant)
    seen = []
    if grant.is_owner:
        seen = list(
            ShareRecipient.objects.filter(share=grant.share, first_seen_at__isnull=False)
            .select_related("user").order_by("-last_seen_at")
        )
    thread = comments.thread(grant.share)
    return {
        "grant": grant,
        "share": grant.share,
        "items": [_message_item(request, grant, m) for m in shown],
        "comments": thread,
        # The CRM records of the conversation this user may read (a colleague:
        # those the owner let them read, or their own).
        "records": crm_links.records_linked(user, [m.identity for m in shown], read=True),
        "seen_by": seen,
        "mentionable": list(services.colleagues(user)[:MENTIONABLE]),
        "editable_ids": {
            c.pk for c, replies in thread
            for c in [c, *replies] if comments.editable(c, user)
        },
    }
