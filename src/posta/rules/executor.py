"""Posta's own filter executor: a plan (posta.mailproto.filtering.match) carried
out through the intents the web's buttons write (posta.mail.services), so the
server learns every move, copy and flag from the action worker, idempotently.

Used by the arrival pipeline's "filters" step (new inbox mail of accounts whose
filters do not run on the server) and by "apply to existing mail". Runs inside
the caller's transaction: the intents and the caller's record of having acted
commit together, so a kill never leaves a message acted on twice. A batch of
messages is matched one by one and its intents written together, by kind
(`run_batch`).

A plan becomes intents in this order (RFC 5232 §3: each copy has the flags set
when it was filed; the copy kept in the folder has them all):

1. the flags of the copy in the folder: all of them when it stays, else those of
   the first move;
2. the first move (to a folder, Trash or Spam) moves that copy;
3. every other filing is a new copy (APPEND of the stored message) with its own
   flags;
4. each forward is a system send through the outbox: the message attached whole,
   from the account it arrived in. Loop protection: never to the account's own
   address, and never for a message Posta itself sent (its Message-ID is one of
   the user's outgoing messages), so two mailboxes forwarding to each other
   stop after one round.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.utils import timezone

from posta.accounts.models import Account, Folder
from posta.mail import blobs, services, signals
from posta.mail.models import Location, Message, OutgoingAttachment, OutgoingMessage
from posta.mail.outbox_models import new_message_id
from posta.mailproto.filtering import match, spec
from posta.rules.arrivals import Outcome

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    """An account's rules ready to run: the plain rules and its folders by the
    name the rules use."""

    account: Account
    rules: list[spec.FilterRule]
    folders: dict[str, Folder]


def prepare(account: Account, rules: Sequence[spec.FilterRule]) -> Prepared:
    folders = {f.display_name: f for f in Folder.objects.filter(account=account)}
    return Prepared(account, list(rules), folders)


def view_of(message: Message) -> match.MailView | None:
    """The message as rules read it; None when its body is not stored."""
    if message.body_state != Message.BodyState.STORED or not message.blob_key:
        return None
    return match.MailView(blobs.get(message.blob_key), size=message.size)


@dataclass(slots=True)
class Item:
    """One server copy to filter, as rules read it, and where to describe the
    result (the arrival pipeline's outcome; None for "apply to existing mail")."""

    copy: Location
    view: match.MailView
    outcome: Outcome | None = None


def run_on(prepared: Prepared, copy: Location, view: match.MailView,
           outcome: Outcome | None = None) -> match.Plan:
    """Match `copy` (one server copy, in its folder) and write the plan's intents."""
    return run_batch(prepared, [Item(copy, view, outcome)])[0]


def run_batch(prepared: Prepared, items: Sequence[Item]) -> list[match.Plan]:
    """Match every item and write the plans' intents: one services call per kind
    of intent for the whole batch (the flags, each move's target and source
    folder), so a batch costs a few statements, not a few per message. Each
    copy's intents keep their order (flags, then its move: posta.mail.chains
    chains them). Returns the plans in the items' order."""
    plans = [match.plan(prepared.rules, item.view) for item in items]
    carry_out(prepared, list(zip(items, plans, strict=True)))
    for item, plan in zip(items, plans, strict=True):
        if item.outcome is not None:
            _describe(prepared, plan, item.outcome)
    return plans


def _describe(prepared: Prepared, plan: match.Plan, outcome: Outcome) -> None:
    outcome.stopped = outcome.stopped or plan.stopped
    moved = next((f for f in plan.filings if f.kind != "copy"), None)
    if moved is not None:
        outcome.disposition = (
            "trash" if moved.kind == "trash" else "spam" if moved.kind == "spam" else "moved"
        )
        target = prepared.folders.get(moved.folder)
        outcome.target_folder_id = target.pk if target else None
    elif plan.filings:
        outcome.disposition = "copied"


@dataclass
class _Intents:
    """A batch's intents, gathered by kind before they are written."""

    seen: list[int] = field(default_factory=list)
    flagged: list[int] = field(default_factory=list)
    moves: dict[tuple[Folder, int], list[int]] = field(default_factory=dict)
    appends: list[tuple[Folder, bytes, list[str]]] = field(default_factory=list)
    forwards: list[tuple[Message, str]] = field(default_factory=list)


def _gather(prepared: Prepared, copy: Location, plan: match.Plan, raw: bytes,
            into: _Intents) -> None:
    moved = None if plan.keep else next((f for f in plan.filings if f.kind != "copy"), None)
    flags = plan.keep_flags if moved is None else moved.flags
    if "\\Seen" in flags and not copy.seen:
        into.seen.append(copy.message_id)
    if "\\Flagged" in flags and not copy.flagged:
        into.flagged.append(copy.message_id)
    if moved is not None:
        target = prepared.folders.get(moved.folder)
        if target is not None and target.pk != copy.folder_id:
            into.moves.setdefault((target, copy.folder_id), []).append(copy.message_id)
    for filing in plan.filings:
        if filing is moved:
            continue
        target = prepared.folders.get(filing.folder)
        if target is None or target.pk == copy.folder_id:
            continue
        into.appends.append((target, raw, sorted(filing.flags)))
    into.forwards.extend((copy.message, address) for address in plan.forwards)


def carry_out(prepared: Prepared, planned: Sequence[tuple[Item, match.Plan]]) -> None:
    """Write the intents of every (item, plan), gathered by kind (run_batch)."""
    user = prepared.account.user
    intents = _Intents()
    for item, plan in planned:
        _gather(prepared, item.copy, plan, item.view.raw, intents)
    if intents.seen:
        services.do_set_seen(user, intents.seen, True)
    if intents.flagged:
        services.do_set_flagged(user, intents.flagged, True)
    for (target, source), message_ids in intents.moves.items():
        services.do_move(user, message_ids, target, from_folders=[source])
    for target, raw, flags in intents.appends:
        services.do_append(user, target, raw, flags=flags)
    if intents.forwards:
        _forward_all(prepared.account, intents.forwards)


def _forward_all(account: Account, forwards: Sequence[tuple[Message, str]]) -> None:
    ids = {message.message_id for message, _ in forwards if message.message_id}
    # Loop protection in one query: the messages Posta itself sent.
    ours = set(
        OutgoingMessage.objects.filter(user_id=account.user_id, message_id__in=ids)
        .values_list("message_id", flat=True)
    )
    for message, address in forwards:
        if message.message_id in ours:
            log.info("filter forward of message %s skipped: Posta sent it (loop)", message.pk)
            continue
        _forward(account, message, address)


def _forward(account: Account, message: Message, address: str) -> None:
    if address.strip().lower() == account.email.strip().lower():
        log.info("filter forward of message %s to its own account skipped", message.pk)
        return
    domain = account.email.rpartition("@")[2] or "localhost"
    now = timezone.now()
    row = OutgoingMessage.objects.create(
        user_id=account.user_id,
        account=account,
        kind=OutgoingMessage.Kind.NEW,
        state=OutgoingMessage.State.QUEUED,
        message_id=new_message_id(domain),
        subject=f"Fwd: {message.subject}"[:998],
        to=[["", address]],
        plain_text=True,
        body_text="",
        send_at=now,
        queued_at=now,
    )
    OutgoingAttachment.objects.create(
        outgoing=row,
        filename="message.eml",
        content_type="message/rfc822",
        size=message.size,
        blob_key=message.blob_key,
    )
    signals.notify_after_commit(
        signals.outgoing_queued, sender=OutgoingMessage, outgoing_id=row.pk, send_at=None
    )
