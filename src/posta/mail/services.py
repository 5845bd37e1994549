"""What the web layer calls when a user acts on mail (STYLE §1, §3: intents).

Each `do_` function changes the local state the user sees and writes one
RemoteAction per server copy, in one transaction; after commit it sends
`posta.mail.signals.actions_created`, on which the sync app wakes its worker to
carry the actions out on the server (this module never imports the sync app).
Inputs are already validated: `message_ids` are the user's (others' ids are
silently ignored, since the queries filter by user).

A copy without a UID yet (its move still on its way) is acted on like any other:
the new action waits for the open one, or is folded into it (posta.mail.chains),
so the server ends as the user last asked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable
from datetime import datetime

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from posta.accounts.models import Account, Folder
from posta.core.errors import not_found
from posta.mail import blobs, chains, ingest, signals
from posta.mail.models import Location, Message, RemoteAction, RemoteContentSender
from posta.users.models import User

Kind = RemoteAction.Kind


def _wake_worker(account_ids: Iterable[int], *, hold: datetime | None = None) -> None:
    ids = sorted(set(account_ids))
    if not ids:
        return
    signals.notify_after_commit(
        signals.actions_created, sender=RemoteAction, account_ids=ids, not_before=hold
    )


def request_body_fetch(user: User, message_id: int) -> bool:
    """Ask for the body of one of the user's messages now (it was opened before the
    background download reached it). Returns True when a download was asked for,
    False when the body is already there or no server copy can give it.

    Nothing is written: the message's `body_state` ("pending") is the durable
    request, which every sync pass serves anyway; the signal only makes it happen
    at once, from the account of one of the message's server copies.
    """
    message = (
        Message.objects.filter(pk=message_id, user=user)
        .only("id", "body_state")
        .first()
    )
    if message is None or message.body_state != Message.BodyState.PENDING:
        return False
    account_id = (
        Location.objects.filter(message_id=message_id, user=user, uid__gt=0)
        .order_by("id")
        .values_list("folder__account_id", flat=True)
        .first()
    )
    if account_id is None:
        return False
    signals.notify_after_commit(
        signals.body_fetch_requested, sender=Message, account_id=account_id,
        message_ids=[message_id],
    )
    return True


def _copies(
    user: User, message_ids: Iterable[int], from_folders: Collection[int] | None = None
) -> list[Location]:
    # A NULL UID is a copy on its way: its new action chains after the open one.
    # A negative one (set aside by a UIDVALIDITY change) waits for the sync.
    rows = Location.objects.select_for_update().filter(
        Q(uid__gt=0) | Q(uid__isnull=True), user=user, message_id__in=list(message_ids)
    )
    if from_folders is not None:
        rows = rows.filter(folder_id__in=list(from_folders))
    return list(rows.select_related("folder", "message").order_by("id"))


def _action(
    loc: Location,
    kind: str,
    *,
    target: Folder | None = None,
    after: RemoteAction | None = None,
    hold: datetime | None = None,
) -> RemoteAction:
    """The intent for one copy. After an open action on the same copy it waits
    for that one; without a UID yet its source is handed over when the earlier
    action lands (posta.sync.actions). With `hold` no worker takes it before that
    time (the undo window: an undone move is then simply never sent)."""
    return RemoteAction(
        user_id=loc.user_id,
        account_id=loc.folder.account_id,
        kind=kind,
        message_id=loc.message_id,
        location=loc,
        source_folder=loc.folder,
        source_uid=loc.uid,
        # The numbering that UID belongs to: the folder's rows with a positive UID
        # are of its stored UIDVALIDITY (the sync changes both in one transaction).
        source_uidvalidity=loc.folder.uidvalidity,
        source_modseq=loc.modseq,
        target_folder=target,
        message_id_header=loc.message.message_id,
        after=after,
        next_attempt_at=hold,
    )


def _adjust_unread(delta: Counter[int]) -> None:
    for folder_id, change in delta.items():
        if change:
            Folder.objects.filter(pk=folder_id).update(unread_count=F("unread_count") + change)


def _minus(copies: list[Location]) -> Counter[int]:
    delta: Counter[int] = Counter()
    for c in copies:
        delta[c.folder_id] -= 1
    return delta


def do_set_seen(user: User, message_ids: Iterable[int], seen: bool) -> int:
    """Mark the messages read or unread in every folder; returns copies changed."""
    with transaction.atomic():
        every = _copies(user, message_ids)
        tails = chains.open_tails(every)
        # With an action still open the local mark may not be the server's yet:
        # the user's wish is written whatever the copy shows.
        copies = [c for c in every if c.seen != seen or c.pk in tails]
        Location.objects.filter(pk__in=[c.pk for c in copies]).update(seen=seen)
        kind = Kind.SEEN if seen else Kind.UNSEEN
        RemoteAction.objects.bulk_create(
            [_action(c, kind, after=tails.get(c.pk)) for c in copies]
        )
        turned = [c for c in copies if c.seen != seen]
        _adjust_unread(Counter(c.folder_id for c in turned) if not seen else _minus(turned))
        _wake_worker(c.folder.account_id for c in copies)
    return len(copies)


def do_set_flagged(user: User, message_ids: Iterable[int], flagged: bool) -> int:
    """Flag or unflag the messages in every folder; returns copies changed."""
    with transaction.atomic():
        every = _copies(user, message_ids)
        tails = chains.open_tails(every)
        copies = [c for c in every if c.flagged != flagged or c.pk in tails]
        Location.objects.filter(pk__in=[c.pk for c in copies]).update(flagged=flagged)
        kind = Kind.FLAG if flagged else Kind.UNFLAG
        RemoteAction.objects.bulk_create(
            [_action(c, kind, after=tails.get(c.pk)) for c in copies]
        )
        _wake_worker(c.folder.account_id for c in copies)
    return len(copies)


def _move_local(
    copies: list[Location],
    target: Folder,
    kind: str,
    *,
    hold: datetime | None = None,
    moved: list[tuple[int, int]] | None = None,
) -> list[RemoteAction]:
    """Move `copies` into `target` locally and write their intents (held until
    `hold`); each copy's (Location id, folder it left) is added to `moved`."""
    tails = chains.open_tails(copies)
    actions: list[RemoteAction] = []
    back: set[int] = set()  # an unsent move undone: the copy has its old UID again
    for c in copies:
        if moved is not None:
            moved.append((c.pk, c.folder_id))
        folded = chains.fold_move(tails.get(c.pk), c, target, kind=kind)
        if folded is chains.Fold.NONE:
            actions.append(
                _action(c, kind, target=target, after=tails.get(c.pk), hold=hold)
            )
        elif folded is chains.Fold.CANCELLED:
            back.add(c.pk)
    RemoteAction.objects.bulk_create(actions)
    delta: Counter[int] = Counter()
    for c in copies:
        if not c.seen:
            delta[c.folder_id] -= 1
            delta[target.pk] += 1
    Location.objects.filter(pk__in=[c.pk for c in copies if c.pk not in back]).update(
        folder=target, uid=None, modseq=None, role=target.role
    )
    _adjust_unread(delta)
    return actions


def move_copies_back(copies: list[Location], home: Folder) -> int:
    """Undo: move `copies` (locked by the caller's transaction) back into `home`,
    the folder they left. An unsent move folds away; returns how many intents were
    written (moves back after a move the worker already took)."""
    return len(_move_local(copies, home, Kind.MOVE))


def wake_worker(account_ids: Iterable[int]) -> None:
    """Wake the worker for the accounts once the caller's transaction commits."""
    _wake_worker(account_ids)


def do_move(
    user: User,
    message_ids: Iterable[int],
    target_folder: Folder,
    *,
    from_folders: Collection[int] | None = None,
    hold: datetime | None = None,
    moved: list[tuple[int, int]] | None = None,
) -> int:
    """Move the messages' copies of the target's account into `target_folder`.

    `from_folders` names the folders whose copies move: the folder the user is
    looking at, or the folders of a unified view's role. A message can sit in
    several folders (a copy in INBOX and in Clienti, a Gmail label); the copies in
    other folders stay where they are. None moves every copy (of that account).
    The copies show in the target at once (without a UID until the server's move is
    done). Copies already there, and copies in other accounts, are left alone.
    With `hold` no worker carries the move out before that time, and `moved`
    receives each copy's (Location id, folder it left): what posta.mail.undo needs
    to put them back.
    """
    with transaction.atomic():
        copies = [
            c
            for c in _copies(user, message_ids, from_folders)
            if c.folder.account_id == target_folder.account_id and c.folder_id != target_folder.pk
        ]
        _move_local(copies, target_folder, Kind.MOVE, hold=hold, moved=moved)
        _wake_worker([target_folder.account_id] if copies else [], hold=hold)
    return len(copies)


def do_delete(
    user: User,
    message_ids: Iterable[int],
    *,
    from_folders: Collection[int] | None = None,
    hold: datetime | None = None,
    moved: list[tuple[int, int]] | None = None,
) -> int:
    """Delete the messages' copies in `from_folders` (every copy when None, as in
    do_move): they go to their account's Trash; copies already in Trash (or in an
    account without one) are deleted for good (EXPUNGE). `hold` and `moved` as in
    do_move, for the copies that go to Trash (deleting for good is never held:
    there is nothing left to put back)."""
    with transaction.atomic():
        copies = _copies(user, message_ids, from_folders)
        accounts = {c.folder.account_id for c in copies}
        trash = {
            f.account_id: f
            for f in Folder.objects.filter(account_id__in=accounts, role=Folder.Role.TRASH)
        }
        to_trash: dict[int, list[Location]] = {}
        expunge: list[Location] = []
        for c in copies:
            bin_ = trash.get(c.folder.account_id)
            if bin_ is None or bin_.pk == c.folder_id:
                expunge.append(c)
            else:
                to_trash.setdefault(bin_.pk, []).append(c)
        for group in to_trash.values():
            _move_local(
                group, trash[group[0].folder.account_id], Kind.DELETE, hold=hold, moved=moved
            )
        _expunge(expunge)
        _wake_worker({c.folder.account_id for c in expunge})
        _wake_worker({g[0].folder.account_id for g in to_trash.values()}, hold=hold)
    return len(copies)


def _expunge(copies: list[Location]) -> None:
    tails = chains.open_tails(copies)
    RemoteAction.objects.bulk_create(
        [_action(c, Kind.EXPUNGE, after=tails.get(c.pk)) for c in copies]
    )
    _adjust_unread(_minus([c for c in copies if not c.seen]))
    Location.objects.filter(pk__in=[c.pk for c in copies]).delete()


def do_expunge_folder(user: User, folder: Folder) -> int:
    """"Empty Trash" / "Empty Spam": delete for good every copy in `folder`, and only
    there (the same message in another folder or label stays). Each copy becomes
    an EXPUNGE intent: \\Deleted on its UID, then UID EXPUNGE of that UID (RFC 4315
    §2.1), never a plain EXPUNGE that would take other clients' \\Deleted mail.
    Copies still on their way in (no UID yet) are left for the next emptying.
    Returns the copies deleted.
    """
    with transaction.atomic():
        copies = list(
            Location.objects.select_for_update()
            .filter(user=user, folder=folder, uid__gt=0)
            .select_related("folder", "message")
            .order_by("id")
        )
        _expunge(copies)
        _wake_worker([folder.account_id] if copies else [])
    return len(copies)


_APPEND_FLAGS = {
    "\\seen": "seen",
    "\\flagged": "flagged",
    "\\answered": "answered",
    "\\draft": "draft",
}


def do_append(user: User, folder: Folder, raw_bytes: bytes, flags: Iterable[str]) -> Location:
    """Save `raw_bytes` (an RFC 5322 message) into `folder` with `flags`.

    The copy shows in the folder at once, without a UID; an APPEND intent carries
    the bytes (by blob key) to the server, and the worker records the UID the
    server gives it (APPENDUID, RFC 4315 §3). The flags live on that copy until
    then: changing them before the worker runs changes what is appended.
    """
    key = blobs.put(raw_bytes)
    wanted = {_APPEND_FLAGS[f.lower()] for f in flags if f.lower() in _APPEND_FLAGS}
    with transaction.atomic():
        message = ingest.do_store_appended(user_id=user.pk, raw=raw_bytes, blob_key=key)
        loc = Location.objects.create(
            message=message,
            folder=folder,
            uid=None,
            user=user,
            role=folder.role,
            date=message.date,
            **{field: True for field in wanted},
        )
        RemoteAction.objects.create(
            user=user,
            account_id=folder.account_id,
            kind=Kind.APPEND,
            message=message,
            location=loc,
            target_folder=folder,
            message_id_header=message.message_id,
            blob_key=key,
        )
        if not loc.seen:
            _adjust_unread(Counter({folder.pk: 1}))
        _wake_worker([folder.account_id])
    return loc


def do_request_sync(user: User, account_id: int) -> None:
    """"Sync now": the sync service passes over the account at once (it watches
    Account.sync_requested_at, so no wake-up is sent); PostaError 404 for another
    user's account."""
    updated = Account.objects.filter(user=user, pk=account_id).update(
        sync_requested_at=timezone.now()
    )
    if not updated:
        raise not_found(_("This account does not exist, or it is not yours."))


def do_allow_remote_content(user: User, address: str) -> None:
    """"Always show remote content from this sender", for good (every session)."""
    address = address.strip().lower()
    if address:
        RemoteContentSender.objects.get_or_create(user=user, address=address[:500])
