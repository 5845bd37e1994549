"""Messages, their IMAP copies, threads and the user's pending remote actions.

DESIGN §5 in tables:

- `Message` is the content, stored once per user. Its `identity` is a hash of the
  Message-ID plus a few header fields (some servers reuse Message-IDs), or of the
  header fields and size when the Message-ID is missing, so a copy in Sent, a copy
  in another account and a Gmail label all point at one row.
- `Location` is one IMAP copy: folder + UID + flags + MODSEQ.
- `Thread` is a conversation of one user across all accounts.
- `RemoteAction` is an intent (move, flag, delete, append) written by the web layer
  together with the local change, carried out on the server by a worker.

Reading speed (issue 4: first page of a unified folder over 1,000,000 messages in
under 50 ms). The list screens read `Location` alone, never joining `Message` for
the filter or the sort: the message date, the owner and the folder's role are
copied onto each location (`date`, `user_id`, `role`), so

    unified inbox   WHERE user_id=? AND role='inbox' ORDER BY date DESC  -> loc_user_role_date
    one folder      WHERE folder_id=? ORDER BY date DESC                  -> loc_folder_date
    Flagged         WHERE user_id=? AND flagged ORDER BY date DESC        -> loc_user_flagged_date

are index walks that stop after one page (keyset pagination on (date, id)). The
copies are kept right by the sync engine (a message's date never changes; a folder's
role change rewrites its locations' `role` in one UPDATE).
"""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from posta.accounts.models import Account, Folder

# The outbox and auto-linking tables have modules of their own; importing them
# here is how Django finds them in the mail app (and how the rest of the code may
# name them).
from posta.mail.autolink_models import LinkBatch as LinkBatch
from posta.mail.autolink_models import RecordLinkJob as RecordLinkJob
from posta.mail.outbox_models import OutgoingAttachment as OutgoingAttachment
from posta.mail.outbox_models import OutgoingMessage as OutgoingMessage


class Thread(models.Model):
    """One conversation of one user, across accounts and folders."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mail_threads"
    )
    subject = models.CharField(max_length=500, blank=True)  # base subject (RFC 5256 §2.1)
    # The root Message-ID of the conversation (first of References, else
    # In-Reply-To, else the message's own id): replies that arrive before their
    # parent (the first sync goes newest first) still meet in one thread.
    key = models.CharField(max_length=998, blank=True)
    # sha256 of base subject + participants, for mail without any references
    # (posta.mail.threads); empty when the thread was started by references.
    subject_key = models.CharField(max_length=64, blank=True)
    # Gmail's X-GM-THRID, when the server offers it: the provider's own grouping wins.
    gm_thrid = models.BigIntegerField(null=True, blank=True)
    last_date = models.DateTimeField()
    message_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["user", "-last_date"], name="thread_user_last"),
            models.Index(fields=["user", "gm_thrid"], name="thread_user_gmthrid"),
            models.Index(fields=["user", "key"], name="thread_user_key"),
            models.Index(fields=["user", "subject_key"], name="thread_user_subject"),
        ]

    def __str__(self) -> str:
        return self.subject


class Message(models.Model):
    """The content of a mail, once per user (DESIGN §5)."""

    class BodyState(models.TextChoices):
        PENDING = "pending", _("Not downloaded yet")
        STORED = "stored", _("Downloaded")
        FAILED = "failed", _("Could not be downloaded")

    # No index of its own: (user, identity) and the other indexes start with it.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="mail_messages",
        db_index=False,
    )
    # sha256 hex of the identifying fields; see posta.sync.identity.
    identity = models.CharField(max_length=64)
    message_id = models.CharField(max_length=998, blank=True)  # normalized, without <>
    thread = models.ForeignKey(
        Thread, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    subject = models.TextField(blank=True)
    from_name = models.CharField(max_length=500, blank=True)
    from_email = models.CharField(max_length=500, blank=True)
    to = models.JSONField(default=list)  # [[name, email], ...]
    cc = models.JSONField(default=list)
    reply_to = models.JSONField(default=list)
    # The Date header, or INTERNALDATE when it is missing or unreadable; always aware.
    date = models.DateTimeField()
    in_reply_to = models.CharField(max_length=998, blank=True)
    references = models.JSONField(default=list)  # normalized ids, oldest first
    size = models.PositiveIntegerField(default=0)
    snippet = models.CharField(max_length=300, blank=True)
    has_attachments = models.BooleanField(default=False)
    # Key of the raw RFC 5322 bytes in the blob store (posta.mail.blobs); empty until
    # the body is fetched.
    blob_key = models.CharField(max_length=100, blank=True)
    body_state = models.CharField(
        max_length=10, choices=BodyState.choices, default=BodyState.PENDING
    )
    body_attempts = models.PositiveSmallIntegerField(default=0)
    defects = models.JSONField(default=list)  # names of email.errors defects found
    gm_thrid = models.BigIntegerField(null=True, blank=True)
    gm_msgid = models.BigIntegerField(null=True, blank=True)
    # When the periodic sweep first found the message in no mailbox
    # (posta.mail.keepers); cleared when it has a copy again.
    orphan_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["user", "identity"], name="message_user_identity"),
        ]
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["user", "message_id"], name="message_user_msgid"),
            models.Index(fields=["user", "thread", "date"], name="message_user_thread_date"),
            # The mirror of the bodies walks it newest first (posta.sync.bodies).
            models.Index(
                fields=["user", "-date"],
                name="message_body_pending",
                condition=Q(body_state="pending"),
            ),
        ]

    def __str__(self) -> str:
        return self.subject


class Location(models.Model):
    """One IMAP copy of a message: folder + UID + flags + MODSEQ.

    `uid` is NULL while a move the user made is on its way to the server: the copy
    is shown in its new folder at once, and gets its UID when the worker (COPYUID,
    RFC 4315) or the next sync of that folder learns it. A negative `uid` marks a
    copy from before a UIDVALIDITY change (RFC 3501 §2.3.1.1) that the sync has not
    re-paired yet: the row (and everything linked to it) is kept until the folder's
    new first pass ends, and is re-used when the same message is found again.
    """

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="locations")
    # No index of its own: (folder, uid) and (folder, -date, -id) start with it. Each
    # index is one more B-tree insert per copy when a mailbox is first mirrored.
    folder = models.ForeignKey(
        Folder, on_delete=models.CASCADE, related_name="locations", db_index=False
    )
    uid = models.BigIntegerField(null=True, blank=True)
    seen = models.BooleanField(default=False)
    flagged = models.BooleanField(default=False)
    answered = models.BooleanField(default=False)
    draft = models.BooleanField(default=False)
    deleted = models.BooleanField(default=False)
    keywords = models.JSONField(default=list)  # other flags, e.g. $Forwarded, $Junk
    modseq = models.BigIntegerField(null=True, blank=True)
    # The copy joined a Message that was already stored (same identity) and its
    # content has not been compared with that message's yet: once its body is
    # downloaded, posta.mail.copies keeps it or splits it into a message of its own.
    content_pending = models.BooleanField(default=False)
    # Copies for the list screens (see the module docstring).
    # No index of its own either: (user, role, -date, -id) starts with it.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="mail_locations",
        db_index=False,
    )
    role = models.CharField(max_length=10, blank=True)
    date = models.DateTimeField()

    class Meta:
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["folder", "uid"], name="location_folder_uid"),
        ]
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["folder", "-date", "-id"], name="loc_folder_date"),
            models.Index(fields=["user", "role", "-date", "-id"], name="loc_user_role_date"),
            models.Index(
                fields=["user", "-date", "-id"],
                name="loc_user_flagged_date",
                condition=Q(flagged=True),
            ),
            models.Index(
                fields=["folder"], name="loc_folder_unread", condition=Q(seen=False)
            ),
            # The copies whose content is still to be compared (posta.sync.bodies).
            models.Index(
                fields=["folder"], name="loc_content_pending", condition=Q(content_pending=True)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.folder_id}:{self.uid}"

    def flag_names(self) -> list[str]:
        """The IMAP flags of this copy, system flags first (RFC 3501 §2.3.2)."""
        names = [
            name
            for name, on in (
                ("\\Seen", self.seen),
                ("\\Flagged", self.flagged),
                ("\\Answered", self.answered),
                ("\\Draft", self.draft),
                ("\\Deleted", self.deleted),
            )
            if on
        ]
        return names + [str(k) for k in self.keywords]


class RemoteAction(models.Model):
    """A change the user made that the server must learn (DESIGN §2: intents).

    Written in the same transaction as the local change; carried out by
    posta.sync.actions, idempotently, with retries. `source_folder`/`source_uid`
    name the server copy the action works on, so it stays addressable after the
    local Location moved or went away; `source_uidvalidity` is the UIDVALIDITY that
    UID belongs to. A UID means nothing in another numbering (RFC 3501 §2.3.1.1):
    after a UIDVALIDITY change the sync re-pairs the action with its copy by
    identity (posta.sync.rebind), or fails it with `error_code` RENUMBERED, and the
    worker never acts while the two differ.
    """

    RENUMBERED = "renumbered"  # error_code: the copy was not found in the new numbering

    class Kind(models.TextChoices):
        MOVE = "move", _("Move")
        FLAG = "flag", _("Flag")
        UNFLAG = "unflag", _("Remove flag")
        SEEN = "seen", _("Mark as read")
        UNSEEN = "unseen", _("Mark as unread")
        DELETE = "delete", _("Delete")
        EXPUNGE = "expunge", _("Delete permanently")
        APPEND = "append", _("Save to folder")

    class State(models.TextChoices):
        PENDING = "pending", _("Waiting")
        RUNNING = "running", _("In progress")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mail_actions"
    )
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="mail_actions")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="actions"
    )
    location = models.ForeignKey(
        Location, null=True, blank=True, on_delete=models.SET_NULL, related_name="actions"
    )
    source_folder = models.ForeignKey(
        Folder, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    source_uid = models.BigIntegerField(null=True, blank=True)
    source_uidvalidity = models.BigIntegerField(null=True, blank=True)
    # The copy's MODSEQ there, so a move cancelled before it ran puts it back as it was.
    source_modseq = models.BigIntegerField(null=True, blank=True)
    target_folder = models.ForeignKey(
        Folder, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # The Message-ID header (normalized), so a move can look for an earlier copy in the
    # target before copying again.
    message_id_header = models.CharField(max_length=998, blank=True)
    blob_key = models.CharField(max_length=100, blank=True)  # for APPEND
    # The earlier open action on the same copy that this one waits for (a flag
    # set while the copy's move is still on its way): it runs once that one is
    # over, on the copy that one left (posta.sync.actions hands it over).
    after = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="followers"
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    # The claim of a running action: which worker holds it, and until when. The
    # worker renews `lease_until` while it runs the account's actions (heartbeat),
    # so the claim of a killed worker runs out within seconds.
    claimed_by = models.CharField(max_length=100, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=50, blank=True)
    error_detail = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes: ClassVar[list[models.Index]] = [
            models.Index(
                fields=["account", "id"],
                name="action_open",
                condition=Q(state__in=["pending", "running"]),
            ),
            models.Index(fields=["user", "state"], name="action_user_state"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.state})"

    @property
    def failure_reason(self) -> str:
        """Why a failed action was not done, in the user's words, where the cause is
        specific; empty for the generic failures."""
        if self.error_code == self.RENUMBERED:
            return str(
                _("The server renumbered its messages; “%(kind)s” was not done.")
                % {"kind": self.get_kind_display()}
            )
        return ""


class RemoteContentSender(models.Model):
    """A sender whose remote images the user chose to always show ("Always show
    from …" in the reader). Kept per user, across sessions and devices."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="remote_content_senders"
    )
    address = models.CharField(max_length=500)  # lower-case
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["user", "address"], name="remote_sender_user_address"),
        ]

    def __str__(self) -> str:
        return self.address


class BlobToDrop(models.Model):
    """A blob no row stored any more when its last message was let go, but written
    or reused too recently to remove then (a new copy of the same bytes may be on
    its way: posta.mail.keepers); the sweep looks at it again later."""

    key = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.key
