"""A colleague's reply to shared mail, from their own account.

The draft is the colleague's own (their account, their outbox): it answers the
owner's message with its In-Reply-To and References (RFC 5322 §3.6.4), so it
threads with the conversation, but it names no original of theirs to flag: the
owner's copies are never touched. A `ShareReply` row remembers it, so the copy
the colleague's store keeps of it is shown in the share, to the owner too.
"""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from posta.core.errors import PostaError
from posta.mail import replies
from posta.mail.models import Message, OutgoingMessage
from posta.shares import services
from posta.shares.models import ShareReply
from posta.shares.services import Grant

KINDS = ("reply", "reply_all", "forward")


@transaction.atomic
def check_start_reply(grant: Grant, message: Message, *, kind: str) -> OutgoingMessage:
    """Store the colleague's draft answering (or forwarding) a shared message."""
    if not grant.can_reply or grant.is_owner:
        raise PostaError(
            "read_only", _("This conversation was shared with you to read only."), status=403
        )
    if kind == "forward":
        prepared = replies.prepare_forward(grant.user, message)
    else:
        prepared = replies.prepare_reply(grant.user, message, reply_all=kind == "reply_all")
    prepared.outgoing.original = None
    outgoing = replies.do_store(prepared)
    ShareReply.objects.create(share=grant.share, user=grant.user, outgoing=outgoing)
    services.do_touch(grant.share, grant.user, kind="reply")
    return outgoing

