"""The comment thread beside shared mail: internal, never sent to outsiders.

Comments are plain text (shown escaped, links made clickable by the page);
`@name` mentions a colleague by user name. One level of replies. The author may
edit or delete a comment within EDIT_WINDOW of writing it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from posta.core.errors import PostaError, not_found
from posta.shares import services
from posta.shares.models import Comment, Share, ShareRecipient
from posta.shares.services import Grant
from posta.users.models import User

MAX_LENGTH = 5000
EDIT_WINDOW = timedelta(minutes=10)
_MENTION = re.compile(r"(?<![\w.@])@([\w.+-]{1,150})")


@dataclass
class Posted:
    comment: Comment
    # Colleagues mentioned who cannot see the share (the page offers to add them).
    outside: list[User] = field(default_factory=list)


def _clean(body: str) -> str:
    text = body.replace("\r\n", "\n").strip()
    if not text:
        raise PostaError("empty_comment", _("Write a comment first."), field="body")
    if len(text) > MAX_LENGTH:
        raise PostaError(
            "comment_too_long",
            _("A comment may be at most %(n)d characters long.") % {"n": MAX_LENGTH},
            field="body",
        )
    return text


def mentioned(author: User, text: str) -> list[User]:
    """The colleagues `text` names with @user-name (unknown names are left as text)."""
    names = {m.rstrip(".") for m in _MENTION.findall(text)}
    if not names:
        return []
    query = Q()
    for name in list(names)[:50]:
        query |= Q(username__iexact=name)
    return list(services.colleagues(author).filter(query))


def can_see(share: Share, user: User) -> bool:
    if user.pk == share.owner_id or share.everyone:
        return True
    return ShareRecipient.objects.filter(share=share, user=user).exists()


@transaction.atomic
def check_comment(grant: Grant, body: str, *, parent_id: int | None = None) -> Posted:
    """Post a comment (or a reply to one) on the share."""
    text = _clean(body)
    parent = None
    if parent_id is not None:
        parent = Comment.objects.filter(share=grant.share, pk=parent_id).first()
        if parent is None:
            raise not_found(_("This comment does not exist any more."))
        parent = parent.parent or parent  # replies stay one level deep
    people = mentioned(grant.user, text)
    comment = Comment.objects.create(
        share=grant.share, author=grant.user, parent=parent, body=text,
        mentions=[p.pk for p in people],
    )
    services.do_touch(grant.share, grant.user, kind="comment")
    return Posted(comment, [p for p in people if not can_see(grant.share, p)])


def _own_recent(grant: Grant, comment_id: int) -> Comment:
    comment = Comment.objects.filter(share=grant.share, pk=comment_id).first()
    if comment is None:
        raise not_found(_("This comment does not exist any more."))
    if comment.author_id != grant.user.pk:
        raise PostaError("not_author", _("Only its author can change a comment."), status=403)
    if timezone.now() - comment.created_at > EDIT_WINDOW:
        raise PostaError(
            "edit_window",
            _("A comment can be changed only in the first %(n)d minutes.")
            % {"n": int(EDIT_WINDOW.total_seconds() // 60)},
            status=403,
        )
    return comment


@transaction.atomic
def check_edit(grant: Grant, comment_id: int, body: str) -> Comment:
    comment = _own_recent(grant, comment_id)
    comment.body = _clean(body)
    comment.mentions = [p.pk for p in mentioned(grant.user, comment.body)]
    comment.edited_at = timezone.now()
    comment.save(update_fields=["body", "mentions", "edited_at"])
    return comment


@transaction.atomic
def check_delete(grant: Grant, comment_id: int) -> None:
    """Delete one's own recent comment (its replies go with it)."""
    _own_recent(grant, comment_id).delete()


def editable(comment: Comment, user: User) -> bool:
    return comment.author_id == user.pk and timezone.now() - comment.created_at <= EDIT_WINDOW


def thread(share: Share) -> list[tuple[Comment, list[Comment]]]:
    """The comments, oldest first, each with its replies. One query."""
    rows = list(
        Comment.objects.filter(share=share).select_related("author").order_by("created_at", "id")
    )
    replies: dict[int, list[Comment]] = {}
    for row in rows:
        if row.parent_id is not None:
            replies.setdefault(row.parent_id, []).append(row)
    return [(row, replies.get(row.pk, [])) for row in rows if row.parent_id is None]
