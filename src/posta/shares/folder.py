"""The Shared special folder: conversations shared with me, newest activity
first, with who shared each and its last comment; the unread badge; the notices
the live poll shows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Exists, F, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _

from posta.shares.models import Comment, Share, ShareRecipient
from posta.shares.services import shares_for
from posta.users.models import User

PAGE = 100


@dataclass
class SharedRow:
    share: Share
    unread: bool
    last_comment: str
    last_comment_by: str
    mine: bool  # shared by me


def _unseen_by_recipient(user: User) -> Exists:
    return Exists(
        ShareRecipient.objects.filter(
            share=OuterRef("pk"), user=user, last_seen_at__gte=OuterRef("last_activity_at")
        )
    )


def _received_unread(user: User) -> QuerySet[Share]:
    return (
        shares_for(user)
        .exclude(last_activity_by=user)
        .exclude(_unseen_by_recipient(user))
    )


def takes_part(user: User) -> bool:
    """Whether any share concerns `user` (theirs, shared with them, or with
    everyone): one small query that spares the poll the badge's and the notices'
    queries for the many users who share nothing."""
    return Share.objects.filter(
        Q(owner=user)
        | Q(everyone=True)
        | Q(pk__in=ShareRecipient.objects.filter(user=user).values("share_id"))
    ).exists()


def unread_count(user: User, *, involved: bool | None = None) -> int:
    """Shares with something I have not seen: the Shared folder's badge.
    `involved` is `takes_part(user)` when the caller knows it already."""
    if not (takes_part(user) if involved is None else involved):
        return 0
    received = _received_unread(user).count()
    owned = (
        Share.objects.filter(owner=user)
        .filter(Q(owner_seen_at__isnull=True) | Q(last_activity_at__gt=F("owner_seen_at")))
        .exclude(last_activity_by=user)
        .exclude(last_activity_by__isnull=True)
        .count()
    )
    return received + owned


def _with_last_comment(rows: QuerySet[Share]) -> QuerySet[Share]:
    last = Comment.objects.filter(share=OuterRef("pk")).order_by("-created_at", "-id")
    return rows.annotate(
        last_body=Subquery(last.values("body")[:1]),
        last_author=Subquery(last.values("author__username")[:1]),
    )


def shared_rows(user: User) -> list[SharedRow]:
    """Shared with me, then shared by me, each newest activity first."""
    unread_ids = set(_received_unread(user).values_list("pk", flat=True))
    received = _with_last_comment(
        shares_for(user).select_related("owner").order_by("-last_activity_at", "-id")
    )[:PAGE]
    own = _with_last_comment(
        Share.objects.filter(owner=user).order_by("-last_activity_at", "-id")
    )[:PAGE]
    rows = [_row(s, s.pk in unread_ids, mine=False) for s in received]
    for share in own:
        seen = share.owner_seen_at
        unread = share.last_activity_by_id != user.pk and (
            seen is None or seen < share.last_activity_at
        )
        rows.append(_row(share, unread and share.last_activity_by_id is not None, mine=True))
    return rows


def _row(share: Share, unread: bool, *, mine: bool) -> SharedRow:
    return SharedRow(
        share, unread, str(getattr(share, "last_body", "") or "")[:200],
        str(getattr(share, "last_author", "") or ""), mine,
    )


@dataclass
class Notice:
    share_id: int
    text: str


def _notice_text(share: Share) -> str:
    who = str(share.last_activity_by) if share.last_activity_by else _("A colleague")
    subject = share.subject or _("(no subject)")
    if share.last_activity_kind == "comment":
        return _("%(who)s commented on “%(subject)s”.") % {"who": who, "subject": subject}
    if share.last_activity_kind == "reply":
        return _("%(who)s replied to “%(subject)s”.") % {"who": who, "subject": subject}
    return _("%(who)s shared “%(subject)s” with you.") % {"who": who, "subject": subject}


def take_notices(
    user: User, *, now: datetime | None = None, involved: bool | None = None
) -> list[Notice]:
    """What happened on my shares since the last notice (by others), once: the live
    poll shows each in the page."""
    if not (takes_part(user) if involved is None else involved):
        return []
    now = now or timezone.now()
    notices: list[Notice] = []
    received = list(
        shares_for(user).exclude(last_activity_by=user).select_related("last_activity_by")
        .exclude(
            Exists(ShareRecipient.objects.filter(
                share=OuterRef("pk"), user=user, notified_at__gte=OuterRef("last_activity_at")
            ))
        )[:20]
    )
    for share in received:
        notices.append(Notice(share.pk, _notice_text(share)))
        updated = ShareRecipient.objects.filter(share=share, user=user).update(notified_at=now)
        if not updated:
            ShareRecipient.objects.get_or_create(
                share=share, user=user,
                defaults={"access": share.everyone_access, "via_everyone": True,
                          "notified_at": now},
            )
    owned = list(
        Share.objects.filter(owner=user).exclude(last_activity_by=user)
        .exclude(last_activity_by__isnull=True)
        .filter(
            Q(owner_notified_at__isnull=True)
            | Q(last_activity_at__gt=F("owner_notified_at"))
        )
        .select_related("last_activity_by")[:20]
    )
    for share in owned:
        notices.append(Notice(share.pk, _notice_text(share)))
        Share.objects.filter(pk=share.pk).update(owner_notified_at=now)
    return notices
