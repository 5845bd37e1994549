"""Keepers: what still needs a message that is in no mailbox (DESIGN §5).

A message whose last Location goes (deleted or expunged on the server, moved out of
every synced folder, its account removed, a Sent copy that could not be appended)
is kept, with its raw blob and so its attachments, while something needs it: a
CRM link, a shared conversation, a send whose Sent copy is still on its way. Each
of those registers a *keeper* here: a function that, given a user and some of
their message ids, answers which of them it still needs. The packages that own the
reasons live above or beside mail (crm's links are registered by posta.mail.links,
shares by posta.shares), so mail asks them without importing them.

A location-less message no keeper needs is let go: its row, and its blob when no
other row stores the same bytes (blobs are content-addressed and shared). A new
copy of the same bytes may be arriving meanwhile: its writer found the blob there
(and refreshed its mtime) but has not committed the row naming it yet. So a blob
written or reused in the last BLOB_GRACE is not removed at once but recorded
(`BlobToDrop`), and the sweep removes it once it is older and still unused
(posta.mail.blobs.remove_unless_fresh closes the gap between the check and the
removal). Two moments let go:

- at once, where the loss is certain (`do_let_go`): an account removed
  (`do_delete_account_keeping_needed`), a last link removed;
- in the periodic sweep (`do_sweep`), for copies the sync lost. A message moved
  by another client vanishes from one folder before the sync meets it in the
  other, so the sweep only marks an orphan (`Message.orphan_since`) and lets it
  go when a later sweep, `grace` after, finds it still location-less and unneeded.

The messages in no mailbox that some keeper needs are the Imported folder
(`kept_page`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from posta.accounts.models import Account
from posta.accounts.services import do_delete_account
from posta.mail import blobs
from posta.mail.models import BlobToDrop, Location, Message, OutgoingMessage, RemoteAction

log = logging.getLogger(__name__)

#: A keeper: (user id, message ids of that user) -> the ids it still needs.
Keeper = Callable[[int, Sequence[int]], Collection[int]]

_keepers: dict[str, Keeper] = {}
# Keepers whose messages are the Imported folder (a CRM link, a share); the others
# (a Sent copy on its way, an open action) only keep a message a short while.
_shown: set[str] = set()

BATCH = 500
SWEEP_GRACE = timedelta(hours=1)
# Longer than any transaction that stores a row naming a blob it has just written.
BLOB_GRACE = timedelta(minutes=10)


def register_keeper(name: str, fn: Keeper, *, in_imported: bool = True) -> None:
    """Register (or replace) the keeper called `name`. Call it from an AppConfig's
    ready(); a keeper must be cheap for a batch of ids (one or two queries).
    `in_imported`: the messages it keeps are listed in the Imported folder."""
    _keepers[name] = fn
    if in_imported:
        _shown.add(name)
    else:
        _shown.discard(name)


def keeper_names() -> list[str]:
    return sorted(_keepers)


def needed(user_id: int, message_ids: Iterable[int], *, shown_only: bool = False) -> set[int]:
    """The ids among `message_ids` that any keeper still needs (`shown_only`: any
    keeper whose messages are listed in Imported)."""
    ids = sorted(set(message_ids))
    out: set[int] = set()
    names = sorted(n for n in _keepers if n in _shown or not shown_only)
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        for name in names:
            rest = [i for i in chunk if i not in out]
            if not rest:
                break
            asked = set(rest)
            out.update(i for i in _keepers[name](user_id, rest) if i in asked)
    return out


def _pending_sent_copy(user_id: int, message_ids: Sequence[int]) -> set[int]:
    """Mail sent from Posta is stored before its Sent copy exists; it is needed
    until the copy is there (or given up on: then only another keeper keeps it)."""
    rows = Message.objects.filter(user_id=user_id, pk__in=list(message_ids)).values_list(
        "pk", "message_id"
    )
    by_header = {header: pk for pk, header in rows if header}
    if not by_header:
        return set()
    waiting = OutgoingMessage.objects.filter(
        user_id=user_id, message_id__in=list(by_header)
    ).filter(
        Q(sent_copy=OutgoingMessage.FollowUp.PENDING)
        | Q(state__in=[OutgoingMessage.State.SENDING, *OutgoingMessage.WAITING_STATES])
    )
    return {by_header[h] for h in waiting.values_list("message_id", flat=True)}


def _open_actions(user_id: int, message_ids: Sequence[int]) -> set[int]:
    """A pending append or move names the message: it is about to have a copy."""
    return set(
        RemoteAction.objects.filter(
            user_id=user_id,
            message_id__in=list(message_ids),
            state__in=[RemoteAction.State.PENDING, RemoteAction.State.RUNNING],
        ).values_list("message_id", flat=True)
    )


register_keeper("mail.sent_copy", _pending_sent_copy, in_imported=False)
register_keeper("mail.actions", _open_actions, in_imported=False)


# --- letting go -------------------------------------------------------------------


def _located(message_ids: Sequence[int]) -> set[int]:
    return set(
        Location.objects.filter(message_id__in=list(message_ids)).values_list(
            "message_id", flat=True
        )
    )


def do_let_go(
    user_id: int, message_ids: Iterable[int], *, now: datetime | None = None
) -> int:
    """Delete those of `message_ids` (the user's) that have no location and that no
    keeper needs, with their blobs where no other row stores the same bytes (and
    no writer has just reused: module docstring). Returns how many messages went."""
    ids = sorted(set(message_ids))
    gone = 0
    for start in range(0, len(ids), BATCH):
        gone += _let_go_batch(user_id, ids[start : start + BATCH], now=now)
    return gone


def _let_go_batch(user_id: int, ids: list[int], *, now: datetime | None) -> int:
    with transaction.atomic():
        candidates = [i for i in ids if i not in _located(ids)]
        keep = needed(user_id, candidates)
        doomed = [i for i in candidates if i not in keep]
        if not doomed:
            return 0
        keys = set(
            Message.objects.filter(user_id=user_id, pk__in=doomed)
            .exclude(blob_key="")
            .values_list("blob_key", flat=True)
        )
        deleted, _detail = Message.objects.filter(
            user_id=user_id, pk__in=doomed, locations__isnull=True
        ).delete()
        transaction.on_commit(lambda: _drop_unused_blobs(keys, now=now))
    return len(doomed) if deleted else 0


def _drop_unused_blobs(keys: set[str], *, now: datetime | None = None) -> None:
    """Remove the blobs no row stores any more (another user's copy of the same mail,
    an outgoing message or an append on its way keep theirs); those written or
    reused in the last BLOB_GRACE wait for a later sweep (module docstring)."""
    if not keys:
        return
    fresh_since = (now or timezone.now()) - BLOB_GRACE
    used = set(Message.objects.filter(blob_key__in=keys).values_list("blob_key", flat=True))
    used |= set(
        OutgoingMessage.objects.filter(raw_blob_key__in=keys).values_list(
            "raw_blob_key", flat=True
        )
    )
    used |= set(RemoteAction.objects.filter(blob_key__in=keys).values_list("blob_key", flat=True))
    waiting: list[str] = []
    for key in sorted(keys - used):
        try:
            if not blobs.remove_unless_fresh(key, fresh_since):
                waiting.append(key)
        except OSError:
            log.warning("could not remove blob %s", key, exc_info=True)
            waiting.append(key)
    BlobToDrop.objects.filter(key__in=sorted(keys - set(waiting))).delete()
    BlobToDrop.objects.bulk_create(
        [BlobToDrop(key=key) for key in waiting], ignore_conflicts=True
    )


def do_delete_account_keeping_needed(account: Account) -> int:
    """Delete an account (posta.accounts.services.do_delete_account); its messages
    that still have a copy elsewhere stay as they are, those that some keeper
    needs stay without a copy (the Imported folder), the rest go. Returns how many
    messages were kept in Imported."""
    user_id = account.user_id
    with transaction.atomic():
        ids = list(
            Location.objects.filter(folder__account=account)
            .values_list("message_id", flat=True)
            .distinct()
        )
        do_delete_account(account)
        orphans = [i for i in ids if i not in _located(ids)]
        kept = needed(user_id, orphans, shown_only=True)
        do_let_go(user_id, orphans)
    return len(kept)


def count_kept_if_deleted(account: Account) -> int:
    """How many of the account's messages would stay in Imported if it were deleted:
    those with no copy in another account that a keeper of Imported needs."""
    ids = list(
        Location.objects.filter(folder__account=account)
        .values_list("message_id", flat=True)
        .distinct()
    )
    elsewhere = set(
        Location.objects.filter(message_id__in=ids)
        .exclude(folder__account=account)
        .values_list("message_id", flat=True)
    )
    return len(needed(account.user_id, [i for i in ids if i not in elsewhere], shown_only=True))


def do_sweep(*, now: datetime | None = None, grace: timedelta = SWEEP_GRACE) -> int:
    """Mark new orphans, unmark messages that found a copy again, and let go the
    orphans marked at least `grace` ago that no keeper needs. Returns how many
    went. Run periodically by the worker."""
    now = now or timezone.now()
    Message.objects.filter(orphan_since__isnull=False, locations__isnull=False).update(
        orphan_since=None
    )
    Message.objects.filter(orphan_since__isnull=True, locations__isnull=True).update(
        orphan_since=now
    )
    ripe = (
        Message.objects.filter(orphan_since__lte=now - grace, locations__isnull=True)
        .order_by("user_id", "id")
        .values_list("user_id", "id")
    )
    by_user: dict[int, list[int]] = {}
    for user_id, message_id in ripe.iterator(chunk_size=2000):
        by_user.setdefault(user_id, []).append(message_id)
    gone = sum(do_let_go(user_id, ids, now=now) for user_id, ids in by_user.items())
    waited = BlobToDrop.objects.filter(created_at__lte=now - BLOB_GRACE)
    _drop_unused_blobs(set(waited.values_list("key", flat=True)[:BATCH]), now=now)
    return gone


# --- the Imported folder ----------------------------------------------------------


def kept_messages(
    user_id: int, *, before: tuple[datetime, int] | None = None, limit: int = 50,
    query: str = "",
) -> tuple[list[Message], tuple[datetime, int] | None]:
    """The user's messages in no mailbox that a keeper needs, newest first, from
    `before` (a (date, id) keyset cursor); returns the page and the next cursor
    (None on the last page); `query` keeps those whose sender, recipients,
    subject or snippet contain every word. Orphans nobody needs are skipped (the sweep lets
    them go), so the walk reads a few batches at most."""
    rows = Message.objects.filter(user_id=user_id, locations__isnull=True)
    for word in query.split()[:8]:  # the words of a search in Imported, all of them
        rows = rows.filter(
            Q(from_name__icontains=word) | Q(from_email__icontains=word)
            | Q(subject__icontains=word) | Q(snippet__icontains=word) | Q(to__icontains=word)
        )  # fmt: skip
    out: list[Message] = []
    cursor = before
    while len(out) <= limit:
        batch_rows = rows
        if cursor is not None:
            date, pk = cursor
            batch_rows = rows.filter(date__lte=date).filter(Q(date__lt=date) | Q(id__lt=pk))
        batch = list(batch_rows.order_by("-date", "-id")[: limit * 2])
        if not batch:
            break
        keep = needed(user_id, [m.pk for m in batch], shown_only=True)
        out.extend(m for m in batch if m.pk in keep)
        cursor = (batch[-1].date, batch[-1].pk)
        if len(batch) < limit * 2:
            break
    page = out[:limit]
    more = len(out) > limit
    return page, ((page[-1].date, page[-1].pk) if more and page else None)


def is_kept(user_id: int, message_id: int) -> bool:
    """Whether the message is in no mailbox and some keeper needs it."""
    if Location.objects.filter(message_id=message_id).exists():
        return False
    return message_id in needed(user_id, [message_id], shown_only=True)
