"""The account pass: one account's folders mirrored into Folder/Message/Location.

A pass lists the folders (posta.sync.folder_list), asks STATUS of each, brings every
changed folder up to date (posta.sync.folder_state), then fetches pending bodies
(posta.sync.bodies), and records the outcome on the Account.

Entry points: `sync_account_once(account_id)` (a full pass, idempotent, resumable).
The service (posta.sync.service) calls the lower level `sync_account(client,
account)` on a connection it keeps for IDLE, opened by
`posta.remote.connect.open_account(account)`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from django.db.models import F
from django.utils import timezone
from imapclient import IMAPClient

from posta.accounts.models import Account, Folder
from posta.mail.models import Location
from posta.mail.threads import ThreadIndex
from posta.mailproto import errors
from posta.mailproto.imap.client import close_quietly, imap_errors
from posta.mailproto.imap.session import Session
from posta.remote.account_errors import record_failure
from posta.remote.connect import open_account
from posta.sync import folder_state
from posta.sync.bodies import fetch_pending_bodies
from posta.sync.folder_list import refresh_folders
from posta.sync.models import FolderSyncState
from posta.sync.progress import Progress


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
            folder_state.sync_folder(session, folder, progress=progress, index=index)
    if bodies:
        fetch_pending_bodies(session, account)
    record_success(account.pk)
    return session


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
