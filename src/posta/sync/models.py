"""Sync bookkeeping beyond the Folder's own UIDVALIDITY/UIDNEXT/HIGHESTMODSEQ.

- `SyncLease`: which sync process holds an account (DESIGN §2). A process takes an
  account whose lease is missing or expired with one conditional UPDATE (or INSERT),
  renews it while it works, and a dead process's lease expires within a minute.
- `FolderSyncState`: how far the first, newest-first pass of a folder got, so a kill
  at any point resumes where it stopped instead of starting over.
"""

from __future__ import annotations

from django.db import models

from posta.accounts.models import Account, Folder


class SyncLease(models.Model):
    """One account claimed by one sync process until `expires_at`."""

    account = models.OneToOneField(
        Account, on_delete=models.CASCADE, primary_key=True, related_name="sync_lease"
    )
    owner = models.CharField(max_length=100, blank=True)  # host:pid:random
    expires_at = models.DateTimeField()
    acquired_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.account_id} -> {self.owner}"


class FolderSyncState(models.Model):
    """Progress of a folder's first pass (newest first), per UIDVALIDITY.

    Invariant: every server UID in [`low_uid`, Folder.uidnext) is stored as a
    Location. The first pass walks `low_uid` down to 1 in batches; each batch and
    its new `low_uid` commit in one transaction.
    """

    folder = models.OneToOneField(
        Folder, on_delete=models.CASCADE, primary_key=True, related_name="sync_state"
    )
    uidvalidity = models.BigIntegerField()
    low_uid = models.BigIntegerField()
    initial_done = models.BooleanField(default=False)
    # The folder's message count on the server when the pass began, for progress.
    total = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.folder_id}: {self.low_uid}"
