"""Carry the user's RemoteActions out on the server, idempotently.

An action is claimed with a lease (posta.sync.claims): a conditional UPDATE
(pending -> running) that a heartbeat renews while this worker runs the account's
actions, so two workers never run one action and a killed worker's claim runs out
within seconds. An action chained after an earlier one on the same copy
(posta.mail.chains) is claimed only once that one is over, and works on the copy
it left: the earlier action hands its folder and UID over when it finishes. Every
server step is safe to repeat, because a worker can be killed after the server
changed and before the database learnt it (the claim then runs out and another
pass takes the action again):

- flags: UID STORE +FLAGS/-FLAGS.SILENT sets a state, repeating it changes nothing;
- move (and delete to Trash): if our UID is gone from the source and the target
  holds the Message-ID, the move happened: only the database is updated. If our UID
  is still in the source and the target already holds the Message-ID (a COPY done
  before a kill), the copy is not made again. Then MOVE (RFC 6851) where offered,
  else UID COPY + \\Deleted + UID EXPUNGE of that one UID (UIDPLUS, RFC 4315 §2.1:
  never a plain EXPUNGE, which would remove other clients' \\Deleted mail);
- expunge: \\Deleted + UID EXPUNGE of our UID; a UID already gone is success;
- append: if the target already holds the Message-ID (an APPEND done before a
  kill), it is not appended again; else APPEND with the flags of the waiting local
  copy, whose UID comes from APPENDUID (RFC 4315 §3) or, without UIDPLUS, from a
  search by Message-ID. The provisional Message then takes its real identity, or
  is folded into the one the sync already stored.

Every action on a source UID first SELECTs the source folder and compares its
UIDVALIDITY with the one the UID belongs to (RemoteAction.source_uidvalidity): a UID
of another numbering may name another message (RFC 3501 §2.3.1.1), so on a
mismatch nothing is done. The action waits for the sync to re-pair it with its copy
(posta.sync.rebind), or fails as RENUMBERED once the sync has re-paired the folder
without finding it.

A failure is judged by the one failure table (posta.mailproto.failures, STYLE §5)
in posta.sync.action_failures: an unreachable or busy server leaves the action
pending until a deadline, with the local state as the user asked; wrong account
settings make it wait and show on the account; anything else fails it and puts
the local state back to what the server has.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from posta.accounts.models import Account, Folder
from posta.core import faults
from posta.core.leases import make_owner
from posta.mail import blobs, identity, ingest
from posta.mail.bulk_store import flag_values
from posta.mail.models import Location, RemoteAction
from posta.mailproto import errors, failures
from posta.mailproto.failures import Verdict
from posta.mailproto.imap.fastfetch import fetch_flags
from posta.mailproto.imap.session import Session
from posta.remote.account_errors import record_account_error
from posta.remote.connect import close, open_imap
from posta.remote.copies import find_message_id
from posta.sync import action_failures, claims

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5  # of waiting for a copy's UID
State = RemoteAction.State
Kind = RemoteAction.Kind
_FLAG_OF = action_failures.FLAG_OF


def _due(account_id: int) -> list[int]:
    """The account's actions a worker may take now, oldest first: pending and not
    waiting for a retry, or running under a claim that ran out."""
    now = timezone.now()
    return list(
        RemoteAction.objects.filter(claims.claimable(now), account_id=account_id)
        .exclude(next_attempt_at__gt=now)
        .order_by("id")
        .values_list("id", flat=True)
    )


def run_account_actions(account_id: int) -> int:
    """Run the account's due actions in order; returns how many finished.

    After each pass it looks again: an action chained after one finished in the
    pass (or by another worker meanwhile) runs now, not at the next wake.
    """
    due = _due(account_id)
    if not due:
        return 0
    account = Account.objects.get(pk=account_id)
    try:
        session = open_imap(account)
    except errors.MailError as exc:
        if failures.verdict_for_error(exc) is Verdict.ACCOUNT:
            record_account_error(account_id, exc)
        for action_id in due:
            action_failures.retry_or_fail(action_id, exc, claimed=False)
        return 0
    owner = make_owner()
    finished = 0
    tried: set[int] = set()
    try:
        with claims.heartbeat(owner):
            while due:
                tried.update(due)
                done, usable = _run_pass(session, owner, due)
                finished += done
                if not usable:
                    break  # the connection is unusable; the rest waits for next time
                due = [a for a in _due(account_id) if a not in tried]
    finally:
        close(session)
    return finished


def _run_pass(session: Session, owner: str, due: list[int]) -> tuple[int, bool]:
    """Claim and run `due` in order; returns (finished, connection still usable)."""
    finished = 0
    for action_id in due:
        if not claims.claim(action_id, owner):
            continue  # another worker has it, or it waits for an earlier action
        action = RemoteAction.objects.select_related(
            "source_folder", "target_folder", "location"
        ).get(pk=action_id)
        try:
            _execute(session, action)
        except errors.MailError as exc:
            action_failures.retry_or_fail(action_id, exc)
            if action_failures.connection_unusable(exc):
                return finished, False
            continue
        finished += 1
    return finished, True


def sweep() -> list[int]:
    """Put actions whose worker died (claim run out) back to pending; return the
    accounts with due pending actions (the caller enqueues them)."""
    claims.release_expired()
    now = timezone.now()
    return sorted(
        set(
            RemoteAction.objects.filter(state=State.PENDING)
            .exclude(next_attempt_at__gt=now)
            .values_list("account_id", flat=True)
        )
    )


# --- execution ------------------------------------------------------------------


def _select_source(session: Session, action: RemoteAction, folder: Folder) -> None:
    """SELECT the action's source folder read-write and check, right before acting,
    that its UIDVALIDITY is still the one the action's UID belongs to. The check
    holds for the commands that follow on this selection: a UID "MUST NOT change
    during the session" (RFC 3501 §2.3.1.1)."""
    now = session.select(folder.name)
    if action.source_uidvalidity is None or now != action.source_uidvalidity:
        raise action_failures.UidValidityChanged(folder_id=folder.pk, uidvalidity=now)


class _NotYet(Exception):
    """The copy an action works on has no UID yet (it waits for the sync)."""


def _server_copy(action: RemoteAction) -> tuple[Folder, int] | None:
    """The folder and UID the action works on; None when there is none any more.

    An action chained after another got them handed over when that one finished.
    Without them (the earlier one failed and was undone, or left the UID to the
    sync) it follows its local copy; that copy's UID, once known, is written onto
    the action, so the sync leaves the copy alone and a retry after a kill works
    on the same one. _NotYet while the copy still waits for its UID.
    """
    if action.source_folder is not None and action.source_uid is not None:
        return action.source_folder, action.source_uid
    if action.location_id is None:
        return None
    loc = Location.objects.select_related("folder").filter(pk=action.location_id).first()
    if loc is None:
        return None
    if loc.uid is None or loc.uid <= 0:
        raise _NotYet
    # The UID is of the numbering the folder has stored now (the sync changes both in
    # one transaction); should the server have another, _select_source refuses it.
    action.source_uidvalidity = loc.folder.uidvalidity
    RemoteAction.objects.filter(pk=action.pk).update(
        source_folder=loc.folder, source_uid=loc.uid, source_uidvalidity=loc.folder.uidvalidity
    )
    return loc.folder, loc.uid


def _execute(session: Session, action: RemoteAction) -> None:
    if action.kind == Kind.APPEND and action.target_folder is not None:
        _append(session, action, action.target_folder)
        return
    try:
        copy = _server_copy(action)
    except _NotYet:
        _wait_for_uid(action)
        return
    if copy is None:
        _finish(action)
        return
    source, uid = copy
    if action.kind in _FLAG_OF:
        flag, on = _FLAG_OF[RemoteAction.Kind(action.kind)]
        _select_source(session, action, source)
        session.set_flags([uid], [flag], on=on)
        faults.point("action_after_server")
        _finish(action, leaves=(source, uid))
    elif action.kind in {Kind.MOVE, Kind.DELETE} and action.target_folder is not None:
        _move(session, action, source, uid, action.target_folder)
    elif action.kind in {Kind.EXPUNGE, Kind.DELETE}:
        _select_source(session, action, source)
        if session.has_uid(uid):
            session.expunge_uids([uid])
        faults.point("action_after_server")
        _finish(action)
    else:
        raise errors.ProtocolError(f"action {action.kind} is not supported")


def _move(
    session: Session, action: RemoteAction, source: Folder, uid: int, target: Folder
) -> None:
    mid = action.message_id_header
    _select_source(session, action, source)
    still_there = session.has_uid(uid)
    in_target = find_message_id(session, target, mid)
    if still_there:
        _select_source(session, action, source)  # a new selection: check again
        try:
            if in_target:
                # Copied before a kill: do not copy again, only remove the original.
                session.expunge_uids([uid])
            elif not session.move(uids=[uid], target=target.name):
                log.info("action %s: the original stays \\Deleted (no UIDPLUS)", action.pk)
        except errors.ProtocolError:
            # The copy left the source between the SEARCH and the MOVE (RFC 5530
            # EXPUNGEISSUED): another session moved it. Done if it is in the target.
            if not _moved_meanwhile(session, action, source, uid, target, mid):
                raise
        faults.point("action_after_server")
        in_target = find_message_id(session, target, mid)
    _attach_new_uid(session, action, target, in_target)
    _finish(action, leaves=(target, in_target[-1]) if in_target else None)


def _moved_meanwhile(
    session: Session,
    action: RemoteAction,
    source: Folder,
    uid: int,
    target: Folder,
    mid: str,
) -> bool:
    _select_source(session, action, source)
    return not session.has_uid(uid) and bool(find_message_id(session, target, mid))


def _append(session: Session, action: RemoteAction, target: Folder) -> None:
    loc = action.location
    if loc is None:
        _finish(action)  # the user discarded the copy before it reached the server
        return
    loc.refresh_from_db()
    raw = blobs.get(action.blob_key)
    mid = action.message_id_header
    # Done before (a kill after the APPEND) only if the target holds *this* message:
    # another one may carry the same Message-ID (mailers reuse them), and taking it
    # for ours would leave ours never appended.
    uids = _same_content(session, find_message_id(session, target, mid), raw)
    if not uids:
        appended = session.append(target.name, raw, flags=_flags_of(loc))
        faults.point("action_after_server")
        if appended.uid is not None and appended.uidvalidity == target.uidvalidity:
            uids = [appended.uid]
        else:
            uids = find_message_id(session, target, mid)
    _attach_new_uid(session, action, target, uids)
    if action.message is not None:
        ingest.do_settle_appended(action.message, raw, folder_id=target.pk)
    _finish(action, leaves=(target, uids[-1]) if uids else None)


def _same_content(session: Session, uids: list[int], raw: bytes) -> list[int]:
    """Those of `uids` (in the folder just searched) whose content is `raw`'s, by
    the content hash that ignores trace fields and line ends (identity.content_hash)."""
    if not uids:
        return []
    wanted = identity.content_hash(raw)
    found = session.fetch_raw(uids)
    return [uid for uid in uids if uid in found and identity.content_hash(found[uid]) == wanted]


def _flags_of(loc: Location) -> list[str]:
    named = (("\\Seen", loc.seen), ("\\Flagged", loc.flagged), ("\\Answered", loc.answered))
    return [name for name, on in (*named, ("\\Draft", loc.draft)) if on]


def _attach_new_uid(
    session: Session, action: RemoteAction, target: Folder, uids: list[int]
) -> None:
    """Give the moved copy its UID in the target, unless the sync already did, or
    the user moved the copy on meanwhile (even back to this folder): then the UID
    is handed to the next move, whose copy it is not yet."""
    if action.location_id is None:
        return
    loc = Location.objects.filter(pk=action.location_id).first()
    if loc is None or loc.uid is not None or loc.folder_id != target.pk:
        return
    later_move = RemoteAction.objects.filter(
        location=OuterRef("pk"),
        pk__gt=action.pk,
        kind__in=[Kind.MOVE, Kind.DELETE],
        state__in=claims.OPEN_STATES,
    )
    waiting = Location.objects.filter(pk=loc.pk, uid__isnull=True, folder=target).filter(
        ~Exists(later_move)
    )
    if not waiting.exists():
        return
    taken = set(
        Location.objects.filter(folder=target, uid__in=uids).values_list("uid", flat=True)
    )
    free = [u for u in uids if u not in taken]
    if not free:
        if not uids and not action.message_id_header:
            return  # no Message-ID to find it by: the next sync adopts the copy
        if not uids:
            loc.delete()  # the server has no copy: mirror that
        else:
            loc.delete()  # the sync already recorded the moved copy
        return
    new_uid = free[-1]
    values = _flags_and_modseq(session, new_uid)
    if _has_followers(action):
        # With a flag change chained after this action, the local flags are the
        # user's wish, not the server's yet: keep them (the MODSEQ still counts).
        values = {key: value for key, value in values.items() if key == "modseq"}
    try:
        with transaction.atomic():
            # Conditional again: the user may act while the FETCH runs.
            waiting.update(uid=new_uid, **values)
    except IntegrityError:
        loc.delete()  # the sync recorded it meanwhile


def _flags_and_modseq(session: Session, uid: int) -> dict[str, object]:
    """The new copy's flags and, under CONDSTORE, its MODSEQ (CHANGEDSINCE 0 asks
    for every message of the set with its MODSEQ, RFC 7162 §3.1.4): a copy stored
    without it would miss the stale-change check of the next CHANGEDSINCE pass."""
    since = 0 if session.condstore else None
    for got_uid, flags, modseq in fetch_flags(session.client, str(uid), changed_since=since):
        if got_uid == uid:  # the answer may carry unsolicited FETCHes of others
            values = flag_values(flags)
            if modseq is not None:
                values["modseq"] = modseq
            return values
    return {}


def _has_followers(action: RemoteAction) -> bool:
    return RemoteAction.objects.filter(after=action, state__in=claims.OPEN_STATES).exists()


def _finish(action: RemoteAction, *, leaves: tuple[Folder, int] | None = None) -> None:
    """Mark the action done and hand the copy it `leaves` (folder, UID) to the
    actions chained after it, in one transaction: a kill leaves either both or
    neither."""
    with transaction.atomic():
        RemoteAction.objects.filter(pk=action.pk).update(
            state=State.DONE,
            error_code="",
            error_detail="",
            claimed_by="",
            lease_until=None,
            updated_at=timezone.now(),
        )
        if leaves is not None:
            RemoteAction.objects.filter(
                after=action, state=State.PENDING, source_uid__isnull=True
            ).update(
                source_folder=leaves[0],
                source_uid=leaves[1],
                # The numbering stored for that folder: a follower never acts on a
                # UID the server has renumbered since (_select_source checks).
                source_uidvalidity=Folder.objects.filter(pk=leaves[0].pk)
                .values_list("uidvalidity", flat=True)
                .first(),
            )


def _wait_for_uid(action: RemoteAction) -> None:
    """The copy has no UID yet: try again a little later, up to MAX_ATTEMPTS."""
    if action.attempts >= MAX_ATTEMPTS:
        no_uid = errors.ProtocolError("the copy has no UID on the server")
        action_failures.retry_or_fail(action.pk, no_uid)
        return
    RemoteAction.objects.filter(pk=action.pk).update(
        state=State.PENDING,
        claimed_by="",
        lease_until=None,
        next_attempt_at=timezone.now() + timedelta(seconds=10 * 2 ** max(action.attempts, 0)),
    )


