"""Out-of-office as a step of the arrival pipeline (posta.rules.arrivals, order
20, after the filters): new inbox mail of a covered account gets a pending
AutoReply row, in the pipeline's transaction, and a worker is woken after the
commit. Database only: the worker (posta.rules.autoreply_responder) decides
with the message's headers and sends.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from django.db import transaction

from posta.accounts.models import Folder
from posta.rules.arrival_models import Arrival
from posta.rules.arrivals import Outcome
from posta.rules.autoreply_models import AutoReply, AutoReplySettings
from posta.rules.autoreply_settings import covers
from posta.rules.autoreply_tasks import send_replies

STEP_NAME = "autoreply"
STEP_ORDER = 20
State = AutoReply.State


def filter_outcome(outcome: Outcome) -> str:
    """What the filters did, in the decision's words: a stopped message and one
    sent to Spam, Trash or deleted get no reply; one filed elsewhere does (as
    with Sieve, where `fileinto` does not cancel `vacation`)."""
    if outcome.stopped:
        return "stopped"
    if outcome.disposition in ("spam", "trash", "deleted"):
        return outcome.disposition
    return "moved" if outcome.disposition == "moved" else ""


def do_queue(
    *, user_id: int, message_ids: list[int], folder_id: int | None,
    outcomes: dict[int, str] | None = None,
) -> list[int]:
    """Pending rows for `message_ids`, new in the inbox `folder_id`, when the
    user's out-of-office is on and covers that account. `outcomes` maps a message
    to what the filters did with it ("stopped", "spam", "trash", "deleted",
    "moved"), for the worker's decision."""
    if folder_id is None or not message_ids:
        return []
    folder = Folder.objects.select_related("account").filter(pk=folder_id).first()
    if folder is None or folder.role != Folder.Role.INBOX or folder.account.user_id != user_id:
        return []
    found = AutoReplySettings.objects.filter(user_id=user_id, enabled=True).first()
    if found is None or not covers(found, folder.account_id):
        return []
    outcomes = outcomes or {}
    rows = [
        AutoReply(
            user_id=user_id, account_id=folder.account_id, message_id=message_id,
            filter_outcome=outcomes.get(message_id, ""), text_key=found.text_key(),
        )
        for message_id in message_ids
    ]
    AutoReply.objects.bulk_create(rows, ignore_conflicts=True)
    return list(
        AutoReply.objects.filter(
            user_id=user_id, message_id__in=message_ids, state=State.PENDING
        ).values_list("pk", flat=True)
    )


def run_step(batch: Sequence[Arrival], outcomes: dict[int, Outcome]) -> Collection[int] | None:
    """The pipeline's step: queue the batch by inbox, wake a worker after commit."""
    by_folder: dict[int, list[int]] = {}
    for arrival in batch:
        by_folder.setdefault(arrival.folder_id, []).append(arrival.message_id)
    queued: list[int] = []
    for folder_id, message_ids in by_folder.items():
        queued += do_queue(
            user_id=batch[0].user_id, message_ids=message_ids, folder_id=folder_id,
            outcomes={m: filter_outcome(outcomes[m]) for m in message_ids if m in outcomes},
        )
    if queued:
        transaction.on_commit(send_replies)
    return None
