"""Signals the mail app sends so that the worker side can act, without the mail app
importing it (dependency inversion: posta.mail never imports posta.sync or
posta.delivery; those apps connect their receivers in their AppConfig.ready()).

Every one is sent through `notify_after_commit`, after the transaction that wrote
the state commits (`transaction.on_commit`), so a receiver never sees rows that may
still roll back. The rows are the source of truth (DESIGN §2): a lost or failed
signal only delays the work, which the periodic sweeps and sync passes pick up.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.dispatch import Signal

log = logging.getLogger(__name__)

#: RemoteAction rows were written; kwargs: `account_ids` (sorted list of int).
actions_created = Signal()

#: The user opened messages whose body is not stored yet; kwargs: `account_id`
#: (int) and `message_ids` (list of int) to fetch from that account now.
body_fetch_requested = Signal()

#: An OutgoingMessage may leave; kwargs: `outgoing_id` (int) and `send_at`
#: (aware datetime at which to try it, or None for now).
outgoing_queued = Signal()

#: A draft was saved or cancelled, so its server copy in Drafts is to be replaced
#: or removed; kwargs: `outgoing_id` (int).
draft_changed = Signal()


def notify_after_commit(signal: Signal, *, sender: Any, **kwargs: Any) -> None:
    """Send `signal` once the current transaction commits (at once outside one).

    A receiver that fails is logged, never raised into the user's request: what it
    was to start is already stored and will be found by the next sweep.
    """

    def send() -> None:
        for receiver, result in signal.send_robust(sender=sender, **kwargs):
            if isinstance(result, Exception):
                log.warning(
                    "wake-up %s failed in %r", kwargs, receiver,
                    exc_info=(type(result), result, result.__traceback__),
                )

    transaction.on_commit(send)
