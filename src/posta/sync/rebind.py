"""The user's waiting actions re-paired with their copies after a UIDVALIDITY change.

An open RemoteAction names its server copy by source folder, UID and the
UIDVALIDITY that UID belongs to. When the folder's UIDVALIDITY changes, every
stored UID is void and the server may have given the same numbers to other
messages (RFC 3501 §2.3.1.1). The folder's new first pass re-pairs the set-aside
copies by identity (posta.mail.bulk_store); the actions waiting on them are re-paired in
the same batch transaction:

- a copy that an action takes out of the folder (move, delete, expunge) is paired
  by its message's identity with a copy the server lists in the new numbering, and
  is not stored in the folder again (as the sync's pins would not store it);
- a copy with flag changes only follows its Location: when the store adopts the
  row, the actions get the row's new UID, and the row keeps the user's flag value
  until the worker has set it;
- when the first pass ends, the actions still bound to an older numbering have no
  copy on the server any more: they fail with RemoteAction.RENUMBERED (shown to the
  user), and the copy the user saw arriving in the target is removed, because the
  server has it nowhere.

Actions of an older numbering pin nothing (posta.sync.folder_state._pins): their UIDs
name other messages now, whose flags and presence the sync must mirror. The worker
checks the UIDVALIDITY in its session before acting (posta.sync.actions) and waits
for this re-pairing while the two differ; `repaired` tells it when waiting is over.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.db.models import QuerySet
from django.utils import timezone

from posta.accounts.models import Folder
from posta.mail.models import Location, RemoteAction
from posta.sync.models import FolderSyncState

Kind = RemoteAction.Kind
State = RemoteAction.State
OPEN = (State.PENDING, State.RUNNING)
LEAVING = frozenset({Kind.MOVE, Kind.DELETE, Kind.EXPUNGE})
FLAG_FIELD = {
    Kind.SEEN: ("seen", True),
    Kind.UNSEEN: ("seen", False),
    Kind.FLAG: ("flagged", True),
    Kind.UNFLAG: ("flagged", False),
}


@dataclass(slots=True)
class _Waiting:
    pk: int
    kind: str
    location_id: int | None


# pk, kind, message id, source UID, its UIDVALIDITY, location id
_Row = tuple[int, str, int | None, int, int | None, int | None]


def _bound_elsewhere(folder: Folder) -> QuerySet[RemoteAction]:
    """The folder's actions whose UID belongs to another numbering than the
    folder's stored one (NULL included: such a UID is of no known numbering)."""
    return (
        RemoteAction.objects.filter(source_folder=folder, source_uid__isnull=False)
        .exclude(source_uidvalidity=folder.uidvalidity)
    )


class StaleActions:
    """One folder's open actions of an older numbering, grouped by the copy (old
    UIDVALIDITY and UID) they act on."""

    def __init__(self, folder: Folder, rows: list[_Row]) -> None:
        self.folder = folder
        copies: dict[tuple[int, int], list[_Waiting]] = defaultdict(list)
        message_of: dict[tuple[int, int], int | None] = {}
        for pk, kind, message_id, uid, uidvalidity, location_id in rows:
            key = (uidvalidity or 0, uid)
            copies[key].append(_Waiting(pk, kind, location_id))
            message_of[key] = message_id
        # Copies leaving the folder, per message, oldest numbering and UID first.
        self.leaving: dict[int, list[list[_Waiting]]] = defaultdict(list)
        # Copies with flag changes only, per Location.
        self.flagged: dict[int, list[_Waiting]] = defaultdict(list)
        for key in sorted(copies):
            waiting = copies[key]
            message_id = message_of[key]
            if any(w.kind in LEAVING for w in waiting):
                if message_id is not None:
                    self.leaving[message_id].append(waiting)
                continue
            for w in waiting:
                if w.location_id is not None:
                    self.flagged[w.location_id].append(w)

    def take_leaving(self, records: list[tuple[int, int]]) -> set[int]:
        """Pair copies leaving the folder with the batch's (uid, message id) by
        identity; return the UIDs that must not be stored in the folder."""
        skip: set[int] = set()
        for uid, message_id in sorted(records):
            waiting = self.leaving.get(message_id)
            if not waiting:
                continue
            self._bind(waiting.pop(0), uid)
            skip.add(uid)
        return skip

    def adopt(self, adopted: list[Location]) -> None:
        """Pair flag-only copies with their adopted Location (which now holds the
        new UID), and keep the user's flag values on it: the server has the old
        ones until the worker runs, and the pins then hide the server's echo."""
        for loc in adopted:
            waiting = self.flagged.pop(loc.pk, None)
            if not waiting or loc.uid is None:
                continue
            for w in waiting:  # in the order the user made them: the last wins
                field, value = FLAG_FIELD[Kind(w.kind)]
                setattr(loc, field, value)
            self._bind(waiting, loc.uid)

    def _bind(self, waiting: list[_Waiting], uid: int) -> None:
        RemoteAction.objects.filter(pk__in=[w.pk for w in waiting], state__in=OPEN).update(
            source_uid=uid, source_uidvalidity=self.folder.uidvalidity
        )


def stale_actions(folder: Folder) -> StaleActions | None:
    """The folder's open actions of an older numbering, or None (the usual case:
    one indexed query)."""
    if folder.uidvalidity is None:
        return None
    rows = list(
        _bound_elsewhere(folder)
        .filter(state__in=OPEN)
        .order_by("id")
        .values_list(
            "pk", "kind", "message_id", "source_uid", "source_uidvalidity", "location_id"
        )
    )
    if not rows:
        return None
    return StaleActions(folder, [(a, b, c, int(d or 0), e, f) for a, b, c, d, e, f in rows])


def fail_unpaired(folder: Folder) -> int:
    """At the end of the first pass of a new numbering: fail the waiting actions
    whose copy was not found in it (a running one is left to its worker, which
    checks before acting). Returns how many failed. Run inside a transaction."""
    unpaired = list(
        _bound_elsewhere(folder)
        .filter(state=State.PENDING)
        .values_list("pk", "kind", "location_id")
    )
    for _pk, kind, location_id in unpaired:
        forget_moving_copy(kind, location_id)
    detail = f"copy not found after UIDVALIDITY changed to {folder.uidvalidity}"
    return (
        RemoteAction.objects.filter(pk__in=[pk for pk, _k, _l in unpaired], state=State.PENDING)
        .update(
            state=State.FAILED,
            error_code=RemoteAction.RENUMBERED,
            error_detail=detail,
            updated_at=timezone.now(),
        )
    )


def forget_moving_copy(kind: str, location_id: int | None) -> None:
    """A move or delete that can no longer be done: its copy, shown in the target
    without a UID, is on the server in neither folder. A copy the target's sync has
    found meanwhile (it has a UID) stays."""
    if kind in {Kind.MOVE, Kind.DELETE} and location_id is not None:
        Location.objects.filter(pk=location_id, uid__isnull=True).delete()


def repaired(folder_id: int, uidvalidity: int) -> bool:
    """Whether the sync has re-paired the folder's copies in the numbering
    `uidvalidity` (its first pass in it is done): an action still bound to another
    numbering then has no copy left to act on."""
    return (
        Folder.objects.filter(pk=folder_id, uidvalidity=uidvalidity).exists()
        and FolderSyncState.objects.filter(
            folder_id=folder_id, uidvalidity=uidvalidity, initial_done=True
        ).exists()
    )
