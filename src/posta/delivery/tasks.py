"""Huey tasks of the delivery worker (`posta worker`).

The database row is the truth; these only wake a worker at the right moment. A lost
queue item costs at most one sweep interval: `sweep` finds every due row, every
row a dead worker left sending, and every pending follow-up.

posta.mail announces work with signals (posta.mail.signals) sent after commit;
the receivers below, connected in DeliveryConfig.ready(), turn them into queue
items.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from posta.delivery import drafts, followups, sending

log = logging.getLogger(__name__)


@db_task()  # type: ignore[untyped-decorator]  # huey is untyped
def send_outgoing(outgoing_id: int) -> None:
    sending.deliver(outgoing_id)


@db_task()  # type: ignore[untyped-decorator]  # huey is untyped
def store_draft(outgoing_id: int) -> None:
    drafts.store_draft(outgoing_id)


@db_periodic_task(crontab(minute="*"))  # type: ignore[untyped-decorator]  # huey is untyped
def sweep() -> None:
    """Every minute: recover stalled rows, send what is due, retry follow-ups,
    bring the server copies of drafts up to date."""
    try:
        run_pass()
    except Exception:
        log.exception("delivery sweep failed; the next one tries again")


def run_pass() -> None:
    """One pass of everything the delivery worker looks after (also the loop of
    `posta delivery_worker`)."""
    sending.recover_stalled()
    sending.deliver_due()
    for outgoing_id in followups.follow_ups_due():
        followups.run_follow_ups(outgoing_id)
    drafts.store_due()


def on_outgoing_queued(
    sender: Any, *, outgoing_id: int, send_at: datetime | None, **_: Any
) -> None:
    """Receiver of posta.mail.signals.outgoing_queued: try `outgoing_id` at
    `send_at` (now when None)."""
    if send_at is None:
        send_outgoing(outgoing_id)
    else:
        send_outgoing.schedule((outgoing_id,), eta=send_at)


def on_draft_changed(sender: Any, *, outgoing_id: int, **_: Any) -> None:
    """Receiver of posta.mail.signals.draft_changed: update the server copy of the
    draft a moment from now, so that the saves of a burst are appended once, the
    newest (posta.delivery.drafts)."""
    store_draft.schedule((outgoing_id,), delay=drafts.DEBOUNCE.total_seconds())
