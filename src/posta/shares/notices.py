"""The optional email notice (a user setting, default off): a new share or a new
comment, told by mail through the administrator's shared sender.

The notice is an ordinary outbox row (posta.mail.outbox) of the shared sender's
owner, so the delivery worker sends it like any mail, with retries; it is
queued after the share or comment commits (`notify_`), and a failure to queue
one is logged, never shown to the person who shared. The notice carries the
subject and the comment, never the mail itself: that is read in Posta.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _

from posta.accounts.models import Account
from posta.core.errors import PostaError
from posta.mail import outbox
from posta.mail.models import OutgoingMessage
from posta.shares.models import Comment, Share, ShareRecipient, ShareSettings
from posta.users.models import User

log = logging.getLogger(__name__)


def shared_sender() -> Account | None:
    """The administrator's shared sender the notices leave from (the oldest one)."""
    return Account.objects.filter(is_shared_sender=True).order_by("created_at", "id").first()


def _wants(people: Iterable[User]) -> list[User]:
    ids = [p.pk for p in people if p.email and p.is_active]
    chosen = set(
        ShareSettings.objects.filter(user_id__in=ids, email_notice=True).values_list(
            "user_id", flat=True
        )
    )
    return [p for p in people if p.pk in chosen]


def _queue(person: User, subject: str, text: str) -> None:
    sender = shared_sender()
    if sender is None:
        log.info("share notice for user %s not sent: no shared sender", person.pk)
        return
    row = OutgoingMessage.objects.create(
        user_id=sender.user_id, account=sender, to=[[str(person), person.email]],
        subject=subject[:900], body_text=text, plain_text=True,
    )
    owner = User.objects.get(pk=sender.user_id)
    try:
        outbox.check_send(owner, row)
    except PostaError:
        log.warning("share notice for user %s could not be queued", person.pk, exc_info=True)
        row.delete()


def _in_language(person: User, build: object) -> tuple[str, str]:
    assert callable(build)  # noqa: S101 - a local helper
    with translation.override(person.language or settings.LANGUAGE_CODE):
        subject, text = build()
    return str(subject), str(text)


def notify_shared(share: Share, people: Iterable[User], *, everyone: bool) -> None:
    """After commit: tell the colleagues (who chose so) that a conversation was
    shared with them. With everyone, each colleague who chose the notice."""
    ids = [p.pk for p in people]

    def send() -> None:
        targets = list(User.objects.filter(pk__in=ids))
        if everyone:
            targets = list(User.objects.filter(is_active=True).exclude(pk=share.owner_id))
        for person in _wants(targets):
            subject, text = _in_language(person, lambda: (
                _("%(who)s shared a conversation with you: %(subject)s")
                % {"who": share.owner, "subject": share.subject},
                _("Open the Shared folder in Posta to read it and comment."),
            ))
            _queue(person, subject, text)

    transaction.on_commit(send)


def notify_comment(comment: Comment) -> None:
    """After commit: tell the share's people (who chose so) about a new comment."""

    def send() -> None:
        share = comment.share
        ids = set(ShareRecipient.objects.filter(share=share).values_list("user_id", flat=True))
        ids |= {share.owner_id, *comment.mentions}
        ids.discard(comment.author_id)
        for person in _wants(User.objects.filter(pk__in=ids)):
            subject, text = _in_language(person, lambda: (
                _("%(who)s commented on “%(subject)s”")
                % {"who": comment.author, "subject": share.subject},
                comment.body,
            ))
            _queue(person, subject, text)

    transaction.on_commit(send)
