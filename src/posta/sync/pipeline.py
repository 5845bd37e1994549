"""The header fetch pipeline: batches of UIDs FETCHed, parsed and stored.

The next batch's FETCH runs on a helper thread while this one is written
(`prefetched`, `pipelined`, which the bodies use too); a batch becomes rows with
the cyclic collector paused, and is stored through posta.mail.ingest with the
folder's new cursor in one transaction (`store_records`), so a kill leaves either
the whole batch, its cursor and its announcement, or none of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from django.db import transaction

from posta.accounts.models import Folder
from posta.core import faults
from posta.mail import ingest
from posta.mail.threads import ThreadIndex
from posta.mailproto.common import gc_paused
from posta.mailproto.imap.fastfetch import HeaderRecord, fetch_headers, uid_set_from
from posta.mailproto.imap.session import Session
from posta.sync import rebind
from posta.sync.models import FolderSyncState
from posta.sync.progress import Progress

_T = TypeVar("_T")

# Attempts at a batch that another writer of the same user's mail keeps racing
# (posta.mail.bulk_store: each attempt after the first finds that writer's rows).
_STORE_ATTEMPTS = 3


@dataclass
class Pins:
    """Server copies a pending user action is about to change: the sync leaves
    them alone so it does not undo the user's change before the worker runs."""

    gone: set[int] = field(default_factory=set)  # moved/deleted locally
    flags: set[int] = field(default_factory=set)  # flags changed locally


def _fetch_records(session: Session, uids: list[int], pins: Pins) -> list[HeaderRecord]:
    wanted = [u for u in uids if u not in pins.gone]
    if not wanted:
        return []
    records = fetch_headers(
        session.client, uid_set_from(wanted), modseq=session.condstore, gmail=session.gmail
    )
    keep = set(wanted)
    return [r for r in records if r.uid in keep]


def prefetched(
    session: Session, chunks: list[list[int]], pins: Pins
) -> Iterator[tuple[list[int], list[HeaderRecord]]]:
    """Yield (chunk, its header records), FETCHing the next chunk on a helper
    thread while the caller stores this one.

    The server keeps streaming while we parse and write instead of waiting for
    us between batches, and the socket reads release the GIL. The connection is
    used by one thread at a time: the caller never touches it while iterating, and
    leaving the loop early (an exception) waits for the FETCH in flight to be read
    whole, so the connection stays usable.
    """
    return pipelined(chunks, lambda chunk: _fetch_records(session, chunk, pins))


def pipelined(
    chunks: list[list[int]], fetch: Callable[[list[int]], _T]
) -> Iterator[tuple[list[int], _T]]:
    """Yield (chunk, fetch(chunk)) with the next chunk's fetch already running on
    a helper thread (see prefetched)."""
    if not chunks:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="posta-fetch") as pool:
        future: Future[_T] = pool.submit(fetch, chunks[0])
        for number, chunk in enumerate(chunks):
            result = future.result()
            if number + 1 < len(chunks):
                future = pool.submit(fetch, chunks[number + 1])
            yield chunk, result


def store_records(
    folder: Folder,
    records: list[HeaderRecord],
    progress: Progress,
    index: ThreadIndex,
    *,
    source: ingest.Source = "sync",
    state: FolderSyncState | None = None,
    new_low: int | None = None,
    next_uidnext: int | None = None,
) -> None:
    """Store a batch of header records with the folder's new cursor in one
    transaction: a kill leaves either the whole batch or none of it. `source`
    tells the messages_stored subscribers why it was stored."""
    with gc_paused():
        parsed = ingest.parse_copies(records)
    faults.point("sync_batch_fetched")
    for attempt in range(1, _STORE_ATTEMPTS + 1):
        try:
            with gc_paused(), transaction.atomic():
                stored = ingest.store_copies(
                    folder, parsed, index, source=source, stale=rebind.stale_actions(folder)
                )
                if state is not None and new_low is not None:
                    FolderSyncState.objects.filter(pk=state.pk).update(low_uid=new_low)
                    state.low_uid = new_low
                if next_uidnext is not None:
                    Folder.objects.filter(pk=folder.pk).update(uidnext=next_uidnext)
                    folder.uidnext = next_uidnext
                progress.add(stored.copies)
                faults.point("sync_batch_written")  # written, not committed yet
            return
        except ingest.StoreRaced:
            index.forget()  # it may name threads the rollback removed
            if attempt == _STORE_ATTEMPTS:
                raise
        except BaseException:
            index.forget()
            raise


def store_batch(
    session: Session,
    folder: Folder,
    uids: list[int],
    pins: Pins,
    progress: Progress,
    index: ThreadIndex,
    *,
    source: ingest.Source = "sync",
) -> None:
    """FETCH the headers of `uids` and store them (see store_records)."""
    store_records(folder, _fetch_records(session, uids, pins), progress, index, source=source)
