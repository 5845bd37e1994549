"""Message bodies mirrored after the headers: raw messages into the blob store,
with snippet, attachment mark and defects on the Message row.

Then the copies whose content is still to be compared with their message's
(`Location.content_pending`, posta.mail.copies): their bodies are downloaded too,
and each is kept as a true copy or split off into a message of its own. A copy
the server no longer gives is kept as it is."""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any, NamedTuple

from django.db import connection, transaction
from django.db.models import F

from posta.accounts.models import Account, Folder
from posta.mail import blobs, rawsql
from posta.mail.identity import whole_subject
from posta.mail.ingest import check_copy_contents
from posta.mail.models import Location, Message
from posta.mailproto import errors
from posta.mailproto.imap.client import close_quietly
from posta.mailproto.imap.fastfetch import fetch_bodies
from posta.mailproto.imap.session import Session
from posta.remote.connect import open_account
from posta.sync.parsing import summarize_body
from posta.sync.pipeline import pipelined

log = logging.getLogger(__name__)

BODY_BATCH = 1000  # bodies fetched per account per step (the service keeps stepping)
BODY_CHUNK_BYTES = 16 << 20  # per FETCH of bodies, by stored RFC822.SIZE
BODY_CHUNK_COUNT = 500
MAX_BODY_ATTEMPTS = 3


class _Copy(NamedTuple):
    """A server copy to download: where it is, what it belongs to, how big."""

    folder_id: int
    uid: int
    message_id: int
    size: int
    location_id: int
    content_pending: bool


def bodies_pending(account: Account) -> bool:
    """Whether the account still has copies whose message body is not stored, or
    whose content is still to be compared with their message's."""
    return bool(
        _pending_copies(account, limit=1, message_ids=None)
        or _unchecked_copies(account, limit=1, message_ids=None)
    )


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
    best: dict[int, _Copy] = {}
    for copy in picked:
        # One copy is enough: the one the message was made from, where there is
        # one (a copy still to be compared would otherwise set the standard).
        known = best.get(copy.message_id)
        if known is None or (known.content_pending and not copy.content_pending):
            best[copy.message_id] = copy
    by_folder: dict[int, dict[int, _Copy]] = defaultdict(dict)
    for copy in best.values():
        by_folder[copy.folder_id][copy.uid] = copy
    chosen = set(best)
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
    left = limit - len(chosen)
    if left > 0:
        done_checks = _check_copies(
            session, account, limit=left, message_ids=message_ids, folder_id=folder_id
        )
        return len(done) + done_checks
    return len(done)


def _pending_copies(
    account: Account,
    *,
    limit: int,
    message_ids: list[int] | None,
    folder_id: int | None = None,
) -> list[_Copy]:
    """The account's copies (_Copy) of the user's
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
        f"SELECT l.{quote('folder_id')}, l.{quote('uid')}, m.id, m.{quote('size')}, "  # noqa: S608 - names are ours
        f"l.id, l.{quote('content_pending')} "
        f"FROM {rawsql.table(Message)} m CROSS JOIN {rawsql.table(Location)} l "
        f"WHERE m.{quote('user_id')} = %s AND m.{quote('body_state')} = %s{only} "
        f"AND l.{quote('message_id')} = m.id AND l.{quote('uid')} > 0 "
        f"AND l.{quote('folder_id')} IN ({folders}) "
        f"ORDER BY m.{quote('date')} DESC LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [
            _Copy(int(f), int(u), int(m), int(z), int(loc), bool(p))
            for f, u, m, z, loc, p in cursor.fetchall()
        ]


def _unchecked_copies(
    account: Account,
    *,
    limit: int,
    message_ids: list[int] | None,
    folder_id: int | None = None,
) -> list[_Copy]:
    """The account's copies still to be compared with their message, whose own
    body is stored (the partial index loc_content_pending: few rows)."""
    quote = rawsql.quote
    params: list[Any] = [account.pk]
    folders = f"SELECT id FROM {rawsql.table(Folder)} WHERE {quote('account_id')} = %s"  # noqa: S608 - names are ours
    if folder_id is not None:
        folders += " AND id = %s"
        params.append(folder_id)
    only = ""
    if message_ids is not None:
        if not message_ids:
            return []
        only = f" AND m.id IN ({', '.join(['%s'] * len(message_ids))})"
        params += message_ids
    params += [Message.BodyState.STORED.value, limit]
    sql = (
        f"SELECT l.{quote('folder_id')}, l.{quote('uid')}, m.id, m.{quote('size')}, l.id "  # noqa: S608 - names are ours
        f"FROM {rawsql.table(Location)} l JOIN {rawsql.table(Message)} m "
        f"ON m.id = l.{quote('message_id')} "
        f"WHERE l.{quote('folder_id')} IN ({folders}) AND l.{quote('content_pending')}{only} "
        f"AND l.{quote('uid')} > 0 AND m.{quote('body_state')} = %s "
        f"ORDER BY l.id LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [
            _Copy(int(f), int(u), int(m), int(z), int(loc), True)
            for f, u, m, z, loc in cursor.fetchall()
        ]


def _check_copies(
    session: Session,
    account: Account,
    *,
    limit: int,
    message_ids: list[int] | None,
    folder_id: int | None,
) -> int:
    """Download the copies still to be compared and let the mail store keep or
    split each (posta.mail.copies). Returns how many were settled."""
    unchecked = _unchecked_copies(
        account, limit=limit, message_ids=message_ids, folder_id=folder_id
    )
    if not unchecked:
        return 0
    by_folder: dict[int, dict[int, _Copy]] = defaultdict(dict)
    for copy in unchecked:
        by_folder[copy.folder_id][copy.uid] = copy
    names = dict(Folder.objects.filter(pk__in=list(by_folder)).values_list("id", "name"))
    settled: set[int] = set()
    for folder, wanted in by_folder.items():
        if session.selected != names[folder]:
            session.examine(names[folder])
        for chunk in _body_chunks(sorted(wanted, reverse=True), wanted):
            downloaded = [
                (wanted[uid].location_id, raw) for uid, raw in fetch_bodies(session.client, chunk)
                if uid in wanted
            ]
            check_copy_contents(user_id=account.user_id, downloaded=downloaded)
            settled |= {location_id for location_id, _raw in downloaded}
    gone = {copy.location_id for copy in unchecked} - settled
    if gone:
        # Expunged meanwhile, or the server would not give it: nothing to compare,
        # the copy stays with its message.
        Location.objects.filter(pk__in=gone).update(content_pending=False)
    return len(settled)


def _bodies_of_folder(session: Session, name: str, wanted: dict[int, _Copy]) -> set[int]:
    if session.selected != name:
        session.examine(name)  # any recent view of the folder gives the bodies
    done: set[int] = set()
    chunks = _body_chunks(sorted(wanted, reverse=True), wanted)
    for _chunk, fetched in pipelined(chunks, lambda c: _fetch_and_keep(session, c)):
        done |= _record_bodies([(wanted[uid], raw, key) for uid, raw, key in fetched])
    return done


def _body_chunks(uids: list[int], wanted: dict[int, _Copy]) -> list[list[int]]:
    chunks: list[list[int]] = []
    chunk: list[int] = []
    total = 0
    for uid in uids:
        size = wanted[uid].size
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


def _record_bodies(bodies: list[tuple[_Copy, bytes, str]]) -> set[int]:
    """One UPDATE for the chunk, after its blobs were written: a row says
    "stored" only once its bytes are in the blob store.

    A body taken from a copy still to be compared becomes the message's standard
    in the same transaction: that copy is checked, and the message's other copies
    are to be compared with it."""
    if not bodies:
        return set()
    adapt = rawsql.Adapt()
    stored = Message.BodyState.STORED.value
    rows = []
    standards: list[_Copy] = []
    subjects: list[tuple[str, int]] = []
    for copy, raw, key in bodies:
        message_id = copy.message_id
        if copy.content_pending:
            standards.append(copy)
        subject = whole_subject(raw)
        if subject:
            subjects.append((subject, message_id))
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
        if subjects:
            # Names from the model's metadata; values are parameters.
            subject_sql = f"UPDATE {rawsql.table(Message)} SET {rawsql.quote('subject')} = %s"  # noqa: S608
            rawsql.executemany(subject_sql + " WHERE id = %s", subjects)
        if standards:
            Location.objects.filter(message_id__in=[c.message_id for c in standards]).exclude(
                pk__in=[c.location_id for c in standards]
            ).update(content_pending=True)
            Location.objects.filter(pk__in=[c.location_id for c in standards]).update(
                content_pending=False
            )
    return {copy.message_id for copy, _raw, _key in bodies}
