"""The record of new mail waiting for the arrival pipeline (posta.rules.arrivals).

One `Arrival` per message first stored in an inbox. The row is the source of truth
(DESIGN §2): the queue only wakes a worker, a sweep finds rows a lost queue item
missed, and the row's `steps_done` makes each step run once per message whatever
the kills and restarts.
"""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q

from posta.accounts.models import Folder
from posta.mail.models import Message


class Arrival(models.Model):
    """A message that arrived in an inbox, and how far the pipeline got with it."""

    class State(models.TextChoices):
        PENDING = "pending", "pending"
        DONE = "done", "done"
        # Stored in an inbox but not new mail: the first mirror of a folder (mail
        # that was there before Posta knew the account) or a copy saved from Posta.
        SKIPPED = "skipped", "skipped"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mail_arrivals"
    )
    # One row per message: the uniqueness is what makes recording idempotent.
    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="arrival")
    folder = models.ForeignKey(Folder, on_delete=models.CASCADE, related_name="+")
    source = models.CharField(max_length=10)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    # Names of the steps that have run for this message, in order.
    steps_done = models.JSONField(default=list)
    # Steps that failed for good (after the last attempt): {name: error text}.
    steps_failed = models.JSONField(default=dict)
    # posta.rules.arrivals.Outcome as a dict, as the last done step left it.
    outcome = models.JSONField(default=dict)
    # The claim of a worker processing it, renewed between steps.
    claimed_by = models.CharField(max_length=100, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes: ClassVar[list[models.Index]] = [
            models.Index(
                fields=["user", "id"], name="arrival_pending", condition=Q(state="pending")
            ),
        ]

    def __str__(self) -> str:
        return f"arrival of {self.message_id} ({self.state})"
