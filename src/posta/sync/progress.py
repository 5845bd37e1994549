"""The account's first-sync progress, as the mail screens show it."""

from __future__ import annotations

from dataclasses import dataclass

from posta.accounts.models import Account


@dataclass
class Progress:
    """Messages stored vs messages on the server, shown as "12,400 of 100,000"."""

    account_id: int
    done: int = 0
    total: int = 0
    active: bool = False

    def add(self, count: int) -> None:
        """Count `count` new copies; call inside the batch's transaction."""
        self.done += count
        if self.active:
            Account.objects.filter(pk=self.account_id).update(
                sync_progress_done=min(self.done, self.total), sync_progress_total=self.total
            )
