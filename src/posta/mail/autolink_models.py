"""The rows behind CRM auto-linking (posta.mail.autolink_queue): the batches of new
mail still to be linked, and the "link existing mail" jobs of records.

Both are the source of truth (DESIGN §2): the queue only wakes a worker, and the
periodic sweep wakes one for any row a lost queue item or a killed worker left.
"""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models


class LinkBatch(models.Model):
    """Messages of one stored batch waiting to be linked to the records that
    already exist. Written in the transaction that stores the messages, so a
    batch and its row commit together or not at all; deleted in the transaction
    that writes its links."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    message_ids = models.JSONField(default=list)
    # The claim of the worker linking it; a killed worker's claim runs out.
    claimed_by = models.CharField(max_length=100, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["user", "id"], name="linkbatch_user"),
        ]

    def __str__(self) -> str:
        return f"link batch of user {self.user_id}: {len(self.message_ids)} messages"


class RecordLinkJob(models.Model):
    """ "Link existing mail": the user's stored mail matched against the addresses
    of some records (one record for the button on its page; every record whose
    addresses were added while the job waited, for the automatic one), in chunks
    of messages by id, so the page shows the progress and a killed worker's job
    resumes where it was."""

    class State(models.TextChoices):
        PENDING = "pending", "pending"
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # Record refs ("contact:12"), each once.
    records = models.JSONField(default=list)
    automatic = models.BooleanField(default=False)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    # Messages found matching the records (linked now or already before).
    linked = models.PositiveIntegerField(default=0)
    # The highest message id already matched: the next chunk starts after it.
    after_id = models.BigIntegerField(default=0)
    # Messages stored after the job started are linked by the batches, not here.
    until_id = models.BigIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)
    claimed_by = models.CharField(max_length=100, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["user", "-id"], name="recordlinkjob_user"),
        ]

    def __str__(self) -> str:
        return f"link existing mail for {', '.join(self.records)} ({self.state})"

    @property
    def finished(self) -> bool:
        return self.state in (self.State.DONE, self.State.FAILED)

    @property
    def percent(self) -> int:
        if self.state == self.State.DONE:
            return 100
        return min(99, self.done * 100 // self.total) if self.total else 0
