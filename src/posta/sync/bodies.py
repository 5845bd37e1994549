"""Message bodies mirrored after the headers: raw messages into the blob store,
with snippet, attachment mark and defects on the Message row."""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from django.db import connection, transaction
from django.db.models import F

from posta.accounts.models import Account, Folder
from posta.mail import blobs, rawsql
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


def bodies_pending(account: Account) -> bool:
    """Whether the account still has copies whose message body is not stored."""
    return bool(_pending_copies(account, limit=1, message_ids=None))


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
    for _chunk, fetched in pipelined(chunks, lambda c: _fetch_and_keep(session, c)):
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
