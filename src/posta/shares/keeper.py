"""The shares' keeper (posta.mail.keepers): a message the share shows stays in
the store, with its blob, when its last copy goes, so the conversation stays
shared (and appears in the owner's Imported folder). A colleague's reply written
from a share is kept for the same reason."""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import Q

from posta.mail.models import Message
from posta.shares.models import ShareAnchor, ShareReply


def needed_by_shares(user_id: int, message_ids: Sequence[int]) -> set[int]:
    """The ids among `message_ids` (of user `user_id`) that a share shows. Four
    queries whatever the batch."""
    anchors = ShareAnchor.objects.filter(share__owner_id=user_id)
    identities = anchors.exclude(identity="").values("identity")
    keys = anchors.exclude(message_key="").values("message_key")
    followed = ShareAnchor.objects.filter(
        share__owner_id=user_id, share__follow_later=True
    ).exclude(identity="").values("identity")
    threads = (
        Message.objects.filter(user_id=user_id, identity__in=followed)
        .filter(thread__isnull=False)
        .values("thread_id")
    )
    replies = ShareReply.objects.filter(user_id=user_id).exclude(message_key="").values(
        "message_key"
    )
    return set(
        Message.objects.filter(user_id=user_id, pk__in=list(message_ids))
        .filter(
            Q(identity__in=identities)
            | Q(message_id__in=keys)
            | Q(thread_id__in=threads)
            | Q(message_id__in=replies)
        )
        .values_list("pk", flat=True)
    )
