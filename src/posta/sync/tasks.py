"""Huey tasks of the sync app: remote actions, bodies wanted now, and the sweep that
finds lost actions.

The database row is the source of truth (DESIGN §2); a queue item only wakes a
worker. `sweep_actions` runs every minute and re-enqueues accounts with due pending
actions, so an item lost with a crashed queue or worker delays an action, never
loses it. A pass that finds an action claimed by another worker looks again when
that claim runs out (posta.sync.claims), so a killed worker's action is taken
over within its lease, not at the next sweep. A lost body request costs nothing
either: the body is still "pending", and every sync pass downloads pending bodies.

posta.mail announces its work with signals (posta.mail.signals); the receivers
below, connected in SyncConfig.ready(), turn them into queue items.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from posta.mail import keepers
from posta.sync import actions, bodies, claims


@db_task()  # type: ignore[untyped-decorator]  # huey ships no types
def run_actions(account_id: int) -> int:
    """Carry out the account's pending RemoteActions (posta.sync.actions)."""
    finished = actions.run_account_actions(account_id)
    until = claims.held_until(account_id)
    if until is not None:
        wait = max((until - timezone.now()).total_seconds(), 0.0)
        run_actions.schedule((account_id,), delay=wait + 1.0)
    return finished


@db_task()  # type: ignore[untyped-decorator]  # huey ships no types
def fetch_bodies(account_id: int, message_ids: list[int]) -> int:
    """Download the bodies of `message_ids` from the account now (a message was
    opened before the background download reached it)."""
    return bodies.fetch_bodies_now(account_id, message_ids)


@db_periodic_task(crontab(minute="*"))  # type: ignore[untyped-decorator]  # huey ships no types
def sweep_actions() -> None:
    """Requeue accounts whose actions a lost queue item or a dead worker left."""
    for account_id in actions.sweep():
        run_actions(account_id)


@db_periodic_task(crontab(minute="17"))  # type: ignore[untyped-decorator]  # huey ships no types
def sweep_orphans() -> int:
    """Let go the messages in no mailbox that nothing needs (posta.mail.keepers)."""
    return keepers.do_sweep()


def enqueue_account_actions(account_ids: Iterable[int]) -> None:
    """Wake a worker for each account (called after the actions' transaction)."""
    for account_id in sorted(set(account_ids)):
        run_actions(account_id)


def schedule_account_actions(account_ids: Iterable[int], when: datetime) -> None:
    """Wake a worker for each account at `when`, the end of the undo window its
    new actions are held for (the sweep finds them anyway if this is lost)."""
    wait = max((when - timezone.now()).total_seconds(), 0.0)
    for account_id in sorted(set(account_ids)):
        run_actions.schedule((account_id,), delay=wait + 0.5)


def enqueue_body_fetch(account_id: int, message_ids: list[int]) -> None:
    fetch_bodies(account_id, sorted(set(message_ids)))


def on_actions_created(
    sender: Any, *, account_ids: list[int], not_before: datetime | None = None, **_: Any
) -> None:
    """Receiver of posta.mail.signals.actions_created."""
    if not_before is not None and not_before > timezone.now():
        schedule_account_actions(account_ids, not_before)
    else:
        enqueue_account_actions(account_ids)


def on_body_fetch_requested(
    sender: Any, *, account_id: int, message_ids: list[int], **_: Any
) -> None:
    """Receiver of posta.mail.signals.body_fetch_requested."""
    enqueue_body_fetch(account_id, message_ids)
