""""Apply to existing mail" ("Scansiona adesso"): one job over one folder.

The row is the job's truth: `cursor` is the id of the last Location done, and it
moves in the same transaction as the intents written for the copies up to it,
so a worker killed at any point resumes after the last committed batch and no
message is acted on twice (posta.rules.scan)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from posta.accounts.models import Folder


class ScanJob(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", _("Waiting")
        RUNNING = "running", _("In progress")
        DONE = "done", _("Done")
        CANCELLED = "cancelled", _("Cancelled")
        FAILED = "failed", _("Failed")

    OPEN_STATES = ("pending", "running")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="filter_scans"
    )
    folder = models.ForeignKey(Folder, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    acted = models.PositiveIntegerField(default=0)  # messages a rule acted on
    waiting = models.PositiveIntegerField(default=0)  # skipped: body not downloaded
    cursor = models.BigIntegerField(default=0)  # last Location id done
    top = models.BigIntegerField(default=0)  # highest Location id when it started
    cancel_requested = models.BooleanField(default=False)
    claimed_by = models.CharField(max_length=100, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"scan {self.pk} of {self.folder_id} ({self.state})"
