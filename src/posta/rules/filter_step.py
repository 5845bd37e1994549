"""The arrival pipeline's "filters" step (order 10, posta.rules.arrivals): new
inbox mail of accounts whose filters do not run on their server goes through
Posta's executor (posta.rules.executor).

A message is read whole, as the server's Sieve would read it at delivery; one
whose body is not downloaded yet is asked for (the sync's worker downloads it at
once) and deferred, so the pipeline tries it again a moment later. Rules that
are broken for the account (a folder gone) are left out, as in the script the
server runs, and shown as broken in the Filters tab.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from django.utils import timezone

from posta.accounts.models import Account
from posta.mail import signals
from posta.mail.models import Location, Message
from posta.rules import executor, filters
from posta.rules.arrival_models import Arrival
from posta.rules.arrivals import Outcome
from posta.rules.filter_models import FilterServer

log = logging.getLogger(__name__)

NAME = "filters"
ORDER = 10
# How long a message waits for its body before the filters give up on it.
BODY_WAIT = timedelta(minutes=30)


def runs_on_server(account: Account) -> bool:
    server = FilterServer.objects.filter(account=account).first()
    return server is not None and server.runs_on_server


def filter_arrivals(batch: Sequence[Arrival], outcomes: dict[int, Outcome]) -> list[int]:
    waiting: list[int] = []
    by_account: dict[int, list[Arrival]] = {}
    rows = (
        Arrival.objects.filter(pk__in=[a.pk for a in batch])
        .select_related("message", "folder__account__user")
        .order_by("id")
    )
    for arrival in rows:
        by_account.setdefault(arrival.folder.account_id, []).append(arrival)
    for items in by_account.values():
        account = items[0].folder.account
        if runs_on_server(account):
            continue  # the server's Sieve filtered them at delivery
        resolved = [r.spec for r in filters.resolved_for_account(account) if r.spec is not None]
        if not resolved:
            continue
        prepared = executor.prepare(account, resolved)
        fetch: list[int] = []
        copies = _copies_of(items)
        batch_items: list[executor.Item] = []
        for arrival in items:
            message = arrival.message
            view = executor.view_of(message)
            if view is None:
                if (
                    message.body_state == Message.BodyState.PENDING
                    and timezone.now() - arrival.created_at < BODY_WAIT
                ):
                    waiting.append(message.pk)
                    fetch.append(message.pk)
                else:
                    log.warning("filters skipped message %s: its body is unreadable", message.pk)
                continue
            copy = copies.get((message.pk, arrival.folder_id))
            if copy is None:
                continue  # moved or deleted by the user meanwhile: nothing to filter
            batch_items.append(executor.Item(copy, view, outcomes[message.pk]))
        executor.run_batch(prepared, batch_items)
        if fetch:
            signals.notify_after_commit(
                signals.body_fetch_requested, sender=Message, account_id=account.pk,
                message_ids=fetch,
            )
    return waiting


def _copies_of(arrivals: Sequence[Arrival]) -> dict[tuple[int, int], Location]:
    """The server copy of each arrival (message, folder), in one query; the first
    one where a folder holds two."""
    found: dict[tuple[int, int], Location] = {}
    rows = (
        Location.objects.filter(
            message_id__in={a.message_id for a in arrivals},
            folder_id__in={a.folder_id for a in arrivals},
            uid__gt=0,
        )
        .select_related("folder", "message")
        .order_by("id")
    )
    for copy in rows:
        found.setdefault((copy.message_id, copy.folder_id), copy)
    return found
