"""The sync engine: one account's folders mirrored into Folder/Message/Location.

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
(posta.sync.store writes a batch with a fixed number of statements); bodies follow
the same pattern, after the headers.

Entry points: `sync_account_once(account_id)` (a full pass, idempotent, resumable)
and `open_account(account)`. The service (posta.sync.service) calls the lower
level `sync_account(client, account)` on a connection it keeps for IDLE.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Max
from django.utils import timezone
from imapclient import IMAPClient

from posta.accounts.models import Account, CompanySettings, Folder
from posta.core.crypto import unseal
from posta.core.errors import PostaError
from posta.core.netguard import GuardError, resolve_allowed
from posta.mail import blobs
from posta.mail.models import Location, Message, RemoteAction
from posta.mailproto import errors
from posta.mailproto.imap.client import (
    FolderInfo,
    ImapSettings,
    close_quietly,
    connect,
    imap_errors,
    list_folders,
)
from posta.mailproto.imap.fastfetch import (
    HeaderRecord,
    fetch_bodies,
    fetch_flags,
    fetch_headers,
    fetch_uids,
    uid_set_from,
)
from posta.mailproto.imap.roles import detect_roles
from posta.mailproto.imap.session import Resync, Session
from posta.sync import faults, rawsql, rebind
from posta.sync.models import FolderSyncState
from posta.sync.parsing import summarize_body
from posta.sync.store import (
    FLAG_FIELDS,
    flag_values,
    flags_of,
    parse_records,
    update_flags,
    write_batch,
)
from posta.sync.threads import ThreadIndex

log = logging.getLogger(__name__)

# Messages per FETCH and per transaction in the first pass (tests make it small).
# Large batches keep the per-statement and per-round-trip costs negligible; 5,000
# header records are a few MB in memory.
HEADER_BATCH = int(os.environ.get("POSTA_SYNC_BATCH", "5000"))
BODY_BATCH = 1000  # bodies fetched per account per step (the service keeps stepping)
BODY_CHUNK_BYTES = 16 << 20  # per FETCH of bodies, by stored RFC822.SIZE
BODY_CHUNK_COUNT = 500
_T = TypeVar("_T")
MAX_BODY_ATTEMPTS = 3
OPEN_STATES = (RemoteAction.State.PENDING, RemoteAction.State.RUNNING)
_FLAG_FIELDS = FLAG_FIELDS


class HostRefused(errors.MailError):
    """The account's host is an internal address not in the allow list."""

    code = "host_not_allowed"


class SecretUnreadable(errors.MailError):
    """The stored password or token cannot be decrypted (the key changed): the
    user must enter it again. Retrying cannot help, so it pauses the account."""

    code = "secret_unreadable"


def _unsealed(token: str) -> str:
    try:
        return unseal(token)
    except PostaError as exc:
        if exc.code == "secret_unreadable":
            raise SecretUnreadable("the stored secret cannot be decrypted") from exc
        raise


# --- connection -----------------------------------------------------------------


def open_account(account: Account) -> IMAPClient:
    """A logged-in IMAPClient for `account`, to the address the guard allowed.

    The host is resolved once through posta.core.netguard (users must not aim Posta
    at internal machines) and the connection pinned to that address. Raises
    MailError subclasses only.
    """
    allowed = CompanySettings.load().allowed_hosts_list()
    try:
        address = resolve_allowed(account.imap_host, account.imap_port, allowed=allowed)
    except GuardError as exc:
        if exc.code == "host_not_found":
            raise errors.HostNotFound(exc.detail) from exc
        raise HostRefused(exc.detail) from exc
    oauth = account.auth_method == Account.AuthMethod.OAUTH2
    client = connect(
        ImapSettings(
            host=account.imap_host,
            port=account.imap_port,
            security=account.imap_security,
            username=account.username,
            password="" if oauth else _unsealed(account.password_secret),
            oauth2_token=_unsealed(account.oauth_secret) if oauth else "",
            address=address,
            timeout=settings.POSTA_NETWORK_TIMEOUT,
            ca_file=settings.POSTA_EXTRA_CA_FILE or None,
        )
    )
    # Aware datetimes for INTERNALDATE, never the machine's local time.
    client.normalise_times = False
    return client


@dataclass
class Progress:
    """Messages stored vs messages on the server, shown as "12,400 of 100,000"."""

    account_id: int
    done: int = 0
    total: int = 0
    active: bool = False

    def add(self, count: int) -> None:
        """Count `count` new copies; call inside the batch's transaction."""
        self.done += count
        if self.active:
            Account.objects.filter(pk=self.account_id).update(
                sync_progress_done=min(self.done, self.total), sync_progress_total=self.total
            )


# --- account pass ---------------------------------------------------------------


def sync_account_once(account_id: int) -> None:
    """Connect, sync every folder of the account, fetch pending bodies, log out.

    Idempotent and resumable: running it again after a kill at any point continues
    from the last committed batch. Records the outcome on the Account.
    """
    account = Account.objects.get(pk=account_id)
    try:
        client = open_account(account)
    except errors.MailError as exc:
        record_failure(account.pk, exc)
        raise
    try:
        sync_account(client, account)
    except errors.MailError as exc:
        record_failure(account.pk, exc)
        raise
    finally:
        close_quietly(client)


def sync_account(
    client: IMAPClient,
    account: Account,
    *,
    bodies: bool = True,
    session: Session | None = None,
    folder_guard: Callable[[Folder], contextlib.AbstractContextManager[None]] | None = None,
) -> Session:
    """One full pass over the account's folders on a logged-in connection.

    May be called again on the same connection: the Session (and the extensions
    ENABLEd once, RFC 5161 §3.1) is kept per connection. `folder_guard(folder)`,
    when given, is held around the sync of each folder (the service's per-folder
    lock, shared with the connections that IDLE on other folders)."""
    session = session or Session.start(client)
    folders = refresh_folders(session, account)
    statuses = _folder_statuses(session, folders)
    progress = _start_progress(account, folders, statuses)
    index = ThreadIndex(account.user_id)
    ordered = sorted(folders, key=lambda f: (f.role != Folder.Role.INBOX, f.role == "", f.name))
    for folder in ordered:
        if not folder.selectable:
            continue
        with folder_guard(folder) if folder_guard else contextlib.nullcontext():
            if _unchanged(session, folder, statuses.get(folder.pk)):
                continue
            sync_folder(session, folder, progress=progress, index=index)
    if bodies:
        fetch_pending_bodies(session, account)
    record_success(account.pk)
    return session


def bodies_pending(account: Account) -> bool:
    """Whether the account still has copies whose message body is not stored."""
    return bool(_pending_copies(account, limit=1, message_ids=None))


def _folder_statuses(session: Session, folders: list[Folder]) -> dict[int, dict[bytes, int]]:
    """STATUS of every selectable folder (RFC 3501 §6.3.10): cheap, and lets a
    no-change pass skip SELECT entirely when CONDSTORE is offered."""
    items = ["MESSAGES", "UIDNEXT", "UIDVALIDITY"]
    if session.condstore:
        items.append("HIGHESTMODSEQ")  # RFC 7162 §3.1.3
    out: dict[int, dict[bytes, int]] = {}
    for folder in folders:
        if not folder.selectable:
            continue
        if folder.name == session.selected:
            # RFC 3501 §6.3.10: STATUS is no way to look for news in the selected
            # mailbox (Dovecot answers with this session's view of it); the folder
            # is EXAMINEd again instead, with QRESYNC one round trip.
            continue
        with imap_errors(host=session.host):
            raw = session.client.folder_status(folder.name, items)
        out[folder.pk] = {k.upper(): int(v) for k, v in raw.items()}
    return out


def _unchanged(session: Session, folder: Folder, status: dict[bytes, int] | None) -> bool:
    if not session.condstore or status is None or folder.highestmodseq is None:
        return False
    state = FolderSyncState.objects.filter(folder=folder, initial_done=True).first()
    return (
        state is not None
        and status.get(b"UIDVALIDITY") == folder.uidvalidity
        and status.get(b"UIDNEXT") == folder.uidnext
        and status.get(b"HIGHESTMODSEQ") == folder.highestmodseq
        and status.get(b"MESSAGES") == folder.message_count
    )


def _start_progress(
    account: Account, folders: list[Folder], statuses: dict[int, dict[bytes, int]]
) -> Progress:
    total = sum(s.get(b"MESSAGES", 0) for s in statuses.values())
    states = dict(
        FolderSyncState.objects.filter(folder__account=account).values_list(
            "folder_id", "initial_done"
        )
    )
    if all(states.get(pk, False) for pk in statuses):
        # Every folder is past its first pass (a resync): no progress to show, and
        # no counting over the whole mailbox.
        return Progress(account.pk, done=total, total=total, active=False)
    done = Location.objects.filter(folder__account=account, uid__gt=0).count()
    Account.objects.filter(pk=account.pk).update(
        sync_state=Account.SyncState.SYNCING,
        sync_progress_done=min(done, total),
        sync_progress_total=total,
    )
    return Progress(account.pk, done=done, total=total, active=True)


def record_success(account_id: int) -> None:
    now = timezone.now()
    Account.objects.filter(pk=account_id).exclude(sync_state=Account.SyncState.PAUSED).update(
        sync_state=Account.SyncState.IDLE,
        last_success_at=now,
        last_error_code="",
        last_error_detail="",
        sync_progress_done=F("sync_progress_total"),
    )


def record_failure(account_id: int, exc: errors.MailError, *, pause: bool = False) -> None:
    """Write the failure on the account in codes (shown translated), never a secret."""
    Account.objects.filter(pk=account_id).update(
        sync_state=Account.SyncState.PAUSED if pause else Account.SyncState.ERROR,
        last_error_code=exc.code,
        last_error_detail=exc.detail[:500],
        last_error_at=timezone.now(),
    )


# --- folder list ----------------------------------------------------------------


def refresh_folders(session: Session, account: Account) -> list[Folder]:
    """Bring the account's Folder rows in line with LIST: new folders are added,
    renamed ones (same UIDVALIDITY under a new name, RFC 3501 §6.3.5) keep their
    row and messages, deleted ones go. Roles follow detect_roles unless the user
    set them."""
    infos = list_folders(session.client)
    roles = {name: role for role, name in detect_roles(infos).items()}
    by_name = {f.name: f for f in Folder.objects.filter(account=account)}
    server_names = {i.name for i in infos}
    vanished = [f for name, f in by_name.items() if name not in server_names]
    fresh = [i for i in infos if i.name not in by_name]
    renamed = _match_renames(session, vanished, fresh)
    with transaction.atomic():
        for moved, info in renamed:
            moved.name = info.name
            moved.save(update_fields=["name"])
            by_name[info.name] = moved
            vanished.remove(moved)
        gone_ids = [f.pk for f in vanished]
        if gone_ids:
            Folder.objects.filter(pk__in=gone_ids).delete()
        for info in infos:
            folder = by_name.get(info.name) or Folder(account=account, name=info.name)
            by_name[info.name] = folder
            _apply_info(folder, info, roles.get(info.name, ""))
    return [by_name[i.name] for i in infos]


def _match_renames(
    session: Session, vanished: list[Folder], fresh: list[FolderInfo]
) -> list[tuple[Folder, FolderInfo]]:
    known = {f.uidvalidity: f for f in vanished if f.uidvalidity is not None}
    pairs: list[tuple[Folder, FolderInfo]] = []
    if not known:
        return pairs
    for info in fresh:
        if not info.selectable:
            continue
        with imap_errors(host=session.host):
            status = session.client.folder_status(info.name, ["UIDVALIDITY"])
        validity = int(status.get(b"UIDVALIDITY", 0))
        match = known.pop(validity, None)
        if match is not None:
            pairs.append((match, info))
    return pairs


def _apply_info(folder: Folder, info: FolderInfo, role: str) -> None:
    new_role = folder.role if folder.role_set_by_user else role
    values = {
        "display_name": info.display_name[:1000],
        "delimiter": info.delimiter[:4],
        "flags": " ".join(info.flags)[:500],
        "special_use": info.special_use[:20],
        "selectable": info.selectable,
        "role": new_role,
    }
    changed = folder.pk is None or any(getattr(folder, k) != v for k, v in values.items())
    old_role = folder.role
    for key, value in values.items():
        setattr(folder, key, value)
    if changed:
        folder.save()
    if folder.pk is not None and old_role != new_role:
        # Location.role is the list screens' copy of the folder's role.
        Location.objects.filter(folder=folder).update(role=new_role)


# --- one folder -----------------------------------------------------------------


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


@dataclass
class _Pins:
    """Server copies a pending user action is about to change: the sync leaves
    them alone so it does not undo the user's change before the worker runs."""

    gone: set[int] = field(default_factory=set)  # moved/deleted locally
    flags: set[int] = field(default_factory=set)  # flags changed locally


def _pins(folder: Folder) -> _Pins:
    """Only actions of the folder's current numbering pin: the UID of an older one
    names another message now (posta.sync.rebind re-pairs those actions)."""
    pins = _Pins()
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
) -> None:
    """Bring one folder up to date (see the state machine in the module docstring)."""
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
    _sync_new(session, folder, sel, pins, progress, index)
    if not state.initial_done:
        _first_pass(session, folder, state, pins, progress, index)
        pins = _pins(folder)  # with the actions the first pass re-paired
    _reconcile(session, folder, sel, pins, index, resync=resync)
    _store_counts(folder)


def _store_new(
    session: Session,
    folder: Folder,
    pins: _Pins,
    progress: Progress,
    index: ThreadIndex,
    highest: int,
) -> int:
    """Fetch and store the messages above the stored UIDNEXT of the selected
    folder; returns the highest MODSEQ seen (at least `highest`)."""
    start = folder.uidnext or 1
    new = [u for u in fetch_uids(session.client, f"{start}:*") if u >= start]
    chunks = [new[i : i + HEADER_BATCH] for i in range(0, len(new), HEADER_BATCH)]
    for chunk, records in _prefetched(session, chunks, pins):
        highest = max([highest, *(r.modseq or 0 for r in records)])
        _store_records(folder, records, progress, index, next_uidnext=chunk[-1] + 1)
    return highest


def sync_selected(
    session: Session,
    folder: Folder,
    *,
    progress: Progress | None = None,
    index: ThreadIndex | None = None,
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
    untagged = session.client._imap.untagged_responses
    # EXISTS announced from here on means mail arrived while this pass worked.
    untagged.pop("EXISTS", None)
    highest = _store_new(session, folder, pins, progress, index, folder.highestmodseq)
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
        highest = _store_new(session, folder, pins, progress, index, highest)
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
    pins: _Pins,
    progress: Progress,
    index: ThreadIndex,
) -> None:
    start = folder.uidnext or sel.uidnext
    if sel.uidnext <= start:
        return
    # "n:*" always includes the highest UID even when it is below n (RFC 3501 §6.4.8).
    new = [u for u in fetch_uids(session.client, f"{start}:*") if u >= start]
    chunks = [new[i : i + HEADER_BATCH] for i in range(0, len(new), HEADER_BATCH)]
    for chunk, records in _prefetched(session, chunks, pins):
        _store_records(folder, records, progress, index, next_uidnext=chunk[-1] + 1)
    Folder.objects.filter(pk=folder.pk).update(uidnext=sel.uidnext)
    folder.uidnext = sel.uidnext


def _first_pass(
    session: Session,
    folder: Folder,
    state: FolderSyncState,
    pins: _Pins,
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
    for chunk, records in _prefetched(session, chunks, pins):
        _store_records(folder, records, progress, index, state=state, new_low=chunk[0])
    with transaction.atomic():
        # The whole folder is listed now: copies still set aside are not on the server.
        Location.objects.filter(folder=folder, uid__lt=0).delete()
        rebind.fail_unpaired(folder)
        FolderSyncState.objects.filter(pk=state.pk).update(low_uid=1, initial_done=True)
    state.low_uid, state.initial_done = 1, True


def _flag_values(flags: tuple[str, ...] | list[str]) -> dict[str, object]:
    return flag_values(flags)


def _fetch_records(session: Session, uids: list[int], pins: _Pins) -> list[HeaderRecord]:
    wanted = [u for u in uids if u not in pins.gone]
    if not wanted:
        return []
    records = fetch_headers(
        session.client, uid_set_from(wanted), modseq=session.condstore, gmail=session.gmail
    )
    keep = set(wanted)
    return [r for r in records if r.uid in keep]


def _prefetched(
    session: Session, chunks: list[list[int]], pins: _Pins
) -> Iterator[tuple[list[int], list[HeaderRecord]]]:
    """Yield (chunk, its header records), FETCHing the next chunk on a helper
    thread while the caller stores this one.

    The server keeps streaming while we parse and write instead of waiting for
    us between batches, and the socket reads release the GIL. The connection is
    used by one thread at a time: the caller never touches it while iterating, and
    leaving the loop early (an exception) waits for the FETCH in flight to be read
    whole, so the connection stays usable.
    """
    return _pipelined(chunks, lambda chunk: _fetch_records(session, chunk, pins))


def _pipelined(
    chunks: list[list[int]], fetch: Callable[[list[int]], _T]
) -> Iterator[tuple[list[int], _T]]:
    """Yield (chunk, fetch(chunk)) with the next chunk's fetch already running on
    a helper thread (see _prefetched)."""
    if not chunks:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="posta-fetch") as pool:
        future: Future[_T] = pool.submit(fetch, chunks[0])
        for number, chunk in enumerate(chunks):
            result = future.result()
            if number + 1 < len(chunks):
                future = pool.submit(fetch, chunks[number + 1])
            yield chunk, result


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic collector while a batch becomes rows: it allocates tens of
    thousands of acyclic objects, and each burst would trigger collections that
    walk every live object (the thread index included)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _store_records(
    folder: Folder,
    records: list[HeaderRecord],
    progress: Progress,
    index: ThreadIndex,
    *,
    state: FolderSyncState | None = None,
    new_low: int | None = None,
    next_uidnext: int | None = None,
) -> None:
    """Store a batch of header records with the folder's new cursor in one
    transaction: a kill leaves either the whole batch or none of it."""
    with _gc_paused():
        parsed = parse_records(records)
    faults.point("sync_batch_fetched")
    try:
        with _gc_paused(), transaction.atomic():
            added = write_batch(folder, parsed, index)
            if state is not None and new_low is not None:
                FolderSyncState.objects.filter(pk=state.pk).update(low_uid=new_low)
                state.low_uid = new_low
            if next_uidnext is not None:
                Folder.objects.filter(pk=folder.pk).update(uidnext=next_uidnext)
                folder.uidnext = next_uidnext
            progress.add(added)
    except BaseException:
        index.forget()  # it may name threads the rollback removed
        raise


def _store_batch(
    session: Session,
    folder: Folder,
    uids: list[int],
    pins: _Pins,
    progress: Progress,
    index: ThreadIndex,
) -> None:
    """FETCH the headers of `uids` and store them (see _store_records)."""
    _store_records(folder, _fetch_records(session, uids, pins), progress, index)


def _reconcile(
    session: Session,
    folder: Folder,
    sel: _Selected,
    pins: _Pins,
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
    pins: _Pins,
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
    pins: _Pins,
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
        _store_batch(session, folder, missing[i : i + HEADER_BATCH], pins, progress, index)


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


# --- bodies ---------------------------------------------------------------------


def fetch_bodies_now(account_id: int, message_ids: list[int]) -> int:
    """Download the bodies of `message_ids` (the user's open message) on a
    connection of its own, beside the service's IDLE connection. Returns how many
    were stored; a failure is recorded on the account and counts as none."""
    account = Account.objects.filter(pk=account_id).first()
    if account is None:
        return 0
    try:
        client = open_account(account)
    except errors.MailError as exc:
        log.info("account %s: body fetch: %s", account_id, exc)
        return 0
    try:
        return fetch_pending_bodies(
            Session.start(client), account, limit=len(message_ids), message_ids=message_ids
        )
    except errors.MailError as exc:
        log.info("account %s: body fetch: %s", account_id, exc)
        return 0
    finally:
        close_quietly(client)


def fetch_pending_bodies(
    session: Session,
    account: Account,
    *,
    limit: int = BODY_BATCH,
    message_ids: list[int] | None = None,
    folder_id: int | None = None,
) -> int:
    """Download raw messages whose body is not stored yet, newest first, into the
    blob store, and fill snippet, attachment mark and defects. Returns how many
    bodies were stored. `message_ids` restricts to those (a message opened now),
    `folder_id` to the copies in that folder (the one a connection watches).

    Bodies come in chunks of at most BODY_CHUNK_BYTES (by the stored RFC822.SIZE)
    and BODY_CHUNK_COUNT messages; the next chunk is fetched on a helper thread
    while this one is summarized, written to the blob store and recorded in one
    statement, so the server streams without waiting for us.
    """
    picked = _pending_copies(
        account, limit=limit, message_ids=message_ids, folder_id=folder_id
    )
    by_folder: dict[int, dict[int, tuple[int, int]]] = defaultdict(dict)
    chosen: set[int] = set()
    for folder_id, uid, message_id, size in picked:
        if message_id not in chosen:  # one copy is enough
            chosen.add(message_id)
            by_folder[folder_id][uid] = (message_id, size)
    names = dict(Folder.objects.filter(pk__in=list(by_folder)).values_list("id", "name"))
    done: set[int] = set()
    for folder_id, wanted in by_folder.items():
        done |= _bodies_of_folder(session, names[folder_id], wanted)
    missed = chosen - done

    if missed:
        # Expunged meanwhile, or the server would not give it: try again later, but
        # not forever.
        Message.objects.filter(pk__in=missed).update(body_attempts=F("body_attempts") + 1)
        Message.objects.filter(pk__in=missed, body_attempts__gte=MAX_BODY_ATTEMPTS).update(
            body_state=Message.BodyState.FAILED
        )
    return len(done)


def _pending_copies(
    account: Account,
    *,
    limit: int,
    message_ids: list[int] | None,
    folder_id: int | None = None,
) -> list[tuple[int, int, int, int]]:
    """(folder id, UID, message id, size) of the account's copies of the user's
    newest messages whose body is not stored, at most `limit` (`message_ids` only,
    and copies in `folder_id` only, when given).

    The walk starts from the messages, newest first down the partial index of
    pending bodies, and looks up each one's copies: every step of the mirror then
    reads about `limit` rows, where starting from the account's copies read and
    sorted all of them (150-200 ms a step in a 100,000-message folder). CROSS JOIN
    keeps SQLite to that order (PostgreSQL plans either way)."""
    quote = rawsql.quote
    only = ""
    params: list[Any] = [account.user_id, Message.BodyState.PENDING.value]
    if message_ids is not None:
        if not message_ids:
            return []
        only = f" AND m.id IN ({', '.join(['%s'] * len(message_ids))})"
        params += message_ids
    folders = f"SELECT id FROM {rawsql.table(Folder)} WHERE {quote('account_id')} = %s"  # noqa: S608 - names are ours
    params.append(account.pk)
    if folder_id is not None:
        folders += " AND id = %s"
        params.append(folder_id)
    params.append(limit)
    sql = (
        f"SELECT l.{quote('folder_id')}, l.{quote('uid')}, m.id, m.{quote('size')} "  # noqa: S608 - names are ours
        f"FROM {rawsql.table(Message)} m CROSS JOIN {rawsql.table(Location)} l "
        f"WHERE m.{quote('user_id')} = %s AND m.{quote('body_state')} = %s{only} "
        f"AND l.{quote('message_id')} = m.id AND l.{quote('uid')} > 0 "
        f"AND l.{quote('folder_id')} IN ({folders}) "
        f"ORDER BY m.{quote('date')} DESC LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(int(f), int(u), int(m), int(z)) for f, u, m, z in cursor.fetchall()]


def _bodies_of_folder(
    session: Session, name: str, wanted: dict[int, tuple[int, int]]
) -> set[int]:
    if session.selected != name:
        session.examine(name)  # any recent view of the folder gives the bodies
    done: set[int] = set()
    chunks = _body_chunks(sorted(wanted, reverse=True), wanted)
    for _chunk, fetched in _pipelined(chunks, lambda c: _fetch_and_keep(session, c)):
        done |= _record_bodies([(wanted[uid][0], raw, key) for uid, raw, key in fetched])
    return done


def _body_chunks(uids: list[int], wanted: dict[int, tuple[int, int]]) -> list[list[int]]:
    chunks: list[list[int]] = []
    chunk: list[int] = []
    total = 0
    for uid in uids:
        size = wanted[uid][1]
        if chunk and (total + size > BODY_CHUNK_BYTES or len(chunk) >= BODY_CHUNK_COUNT):
            chunks.append(chunk)
            chunk, total = [], 0
        chunk.append(uid)
        total += size
    if chunk:
        chunks.append(chunk)
    return chunks


def _fetch_and_keep(session: Session, uids: list[int]) -> list[tuple[int, bytes, str]]:
    """FETCH bodies and write them to the blob store (on the helper thread: file
    creation is system time that overlaps the summaries of the previous chunk)."""
    bodies = list(fetch_bodies(session.client, uids))
    keys = blobs.put_many([raw for _uid, raw in bodies])
    return [(uid, raw, key) for (uid, raw), key in zip(bodies, keys, strict=True)]


def _record_bodies(bodies: list[tuple[int, bytes, str]]) -> set[int]:
    """One UPDATE for the chunk, after its blobs were written: a row says
    "stored" only once its bytes are in the blob store."""
    if not bodies:
        return set()
    adapt = rawsql.Adapt()
    stored = Message.BodyState.STORED.value
    rows = []
    for message_id, raw, key in bodies:
        summary = summarize_body(raw)
        rows.append(
            (
                key,
                stored,
                summary.snippet[:300],
                summary.has_attachments,
                adapt.json(summary.defects[:50]),
                message_id,
            )
        )
    columns = ("blob_key", "body_state", "snippet", "has_attachments", "defects")
    assignments = ", ".join(f"{rawsql.quote(c)} = %s" for c in columns)
    sql = f"UPDATE {rawsql.table(Message)} SET {assignments} WHERE id = %s"  # noqa: S608
    with transaction.atomic():
        rawsql.executemany(sql, rows)
    return {message_id for message_id, _raw, _key in bodies}
