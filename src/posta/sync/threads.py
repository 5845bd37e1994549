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
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from django.db.models import Q

from posta.mail.models import Message, Thread
from posta.sync.parsing import base_subject


def _root(msg: Message) -> str:
    refs = [str(r) for r in msg.references]
    return refs[0] if refs else (msg.in_reply_to or msg.message_id)


def subject_key(msg: Message) -> str:
    people = {msg.from_email.lower()} | {str(a[1]).lower() for a in msg.to}
    basis = base_subject(msg.subject) + "\x1f" + ",".join(sorted(p for p in people if p))
    return hashlib.sha256(basis.encode("utf-8", "replace")).hexdigest()


def assign_threads(user_id: int, messages: Sequence[Message]) -> None:
    """Set `thread` on each unsaved message of `messages`, creating threads as needed,
    and bring the threads' `last_date` and `message_count` up to date."""
    if not messages:
        return
    ref_ids: set[str] = set()
    keys: set[str] = set()
    skeys: set[str] = set()
    thrids: set[int] = set()
    for msg in messages:
        ref_set = {str(r) for r in msg.references} | ({msg.in_reply_to} - {""})
        ref_ids |= ref_set
        if msg.message_id:
            keys.add(msg.message_id)
        keys.add(_root(msg))
        if not ref_set:
            skeys.add(subject_key(msg))
        if msg.gm_thrid:
            thrids.add(msg.gm_thrid)
    keys.discard("")
    by_msgid: dict[str, int] = {}
    if ref_ids:
        for mid, ref_tid in Message.objects.filter(
            user_id=user_id, message_id__in=ref_ids, thread__isnull=False
        ).values_list("message_id", "thread_id"):
            if ref_tid is not None:
                by_msgid.setdefault(mid, ref_tid)
    threads: dict[int, Thread] = {}
    by_key: dict[str, Thread] = {}
    by_skey: dict[str, Thread] = {}
    by_thrid: dict[int, Thread] = {}
    query = Q(key__in=keys) | Q(subject_key__in=skeys) | Q(gm_thrid__in=thrids)
    wanted_ids = set(by_msgid.values())
    if wanted_ids:
        query |= Q(id__in=wanted_ids)
    for thread in Thread.objects.filter(query, user_id=user_id):
        threads[thread.pk] = thread
        if thread.key:
            by_key.setdefault(thread.key, thread)
        if thread.subject_key:
            by_skey.setdefault(thread.subject_key, thread)
        if thread.gm_thrid:
            by_thrid.setdefault(thread.gm_thrid, thread)
    created: list[Thread] = []
    touched: dict[int, Thread] = {}

    def new_thread(msg: Message, *, skey: str) -> Thread:
        thread = Thread(
            user_id=user_id,
            subject=base_subject(msg.subject)[:500],
            key=_root(msg)[:998],
            subject_key=skey,
            gm_thrid=msg.gm_thrid,
            last_date=msg.date,
            message_count=0,
        )
        created.append(thread)
        return thread

    placed: list[tuple[Message, Thread]] = []
    for msg in messages:
        refs = [str(r) for r in msg.references] + ([msg.in_reply_to] if msg.in_reply_to else [])
        found: Thread | None = by_thrid.get(msg.gm_thrid) if msg.gm_thrid else None
        if found is None:
            for ref in reversed(refs):
                tid = by_msgid.get(ref)
                if tid is not None and tid in threads:
                    found = threads[tid]
                    break
        if found is None:
            found = by_key.get(_root(msg))
        if found is None and msg.message_id:
            found = by_key.get(msg.message_id)
        skey = "" if refs else subject_key(msg)
        if found is None and skey:
            found = by_skey.get(skey)
        if found is None:
            found = new_thread(msg, skey=skey)
            if found.key:
                by_key.setdefault(found.key, found)
            if skey:
                by_skey.setdefault(skey, found)
            if msg.gm_thrid:
                by_thrid.setdefault(msg.gm_thrid, found)
        if msg.message_id:
            by_key.setdefault(msg.message_id, found)
        placed.append((msg, found))
        found.message_count += 1
        if msg.date > found.last_date:
            found.last_date = msg.date
        if found.pk is not None:
            touched[found.pk] = found
    if created:
        Thread.objects.bulk_create(created)
    if touched:
        Thread.objects.bulk_update(list(touched.values()), ["message_count", "last_date"])
    for msg, thread in placed:
        msg.thread = thread
