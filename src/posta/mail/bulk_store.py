"""A batch of server copies written into Message, Thread and Location.

The first sync of a large mailbox is a bulk load, so this module writes a batch
with a fixed number of statements whatever its size, and builds the rows as plain
tuples rather than model instances (Django's bulk_create spends more time
preparing each object than SQLite spends storing it):

1. SELECT the batch's identities already stored for the user (copies in another
   folder or account, or a message the user sent from Posta);
2. place the new messages in threads (posta.mail.threads: two SELECTs, one INSERT
   of new threads, one UPDATE per touched thread in one executemany);
3. INSERT the new messages (executemany, ON CONFLICT DO NOTHING), then SELECT
   their ids. A concurrent writer of the same identity (another account of the
   user, in another process) wins: the insert then writes fewer rows than it was
   given, and `StoreRaced` is raised so that the caller rolls back and stores the
   batch again, finding that writer's rows as known messages. Which rows are new
   is therefore exact, and each message is announced by one writer only;
4. adopt set-aside or UID-less copies in this folder (only when the folder has
   any: after a UIDVALIDITY change or during a move), with the actions waiting on
   copies of an older numbering (`StaleCopies`, the sync's re-pairing), else
5. INSERT the locations (executemany, ON CONFLICT DO NOTHING on (folder, uid)).
   A copy that joins a message stored before it (another folder, another account,
   another copy in the batch) is marked `content_pending`: the identity's fields
   agree, but whether the content does is known only once its body is downloaded
   (posta.mail.copies). A Gmail label of the same X-GM-MSGID is the same message
   and is not marked.

The caller runs all of it in the batch's transaction (posta.mail.ingest).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from django.db.models import Q
from django.utils import timezone

from posta.accounts.models import Folder
from posta.mail import rawsql
from posta.mail.identity import identity, parse_envelope
from posta.mail.models import Location, Message
from posta.mail.threads import Placement, ThreadIndex
from posta.mailproto.mime.headers import Address, Envelope


class _Structure(Protocol):
    @property
    def has_attachments(self) -> bool: ...


class ServerCopy(Protocol):
    """One server copy as a header FETCH lists it (posta.mailproto.imap.fastfetch's
    HeaderRecord has this shape; the mail app names only what it reads)."""

    @property
    def uid(self) -> int: ...
    @property
    def flags(self) -> tuple[str, ...]: ...
    @property
    def internaldate(self) -> datetime | None: ...
    @property
    def size(self) -> int: ...
    @property
    def modseq(self) -> int | None: ...
    @property
    def header(self) -> bytes: ...
    @property
    def gm_thrid(self) -> int | None: ...
    @property
    def gm_msgid(self) -> int | None: ...
    @property
    def bodystructure(self) -> _Structure | None: ...


class StaleCopies(Protocol):
    """The user's actions waiting on copies of an older UIDVALIDITY of the folder
    (posta.sync.rebind.StaleActions): handed in by the sync, which owns them."""

    def take_leaving(self, records: list[tuple[int, int]]) -> set[int]: ...
    def adopt(self, adopted: list[Location]) -> None: ...


class StoreRaced(Exception):
    """Another writer stored some of the batch's messages meanwhile; roll back and
    store the batch again."""


@dataclass(slots=True)
class Stored:
    """What a batch wrote: copies added or adopted, and the ids of the Message rows
    it created (messages the user's store did not hold before)."""

    copies: int = 0
    new_message_ids: list[int] = field(default_factory=list)


FLAG_FIELDS = {
    "\\seen": "seen",
    "\\flagged": "flagged",
    "\\answered": "answered",
    "\\draft": "draft",
    "\\deleted": "deleted",
}
_MESSAGE_COLUMNS = (
    "user_id",
    "identity",
    "message_id",
    "thread_id",
    "subject",
    "from_name",
    "from_email",
    "to",
    "cc",
    "reply_to",
    "date",
    "in_reply_to",
    "references",
    "size",
    "snippet",
    "has_attachments",
    "blob_key",
    "body_state",
    "body_attempts",
    "defects",
    "gm_thrid",
    "gm_msgid",
    "created_at",
)
_LOCATION_COLUMNS = (
    "message_id",
    "folder_id",
    "uid",
    "seen",
    "flagged",
    "answered",
    "draft",
    "deleted",
    "keywords",
    "modseq",
    "user_id",
    "role",
    "date",
    "content_pending",
)


@dataclass(slots=True)
class _Flags:
    seen: bool
    flagged: bool
    answered: bool
    draft: bool
    deleted: bool
    keywords: list[str]


_FLAG_CACHE: dict[tuple[str, ...], _Flags] = {}


def flags_of(flags: tuple[str, ...]) -> _Flags:
    """The IMAP flags of a copy as Location columns; a mailbox has few distinct
    flag sets, so they are remembered (fastfetch hands out one tuple per set)."""
    found = _FLAG_CACHE.get(flags)
    if found is None:
        on: set[str] = set()
        keywords: list[str] = []
        for flag in flags:
            name = FLAG_FIELDS.get(flag.lower())
            if name:
                on.add(name)
            elif flag.lower() != "\\recent":  # RFC 3501 §2.3.2: session-only
                keywords.append(flag[:100])
        found = _Flags(
            seen="seen" in on,
            flagged="flagged" in on,
            answered="answered" in on,
            draft="draft" in on,
            deleted="deleted" in on,
            keywords=sorted(keywords)[:50],
        )
        if len(_FLAG_CACHE) < 4096:
            _FLAG_CACHE[flags] = found
    return found


def flag_values(flags: Iterable[str]) -> dict[str, object]:
    """Location field values for a set of IMAP flags (for ORM updates)."""
    found = flags_of(tuple(flags))
    return {
        "seen": found.seen,
        "flagged": found.flagged,
        "answered": found.answered,
        "draft": found.draft,
        "deleted": found.deleted,
        "keywords": found.keywords,
    }


def _ids_of(user_id: int, identities: list[str]) -> dict[str, int]:
    return {identity: pk for identity, pk, _gm in _known_of(user_id, identities)}


def _known_of(user_id: int, identities: list[str]) -> list[tuple[str, int, int | None]]:
    """(identity, id, X-GM-MSGID) of the user's messages of these identities."""
    return list(
        rawsql.select_in(
            Message,
            ("identity", "id", "gm_msgid"),
            user_id=user_id,
            column="identity",
            values=identities,
        )
    )


class _AddressJson:
    """JSON of address lists, remembered: a mailbox's To and Cc lists repeat."""

    def __init__(self, adapt: rawsql.Adapt) -> None:
        self.adapt = adapt
        self.known: dict[tuple[Address, ...], Any] = {}

    def __call__(self, addresses: list[Address]) -> Any:
        if not addresses:
            return self.adapt.empty
        key = tuple(addresses)
        found = self.known.get(key)
        if found is None:
            found = self.adapt.json([[a[0][:300], a[1][:300]] for a in addresses])
            if len(self.known) > 10000:
                self.known.clear()
            self.known[key] = found
        return found


# --- the batch ------------------------------------------------------------------


@dataclass(slots=True)
class ParsedCopy:
    """One server copy of a batch with its envelope and identity, ready to store."""

    record: ServerCopy
    env: Envelope
    identity: str
    date: datetime
    when: Any = None  # `date` as the database driver takes it


def parse_records(records: Sequence[ServerCopy]) -> list[ParsedCopy]:
    """Envelope and identity of each record (the CPU part of a batch, done before
    the transaction opens)."""
    out = []
    now = timezone.now()
    for record in records:
        env = parse_envelope(record.header)
        when = env.date or record.internaldate or now
        out.append(ParsedCopy(record, env, identity(env, record.size), when))
    return out


def write_batch(
    folder: Folder, parsed: list[ParsedCopy], index: ThreadIndex, *, stale: StaleCopies | None
) -> Stored:
    """Store the batch's messages and copies (see the module docstring). Run
    inside a transaction; raises StoreRaced (see the module docstring)."""
    if not parsed:
        return Stored()
    adapt = rawsql.Adapt()
    for item in parsed:
        item.when = adapt.when(item.date)
    user_id = index.user_id
    known = _known_of(user_id, list({p.identity for p in parsed}))
    ids = {identity: pk for identity, pk, _gm in known}
    # The X-GM-MSGID of the copy each identity's Message was made from.
    made_from: dict[str, int | None] = {identity: gm for identity, _pk, gm in known}
    new: dict[str, ParsedCopy] = {}
    for item in parsed:
        if item.identity not in ids and item.identity not in new:
            new[item.identity] = item
    makers = {id(item) for item in new.values()}
    for item in new.values():
        made_from[item.identity] = item.record.gm_msgid
    created: list[int] = []
    if new:
        written = _insert_messages(user_id, list(new.values()), index, adapt)
        if written != len(new):
            raise StoreRaced(f"user {user_id}: {len(new) - written} messages stored meanwhile")
        found = _ids_of(user_id, list(new))
        created = sorted(found.values())
        ids.update(found)
    adoptable = _adoptable(folder, set(ids.values()))
    leaving = (
        stale.take_leaving([(p.record.uid, ids[p.identity]) for p in parsed if p.identity in ids])
        if stale is not None
        else set()
    )
    rows = []
    adopted: list[Location] = []
    for item in parsed:
        message_id = ids.get(item.identity)
        if message_id is None:
            continue  # cannot happen short of a concurrent delete; skip the copy
        record = item.record
        if record.uid in leaving:
            continue  # a waiting move or delete takes it out (posta.sync.rebind)
        flags = flags_of(record.flags)
        candidates = adoptable.get(message_id) if adoptable else None
        if candidates:
            loc = candidates.pop(0)
            loc.uid = record.uid
            loc.modseq = record.modseq
            loc.date = item.date
            loc.seen, loc.flagged, loc.answered = flags.seen, flags.flagged, flags.answered
            loc.draft, loc.deleted, loc.keywords = flags.draft, flags.deleted, flags.keywords
            adopted.append(loc)
            continue
        rows.append(
            (
                message_id,
                folder.pk,
                record.uid,
                flags.seen,
                flags.flagged,
                flags.answered,
                flags.draft,
                flags.deleted,
                adapt.json_strings(flags.keywords),
                record.modseq,
                user_id,
                folder.role,
                item.when,
                id(item) not in makers and not _same_gmail_message(item, made_from),
            )
        )
    if adopted and stale is not None:
        stale.adopt(adopted)
    if adopted:
        fields = ["uid", "modseq", "date", "keywords", *FLAG_FIELDS.values()]
        Location.objects.bulk_update(adopted, fields, batch_size=500)
    rawsql.executemany(
        rawsql.insert_sql(Location, _LOCATION_COLUMNS, ignore_conflicts=True), rows
    )
    return Stored(copies=len(rows) + len(adopted), new_message_ids=created)


def _same_gmail_message(item: ParsedCopy, made_from: dict[str, int | None]) -> bool:
    """Gmail names one message by one X-GM-MSGID in every label: a further copy
    of it needs no comparison of contents."""
    gm_msgid = item.record.gm_msgid
    return gm_msgid is not None and made_from.get(item.identity) == gm_msgid


def _insert_messages(
    user_id: int, items: list[ParsedCopy], index: ThreadIndex, adapt: rawsql.Adapt
) -> int:
    placements = []
    for item in items:
        env = item.env
        placements.append(
            Placement(
                message_id=env.message_id,
                in_reply_to=env.in_reply_to,
                references=env.references,
                subject=env.subject,
                from_email=env.from_[0][1] if env.from_ else "",
                to_emails=[a[1].lower() for a in env.to],
                date=item.date,
                gm_thrid=item.record.gm_thrid,
            )
        )
    index.place(placements)
    now = adapt.when(timezone.now())
    empty = adapt.empty
    addresses = _AddressJson(adapt)
    pending = Message.BodyState.PENDING.value
    rows = []
    for item, placement in zip(items, placements, strict=True):
        env = item.env
        record = item.record
        sender = env.from_[0] if env.from_ else ("", "")
        structure = record.bodystructure
        rows.append(
            (
                user_id,
                item.identity,
                env.message_id,
                placement.thread_id,
                env.subject,
                sender[0][:500],
                sender[1][:500],
                addresses(env.to),
                addresses(env.cc),
                addresses(env.reply_to),
                item.when,
                env.in_reply_to[:998],
                adapt.json_strings(env.references),
                min(record.size, 2**31 - 1),
                "",
                structure is not None and structure.has_attachments,
                "",
                pending,
                0,
                empty,
                record.gm_thrid,
                record.gm_msgid,
                now,
            )
        )
    sql = rawsql.insert_sql(Message, _MESSAGE_COLUMNS, ignore_conflicts=True)
    return rawsql.executemany(sql, rows)


def _adoptable(folder: Folder, message_ids: set[int]) -> dict[int, list[Location]]:
    """Copies of these messages in `folder` waiting for a UID: set aside by a
    UIDVALIDITY change (negative UID) or moved here locally (NULL UID)."""
    waiting = Location.objects.filter(Q(uid__isnull=True) | Q(uid__lt=0), folder=folder)
    if not message_ids or not waiting.exists():
        return {}
    found: dict[int, list[Location]] = defaultdict(list)
    for chunk in rawsql.chunks(sorted(message_ids)):
        for loc in waiting.filter(message_id__in=chunk).order_by("id"):
            found[loc.message_id].append(loc)
    return found


def update_flags(updates: list[tuple[int, _Flags, int | None]]) -> None:
    """Set flags and MODSEQ of Locations by id, in one executemany."""
    adapt = rawsql.Adapt()
    columns = ("seen", "flagged", "answered", "draft", "deleted", "keywords", "modseq")
    assignments = ", ".join(f"{rawsql.quote(c)} = %s" for c in columns)
    table = rawsql.table(Location)
    sql = f"UPDATE {table} SET {assignments} WHERE id = %s"  # noqa: S608 - names are ours
    rows = [
        (f.seen, f.flagged, f.answered, f.draft, f.deleted, adapt.json(f.keywords), modseq, pk)
        for pk, f, modseq in updates
    ]
    rawsql.executemany(sql, rows)
