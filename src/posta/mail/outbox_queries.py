"""What the outbox pages list: Scheduled, the outbox itself, and the addresses the
user has written with (autocomplete)."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from posta.mail.addresses import format_addresses
from posta.mail.models import Message, OutgoingMessage
from posta.users.models import User


def scheduled_messages(user: User) -> QuerySet[OutgoingMessage]:
    """The Scheduled special folder: messages waiting for their time."""
    return (
        OutgoingMessage.objects.filter(
            user=user,
            state__in=[OutgoingMessage.State.SCHEDULED, OutgoingMessage.State.PAUSED],
        )
        .select_related("account")
        .order_by("send_at", "id")
    )


def outbox_messages(user: User) -> QuerySet[OutgoingMessage]:
    """Messages on their way or stuck: waiting, retrying, failed, to review."""
    return (
        OutgoingMessage.objects.filter(
            user=user,
            state__in=[
                OutgoingMessage.State.QUEUED, OutgoingMessage.State.SENDING,
                OutgoingMessage.State.FAILED, OutgoingMessage.State.NEEDS_REVIEW,
            ],
        )
        .select_related("account")
        .order_by("-updated_at")
    )


def correspondents(user: User, query: str, *, limit: int = 10) -> list[str]:
    """Addresses the user has written with, for autocomplete: senders of their mail
    and recipients of what they sent, matching `query` by name or address."""
    query = query.strip()
    if len(query) < 2:
        return []
    found: dict[str, str] = {}
    rows = (
        Message.objects.filter(user=user)
        .filter(Q(from_email__icontains=query) | Q(from_name__icontains=query))
        .values_list("from_name", "from_email")
        .distinct()[: limit * 3]
    )
    for name, address in rows:
        if address and address.lower() not in found:
            found[address.lower()] = format_addresses([[name, address]])
    needle = query.lower()
    sent = OutgoingMessage.objects.filter(user=user, state=OutgoingMessage.State.SENT)
    for pairs in sent.order_by("-sent_at").values_list("to", flat=True)[:200]:
        for name, address in pairs:
            if (needle in address.lower() or needle in name.lower()) and (
                address.lower() not in found
            ):
                found[address.lower()] = format_addresses([[name, address]])
    return sorted(found.values(), key=str.lower)[:limit]
