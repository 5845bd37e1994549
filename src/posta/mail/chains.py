"""A user's actions on one copy, in the order the user made them.

A copy can still have an action on its way to the server when the user acts on it
again: a flag set, a read mark or a second move right after a move, while the
copy has no UID yet. Such a later action is never dropped. It is either

- folded into the open one: a move A->B the worker has not tried yet, followed by
  a move to C, becomes one move A->C (and a move back to A cancels it, the copy
  taking its old UID again); or
- chained after it (`RemoteAction.after`): the worker runs it once the earlier
  one is over, on the copy the earlier one left (posta.sync.actions hands the
  folder and UID over), so the server ends as the user last asked.

Only an open action never claimed (attempts == 0) is folded: one that ran, even
partly (a COPY before a kill), must finish as it began.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.utils import timezone

from posta.accounts.models import Folder
from posta.mail.models import Location, RemoteAction

Kind = RemoteAction.Kind
State = RemoteAction.State
OPEN_STATES = (State.PENDING, State.RUNNING)
MOVE_KINDS = (Kind.MOVE, Kind.DELETE)


class Fold(enum.Enum):
    NONE = "none"  # nothing to fold into: write a new (chained) action
    RETARGETED = "retargeted"  # the open move now goes to the new target
    CANCELLED = "cancelled"  # the open move went back to its source: nothing to do


def open_tails(copies: Iterable[Location]) -> dict[int, RemoteAction]:
    """The latest open action of each copy, by Location id (the one a new action
    on that copy waits for).

    Locked until the caller's transaction ends: a worker finishing one of them
    hands its copy over to the actions chained after it in one statement, which
    then waits, and so sees the action chained here. Without the lock a finish
    between this read and the commit would miss it (PostgreSQL; SQLite runs one
    writing transaction at a time anyway).
    """
    ids = [c.pk for c in copies]
    tails: dict[int, RemoteAction] = {}
    if not ids:
        return tails
    rows = (
        RemoteAction.objects.select_for_update()
        .filter(location_id__in=ids, state__in=OPEN_STATES)
        .order_by("id")
    )
    for action in rows:
        assert action.location_id is not None  # noqa: S101 - filtered above; narrows the type
        tails[action.location_id] = action
    return tails


def fold_move(tail: RemoteAction | None, copy: Location, target: Folder, *, kind: str) -> Fold:
    """Fold a move of `copy` to `target` into the copy's open move `tail`, if the
    worker has not tried that one yet. The conditional UPDATE loses cleanly to a
    worker's claim (pending -> running), and then the move is chained instead."""
    if (
        tail is None
        or tail.kind not in MOVE_KINDS
        or tail.state != State.PENDING
        or tail.attempts
        or tail.target_folder_id != copy.folder_id
        or tail.source_folder_id is None
        or tail.source_uid is None
    ):
        return Fold.NONE
    unsent = RemoteAction.objects.filter(pk=tail.pk, state=State.PENDING, attempts=0)
    if tail.source_folder_id != target.pk:
        changed = unsent.update(target_folder=target, kind=kind, updated_at=timezone.now())
        return Fold.RETARGETED if changed else Fold.NONE
    try:
        with transaction.atomic():
            if not unsent.update(state=State.DONE, updated_at=timezone.now()):
                return Fold.NONE
            # The server never moved it: the copy is where it was, with its UID.
            Location.objects.filter(pk=copy.pk).update(
                folder=target, uid=tail.source_uid, modseq=tail.source_modseq, role=target.role
            )
    except IntegrityError:
        return Fold.NONE  # the sync stored that UID again meanwhile: chain the move
    return Fold.CANCELLED
