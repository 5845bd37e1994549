"""The arrival pipeline: what Posta does with each new inbox message, in order.

DESIGN §8: on new mail the order is always filters, then out-of-office, then CRM
auto-linking, and a message is processed once, whatever the resyncs and kills.

Recording. `do_record_arrivals` (called by the `messages_stored` receiver in
posta.rules.tasks) writes one `Arrival` row per message announced with a folder
whose role is inbox. posta.mail announces each message once, with the folder it
was first stored in, and the row is unique per message, so a resync, a
UIDVALIDITY reset, a restart or a kill never records it twice. Only new mail is
*pending*: a message stored while its inbox was first mirrored (the folder has
never finished a sync, `Folder.synced_at` is empty: mail that was there before
Posta knew the account) or saved into the inbox from Posta is recorded as
*skipped* and never processed ("apply to existing mail" is the way to filter old
mail). A lost announcement (a process killed between the commit and the
receiver) is found by `recover_unrecorded`, part of the periodic sweep.

Processing. `process_pending(user_id)` claims the user's pending arrivals in
order of arrival (a lease, renewed between steps: a killed worker's claim runs
out after LEASE and another takes them over) and runs them through the
registered steps in `order`:

    10  filters          (posta.rules)
    20  out-of-office    (posta.rules)
    30  CRM auto-linking

A step is registered once, in an AppConfig.ready(), with
`register_step(name, order, fn)`. `fn(batch, outcomes)` gets the list of
Arrival rows that this step has not done yet (oldest first, all of one user) and
`outcomes`, a dict from message id to the `Outcome` the earlier steps left (a
fresh Outcome before the first). It may change the outcomes in place, and it
returns the message ids it cannot handle yet (a body not downloaded yet), or
None. The step runs inside one transaction together with the rows recording it
as done, so what it writes (RemoteAction intents, outbox rows, links) and the
mark "done" commit together or not at all: a step is never repeated for a
message and never half done. A step must therefore not talk to a server itself;
it writes rows that a worker carries out.

Deferred messages are tried again after RETRY_DELAY (later steps wait for them:
the order holds per message). A step that raises is retried for each message of
the batch alone, with a growing pause; after MAX_ATTEMPTS failures it is
recorded in `steps_failed` and the message goes on to the next step, so one
broken step never holds back the others.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from django.db import transaction
from django.db.models import Exists, Max, Min, OuterRef, Q
from django.utils import timezone

from posta.accounts.models import Folder
from posta.core.leases import make_owner
from posta.mail.models import Location, Message
from posta.rules.arrival_models import Arrival

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
RETRY_DELAY = timedelta(seconds=5)
MAX_ATTEMPTS = 5
BATCH = 100
# The sweep's look for announcements that never reached the receiver.
RECOVERY_WINDOW = timedelta(hours=6)
RECOVERY_GRACE = timedelta(minutes=2)
FRESH_SOURCES = ("sync", "idle")

Disposition = Literal["kept", "moved", "copied", "spam", "trash", "deleted"]


@dataclass
class Outcome:
    """What the steps so far did to one message.

    `disposition`: "kept" (still in the inbox), "copied" (kept, and a copy filed
    elsewhere), "moved" (to `target_folder_id`), "spam" / "trash" (moved to the
    account's Spam / Trash), "deleted" (gone for good). `stopped`: a step said no
    further processing (a filter's "stop"); later steps should respect it as
    their own rules say (out-of-office sends nothing for a stopped message).
    """

    stopped: bool = False
    disposition: Disposition = "kept"
    target_folder_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outcome:
        if not data:
            return cls()
        return cls(
            stopped=bool(data.get("stopped", False)),
            disposition=data.get("disposition", "kept"),
            target_folder_id=data.get("target_folder_id"),
        )


StepFn = Callable[[Sequence[Arrival], dict[int, Outcome]], Collection[int] | None]


@dataclass(frozen=True)
class Step:
    name: str
    order: int
    fn: StepFn


_steps: dict[str, Step] = {}


def register_step(name: str, order: int, fn: StepFn) -> None:
    """Add (or replace, by name) a step of the pipeline; see the module docstring."""
    _steps[name] = Step(name, order, fn)


def registered_steps() -> list[Step]:
    return sorted(_steps.values(), key=lambda s: (s.order, s.name))


def unregister_step(name: str) -> None:
    _steps.pop(name, None)


# --- recording --------------------------------------------------------------------


def do_record_arrivals(
    *, user_id: int, message_ids: Iterable[int], folder_id: int | None, source: str
) -> int:
    """Record the messages of one `messages_stored` announcement; returns how many
    were recorded as pending (0 when the folder is not an inbox)."""
    if folder_id is None:
        return 0
    folder = (
        Folder.objects.filter(pk=folder_id, account__user_id=user_id)
        .only("id", "role", "synced_at")
        .first()
    )
    if folder is None or folder.role != Folder.Role.INBOX:
        return 0
    fresh = source in FRESH_SOURCES and folder.synced_at is not None
    ids = list(Message.objects.filter(pk__in=list(message_ids), user_id=user_id).values_list(
        "pk", flat=True
    ))
    state = Arrival.State.PENDING if fresh else Arrival.State.SKIPPED
    Arrival.objects.bulk_create(
        [
            Arrival(user_id=user_id, message_id=pk, folder_id=folder.pk, source=source,
                    state=state)
            for pk in ids
        ],
        ignore_conflicts=True,
    )
    return len(ids) if fresh else 0


def _first_message_since(since: datetime) -> int | None:
    """The lowest Message id created at or after `since` (ids grow with time), by
    bisection on the primary key: Message has no index on its creation time."""
    bounds = Message.objects.aggregate(lo=Min("pk"), hi=Max("pk"))
    lo: int | None = bounds["lo"]
    hi: int | None = bounds["hi"]
    if lo is None or hi is None:
        return None
    last = Message.objects.filter(pk=hi).values_list("created_at", flat=True).first()
    if last is None or last < since:
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        created = (
            Message.objects.filter(pk__gte=mid).order_by("pk")
            .values_list("created_at", flat=True).first()
        )
        if created is not None and created >= since:
            hi = mid
        else:
            lo = mid + 1
    return lo


def recover_unrecorded(*, now: datetime | None = None) -> set[int]:
    """Record the recent inbox messages whose announcement never reached the
    receiver (the process died between the commit and it); returns the users
    with arrivals recorded now.

    Looks at messages created in the last RECOVERY_WINDOW (but not in the last
    RECOVERY_GRACE, which the receiver may still be handling) without an Arrival
    whose first copy is in an inbox that had been mirrored before.
    """
    now = now or timezone.now()
    boundary = _first_message_since(now - RECOVERY_WINDOW)
    if boundary is None:
        return set()
    in_inbox = Location.objects.filter(message=OuterRef("pk"), role=Folder.Role.INBOX)
    ids = list(
        Message.objects.filter(
            Exists(in_inbox),
            pk__gte=boundary,
            created_at__lt=now - RECOVERY_GRACE,
            arrival__isnull=True,
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:2000]
    )
    if not ids:
        return set()
    # Only messages whose *first* copy is in an inbox arrived there.
    firsts = (
        Location.objects.filter(message_id__in=ids)
        .values("message_id")
        .annotate(first=Min("id"))
        .values_list("first", flat=True)
    )
    groups: dict[tuple[int, int], list[int]] = {}
    for loc in Location.objects.filter(
        pk__in=list(firsts), role=Folder.Role.INBOX, folder__synced_at__isnull=False
    ).values("message_id", "folder_id", "user_id"):
        groups.setdefault((loc["user_id"], loc["folder_id"]), []).append(loc["message_id"])
    users: set[int] = set()
    for (user_id, folder_id), found in groups.items():
        if do_record_arrivals(
            user_id=user_id, message_ids=found, folder_id=folder_id, source="sync"
        ):
            users.add(user_id)
            log.warning(
                "recorded %d arrivals of user %s that were never announced", len(found), user_id
            )
    return users


# --- processing -------------------------------------------------------------------


def _claimable(now: datetime) -> Q:
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    return free & due & Q(state=Arrival.State.PENDING)


def _claim(user_id: int, owner: str, limit: int) -> list[Arrival]:
    now = timezone.now()
    ids = list(
        Arrival.objects.filter(_claimable(now), user_id=user_id)
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )
    if not ids:
        return []
    Arrival.objects.filter(_claimable(now), pk__in=ids).update(
        claimed_by=owner, lease_until=now + LEASE
    )
    return list(Arrival.objects.filter(pk__in=ids, claimed_by=owner).order_by("id"))


def process_pending(user_id: int, *, limit: int = BATCH) -> datetime | None:
    """Run the user's pending arrivals through the steps (module docstring).
    Returns when deferred or retried arrivals are next due, or None."""
    owner = make_owner()
    while True:
        batch = _claim(user_id, owner, limit)
        if not batch:
            break
        _run_batch(batch, owner)
    due: datetime | None = (
        Arrival.objects.filter(user_id=user_id, state=Arrival.State.PENDING)
        .exclude(next_attempt_at__isnull=True)
        .aggregate(m=Min("next_attempt_at"))["m"]
    )
    return due


def _run_batch(batch: list[Arrival], owner: str) -> None:
    outcomes = {a.message_id: Outcome.from_dict(a.outcome) for a in batch}
    held: set[int] = set()  # message ids waiting at an earlier step
    for step in registered_steps():
        todo = [a for a in batch if step.name not in a.steps_done and a.message_id not in held]
        if todo:
            held |= _run_step(step, todo, outcomes, owner)
    now = timezone.now()
    names = {s.name for s in registered_steps()}
    finished = [a.pk for a in batch if a.message_id not in held and names <= set(a.steps_done)]
    Arrival.objects.filter(pk__in=finished, claimed_by=owner).update(
        state=Arrival.State.DONE, finished_at=now, claimed_by="", lease_until=None,
        next_attempt_at=None,
    )
    Arrival.objects.filter(pk__in=[a.pk for a in batch if a.pk not in finished],
                           claimed_by=owner).update(claimed_by="", lease_until=None)


def _run_step(
    step: Step, todo: list[Arrival], outcomes: dict[int, Outcome], owner: str
) -> set[int]:
    """Run one step over `todo`; returns the message ids that wait (deferred or
    to be retried)."""
    try:
        return _apply(step, todo, outcomes, owner)
    except Exception:  # a step's failure must not stop the pipeline
        log.exception("arrival step %s failed for %d messages", step.name, len(todo))
    held: set[int] = set()
    for arrival in todo:  # alone, so that one bad message does not hold the others
        try:
            held |= _apply(step, [arrival], outcomes, owner)
        except Exception as exc:  # recorded on the row below
            log.exception("arrival step %s failed for message %s", step.name, arrival.message_id)
            if _record_failure(step, arrival, exc):
                held.add(arrival.message_id)
    return held


def _apply(
    step: Step, todo: list[Arrival], outcomes: dict[int, Outcome], owner: str
) -> set[int]:
    with transaction.atomic():
        # Fresh under the lock: another worker may have done the step meanwhile.
        mine = {
            pk: done
            for pk, done in Arrival.objects.select_for_update()
            .filter(pk__in=[a.pk for a in todo], claimed_by=owner)
            .values_list("pk", "steps_done")
        }
        rows = [a for a in todo if a.pk in mine and step.name not in mine[a.pk]]
        if not rows:
            return set()
        trial = {a.message_id: copy.copy(outcomes[a.message_id]) for a in rows}
        waiting = set(step.fn(rows, trial) or ())
        now = timezone.now()
        done: list[tuple[Arrival, list[str], dict[str, Any]]] = []
        for a in rows:
            if a.message_id in waiting:
                continue
            done.append((a, [*mine[a.pk], step.name], trial[a.message_id].to_dict()))
        for a, steps_done, outcome in done:
            Arrival.objects.filter(pk=a.pk).update(
                steps_done=steps_done, outcome=outcome, attempts=0, lease_until=now + LEASE
            )
        if waiting:
            Arrival.objects.filter(
                pk__in=[a.pk for a in rows if a.message_id in waiting]
            ).update(next_attempt_at=now + RETRY_DELAY)
    for a, steps_done, outcome in done:
        a.steps_done, a.outcome = steps_done, outcome
        outcomes[a.message_id] = trial[a.message_id]
    return waiting


def _record_failure(step: Step, arrival: Arrival, exc: Exception) -> bool:
    """Count a failed attempt; True while the step will be tried again, False
    when it is given up (recorded in steps_failed, the message goes on)."""
    attempts = arrival.attempts + 1
    arrival.attempts = attempts
    if attempts < MAX_ATTEMPTS:
        Arrival.objects.filter(pk=arrival.pk).update(
            attempts=attempts,
            next_attempt_at=timezone.now() + RETRY_DELAY * (2**attempts),
        )
        return True
    failed = {**arrival.steps_failed, step.name: f"{type(exc).__name__}: {exc}"[:500]}
    steps_done = [*arrival.steps_done, step.name]
    Arrival.objects.filter(pk=arrival.pk).update(
        attempts=0, steps_failed=failed, steps_done=steps_done
    )
    arrival.steps_failed, arrival.steps_done, arrival.attempts = failed, steps_done, 0
    return False


def users_due(*, now: datetime | None = None) -> list[int]:
    """Users with pending arrivals no live worker holds (for the sweep)."""
    now = now or timezone.now()
    return sorted(
        set(Arrival.objects.filter(_claimable(now)).values_list("user_id", flat=True))
    )
