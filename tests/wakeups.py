"""The worker wake-ups of the outbox (posta.mail.signals), recorded instead of queued.

The tests drive the delivery worker themselves; nothing consumes the queue here.
While `recorded_wakeups` is active the delivery app's receivers are disconnected,
so the signals only land in the lists given.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from posta.delivery import tasks
from posta.mail import signals

_RECEIVERS = (
    (signals.outgoing_queued, tasks.on_outgoing_queued, "posta-delivery-send"),
    (signals.draft_changed, tasks.on_draft_changed, "posta-delivery-draft"),
)


@contextmanager
def recorded_wakeups(
    *,
    sends: list[tuple[int, datetime | None]] | None = None,
    drafts: list[int] | None = None,
) -> Iterator[None]:
    """Record `(outgoing_id, send_at)` of every send wake-up into `sends` and the
    id of every draft wake-up into `drafts` (when given)."""

    def on_send(sender: Any, *, outgoing_id: int, send_at: datetime | None, **_: Any) -> None:
        if sends is not None:
            sends.append((outgoing_id, send_at))

    def on_draft(sender: Any, *, outgoing_id: int, **_: Any) -> None:
        if drafts is not None:
            drafts.append(outgoing_id)

    for signal, _receiver, uid in _RECEIVERS:
        signal.disconnect(dispatch_uid=uid)
    signals.outgoing_queued.connect(on_send, dispatch_uid="tests-record-send")
    signals.draft_changed.connect(on_draft, dispatch_uid="tests-record-draft")
    try:
        yield
    finally:
        signals.outgoing_queued.disconnect(dispatch_uid="tests-record-send")
        signals.draft_changed.disconnect(dispatch_uid="tests-record-draft")
        for signal, receiver, uid in _RECEIVERS:
            signal.connect(receiver, dispatch_uid=uid)
