"""Every way a message enters the user's mail store, and its announcement.

Four paths store messages, and all of them come through here:

    source      what stores it                                    function
    "sync"      a sync pass over a folder (first sync, resync)    store_copies
    "idle"      news on a watched folder (IMAP IDLE, RFC 2177)    store_copies
    "sent"      Posta sent it (the row exists before the Sent     do_store_sent
                copy arrives)
    "appended"  the user saved it into a folder from Posta         do_store_appended,
                (APPEND, RFC 3501 §6.3.11), once the server has   do_settle_appended
                the copy
    "sync"      a copy whose downloaded content proves it a       check_copy_contents
                different message from the one its identity
                named (posta.mail.copies)

Each registers, with `transaction.on_commit`, one
`posta.mail.signals.messages_stored` per stored batch naming the Message rows it
created (the contract is in posta.mail.signals). A Message row is created once per
identity (posta.mail.identity; the database's uniqueness of (user, identity)
guarantees it), so a message is announced once whatever the resyncs, the kills and
the restarts: a pass that finds it again, in the same folder or another, adds a
copy to the known row and announces nothing. A rolled-back transaction takes its
announcement with it.

The sync's bulk path writes with a fixed number of statements per batch
(posta.mail.bulk_store); the single-message paths use the ORM.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from email.utils import getaddresses, parsedate_to_datetime
from typing import Literal

from django.db import transaction
from django.utils import timezone

from posta.accounts.models import Folder
from posta.mail import autolink_queue, blobs, copies, signals
from posta.mail.bulk_store import (
    ParsedCopy,
    ServerCopy,
    StaleCopies,
    Stored,
    StoreRaced,
    parse_records,
    write_batch,
)
from posta.mail.envelope_rows import message_from_raw
from posta.mail.identity import (
    content_hash,
    content_identity,
    header_block,
    identity,
    parse_envelope,
)
from posta.mail.models import Location, Message, RemoteAction
from posta.mail.threads import ThreadIndex, assign_threads

Source = Literal["sync", "idle", "sent", "appended", "imported"]
SOURCES: tuple[Source, ...] = ("sync", "idle", "sent", "appended", "imported")

__all__ = [
    "SOURCES",
    "Checked",
    "ParsedCopy",
    "ServerCopy",
    "StaleCopies",
    "Source",
    "StoreRaced",
    "Stored",
    "check_copy_contents",
    "do_settle_appended",
    "do_store_imported",
    "do_store_appended",
    "do_store_sent",
    "parse_copies",
    "store_copies",
]

parse_copies = parse_records  # the CPU part of a batch, before its transaction opens
Checked = copies.Checked


def _announce(
    *, user_id: int, message_ids: Sequence[int], folder_id: int | None, source: Source
) -> None:
    if not message_ids:
        return
    # In the storing transaction: the batch and its row for CRM linking commit
    # together (posta.mail.autolink_queue); the worker is woken after the commit.
    autolink_queue.do_record_batch(user_id, message_ids)
    signals.notify_after_commit(
        signals.messages_stored,
        sender=Message,
        user_id=user_id,
        message_ids=sorted(message_ids),
        folder_id=folder_id,
        source=source,
    )


# --- the sync's batches -----------------------------------------------------------


def store_copies(
    folder: Folder,
    parsed: list[ParsedCopy],
    index: ThreadIndex,
    *,
    source: Source,
    stale: StaleCopies | None = None,
) -> Stored:
    """Store one batch of server copies of `folder` (parsed by parse_copies) and
    announce the messages it created once the caller's transaction commits.

    Run inside the transaction that also moves the folder's cursor, so a kill
    leaves the batch and its announcement together or neither. Raises StoreRaced
    when another writer stored some of the messages meanwhile: the caller rolls
    back, forgets what `index` learnt, and stores the batch again.
    """
    stored = write_batch(folder, parsed, index, stale=stale)
    _announce(
        user_id=index.user_id,
        message_ids=stored.new_message_ids,
        folder_id=folder.pk,
        source=source,
    )
    return stored


def check_copy_contents(*, user_id: int, downloaded: Sequence[tuple[int, bytes]]) -> Checked:
    """Compare copies marked `content_pending` (location id, raw bytes) with their
    messages, splitting off those whose content differs (posta.mail.copies), and
    announce the messages split off: to the user they are new mail."""

    def announce(folder_id: int, message_id: int) -> None:
        _announce(user_id=user_id, message_ids=[message_id], folder_id=folder_id, source="sync")

    return copies.do_check_copies(downloaded, on_created=announce)


# --- mail sent from Posta ---------------------------------------------------------


def do_store_sent(*, user_id: int, raw: bytes, blob_key: str, now: datetime) -> Message | None:
    """Store a message Posta just sent, in its thread, before any server copy
    exists (the sync adds the Sent copy to this row when it arrives, by identity).
    Returns None when the user's store already holds it (a retried follow-up).
    Run inside the transaction that records the send."""
    env = parse_envelope(header_block(raw))
    key = identity(env, len(raw))
    if Message.objects.filter(user_id=user_id, identity=key).exists():
        return None
    message = message_from_raw(
        raw, user_id=user_id, identity=key, blob_key=blob_key, date=now, env=env
    )
    assign_threads(user_id, [message])
    message.save()
    _announce(user_id=user_id, message_ids=[message.pk], folder_id=None, source="sent")
    return message


# --- mail the user appends --------------------------------------------------------


def do_store_appended(*, user_id: int, raw: bytes, blob_key: str) -> Message:
    """A provisional Message for bytes about to be appended; not announced yet.

    Its identity is derived from the bytes, not from the envelope, so it never
    meets a synced Message by accident; do_settle_appended gives it the real
    identity (or folds it into the synced one) once the server has the copy, and
    announces it then: announcing a provisional identity would hand subscribers a
    key that is about to change.
    """
    head = BytesHeaderParser(policy=default_policy).parsebytes(raw, headersonly=True)

    def text(name: str) -> str:
        try:
            return str(head.get(name, "") or "").strip()
        except (ValueError, TypeError, IndexError):
            return ""  # a malformed header: the sync shows what it can later

    try:
        date = parsedate_to_datetime(text("Date")) if text("Date") else None
    except (ValueError, TypeError, IndexError):
        date = None
    if date is None or date.tzinfo is None:
        date = timezone.now()
    sender = getaddresses([text("From")])
    name, email = sender[0] if sender else ("", "")
    digest = hashlib.sha256(b"append\x1f" + raw).hexdigest()
    message, _ = Message.objects.get_or_create(
        user_id=user_id,
        identity=digest,
        defaults={
            "message_id": text("Message-ID").strip("<>")[:998],
            "subject": text("Subject")[:2000],
            "from_name": name[:500],
            "from_email": email[:500],
            "date": date,
            "size": min(len(raw), 2**31 - 1),
            "blob_key": blob_key,
            "body_state": Message.BodyState.STORED,
        },
    )
    return message


def do_settle_appended(provisional: Message, raw: bytes, *, folder_id: int | None) -> None:
    """Give the provisional Message of an append its real identity, so later syncs
    of other folders and accounts meet it, and announce it (source "appended",
    the folder appended to); fold it into the stored one, unannounced, if the
    user's store already holds that identity (the sync stored the copy first and
    announced it, or the message was known before)."""
    env = parse_envelope(header_block(raw))
    real = identity(env, len(raw))
    with transaction.atomic():
        twin = (
            Message.objects.filter(user_id=provisional.user_id, identity=real)
            .exclude(pk=provisional.pk)
            .first()
        )
        same: bool | None = True
        if twin is not None:
            # The bytes are known: a different message that shares the identity's
            # fields gets a Message of its own (posta.mail.copies).
            same = copies.same_content(twin, raw)
            if same is False:
                real = content_identity(real, content_hash(raw))
                twin = (
                    Message.objects.filter(user_id=provisional.user_id, identity=real)
                    .exclude(pk=provisional.pk)
                    .first()
                )
                same = True
        if twin is not None:
            # Not comparable yet (the twin's body is still to come): the copies
            # are compared once it is (posta.sync.bodies).
            Location.objects.filter(message=provisional).update(
                message=twin, content_pending=same is None
            )
            RemoteAction.objects.filter(message=provisional).update(message=twin)
            provisional.delete()
        elif not Location.objects.filter(message=provisional).exists():
            provisional.delete()  # the sync stored the copy under its own Message
        else:
            settled = Message.objects.filter(pk=provisional.pk).exclude(identity=real).update(
                identity=real, message_id=env.message_id
            )
            if settled:  # not when a retried action settles it a second time
                _announce(
                    user_id=provisional.user_id,
                    message_ids=[provisional.pk],
                    folder_id=folder_id,
                    source="appended",
                )


# --- mail brought in from outside -------------------------------------------------


def do_store_imported(*, user_id: int, raw: bytes) -> tuple[Message, bool]:
    """Store a message brought in as a file (posta.mail.imports), with no location;
    returns it and whether it is new. A new one is announced (source "imported",
    no folder) once the caller's transaction commits; one the user's store holds
    already (by identity) is returned as it is."""
    env = parse_envelope(header_block(raw))
    key = identity(env, len(raw))
    known = Message.objects.filter(user_id=user_id, identity=key).first()
    if known is not None:
        return known, False
    message = message_from_raw(
        raw, user_id=user_id, identity=key, blob_key=blobs.put(raw), date=timezone.now(), env=env
    )
    assign_threads(user_id, [message])
    message.save()
    _announce(user_id=user_id, message_ids=[message.pk], folder_id=None, source="imported")
    return message, True
