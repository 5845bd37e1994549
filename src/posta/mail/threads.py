"""Threads per user across accounts (issue 3: References / In-Reply-To, X-GM-THRID,
subject only among the same participants).

A batch of new messages is placed with a fixed number of queries, whatever its size:

1. X-GM-THRID, when the server offers it (Gmail): the provider's grouping wins.
2. References / In-Reply-To (RFC 5322 §3.6.4, RFC 5256 REFERENCES): the thread of
   any stored message named there, else the thread whose key is the root id (the
   first of References). A reply stored before its parent (first sync is newest
   first) created that thread under the root id; the parent then finds it through
   its own Message-ID.
3. No references at all: a thread with the same base subject *and* the same set of
   participants (sender and recipients), so two strangers writing "Hello" are never
   merged; else a new thread.

`ThreadIndex` remembers, for one pass over one user's mail, which thread each
Message-ID, root key, subject key and X-GM-THRID went to. Threads are never merged
or deleted, so what the index knows stays true for the pass; the database is asked
only about ids the index has not met yet (mail stored before the pass, or by
another account). That keeps the first sync of a large mailbox from asking the
same questions batch after batch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from posta.mail import rawsql
from posta.mail.models import Message, Thread
from posta.mailproto.mime.threading import base_subject


@dataclass(slots=True)
class Placement:
    """What threading needs of one new message; `thread_id` is the answer."""

    message_id: str
    in_reply_to: str
    references: list[str]
    subject: str
    from_email: str
    to_emails: list[str]
    date: datetime
    gm_thrid: int | None = None
    thread_id: int | None = None

    @property
    def root(self) -> str:
        return (
            self.references[0] if self.references else (self.in_reply_to or self.message_id)
        )


@dataclass
class _Counter:
    count: int = 0
    last: datetime | None = None


@dataclass
class ThreadIndex:
    """What one pass over one user's mail learnt about threads (module docstring)."""

    user_id: int
    by_msgid: dict[str, int] = field(default_factory=dict)
    by_key: dict[str, int] = field(default_factory=dict)
    by_skey: dict[str, int] = field(default_factory=dict)
    by_thrid: dict[int, int] = field(default_factory=dict)
    _subjects: dict[str, str] = field(default_factory=dict)
    _placeholders: list[tuple[dict[Any, int], Any]] = field(default_factory=list)

    def forget(self) -> None:
        """Drop everything learnt (after a rolled-back batch)."""
        for mapping in (self.by_msgid, self.by_key, self.by_skey, self.by_thrid):
            mapping.clear()
        self._placeholders.clear()

    def base(self, subject: str) -> str:
        """RFC 5256 §2.1 base subject, remembered: a mailbox repeats its subjects."""
        found = self._subjects.get(subject)
        if found is None:
            found = base_subject(subject)
            if len(self._subjects) > 20000:
                self._subjects.clear()
            self._subjects[subject] = found
        return found

    def subject_key(self, item: Placement) -> str:
        people = {item.from_email.lower(), *item.to_emails}
        people.discard("")
        basis = self.base(item.subject) + "\x1f" + ",".join(sorted(people))
        return hashlib.sha256(basis.encode("utf-8", "replace")).hexdigest()

    # --- the batch ----------------------------------------------------------------

    def place(self, items: Sequence[Placement]) -> None:
        """Set `thread_id` on every item, creating threads as needed, and bring the
        threads' `message_count` and `last_date` up to date. Call inside the
        transaction that stores the messages."""
        if not items:
            return
        skeys = self._learn(items)
        created: list[Thread] = []
        pending: list[tuple[Placement, Thread]] = []
        counters: dict[int, _Counter] = {}
        fresh: dict[int, Thread] = {}  # placeholder number -> unsaved Thread
        for item, skey in zip(items, skeys, strict=True):
            tid = self._find(item, skey)
            if tid is None:
                thread = self._new_thread(item, skey, fresh, created)
                pending.append((item, thread))
                continue
            if tid < 0:  # created earlier in this batch (see _new_thread)
                thread = fresh[-tid]
                thread.message_count += 1
                thread.last_date = max(thread.last_date, item.date)
                pending.append((item, thread))
                self._remember(item, tid)
                continue
            item.thread_id = tid
            counter = counters.setdefault(tid, _Counter())
            counter.count += 1
            if counter.last is None or item.date > counter.last:
                counter.last = item.date
            self._remember(item, tid)
        if created:
            Thread.objects.bulk_create(created, batch_size=500)
            self._resolve(fresh)
        for item, thread in pending:
            item.thread_id = thread.pk
        if counters:
            _bump(counters)

    def _learn(self, items: Sequence[Placement]) -> list[str]:
        """Ask the database about every id of the batch the index does not know
        yet (one query on Message, up to three on Thread, chunked). Returns each
        item's subject key ("" when it has references)."""
        ref_ids: set[str] = set()
        keys: set[str] = set()
        skeys: list[str] = []
        wanted_skeys: set[str] = set()
        thrids: set[int] = set()
        for item in items:
            for ref in item.references:
                if ref not in self.by_msgid:
                    ref_ids.add(ref)
            if item.in_reply_to and item.in_reply_to not in self.by_msgid:
                ref_ids.add(item.in_reply_to)
            root = item.root
            if root and root not in self.by_key:
                keys.add(root)
            if item.message_id and item.message_id not in self.by_key:
                keys.add(item.message_id)
            skey = ""
            if not item.references and not item.in_reply_to:
                skey = self.subject_key(item)
                if skey not in self.by_skey:
                    wanted_skeys.add(skey)
            skeys.append(skey)
            if item.gm_thrid and item.gm_thrid not in self.by_thrid:
                thrids.add(item.gm_thrid)
        user_id = self.user_id
        for mid, tid in rawsql.select_in(
            Message,
            ("message_id", "thread_id"),
            user_id=user_id,
            column="message_id",
            values=ref_ids,
            where=f" AND {rawsql.quote('thread_id')} IS NOT NULL",
        ):
            self.by_msgid.setdefault(mid, tid)
        columns = ("id", "key", "subject_key", "gm_thrid")
        for column, values in (("key", keys), ("subject_key", wanted_skeys), ("gm_thrid", thrids)):
            rows = rawsql.select_in(
                Thread, columns, user_id=user_id, column=column, values=sorted(values),
                where=" ORDER BY id",
            )
            for tid, key, skey, thrid in rows:
                if key:
                    self.by_key.setdefault(key, tid)
                if skey:
                    self.by_skey.setdefault(skey, tid)
                if thrid:
                    self.by_thrid.setdefault(thrid, tid)
        return skeys

    def _find(self, item: Placement, skey: str) -> int | None:
        if item.gm_thrid:
            found = self.by_thrid.get(item.gm_thrid)
            if found is not None:
                return found
        by_msgid = self.by_msgid
        if item.in_reply_to:
            found = by_msgid.get(item.in_reply_to)
            if found is not None:
                return found
        for ref in reversed(item.references):
            found = by_msgid.get(ref)
            if found is not None:
                return found
        found = self.by_key.get(item.root)
        if found is None and item.message_id:
            found = self.by_key.get(item.message_id)
        if found is None and skey:
            found = self.by_skey.get(skey)
        return found

    def _new_thread(
        self, item: Placement, skey: str, fresh: dict[int, Thread], created: list[Thread]
    ) -> Thread:
        thread = Thread(
            user_id=self.user_id,
            subject=self.base(item.subject)[:500],
            key=item.root[:998],
            subject_key=skey,
            gm_thrid=item.gm_thrid,
            last_date=item.date,
            message_count=1,
        )
        created.append(thread)
        # Until the batch is inserted the index points at the new thread with a
        # negative placeholder; _resolve swaps in the real id.
        placeholder = len(fresh) + 1
        fresh[placeholder] = thread
        tid = -placeholder
        if thread.key:
            self._set(self.by_key, thread.key, tid)
        if skey:
            self._set(self.by_skey, skey, tid)
        if item.gm_thrid:
            self._set(self.by_thrid, item.gm_thrid, tid)
        self._remember(item, tid)
        return thread

    def _remember(self, item: Placement, tid: int) -> None:
        if item.message_id:
            self._set(self.by_msgid, item.message_id, tid)
            self._set(self.by_key, item.message_id, tid)

    def _set(self, mapping: dict[Any, int], key: Any, tid: int) -> None:
        if key in mapping:
            return
        mapping[key] = tid
        if tid < 0:
            self._placeholders.append((mapping, key))

    def _resolve(self, fresh: dict[int, Thread]) -> None:
        """Swap the batch's placeholders for the ids the insert gave the threads."""
        for mapping, key in self._placeholders:
            tid = mapping[key]
            if tid < 0:
                pk = fresh[-tid].pk
                assert pk is not None  # noqa: S101 - bulk_create returned ids
                mapping[key] = pk
        self._placeholders.clear()


def _bump(counters: dict[int, _Counter]) -> None:
    """Add the batch's messages to existing threads: relative increments, so two
    processes adding to one user's thread (two accounts) never lose a count."""
    table = rawsql.table(Thread)
    count = rawsql.quote("message_count")
    last = rawsql.quote("last_date")
    # Names from the model's metadata; values are parameters.
    newer = f"CASE WHEN {last} < %s THEN %s ELSE {last} END"
    sql = f"UPDATE {table} SET {count} = {count} + %s, {last} = {newer} WHERE id = %s"  # noqa: S608
    adapt = rawsql.Adapt()
    rows = []
    for tid, counter in counters.items():
        assert counter.last is not None  # noqa: S101 - set with every count
        when = adapt.when(counter.last)
        rows.append((counter.count, when, when, tid))
    rawsql.executemany(sql, rows)


def placement_of(msg: Message) -> Placement:
    return Placement(
        message_id=msg.message_id,
        in_reply_to=msg.in_reply_to,
        references=[str(r) for r in msg.references],
        subject=msg.subject,
        from_email=msg.from_email,
        to_emails=[str(a[1]).lower() for a in msg.to if len(a) > 1],
        date=msg.date,
        gm_thrid=msg.gm_thrid,
    )


def assign_threads(user_id: int, messages: Sequence[Message]) -> None:
    """Set `thread` on each unsaved message of `messages`, creating threads as needed,
    and bring the threads' `last_date` and `message_count` up to date."""
    items = [placement_of(m) for m in messages]
    ThreadIndex(user_id).place(items)
    for msg, item in zip(messages, items, strict=True):
        msg.thread_id = item.thread_id
