"""One folder brought up to date: the per-folder sync state machine.

Each folder runs this state machine; its state is persisted in Folder (UIDVALIDITY,
UIDNEXT, HIGHESTMODSEQ) and FolderSyncState (how far the first pass got), so a
kill at any point resumes where the last committed batch left it::

     (skipped when STATUS shows UIDVALIDITY, UIDNEXT, MESSAGES and HIGHESTMODSEQ
      unchanged and the first pass is done; never for the selected folder)
                         │
              EXAMINE (+QRESYNC (uidvalidity modseq) once the first pass is
                         │  done, RFC 7162 §3.2.5: flag changes and VANISHED
                         │  expunges come with the answer; else CONDSTORE §3.1)
        UIDVALIDITY ≠ stored? ──yes──> RESET: stored UIDs negated (kept, not
                         │               deleted: RFC 3501 §2.3.1.1), new first pass
                         no                                   │
                         ▼                                    ▼
          ┌────────── NEW MAIL: UID FETCH <UIDNEXT>:* headers, ascending
          │              │
          │     first pass done? ──no──> FIRST PASS: headers newest first in
          │              │                batches, each batch + its new low UID in
          │              yes              one transaction; at the end copies still
          │              │                negated (gone from the server) are removed
          │              ▼                                    │
          │        RECONCILE <────────────────────────────────┘
          │          flags: the QRESYNC answer, else CHANGEDSINCE <HIGHESTMODSEQ>
          │                 (RFC 7162 §3.1.4), else a full FLAGS compare without
          │                 CONDSTORE; a change with a lower MODSEQ than stored
          │                 is stale and ignored;
          │          expunges: VANISHED (EARLIER) from the QRESYNC answer; then
          │                 stored count == EXISTS means none (UIDs are never
          │                 reused, RFC 3501 §2.3.1.1, RFC 4549 §4.3.4); else a full
          │                 UID comparison
          │              │
          └──────────> SYNCED (HIGHESTMODSEQ, UIDNEXT, counts stored)

Re-pairing. Rows of the old UIDVALIDITY and rows a local move left without a UID
are *adopted* when the same message (same identity) turns up in that folder: the
Location row, and everything linked to it, survives with its new UID; the user's
actions waiting on copies of the old numbering are re-paired or failed with them
(posta.sync.rebind).

Transactions are short and never held across a network call: the IMAP command runs
first, its parsed answer is written in one transaction afterwards. In the first
pass the next batch's FETCH runs on a helper thread while a batch is written
(posta.sync.pipeline; posta.mail.ingest stores a batch with a fixed number of
statements and announces its new messages after commit); bodies follow the same
pattern, after the headers.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import F, Max
from django.utils import timezone

from posta.accounts.models import Folder
from posta.mail import rawsql
from posta.mail.bulk_store import flags_of, update_flags
from posta.mail.ingest import Source
from posta.mail.models import Location, RemoteAction
from posta.mail.threads import ThreadIndex
from posta.mailproto import errors
from posta.mailproto.imap.client import imap_errors
from posta.mailproto.imap.fastfetch import fetch_flags, fetch_uids
from posta.mailproto.imap.session import Resync, Session
from posta.sync import rebind
from posta.sync.models import FolderSyncState
from posta.sync.pipeline import Pins, prefetched, store_batch, store_records
from posta.sync.progress import Progress

log = logging.getLogger(__name__)

# Messages per FETCH and per transaction in the first pass (tests make it small).
# Large batches keep the per-statement and per-round-trip costs negligible; 5,000
# header records are a few MB in memory.
HEADER_BATCH = int(os.environ.get("POSTA_SYNC_BATCH", "5000"))
OPEN_STATES = (RemoteAction.State.PENDING, RemoteAction.State.RUNNING)


@dataclass
class _Selected:
    uidvalidity: int
    uidnext: int
    exists: int
    highestmodseq: int | None


def _selected(raw: dict[bytes, object]) -> _Selected:
    def num(key: bytes) -> int | None:
        value = raw.get(key)
        return int(value) if isinstance(value, int) else None

    uidvalidity = num(b"UIDVALIDITY")
    if uidvalidity is None:
        raise errors.ProtocolError("no UIDVALIDITY in the SELECT answer")
    return _Selected(
        uidvalidity=uidvalidity,
        uidnext=num(b"UIDNEXT") or 0,
        exists=num(b"EXISTS") or 0,
        highestmodseq=num(b"HIGHESTMODSEQ"),
    )


def _pins(folder: Folder) -> Pins:
    """Only actions of the folder's current numbering pin: the UID of an older one
    names another message now (posta.sync.rebind re-pairs those actions)."""
    pins = Pins()
    rows = RemoteAction.objects.filter(
        source_folder=folder,
        state__in=OPEN_STATES,
        source_uid__isnull=False,
        source_uidvalidity=folder.uidvalidity,
    ).values_list("kind", "source_uid")
    for kind, uid in rows:
        assert uid is not None  # noqa: S101 - filtered above; narrows the type
        if kind in {RemoteAction.Kind.MOVE, RemoteAction.Kind.DELETE, RemoteAction.Kind.EXPUNGE}:
            pins.gone.add(uid)
        else:
            pins.flags.add(uid)
    return pins


def sync_folder(
    session: Session,
    folder: Folder,
    *,
    progress: Progress | None = None,
    index: ThreadIndex | None = None,
    source: Source = "sync",
) -> None:
    """Bring one folder up to date (see the state machine in the module docstring).
    `source` is what the new mail above the stored UIDNEXT is announced as ("idle"
    when IDLE reported it); the first pass is always "sync"."""
    progress = progress or Progress(folder.account_id)
    index = index or ThreadIndex(folder.account.user_id)
    raw, resync = _examine(session, folder)
    sel = _selected(raw)
    if resync is not None and sel.uidvalidity != folder.uidvalidity:
        resync = None  # RFC 7162 §3.2.5: ignored by the server; the state resets
    state = _ensure_state(folder, sel)
    pins = _pins(folder)
    if sel.uidnext == 0:
        uids = fetch_uids(session.client, "1:*") if sel.exists else []
        sel.uidnext = (max(uids) + 1) if uids else 1
    _sync_new(session, folder, sel, pins, progress, index, source=source)
    if not state.initial_done:
        _first_pass(session, folder, state, pins, progress, index)
        pins = _pins(folder)  # with the actions the first pass re-paired
    _reconcile(session, folder, sel, pins, index, resync=resync)
    _store_counts(folder)


def _store_new(
    session: Session,
    folder: Folder,
    pins: Pins,
    progress: Progress,
    index: ThreadIndex,
    highest: int,
    *,
    source: Source,
) -> int:
    """Fetch and store the messages above the stored UIDNEXT of the selected
    folder; returns the highest MODSEQ seen (at least `highest`)."""
    start = folder.uidnext or 1
    new = [u for u in fetch_uids(session.client, f"{start}:*") if u >= start]
    chunks = [new[i : i + HEADER_BATCH] for i in range(0, len(new), HEADER_BATCH)]
    for chunk, records in prefetched(session, chunks, pins):
        highest = max([highest, *(r.modseq or 0 for r in records)])
        store_records(
            folder, records, progress, index, source=source, next_uidnext=chunk[-1] + 1
        )
    return highest


def sync_selected(
    session: Session,
    folder: Folder,
    *,
    progress: Progress | None = None,
    index: ThreadIndex | None = None,
    source: Source = "idle",
) -> bool:
    """Bring the folder selected on this connection up to date without selecting
    it again; False when that cannot be done (another folder is selected, no
    CONDSTORE, first pass not done), and the caller runs sync_folder instead.

    For news announced during IDLE: a SELECT makes the server open the folder's
    index afresh (about 300 ms for 100,000 messages in a Dovecot Maildir), while
    here four small commands suffice. UIDVALIDITY cannot change while a folder
    is selected without the server ending the selection (RFC 3501 §2.3.1.1).
    NOOP first, then new mail: UID FETCH from the stored UIDNEXT; flags: CHANGEDSINCE (RFC 7162
    §3.1.4); expunges: the message count compared with the stored one. The stored
    HIGHESTMODSEQ becomes the highest MODSEQ seen, never more than the server's:
    at worst the next CHANGEDSINCE repeats a few changes.
    """
    if (
        session.selected != folder.name
        or not session.condstore
        or folder.highestmodseq is None
        or not folder.uidnext
        or not FolderSyncState.objects.filter(folder=folder, initial_done=True).exists()
    ):
        return False
    # RFC 3501 §6.1.2: NOOP lets the server bring this session's view of the
    # folder up to date (new messages, expunges) before we ask about it.
    with imap_errors(host=session.host):
        session.client.noop()
    progress = progress or Progress(folder.account_id)
    index = index or ThreadIndex(folder.account.user_id)
    pins = _pins(folder)
    top = folder.uidnext - 1
    # imaplib keeps the untagged responses of every command in this dict; IMAPClient
    # has no public view of it.
    untagged = session.client._imap.untagged_responses  # noqa: SLF001
    # EXISTS announced from here on means mail arrived while this pass worked.
    untagged.pop("EXISTS", None)
    highest = _store_new(
        session, folder, pins, progress, index, folder.highestmodseq, source=source
    )
    if top >= 1:
        changes = fetch_flags(session.client, f"1:{top}", changed_since=folder.highestmodseq)
        highest = max([highest, *(m or 0 for _u, _f, m in changes)])
        _apply_flags(folder, changes, pins, everything=False)
    top = folder.uidnext - 1
    count = session.message_count()
    stored = Location.objects.filter(folder=folder, uid__gt=0).count()
    if stored + len(pins.gone) != count and top >= 1:
        server_uids = {u for u in fetch_uids(session.client, f"1:{top}") if u <= top}
        _apply_expunges(session, folder, server_uids, top, pins, index)
    # A message that arrived during the commands above was announced by an EXISTS
    # in their responses, which the IDLE that follows will not repeat (RFC 2177
    # reports only what happens during it): fetch it now rather than at the next
    # resync.
    for _round in range(5):  # bounded: a steady stream is left to the next look
        if not untagged.pop("EXISTS", None):
            break
        highest = _store_new(session, folder, pins, progress, index, highest, source=source)
    Folder.objects.filter(pk=folder.pk).update(highestmodseq=highest)
    folder.highestmodseq = highest
    _store_counts(folder)
    return True


def _examine(session: Session, folder: Folder) -> tuple[dict[bytes, object], Resync | None]:
    """EXAMINE the folder; with QRESYNC (RFC 7162 §3.2.5) when the folder is past
    its first pass and its HIGHESTMODSEQ is stored."""
    if (
        session.qresync
        and folder.uidvalidity is not None
        and folder.highestmodseq
        and folder.uidnext
        and FolderSyncState.objects.filter(folder=folder, initial_done=True).exists()
    ):
        return session.examine_qresync(
            folder.name,
            uidvalidity=folder.uidvalidity,
            modseq=folder.highestmodseq,
            uidnext=folder.uidnext,
        )
    return session.examine(folder.name), None


def _ensure_state(folder: Folder, sel: _Selected) -> FolderSyncState:
    state = FolderSyncState.objects.filter(folder=folder).first()
    if state is not None and state.uidvalidity == sel.uidvalidity == folder.uidvalidity:
        return state
    with transaction.atomic():
        if folder.uidvalidity is not None and folder.uidvalidity != sel.uidvalidity:
            _set_aside(folder)
        state = FolderSyncState(
            folder=folder,
            uidvalidity=sel.uidvalidity,
            low_uid=sel.uidnext,
            total=sel.exists,
            initial_done=False,
        )
        state.save()
        folder.uidvalidity = sel.uidvalidity
        folder.uidnext = sel.uidnext
        folder.highestmodseq = sel.highestmodseq
        folder.save(update_fields=["uidvalidity", "uidnext", "highestmodseq"])
    log.info("folder %s: first pass from UID %s", folder.pk, sel.uidnext)
    return state


def _set_aside(folder: Folder) -> None:
    """UIDVALIDITY changed (RFC 3501 §2.3.1.1): every stored UID is void, but the
    rows are not deleted. They get negative UIDs, below any earlier set-aside ones
    so the (folder, uid) uniqueness holds, and wait to be re-paired."""
    lowest = Location.objects.filter(folder=folder, uid__lt=0).aggregate(m=Max(-F("uid")))["m"]
    offset = int(lowest or 0)
    Location.objects.filter(folder=folder, uid__gt=0).update(uid=-(F("uid") + offset))
    log.warning("folder %s: UIDVALIDITY changed; copies set aside for re-pairing", folder.pk)


def _sync_new(
    session: Session,
    folder: Folder,
    sel: _Selected,
    pins: Pins,
    progress: Progress,
    index: ThreadIndex,
    *,
    source: Source,
) -> None:
    start = folder.uidnext or sel.uidnext
    if sel.uidnext <= start:
        return
    # "n:*" always includes the highest UID even when it is below n (RFC 3501 §6.4.8).
    new = [u for u in fetch_uids(session.client, f"{start}:*") if u >= start]
    chunks = [new[i : i + HEADER_BATCH] for i in range(0, len(new), HEADER_BATCH)]
    for chunk, records in prefetched(session, chunks, pins):
        store_records(
            folder, records, progress, index, source=source, next_uidnext=chunk[-1] + 1
        )
    Folder.objects.filter(pk=folder.pk).update(uidnext=sel.uidnext)
    folder.uidnext = sel.uidnext


def _first_pass(
    session: Session,
    folder: Folder,
    state: FolderSyncState,
    pins: Pins,
    progress: Progress,
    index: ThreadIndex,
) -> None:
    remaining = (
        [u for u in fetch_uids(session.client, f"1:{state.low_uid - 1}") if u < state.low_uid]
        if state.low_uid > 1
        else []
    )
    # Newest first: the batches are cut from the top of the UID list down.
    chunks = [
        remaining[max(0, end - HEADER_BATCH) : end]
        for end in range(len(remaining), 0, -HEADER_BATCH)
    ]
    for chunk, records in prefetched(session, chunks, pins):
        store_records(folder, records, progress, index, state=state, new_low=chunk[0])
    with transaction.atomic():
        # The whole folder is listed now: copies still set aside are not on the server.
        Location.objects.filter(folder=folder, uid__lt=0).delete()
        rebind.fail_unpaired(folder)
        FolderSyncState.objects.filter(pk=state.pk).update(low_uid=1, initial_done=True)
    state.low_uid, state.initial_done = 1, True


def _reconcile(
    session: Session,
    folder: Folder,
    sel: _Selected,
    pins: Pins,
    index: ThreadIndex,
    *,
    resync: Resync | None,
) -> None:
    """Flag changes and expunges of the copies below the selected UIDNEXT."""
    top = sel.uidnext - 1
    if top < 1 or sel.exists == 0:
        gone = Location.objects.filter(folder=folder, uid__gt=0, uid__lte=max(top, 0))
        gone.delete()
        _store_modseq(folder, sel)
        return
    server_uids: set[int] | None = None
    if resync is not None:
        # QRESYNC answered in the EXAMINE: flag changes and expunges in one round
        # trip (RFC 7162 §3.2.5). Copies _sync_new fetched after the EXAMINE carry
        # a MODSEQ at least as high, so _apply_flags leaves them alone.
        _apply_flags(folder, resync.changes, pins, everything=False)
        if resync.vanished:
            _delete_uids(folder, sorted(resync.vanished))
    elif session.condstore and folder.highestmodseq is not None and sel.highestmodseq:
        if sel.highestmodseq != folder.highestmodseq:
            changes = fetch_flags(session.client, f"1:{top}", changed_since=folder.highestmodseq)
            _apply_flags(folder, changes, pins, everything=False)
    else:
        changes = fetch_flags(session.client, f"1:{top}")
        server_uids = {uid for uid, _flags, _m in changes if uid <= top}
        _apply_flags(folder, changes, pins, everything=True, server_uids=server_uids)
    stored = Location.objects.filter(folder=folder, uid__gt=0, uid__lte=top).count()
    present_pins = len(pins.gone)
    if stored + present_pins != sel.exists:
        if server_uids is None:
            server_uids = {u for u in fetch_uids(session.client, f"1:{top}") if u <= top}
        _apply_expunges(session, folder, server_uids, top, pins, index)
    _store_modseq(folder, sel)


def _store_modseq(folder: Folder, sel: _Selected) -> None:
    """Everything up to the SELECT's HIGHESTMODSEQ is applied now; later changes
    have a greater MODSEQ and are found by the next CHANGEDSINCE."""
    if sel.highestmodseq:
        Folder.objects.filter(pk=folder.pk).update(highestmodseq=sel.highestmodseq)
        folder.highestmodseq = sel.highestmodseq


def _apply_flags(
    folder: Folder,
    changes: list[tuple[int, tuple[str, ...], int | None]],
    pins: Pins,
    *,
    everything: bool,
    server_uids: set[int] | None = None,
) -> None:
    """Write the server's flags onto the stored copies that differ. A change older
    than what is stored (a lower MODSEQ) is ignored: it was read before a fresher
    FETCH of the same copy."""
    wanted = {uid: (flags, modseq) for uid, flags, modseq in changes if uid not in pins.flags}
    if not wanted:
        return
    updates = []
    for pk, uid, seen, flagged, answered, draft, deleted, keywords, modseq in _flag_rows(
        folder, None if everything or len(wanted) >= 5000 else list(wanted)
    ):
        got = wanted.get(uid or 0)
        if got is None:
            continue
        flags, new_modseq = got
        if new_modseq is not None and modseq is not None and new_modseq < modseq:
            continue
        now = flags_of(flags)
        if (
            now.seen != seen
            or now.flagged != flagged
            or now.answered != answered
            or now.draft != draft
            or now.deleted != deleted
            or now.keywords != _keywords(keywords)
            or (new_modseq is not None and new_modseq != modseq)
        ):
            # Without CONDSTORE the server reports no MODSEQ: keep what is stored.
            updates.append((pk, now, modseq if new_modseq is None else new_modseq))
    if updates:
        with transaction.atomic():
            update_flags(updates)


def _flag_rows(folder: Folder, uids: list[int] | None) -> Iterator[tuple[Any, ...]]:
    """(id, uid, seen, flagged, answered, draft, deleted, keywords, modseq) of the
    folder's copies (of `uids` only, when given), read without building model
    objects or decoding every keyword list: the comparison without CONDSTORE
    reads every copy of the folder."""
    columns = ("id", "uid", "seen", "flagged", "answered", "draft", "deleted", "keywords", "modseq")
    cols = ", ".join(rawsql.quote(c) for c in columns)
    base = (
        f"SELECT {cols} FROM {rawsql.table(Location)} "  # noqa: S608 - names are ours
        f"WHERE {rawsql.quote('folder_id')} = %s AND {rawsql.quote('uid')} > 0"
    )
    chunks: list[list[int] | None] = [None] if uids is None else [*rawsql.chunks(uids)]
    for chunk in chunks:
        sql, params = base, [folder.pk]
        if chunk is not None:
            sql += f" AND {rawsql.quote('uid')} IN ({', '.join(['%s'] * len(chunk))})"
            params += chunk
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            yield from cursor.fetchall()


def _keywords(raw: Any) -> list[str]:
    """A stored keyword list as read by a plain cursor: JSON text (decoded only
    when not the usual empty list) or, on some drivers, the list itself."""
    if isinstance(raw, list):
        return [str(k) for k in raw]
    if not raw or raw == "[]":
        return []
    value = json.loads(raw)
    return [str(k) for k in value] if isinstance(value, list) else []


def _delete_uids(folder: Folder, uids: list[int]) -> None:
    for i in range(0, len(uids), 1000):
        with transaction.atomic():
            Location.objects.filter(folder=folder, uid__in=uids[i : i + 1000]).delete()


def _apply_expunges(
    session: Session,
    folder: Folder,
    server_uids: set[int],
    top: int,
    pins: Pins,
    index: ThreadIndex,
) -> None:
    stored = set(
        Location.objects.filter(folder=folder, uid__gt=0, uid__lte=top).values_list(
            "uid", flat=True
        )
    )
    _delete_uids(folder, sorted(u for u in stored if u is not None and u not in server_uids))
    # Holes: on the server, below UIDNEXT, not stored (only after a crash between a
    # write and its cursor, or a bug). Fetch them rather than lose them.
    missing = sorted(server_uids - stored - pins.gone)
    progress = Progress(folder.account_id)
    for i in range(0, len(missing), HEADER_BATCH):
        store_batch(session, folder, missing[i : i + HEADER_BATCH], pins, progress, index)


def _store_counts(folder: Folder) -> None:
    # Two counts, each answered from an index ((folder, uid) and the partial
    # "unread" one), rather than one pass over every row of a large folder.
    copies = Location.objects.filter(folder=folder, uid__gt=0)
    total = copies.count()
    unread = copies.filter(seen=False).count()
    Folder.objects.filter(pk=folder.pk).update(
        message_count=total, unread_count=unread, synced_at=timezone.now()
    )
    folder.message_count = total
    folder.unread_count = unread
