"""Huey tasks of the sync app: remote actions, and the sweep that finds lost ones.

The database row is the source of truth (DESIGN §2); a queue item only wakes a
worker. `sweep_actions` runs every minute and re-enqueues accounts with due pending
actions, so an item lost with a crashed queue or worker delays an action, never
loses it.
"""

from __future__ import annotations

from collections.abc import Iterable

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from posta.sync import actions


@db_task()  # type: ignore[untyped-decorator]  # huey ships no types
def run_actions(account_id: int) -> int:
    """Carry out the account's pending RemoteActions (posta.sync.actions)."""
    return actions.run_account_actions(account_id)


@db_periodic_task(crontab(minute="*"))  # type: ignore[untyped-decorator]  # huey ships no types
def sweep_actions() -> None:
    """Requeue accounts whose actions a lost queue item or a dead worker left."""
    for account_id in actions.sweep():
        run_actions(account_id)


def enqueue_account_actions(account_ids: Iterable[int]) -> None:
    """Wake a worker for each account (called after the actions' transaction)."""
    for account_id in sorted(set(account_ids)):
        run_actions(account_id)
