"""Making, changing and revoking shares, and who may see one.

Every function takes the user who asks. `access_share` is the one door to a
share: the owner, a colleague it is shared with (by name, or as one of
"everyone") pass; anyone else gets the same 404 as for a share that does not
exist, so ids reveal nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from posta.core.errors import PostaError, not_found
from posta.mail.models import Message, OutgoingMessage
from posta.shares import records as share_records
from posta.shares.models import Access, Share, ShareAnchor, ShareRecipient
from posta.users.models import User

MAX_RECIPIENTS = 200
_SPLIT = re.compile(r"[\s,;]+")


def _gone() -> PostaError:
    return not_found(_("This shared conversation does not exist, or it is not shared with you."))


@dataclass(frozen=True)
class Grant:
    """What one user may do with one share."""

    share: Share
    user: User
    access: str  # Access value; the owner has REPLY
    is_owner: bool
    recipient: ShareRecipient | None

    @property
    def can_reply(self) -> bool:
        return self.access == Access.REPLY


def colleagues(user: User) -> QuerySet[User]:
    """The users a conversation can be shared with: every other active user."""
    return User.objects.filter(is_active=True).exclude(pk=user.pk).order_by(
        "first_name", "last_name", "username"
    )


def check_colleagues(owner: User, text: str) -> list[User]:
    """The colleagues named in `text` (user names or addresses, separated by commas
    or spaces, an optional leading @), in order; PostaError naming the first
    unknown one."""
    names = [t.lstrip("@") for t in _SPLIT.split(text) if t.strip("@ ")]
    if len(names) > MAX_RECIPIENTS:
        raise PostaError(
            "too_many", _("Share with at most %(n)d people at once.") % {"n": MAX_RECIPIENTS},
            field="people",
        )
    found: list[User] = []
    for name in names:
        match = (
            colleagues(owner)
            .filter(Q(username__iexact=name) | Q(email__iexact=name))
            .first()
        )
        if match is None:
            raise PostaError(
                "unknown_colleague",
                _("“%(name)s” is not a colleague of yours in Posta.") % {"name": name[:100]},
                field="people",
            )
        if match not in found:
            found.append(match)
    return found


def conversation_of(message: Message) -> list[Message]:
    """The owner's messages of the conversation `message` is in, oldest first."""
    if message.thread_id is None:
        return [message]
    return list(
        Message.objects.filter(user_id=message.user_id, thread_id=message.thread_id)
        .order_by("date", "id")[:500]
    )


def share_of_message(owner: User, message: Message) -> Share | None:
    """The owner's share that covers the conversation of `message`, if any."""
    messages = conversation_of(message)
    identities = [m.identity for m in messages]
    keys = [m.message_id for m in messages if m.message_id]
    return (
        Share.objects.filter(owner=owner)
        .filter(Q(anchors__identity__in=identities) | Q(anchors__message_key__in=keys))
        .order_by("-id")
        .first()
    )


@transaction.atomic
def do_share(
    owner: User,
    message: Message,
    *,
    people: Iterable[User],
    access: str,
    everyone: bool = False,
    follow_later: bool = True,
) -> Share:
    """Share the conversation of `message` (the owner's, already checked) with
    `people` (or everyone), or add them to the share it already has."""
    now = timezone.now()
    share = share_of_message(owner, message)
    if share is None:
        share = Share.objects.create(
            owner=owner, subject=message.subject[:500], everyone=everyone,
            everyone_access=access, follow_later=follow_later,
            last_activity_at=now, last_activity_by=owner,
        )
        ShareAnchor.objects.bulk_create(
            ShareAnchor(share=share, identity=m.identity) for m in conversation_of(message)
        )
    else:
        if everyone:
            share.everyone, share.everyone_access = True, access
        share.last_activity_at, share.last_activity_by = now, owner
        share.last_activity_kind = "share"
        share.save(update_fields=["everyone", "everyone_access", "last_activity_at",
                                  "last_activity_by", "last_activity_kind"])
    do_add_people(share, people, access=access)
    return share


@transaction.atomic
def do_share_outgoing(
    owner: User, outgoing: OutgoingMessage, *, people: Iterable[User], access: str
) -> Share:
    """Share mail being sent (compose's "share this conversation with"): anchored
    on its Message-ID until its copy is stored, and on the conversation it answers
    (added to that conversation's share when it has one)."""
    key = normalize_key(outgoing.message_id)
    original = outgoing.original
    share = share_of_message(owner, original) if original is not None else None
    now = timezone.now()
    if share is None:
        share = Share.objects.create(
            owner=owner, subject=outgoing.subject[:500], everyone_access=access,
            last_activity_at=now, last_activity_by=owner,
        )
        if original is not None:
            ShareAnchor.objects.bulk_create(
                ShareAnchor(share=share, identity=m.identity) for m in conversation_of(original)
            )
    else:
        do_touch(share, owner, kind="share")
    ShareAnchor.objects.create(share=share, message_key=key[:998])
    do_add_people(share, people, access=access)
    return share


def normalize_key(message_id: str) -> str:
    """A Message-ID as the mail store keys it: no brackets, domain lower-cased."""
    key = message_id.strip().strip("<>")
    local, at, domain = key.rpartition("@")
    return f"{local}@{domain.lower()}" if at else key


def do_add_people(share: Share, people: Iterable[User], *, access: str) -> None:
    """Add colleagues (or change the access of those already in)."""
    for person in people:
        if person.pk == share.owner_id:
            continue
        ShareRecipient.objects.update_or_create(
            share=share, user=person, defaults={"access": access, "via_everyone": False}
        )


def check_access_value(value: str) -> str:
    if value not in Access.values:
        raise PostaError("bad_access", _("Choose read, or read and reply."), field="access")
    return value


@transaction.atomic
def do_set_access(share: Share, recipient_id: int, access: str) -> None:
    updated = ShareRecipient.objects.filter(share=share, pk=recipient_id).update(access=access)
    if not updated:
        raise _gone()


@transaction.atomic
def do_revoke(share: Share, recipient_id: int) -> None:
    """Take the share away from one colleague: gone from their Shared folder at once.
    A colleague who had it as one of "everyone" loses it only with "everyone".
    The record read grants it gave them go with it."""
    user_id = (
        ShareRecipient.objects.filter(share=share, pk=recipient_id)
        .values_list("user_id", flat=True)
        .first()
    )
    deleted, _rows = ShareRecipient.objects.filter(share=share, pk=recipient_id).delete()
    if not deleted or user_id is None:
        raise _gone()
    if not share.everyone:
        share_records.do_drop_grants(share, users=[user_id])


@transaction.atomic
def do_revoke_everyone(share: Share) -> None:
    share.everyone = False
    share.save(update_fields=["everyone"])
    ShareRecipient.objects.filter(share=share, via_everyone=True).delete()
    named = ShareRecipient.objects.filter(share=share).values_list("user_id", flat=True)
    share_records.do_drop_grants(share, keep_users=list(named))


@transaction.atomic
def do_stop_sharing(share: Share) -> None:
    """Delete the share, its comments, every colleague's access and the record
    read grants it gave."""
    share_records.do_drop_grants(share)
    share.delete()


def do_set_follow(share: Share, *, follow: bool) -> None:
    share.follow_later = follow
    share.save(update_fields=["follow_later"])


def shares_for(user: User) -> QuerySet[Share]:
    """The shares `user` may open as a colleague (not their own)."""
    return (
        Share.objects.filter(Q(recipients__user=user) | Q(everyone=True))
        .exclude(owner=user)
        .distinct()
    )


def access_share(user: User, share_id: int) -> Grant:
    """The share and what `user` may do with it; 404 for anyone else."""
    share = Share.objects.select_related("owner").filter(pk=share_id).first()
    if share is None or not user.is_active:
        raise _gone()
    if share.owner_id == user.pk:
        return Grant(share, user, Access.REPLY, True, None)
    recipient = ShareRecipient.objects.filter(share=share, user=user).first()
    if recipient is None and not share.everyone:
        raise _gone()
    access = recipient.access if recipient is not None else share.everyone_access
    return Grant(share, user, access, False, recipient)


def access_owned_share(user: User, share_id: int) -> Share:
    """A share the user made (to change or revoke); 404 for anyone else's."""
    grant = access_share(user, share_id)
    if not grant.is_owner:
        raise _gone()
    return grant.share


def do_mark_seen(grant: Grant) -> None:
    """Record that the user opened the shared conversation now ("who saw it")."""
    now = timezone.now()
    share = grant.share
    if grant.is_owner:
        Share.objects.filter(pk=share.pk).update(owner_seen_at=now, owner_notified_at=now)
        return
    recipient, created = ShareRecipient.objects.get_or_create(
        share=share, user=grant.user,
        defaults={"access": share.everyone_access, "via_everyone": True,
                  "first_seen_at": now, "last_seen_at": now, "notified_at": now},
    )
    if not created:
        ShareRecipient.objects.filter(pk=recipient.pk).update(
            first_seen_at=recipient.first_seen_at or now, last_seen_at=now, notified_at=now
        )


def do_touch(share: Share, user: User, *, kind: str) -> None:
    """New activity on the share by `user`: "share", "comment" or "reply"."""
    Share.objects.filter(pk=share.pk).update(
        last_activity_at=timezone.now(), last_activity_by=user, last_activity_kind=kind
    )
