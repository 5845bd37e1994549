"""Drafts on the server: every autosave replaces the copy in the Drafts folder.

The row (posta.mail.outbox_models.OutgoingMessage, state draft) is the truth; the server
copy follows it. Each save increments `draft_revision`; `draft_saved_revision` is
the revision the recorded copy (`draft_folder`, `draft_uid`) holds. Every copy
carries the draft's `X-Posta-Draft-Id` and its `X-Posta-Draft-Revision`, so the
copies of one draft can always be found again by SEARCH HEADER (RFC 3501 §6.4.4),
whatever was or was not recorded before a crash.

`store_draft` brings one draft up to date::

    read row ──(nothing newer than the recorded copy)──> done
       │
    SEARCH the Drafts folder for the draft id
       │
    newest copy already holds this revision?  ──yes──> adopt it
       │ no                                            │
    APPEND (\\Draft \\Seen), UID from APPENDUID         │
       │ <─────────────────────────────────────────────┘
    remove every other copy: older ones found by the search, the remembered copy
    (also in another account's Drafts after the From changed, or another client's
    copy the draft was opened from)
       │
    record folder + UID + revision (never over a newer copy)

Only the newest revision is appended (the task runs a moment after the save and
reads the row then), and a kill at any point leaves at most one extra copy, which
the next run removes: the row still says its revision is not saved, so the sweep
runs it again, and the newest copy wins. Two runs racing keep the copy with the
highest UID; the loser's copy is removed, and if it held an older revision the row
says so and the next run appends again.

When the message is sent (posta.delivery.followups, step "draft_cleanup") or the
draft cancelled, every copy is removed.

A revision the server refuses for good (a PERMANENT verdict of
posta.mailproto.failures: a NO to the APPEND, the folder gone) is not retried by
the sweep: the row records `error_code` DRAFT_REFUSED with the server's words,
which the editor shows, and the next save tries again (and clears it once a copy
is stored). Failures that may pass (the server unreachable, busy) are retried.
"""

from __future__ import annotations

import email.policy
import logging
from datetime import datetime, timedelta
from email.parser import BytesHeaderParser

from django.db.models import F, Q
from django.utils import timezone

from posta.accounts.models import Account, Folder
from posta.core import faults
from posta.delivery.compose import composition_for, sender_mailbox
from posta.mail.models import OutgoingMessage
from posta.mail.outbox_models import (
    DRAFT_ID_HEADER,
    DRAFT_REFUSED,
    DRAFT_REVISION_HEADER,
    account_blocked,
    new_draft_key,
)
from posta.mailproto import errors
from posta.mailproto.failures import Verdict, verdict_for_error
from posta.mailproto.imap.session import Session
from posta.mailproto.mime import compose
from posta.remote.copies import find_header, remove_copies
from posta.remote.pool import Connections, connections

log = logging.getLogger(__name__)

State = OutgoingMessage.State

KILL_AFTER_APPEND = "drafts.after_append"
KILL_AFTER_REMOVE = "drafts.after_remove"
# How long after a save the worker stores it: saves in a burst append once.
DEBOUNCE = timedelta(seconds=2)


# ------------------------------------------------------------------------ building


def drafts_folder(account: Account) -> Folder | None:
    return Folder.objects.filter(account=account, role=Folder.Role.DRAFTS).first()


def _ensure_key(row: OutgoingMessage) -> str:
    if not row.draft_key:
        OutgoingMessage.objects.filter(pk=row.pk, draft_key="").update(draft_key=new_draft_key())
        row.draft_key = OutgoingMessage.objects.values_list("draft_key", flat=True).get(pk=row.pk)
    return row.draft_key


def _lenient(pairs: list[list[str]]) -> list[compose.Mailbox]:
    """The recipients a draft can hold: what is typed, less what cannot be written
    as a header at all (a draft is saved even when an address is still wrong)."""
    out = []
    for name, address in pairs:
        try:
            checked = compose.check_addr_spec(address)
        except compose.ComposeError:
            continue
        try:
            out.append(compose.Mailbox(name=compose.check_header_value(name), address=checked))
        except compose.ComposeError:
            out.append(compose.Mailbox(name="", address=checked))  # the address is enough
    return out


def draft_bytes(row: OutgoingMessage, *, revision: int, date: datetime) -> bytes:
    """The server copy of a draft: body and quote (the signature is added when the
    message is sent), To/Cc/Bcc, \\Draft headers identifying the draft and revision."""
    composition = composition_for(row, date=date)
    composition.to = _lenient(row.to)
    composition.cc = _lenient(row.cc)
    composition.message_id = f"{row.draft_key}.{revision}.draft@{sender_mailbox(row).domain}"
    composition.subject = " ".join(row.subject.split())
    try:
        compose.check_header_value(composition.subject, field_name="Subject")
    except compose.HeaderInjection:
        # Saved before such subjects were refused: the row keeps it, the copy not.
        composition.subject = ""
    composition.text = compose.assemble_text(
        row.body_text if row.plain_text else compose.text_from_html(row.body_html),
        quote=row.quote_text or compose.text_from_html(row.quote_html),
    )
    composition.html = (
        "" if row.plain_text else compose.assemble_html(row.body_html, quote=row.quote_html)
    )
    composition.extra_headers = [
        (DRAFT_ID_HEADER, row.draft_key),
        (DRAFT_REVISION_HEADER, str(revision)),
    ]
    # Kept in the draft so that reopening it keeps them; never in what is sent.
    composition.draft_bcc = bcc = _lenient(row.bcc)
    message = compose.build(composition)
    everyone = [composition.sender, *composition.to, *composition.cc, *bcc]
    return compose.serialize(message, utf8=compose.needs_smtputf8(everyone))


# -------------------------------------------------------------------- server side


def _search_copies(session: Session, folder: Folder, key: str) -> list[int]:
    return find_header(session, folder, DRAFT_ID_HEADER, key)


def _revision_of(session: Session, uid: int) -> int | None:
    """The X-Posta-Draft-Revision of a copy in the selected folder."""
    raw = session.header_fields(uid, [DRAFT_REVISION_HEADER])
    if raw is None:
        return None
    header = BytesHeaderParser(policy=email.policy.default).parsebytes(raw)
    try:
        return int(str(header.get(DRAFT_REVISION_HEADER, "")).strip())
    except ValueError:
        return None


def _append(session: Session, folder: Folder, raw: bytes, key: str) -> int:
    """APPEND a draft copy; its UID from APPENDUID (RFC 4315 §3) or a search."""
    appended = session.append(folder.name, raw, flags=["\\Draft", "\\Seen"])
    if appended.uid is not None:
        return appended.uid
    found = _search_copies(session, folder, key)
    if not found:
        raise errors.ProtocolError(f"{session.host}: appended draft not found")
    return found[-1]


def _remove(session: Session, folder: Folder, uids: list[int]) -> None:
    remove_copies(session, folder, uids)


# ------------------------------------------------------------------------ storing


def store_draft(outgoing_id: int) -> bool:
    """Bring the server copy of one draft up to date (or remove the copies of a
    draft that was cancelled or sent meanwhile). True when it did something.

    The worker's boundary (STYLE 7): errors are logged, the row is left as it was,
    and the sweep tries again.
    """
    try:
        with connections() as pool:
            return _store(outgoing_id, pool)
    except errors.MailError as exc:
        log.warning("draft %s: server copy not updated: %s", outgoing_id, exc)
    except Exception:
        log.exception("draft %s: server copy not updated", outgoing_id)
    return False


def _store(outgoing_id: int, pool: Connections) -> bool:
    row = (
        OutgoingMessage.objects.select_related("account", "user", "draft_folder__account")
        .filter(pk=outgoing_id)
        .first()
    )
    if row is None:
        return False
    if row.state == State.CANCELLED:
        if row.draft_folder_id is None and row.draft_revision == row.draft_saved_revision:
            return False  # no copy was ever made, or it is gone already
        return discard_copies(row, pool)
    if row.state != State.DRAFT or row.draft_revision == 0:
        return False  # queued or sent: the copy stays until the send removes it
    folder = drafts_folder(row.account)
    if folder is None:
        # Nowhere to keep it; not an error, and nothing for the sweep to retry.
        OutgoingMessage.objects.filter(pk=row.pk, draft_revision=row.draft_revision).update(
            draft_saved_revision=row.draft_revision
        )
        return False
    if row.draft_saved_revision >= row.draft_revision and row.draft_folder_id == folder.pk:
        return False
    if account_blocked(row.account):
        return False  # the sweep tries again once the account works
    try:
        return _replace_copy(row, folder, pool)
    except errors.MailError as exc:
        if verdict_for_error(exc) is not Verdict.PERMANENT:
            raise  # logged by store_draft; the sweep tries again
        _refused(row, row.draft_revision, exc)
        return False


def _replace_copy(row: OutgoingMessage, folder: Folder, pool: Connections) -> bool:
    """The server side of `store_draft` for a draft: append, remove, record."""
    key = _ensure_key(row)
    revision = row.draft_revision
    session = pool.get(row.account)
    existing = _search_copies(session, folder, key)
    if existing and _revision_of(session, existing[-1]) == revision:
        uid = existing[-1]  # appended by a run that died before recording it
    else:
        raw = draft_bytes(row, revision=revision, date=timezone.now())
        uid = _append(session, folder, raw, key)
        faults.point(KILL_AFTER_APPEND)
        existing = _search_copies(session, folder, key)
    newest = max([uid, *existing])
    _remove(session, folder, [u for u in existing if u != newest])
    _remove_remembered(row, folder, newest, existing, pool)
    faults.point(KILL_AFTER_REMOVE)
    if newest == uid:
        _record(row, folder, uid, revision)
    # Sent or cancelled while we appended: the send's clean-up may have run already.
    state = OutgoingMessage.objects.values_list("state", flat=True).get(pk=row.pk)
    if state in (State.SENT, State.CANCELLED):
        discard_copies(row, pool)
    return True


def _remove_remembered(
    row: OutgoingMessage, folder: Folder, newest: int, found: list[int], pool: Connections
) -> None:
    """The copy the row remembers, when it is not one the search found: another
    client's copy the draft was opened from, or a copy in the Drafts of the account
    the From was before it changed (with any copy of ours left there)."""
    old = row.draft_folder
    if old is None:
        return
    if old.pk == folder.pk:
        if row.draft_uid is not None and row.draft_uid not in found and row.draft_uid != newest:
            _remove(pool.get(row.account), folder, [row.draft_uid])
        return
    session = pool.get(old.account)
    stale = _search_copies(session, old, row.draft_key)
    if row.draft_uid is not None and row.draft_uid not in stale:
        stale.append(row.draft_uid)
    _remove(session, old, stale)


def _record(row: OutgoingMessage, folder: Folder, uid: int, revision: int) -> None:
    """Remember the copy, unless a newer one was recorded meanwhile; a refusal of
    an earlier revision no longer stands."""
    newer = Q(draft_folder=folder, draft_uid__gt=uid)
    OutgoingMessage.objects.filter(pk=row.pk).exclude(newer).update(
        draft_folder=folder, draft_uid=uid, draft_saved_revision=revision
    )
    OutgoingMessage.objects.filter(pk=row.pk, error_code=DRAFT_REFUSED).update(
        error_code="", error_detail=""
    )


def _refused(row: OutgoingMessage, revision: int, exc: errors.MailError) -> None:
    """The server refused this revision for good (posta.mailproto.failures): the
    sweep stops asking (the revision counts as done, the copy on the server stays
    what it was) and the draft says why. The next save tries again."""
    log.warning("draft %s: the server refused revision %s: %s", row.pk, revision, exc)
    OutgoingMessage.objects.filter(
        pk=row.pk, state=State.DRAFT, draft_revision=revision
    ).update(
        draft_saved_revision=revision, error_code=DRAFT_REFUSED, error_detail=exc.detail[:500]
    )


def discard_copies(row: OutgoingMessage, pool: Connections | None = None) -> bool:
    """Remove every server copy of the draft: by its id in the Drafts folder of the
    From account, and the remembered copy wherever it is."""
    if pool is None:
        with connections() as own:
            return discard_copies(row, own)
    places: dict[int, Folder] = {}
    folder = drafts_folder(row.account)
    if folder is not None:
        places[folder.pk] = folder
    if row.draft_folder is not None:
        places[row.draft_folder.pk] = row.draft_folder
    key = row.draft_key
    for place in places.values():
        session = pool.get(place.account)
        uids = _search_copies(session, place, key) if key else []
        if place.pk == row.draft_folder_id and row.draft_uid is not None:
            uids.append(row.draft_uid)
        _remove(session, place, sorted(set(uids)))
    OutgoingMessage.objects.filter(pk=row.pk).update(
        draft_folder=None, draft_uid=None, draft_saved_revision=F("draft_revision")
    )
    return bool(places)


# -------------------------------------------------------------------------- sweep


def drafts_due(*, now: datetime | None = None, limit: int = 50) -> list[int]:
    """Drafts whose newest save is not on the server, and cancelled drafts whose
    copy still is: what a lost queue item left behind."""
    now = now or timezone.now()
    unsaved = Q(state=State.DRAFT, draft_revision__gt=F("draft_saved_revision"),
                updated_at__lte=now - DEBOUNCE)
    cancelled = Q(state=State.CANCELLED) & (
        Q(draft_folder__isnull=False) | Q(draft_revision__gt=F("draft_saved_revision"))
    )
    return list(
        OutgoingMessage.objects.filter(unsaved | cancelled)
        .exclude(account__sync_state__in=("paused", "error"))
        .order_by("updated_at")
        .values_list("id", flat=True)[:limit]
    )


def store_due(*, now: datetime | None = None) -> int:
    return sum(1 for outgoing_id in drafts_due(now=now) if store_draft(outgoing_id))
