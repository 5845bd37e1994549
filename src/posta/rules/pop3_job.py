"""The POP3 import of one source: one batch per call, kill-safe at every step.

For each new message of the POP3 mailbox (UIDL not recorded yet), newest first:

    RETR ──> intent row (UIDL, content hash, Message-ID; "pending")   [commit]
         ──> APPEND to the target folder, unread, INTERNALDATE = its Date
         ──> row "stored" with the APPENDUID, source count + 1       [one commit]
    then, for every "stored" message the policy lets go:
         DELE ... ──> QUIT ──> rows marked removed

What a kill leaves, and what the next run does about it:

- before the intent: nothing was done; the message is still new.
- after the intent, before or after the APPEND: the row is "pending". The next
  run looks for the copy in the target folder by Message-ID (or, without one,
  among the UIDs from the UIDNEXT recorded with the intent) and compares content
  hashes; found, the row becomes "stored" with that UID; not found, it is
  appended again. So a message is never appended twice.
- after the record: the message is "stored" and is never appended again.
- after DELE, before QUIT: the POP3 server removes nothing (RFC 1939 §6); the next
  run sees the messages again, finds them "stored" and deletes them again.

Only "stored" messages are ever deleted, so nothing leaves the POP3 server that is
not in the target folder. A server without UIDL is read in keep-on-server mode:
each message is known by its content hash, and none is ever deleted (message
numbers name other messages in the next session, RFC 1939 §7).

A batch ends after POSTA_POP3_BATCH new messages with QUIT, so one run never holds
a worker for long; `fetch_source` then says there is more and the task queues the
next batch. The copy reaches Posta through the normal sync of the target folder,
which announces it (posta.mail.signals.messages_stored) like any new mail.
"""

from __future__ import annotations

import email.utils
import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from posta.core import faults
from posta.core.leases import make_owner
from posta.mailproto import errors
from posta.mailproto.failures import Verdict, verdict_for_error
from posta.mailproto.imap.session import Session
from posta.mailproto.pop3.client import Pop3Session
from posta.remote.connect import close, open_imap
from posta.rules import pop3_lease
from posta.rules.pop3_connect import open_source
from posta.rules.pop3_models import Pop3Import, Pop3Source

log = logging.getLogger(__name__)

State = Pop3Import.State
# After a failure the settings must fix (password, TLS, host not allowed), the
# source is tried again only this often unless the user asks.
ACCOUNT_RETRY = timedelta(hours=1)
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.I | re.M)
_DATE = re.compile(rb"^date:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.I | re.M)


class TargetFolderMissing(errors.SettingsRefused):
    """The target folder is not on the IMAP server (deleted or renamed): the
    source waits and says so until the folder is back or another one is chosen."""

    code = "target_folder_missing"


@dataclass
class _Run:
    source: Pop3Source
    owner: str
    imap: Session
    pop: Pop3Session
    uidnext: int | None
    listing: dict[int, str] | None = None  # this session's UIDL answer


class _TargetFailed(Exception):
    """The target account's IMAP server failed (not the POP3 one)."""

    def __init__(self, error: errors.MailError) -> None:
        super().__init__(str(error))
        self.error = error


def content_hash(raw: bytes) -> str:
    """SHA-256 of the message with line ends made LF and trailing blank lines
    dropped: the same for the bytes RETR gave and the copy an IMAP server keeps
    (which may store LF and serve CRLF)."""
    return hashlib.sha256(raw.replace(b"\r\n", b"\n").rstrip(b"\n")).hexdigest()


def _header(raw: bytes, pattern: re.Pattern[bytes]) -> str:
    head = _HEADER_END.split(raw, 1)[0]
    found = pattern.search(head)
    if found is None:
        return ""
    return " ".join(found.group(1).decode("utf-8", "replace").split())


def message_id_of(raw: bytes) -> str:
    """The Message-ID without its angle brackets (RFC 5322 §3.6.4), or ""."""
    value = _header(raw, _MESSAGE_ID)
    return value.strip().removeprefix("<").split(">", 1)[0].strip()[:998]


def date_of(raw: bytes, *, now: datetime) -> datetime:
    """The message's Date as an aware datetime, for INTERNALDATE; `now` when it
    has none, an unreadable one, or one in the future (a wrong clock)."""
    value = _header(raw, _DATE)
    try:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError, IndexError):
        parsed = None
    if parsed is None:
        return now
    if parsed.tzinfo is None:  # "-0000": no zone known (RFC 5322 §3.3); take UTC
        parsed = parsed.replace(tzinfo=UTC)
    if parsed > now + timedelta(days=1) or parsed.year < 1970:
        return now
    return parsed


def fetch_source(source_id: int) -> bool | None:
    """Import one batch of the source. True when more new messages wait on the
    server (the caller queues the next batch), False when it is done; None when
    another worker holds the source (`pop3_lease.held_until` says until when).
    Never raises for anything a server does: the failure goes on the source."""
    owner = make_owner()
    if not pop3_lease.claim(source_id, owner):
        return None
    try:
        with pop3_lease.heartbeat(source_id, owner):
            return _fetch(source_id, owner)
    finally:
        pop3_lease.release(source_id, owner)


def _fetch(source_id: int, owner: str) -> bool:
    source = Pop3Source.objects.select_related("account").filter(pk=source_id).first()
    if source is None:
        return False
    if not source.active:
        # Paused by the user, maybe in the middle of a run: nothing is under way now.
        Pop3Source.objects.filter(pk=source_id).update(running=False, fetch_requested_at=None)
        return False
    now = timezone.now()
    starting = not source.running
    Pop3Source.objects.filter(pk=source_id).update(
        running=True,
        last_fetch_at=now,
        fetch_requested_at=None,
        **({"progress_done": 0, "progress_total": 0} if starting else {}),
    )
    try:
        more = _import(source, owner)
    except _TargetFailed as failed:
        _record_failure(source, failed.error, protocol="imap")
        return False
    except errors.MailError as exc:
        _record_failure(source, exc)
        return False
    except Exception:
        log.exception("POP3 source %s: import failed unexpectedly", source_id)
        _record_failure(source, errors.MailError("unexpected_error"), code="unexpected_error")
        return False
    done = timezone.now()
    if more:
        Pop3Source.objects.filter(pk=source_id).update(next_fetch_at=done)
    else:
        Pop3Source.objects.filter(pk=source_id).update(
            running=False,
            last_success_at=done,
            last_error_code="",
            last_error_detail="",
            last_error_at=None,
            next_fetch_at=done + timedelta(minutes=max(source.interval_minutes, 1)),
        )
    return more


def _record_failure(
    source: Pop3Source, exc: errors.MailError, *, code: str = "", protocol: str = "pop3"
) -> None:
    now = timezone.now()
    wait = timedelta(minutes=max(source.interval_minutes, 1))
    if verdict_for_error(exc) == Verdict.ACCOUNT and not isinstance(exc, TargetFolderMissing):
        wait = max(wait, ACCOUNT_RETRY)
    log.warning("POP3 source %s: %s", source.pk, exc)
    Pop3Source.objects.filter(pk=source.pk).update(
        running=False,
        last_error_code=code or exc.code,
        last_error_detail=f"{protocol}:{exc.detail}"[:500],
        last_error_at=now,
        next_fetch_at=now + wait,
    )


def _open_target(source: Pop3Source) -> tuple[Session, int | None]:
    try:
        imap = open_imap(source.account)
    except errors.MailError as exc:
        raise _TargetFailed(exc) from exc
    try:
        _validity, uidnext = imap.select_uidnext(source.folder_name)
    except errors.ProtocolError as exc:
        close(imap)
        missing = TargetFolderMissing(f"{source.folder_name}: {exc.detail}")
        raise _TargetFailed(missing) from exc
    except errors.MailError as exc:
        close(imap)
        raise _TargetFailed(exc) from exc
    except BaseException:
        close(imap)
        raise
    return imap, uidnext


def _import(source: Pop3Source, owner: str) -> bool:
    imap, uidnext = _open_target(source)
    try:
        pop = open_source(source)
        try:
            run = _Run(source=source, owner=owner, imap=imap, pop=pop, uidnext=uidnext)
            more = _batch(run)
            _delete_and_quit(run)
        finally:
            pop.close()
    finally:
        close(imap)
    return more


def _batch(run: _Run) -> bool:
    """Import up to POSTA_POP3_BATCH new messages; True when more are left."""
    listing = run.pop.uidl()
    has_uidl = listing is not None
    if has_uidl != run.source.has_uidl:
        Pop3Source.objects.filter(pk=run.source.pk).update(has_uidl=has_uidl)
        run.source.has_uidl = has_uidl
    states = dict(
        Pop3Import.objects.filter(source=run.source).values_list("uidl", "state")
    )
    if listing is None:
        return _batch_without_uidl(run, states)
    run.listing = listing
    new = [n for n, u in sorted(listing.items(), reverse=True) if states.get(u) != State.STORED]
    limit = max(int(settings.POSTA_POP3_BATCH), 1)
    _set_progress_total(run.source, len(new))
    for number in new[:limit]:
        raw = run.pop.retr(number)
        _import_one(run, listing[number], raw, known=listing[number] in states)
    return len(new) > limit


def _batch_without_uidl(run: _Run, states: dict[str, str]) -> bool:
    numbers = sorted(run.pop.numbers(), reverse=True)
    limit = max(int(settings.POSTA_POP3_BATCH), 1)
    _set_progress_total(run.source, len(numbers))
    imported = 0
    for number in numbers:
        raw = run.pop.retr(number)
        key = f"sha256:{content_hash(raw)}"
        if states.get(key) == State.STORED:
            continue
        if imported >= limit:
            return True
        _import_one(run, key, raw, known=key in states)
        states[key] = State.STORED
        imported += 1
    return False


def _set_progress_total(source: Pop3Source, waiting: int) -> None:
    Pop3Source.objects.filter(pk=source.pk).update(
        progress_total=F("progress_done") + waiting
    )


def _import_one(run: _Run, uidl: str, raw: bytes, *, known: bool) -> None:
    """Put one message into the target folder, exactly once (module docstring).
    `known`: the batch found a row for `uidl` when it began (else none exists,
    since no other worker holds the source)."""
    digest = content_hash(raw)
    record = Pop3Import.objects.filter(source=run.source, uidl=uidl).first() if known else None
    if record is not None and record.state == State.STORED:
        return
    if record is not None:
        found = _locate(run, record)
        if found is not None:
            _record_stored(run, record, uidvalidity=None, uid=found, count=True)
            return
        record.uidnext_before = run.uidnext
        record.content_hash = digest
        record.save(update_fields=["uidnext_before", "content_hash"])
    else:
        record = Pop3Import.objects.create(
            source=run.source,
            uidl=uidl,
            content_hash=digest,
            message_id=message_id_of(raw),
            uidnext_before=run.uidnext,
        )
    faults.point("pop3.after_intent")
    if not pop3_lease.holds(run.source.pk, run.owner):
        # Another worker may hold the source now (this one stalled past its
        # lease): stop before appending; the row stays pending for it to resolve.
        raise errors.TemporaryNetworkError("the lease on the source ran out")
    now = timezone.now()
    try:
        appended = run.imap.append(run.source.folder_name, raw, date=date_of(raw, now=now))
    except errors.MailError as exc:
        raise _TargetFailed(exc) from exc
    faults.point("pop3.after_append")
    _record_stored(run, record, uidvalidity=appended.uidvalidity, uid=appended.uid, count=True)
    if appended.uid is not None:
        run.uidnext = appended.uid + 1
    faults.point("pop3.after_record")


def _record_stored(
    run: _Run, record: Pop3Import, *, uidvalidity: int | None, uid: int | None, count: bool
) -> None:
    with transaction.atomic():
        changed = Pop3Import.objects.filter(pk=record.pk, state=State.PENDING).update(
            state=State.STORED,
            appended_uidvalidity=uidvalidity,
            appended_uid=uid,
            stored_at=timezone.now(),
        )
        if changed and count:
            Pop3Source.objects.filter(pk=run.source.pk).update(
                imported_count=F("imported_count") + 1, progress_done=F("progress_done") + 1
            )


def _locate(run: _Run, record: Pop3Import) -> int | None:
    """The UID of a copy of `record` already in the target folder (a kill came
    between the APPEND and its record), by Message-ID and content hash."""
    if record.message_id:
        uids = run.imap.search_message_id(record.message_id)
    elif record.uidnext_before is not None:
        uids = run.imap.uids_from(record.uidnext_before)
    else:
        return None
    candidates = run.imap.fetch_raw(uids)
    for uid, body in sorted(candidates.items()):
        if content_hash(body) == record.content_hash:
            return uid
    return None


def _delete_and_quit(run: _Run) -> None:
    """DELE every stored message the policy lets go, then QUIT; the rows are
    marked removed only once the server confirmed QUIT (RFC 1939 §6)."""
    listing = run.listing
    if listing is None or not run.source.deletes_on_server:
        run.pop.quit()
        return
    stored = Pop3Import.objects.filter(
        source=run.source, state=State.STORED, uidl__in=list(listing.values())
    )
    if run.source.keep_on_server and run.source.delete_after_days is not None:
        cutoff = timezone.now() - timedelta(days=run.source.delete_after_days)
        stored = stored.filter(stored_at__lt=cutoff)
    letting_go = set(stored.values_list("uidl", flat=True))
    numbers = [n for n, u in sorted(listing.items()) if u in letting_go]
    if numbers and not pop3_lease.holds(run.source.pk, run.owner):
        run.pop.quit()
        return
    for number in numbers:
        run.pop.dele(number)
    faults.point("pop3.after_dele")
    run.pop.quit()
    if numbers:
        Pop3Import.objects.filter(
            source=run.source, uidl__in=[listing[n] for n in numbers], removed_at__isnull=True
        ).update(removed_at=timezone.now())
