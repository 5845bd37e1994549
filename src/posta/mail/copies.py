"""Copies that share a message's identity but not its content.

The identity (posta.mail.identity: Message-ID, sender, date, subject) is known
from the header fields alone, so the sync makes a copy of a message already
stored part of that Message at once, and marks it `content_pending`
(posta.mail.bulk_store). Mailers that reuse one Message-ID, a template sent twice
within a second, test tools: some different messages agree on every one of those
fields. Once such a copy's body is downloaded (posta.sync.bodies) its content
hash (the body and the author's header fields, posta.mail.identity.content_hash)
is compared with the message's:

- the same: a true copy (Sent and INBOX, a Gmail label, the same bytes with other
  Received / Delivered-To / Return-Path lines); it stays and is marked checked;
- different: the copy leaves for a Message of its own, identity
  content_identity(message, content), with its own body, snippet, attachment
  mark and thread placement; its flags are the copy's own and go with it, and so
  do the actions waiting on it. Further copies with that content (another folder,
  a later resync) join that Message.

Each copy is settled in one transaction (its new Message, the copy and its
actions move together), after the raw bytes are in the blob store (idempotent,
keyed by content), so a kill at any point leaves the copy either untouched and
still pending, to be checked again, or settled; the new Message's identity is
derived from the content, so a rerun finds the Message a finished run made
instead of making another.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction

from posta.core import faults
from posta.mail import blobs
from posta.mail.envelope_rows import message_from_raw
from posta.mail.identity import content_hash, content_identity
from posta.mail.models import Location, Message, RemoteAction
from posta.mail.threads import assign_threads

log = logging.getLogger(__name__)

SPLIT_POINT = "mail.copies.split"  # after the new Message, before the copy moves


@dataclass(slots=True)
class Checked:
    """What a check did: copies kept as true copies, copies split off, and the
    Message rows it created (by folder of the copy, for the announcement)."""

    kept: int = 0
    split: int = 0
    created: dict[int, list[int]] = field(default_factory=dict)


def do_check_copies(
    copies: Sequence[tuple[int, bytes]],
    *,
    on_created: Callable[[int, int], None] | None = None,
) -> Checked:
    """Compare each (location id, raw bytes) copy with its Message and keep it or
    split it off (module docstring). Copies no longer pending (checked meanwhile,
    expunged) are left alone. Each copy is settled in a transaction of its own;
    `on_created(folder id, message id)` is called inside the transaction that
    made a new Message (to announce it when that transaction commits)."""
    result = Checked()
    theirs: dict[int, str | None] = {}
    for location_id, raw in copies:
        mine = content_hash(raw)
        with transaction.atomic():
            loc = (
                Location.objects.select_for_update()
                .select_related("message")
                .filter(pk=location_id, content_pending=True)
                .first()
            )
            if loc is None:
                continue
            message = loc.message
            if message.pk not in theirs:
                theirs[message.pk] = _content_of(message)
            known = theirs[message.pk]
            if known is None or known == mine:
                # The same content, or nothing to compare with (the message's
                # body could not be read): the copy stays where it is.
                Location.objects.filter(pk=loc.pk).update(content_pending=False)
                result.kept += 1
                continue
            target, made = _message_for(message, raw, mine)
            faults.point(SPLIT_POINT)
            Location.objects.filter(pk=loc.pk).update(message=target, content_pending=False)
            RemoteAction.objects.filter(location_id=loc.pk, message_id=message.pk).update(
                message=target
            )
            result.split += 1
            if made:
                result.created.setdefault(loc.folder_id, []).append(target.pk)
                if on_created is not None:
                    on_created(loc.folder_id, target.pk)
    return result


def same_content(message: Message, raw: bytes) -> bool | None:
    """Whether `raw` is a copy of `message` (content_hash); None when the
    message's body is not stored yet, so there is nothing to compare with."""
    known = _content_of(message)
    return None if known is None else known == content_hash(raw)


def _content_of(message: Message) -> str | None:
    """The content hash of the message's stored body; None when it cannot be read."""
    if message.body_state != Message.BodyState.STORED or not message.blob_key:
        return None
    try:
        return content_hash(blobs.get(message.blob_key))
    except (OSError, ValueError) as exc:
        log.warning("message %s: body unreadable for the copy check: %s", message.pk, exc)
        return None


def _message_for(message: Message, raw: bytes, content: str) -> tuple[Message, bool]:
    """The Message a copy of `message` with a different content belongs to, made
    now (True) or found from an earlier split (False)."""
    key = content_identity(message.identity, content)
    found = Message.objects.filter(user_id=message.user_id, identity=key).first()
    if found is not None:
        return found, False
    blob_key = blobs.put(raw)
    made = _new_message(message, raw, key, blob_key)
    try:
        with transaction.atomic():
            made.save()
    except IntegrityError:  # another process split a copy of the same content
        return Message.objects.get(user_id=message.user_id, identity=key), False
    return made, True


def _new_message(message: Message, raw: bytes, key: str, blob_key: str) -> Message:
    made = message_from_raw(
        raw, user_id=message.user_id, identity=key, blob_key=blob_key, date=message.date,
        like=message,
    )
    assign_threads(message.user_id, [made])
    return made
