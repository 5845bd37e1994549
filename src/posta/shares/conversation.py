"""What a share shows: the owner's messages it covers, and the colleagues'
replies written from it.

The owner's mail is found by identity (and by Message-ID for mail shared while it
was sent), never by folder copy; with `follow_later` the current thread of those
messages is taken whole, so later mail of the conversation is shown too. A
message of the owner's with no copy left is still shown while its row is kept.
"""

from __future__ import annotations

from django.db.models import Q

from posta.mail.models import Message
from posta.shares.models import Share, ShareAnchor, ShareReply
from posta.shares.services import normalize_key

MAX_MESSAGES = 200


def _anchored(share: Share) -> Q:
    identities: list[str] = []
    keys: list[str] = []
    for identity, key in ShareAnchor.objects.filter(share=share).values_list(
        "identity", "message_key"
    ):
        if identity:
            identities.append(identity)
        if key:
            keys.append(key)
    return Q(identity__in=identities) | Q(message_id__in=keys)


def owner_messages(share: Share) -> list[Message]:
    """The owner's messages of the share, oldest first."""
    base = Message.objects.filter(user_id=share.owner_id)
    anchored = base.filter(_anchored(share))
    if share.follow_later:
        threads = [t for t in anchored.values_list("thread_id", flat=True) if t is not None]
        rows = base.filter(_anchored(share) | Q(thread_id__in=threads))
    else:
        rows = anchored
    return list(rows.order_by("date", "id")[:MAX_MESSAGES])


def reply_messages(share: Share) -> list[Message]:
    """The colleagues' own copies of the replies they wrote from the share."""
    wanted = Q()
    found = False
    for reply in ShareReply.objects.filter(share=share).select_related("outgoing"):
        key = reply.message_key
        if not key and reply.outgoing is not None and reply.outgoing.message_id:
            key = normalize_key(reply.outgoing.message_id)
            ShareReply.objects.filter(pk=reply.pk).update(message_key=key)
        if key:
            wanted |= Q(user_id=reply.user_id, message_id=key)
            found = True
    if not found:
        return []
    return list(Message.objects.filter(wanted).order_by("date", "id")[:MAX_MESSAGES])


def messages(share: Share) -> list[Message]:
    """Every message the share shows, oldest first, each Message-ID once (the
    owner's copy first: a reply that reached the owner too is shown once)."""
    own = owner_messages(share)
    keys = {m.message_id for m in own if m.message_id}
    replies = [m for m in reply_messages(share) if not m.message_id or m.message_id not in keys]
    return sorted([*own, *replies], key=lambda m: (m.date, m.pk))


def access_shared_message(share: Share, message_id: int) -> Message | None:
    """The message `message_id` if the share shows it, else None."""
    for message in messages(share):
        if message.pk == message_id:
            return message
    return None


def shown_identities(share: Share) -> set[str]:
    """The identities of the owner's messages the share shows (the keeper asks)."""
    return {m.identity for m in owner_messages(share)}
