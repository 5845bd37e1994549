"""Shared conversations in tables (DESIGN §5 and §9: keyed on message identity and
thread, never on a folder copy).

- `Share` is one owner's conversation shared with colleagues (or with everyone).
  It names the owner's mail by `ShareAnchor` rows: the identities of the messages
  it covered when it was made (or the Message-ID of mail just sent, whose identity
  is known once its copy is stored). Identities survive a re-download, a
  UIDVALIDITY reset and moves, so the share finds the mail again whatever its
  folder copies; with `follow_later` the whole current thread of those messages
  is shown, so later mail of the conversation reaches the colleagues too.
- `ShareRecipient` is one colleague's access (read, or read and reply) and what
  they saw: `first_seen_at`/`last_seen_at` ("who saw it"), `notified_at` (the live
  notice). With `everyone`, a colleague's row is made when they first open it.
- `Comment` is the internal thread beside the mail (never sent to outsiders).
- `ShareReply` is mail a colleague wrote from their own account in answer to a
  shared message: their copy joins the conversation for both.
- `ShareSettings` is a user's choice of an email notice (default off).
"""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Access(models.TextChoices):
    READ = "read", _("Read")
    REPLY = "reply", _("Read and reply")


class Share(models.Model):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="shares_made"
    )
    subject = models.CharField(max_length=500, blank=True)  # as shown when it was made
    everyone = models.BooleanField(default=False)
    everyone_access = models.CharField(max_length=10, choices=Access.choices, default=Access.READ)
    follow_later = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The newest share, comment or reply, and who made it (the Shared list's order,
    # and what is unread for everyone else).
    last_activity_at = models.DateTimeField()
    last_activity_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_activity_kind = models.CharField(max_length=10, default="share")  # share|comment|reply
    owner_seen_at = models.DateTimeField(null=True, blank=True)
    owner_notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["owner", "-last_activity_at"], name="share_owner_activity"),
            models.Index(
                fields=["-last_activity_at"], name="share_everyone",
                condition=models.Q(everyone=True),
            ),
        ]

    def __str__(self) -> str:
        return self.subject


class ShareAnchor(models.Model):
    """One message of the owner's the share was made on: its identity, or, for mail
    shared while it was sent, its Message-ID until the copy is stored."""

    share = models.ForeignKey(Share, on_delete=models.CASCADE, related_name="anchors")
    identity = models.CharField(max_length=64, blank=True)
    message_key = models.CharField(max_length=998, blank=True)  # normalized Message-ID

    class Meta:
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["identity"], name="share_anchor_identity"),
        ]

    def __str__(self) -> str:
        return self.identity or self.message_key


class ShareRecipient(models.Model):
    share = models.ForeignKey(Share, on_delete=models.CASCADE, related_name="recipients")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="shares_received"
    )
    access = models.CharField(max_length=10, choices=Access.choices, default=Access.READ)
    # Made when a colleague opened a share with everyone (not added by name).
    via_everyone = models.BooleanField(default=False)
    added_at = models.DateTimeField(auto_now_add=True)
    first_seen_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["share", "user"], name="share_recipient_user"),
        ]
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["user", "share"], name="share_recipient_mine"),
        ]

    def __str__(self) -> str:
        return f"{self.share_id}:{self.user_id}"


class Comment(models.Model):
    share = models.ForeignKey(Share, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="share_comments"
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="replies"
    )
    body = models.TextField()
    mentions = models.JSONField(default=list)  # user ids named with @
    created_at = models.DateTimeField(auto_now_add=True)
    edited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["share", "created_at"], name="share_comment_time"),
        ]

    def __str__(self) -> str:
        return self.body[:40]


class ShareReply(models.Model):
    """Mail a colleague started from the share, to find their copy by Message-ID
    (the draft's; its Message-ID is chosen when it is first queued)."""

    share = models.ForeignKey(Share, on_delete=models.CASCADE, related_name="replies")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    outgoing = models.ForeignKey(
        "mail.OutgoingMessage", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    message_key = models.CharField(max_length=998, blank=True)  # once known, normalized
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.message_key


class ShareSettings(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="share_settings"
    )
    email_notice = models.BooleanField(
        _("email me when a conversation is shared with me or commented on"), default=False
    )

    def __str__(self) -> str:
        return str(self.user_id)
