"""Signals the mail app sends so that the worker side can act, without the mail app
importing it (dependency inversion: posta.mail never imports posta.sync or
posta.delivery; those apps connect their receivers in their AppConfig.ready()).
A package that reacts to new mail (filters, out-of-office, CRM linking, PEC
receipts) subscribes to `messages_stored` and imports posta.mail only.

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

#: RemoteAction rows were written; kwargs: `account_ids` (sorted list of int) and
#: `not_before` (aware datetime or None): the actions are held until then (the undo
#: window of a move or delete), so a worker is best woken at that time.
actions_created = Signal()

#: The user opened messages whose body is not stored yet; kwargs: `account_id`
#: (int) and `message_ids` (list of int) to fetch from that account now.
body_fetch_requested = Signal()

#: An OutgoingMessage may leave; kwargs: `outgoing_id` (int) and `send_at`
#: (aware datetime at which to try it, or None for now).
outgoing_queued = Signal()

#: Messages entered the user's mail store (posta.mail.ingest, the only sender).
#: Sent once per stored batch, after its transaction commits; kwargs:
#:
#: - `user_id` (int): the owner of the messages;
#: - `message_ids` (sorted, non-empty list of int): Message rows the batch
#:   *created*, i.e. messages this user's store did not hold in any folder of any
#:   account before. A further copy of a known message is never announced: a
#:   message moved or labelled elsewhere, the Sent copy of mail sent from Posta,
#:   a copy re-paired after a UIDVALIDITY change, a message met again by a resync
#:   or by the pass that follows a kill. So each message is announced exactly
#:   once, with the folder it was first stored in; "first seen in an inbox"
#:   (DESIGN §8) is `folder_id` naming a folder whose role is inbox (a sync pass
#:   takes INBOX before the other folders, so mail that lands in INBOX and in a
#:   Gmail "All Mail" label is announced with INBOX);
#: - `folder_id` (int or None): the folder the batch stored the copies in; None
#:   when there is no copy yet (mail just sent: its Sent copy comes later);
#: - `source` (str): why it was stored: "sync" (a sync pass: first sync, resync,
#:   a hole refetched), "idle" (news on a watched folder, IMAP IDLE), "sent"
#:   (sent from Posta), "appended" (saved into a folder from Posta, announced
#:   once the server holds the copy and the message has its real identity),
#:   "imported" (a file brought in from outside, e.g. an .eml dropped on a CRM
#:   record: no folder, kept by its CRM link in the Imported folder).
#:
#: Receivers run in the process that stored the mail, after commit: a slow one
#: delays that process, so it should write a row or queue a job and return. A
#: receiver that raises is logged and does not affect the others.
messages_stored = Signal()

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
