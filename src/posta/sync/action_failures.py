"""What becomes of a remote action that failed on the server (posta.sync.actions).

Every failure is judged by the one failure table (posta.mailproto.failures,
STYLE §5):

- RETRY (the server unreachable, refusing connections, not resolving, dropping the
  connection, throttling): the action stays pending with a retry time, backing off
  up to RETRY_BACKOFF_CAP, until the table's deadline counted from when the user
  acted. Meanwhile the local state stays as the user asked: a move being retried
  leaves the message where the user put it;
- ACCOUNT (login refused, TLS impossible, host not allowed, secret unreadable): the
  action waits, looked at again every ACCOUNT_WAIT, and the account records the
  error, so its page says what to fix and links to the settings;
- PERMANENT, or RETRY past its deadline: the action fails with a code and detail,
  and the local state is put back to what the server has.

A UID of another numbering (UidValidityChanged) is none of these: nothing was done,
and the action waits for the sync to re-pair its copy (posta.sync.rebind).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from posta.accounts.models import Account
from posta.mail.models import Location, RemoteAction
from posta.mailproto import errors, failures
from posta.mailproto.failures import Verdict
from posta.sync import rebind

log = logging.getLogger(__name__)

RETRY_BASE = timedelta(seconds=30)
RETRY_BACKOFF_CAP = timedelta(minutes=30)
ACCOUNT_WAIT = timedelta(minutes=30)
REPAIR_WAIT = timedelta(seconds=30)  # before looking again whether the sync re-paired
State = RemoteAction.State
Kind = RemoteAction.Kind
# The flag each flag action sets (True) or clears (False).
FLAG_OF = {
    Kind.SEEN: ("\\Seen", True),
    Kind.UNSEEN: ("\\Seen", False),
    Kind.FLAG: ("\\Flagged", True),
    Kind.UNFLAG: ("\\Flagged", False),
}


class UidValidityChanged(errors.NumberingChanged):
    """The source folder's UIDVALIDITY in this session is not the one the action's
    UID belongs to: the UID may name another message now (RFC 3501 §2.3.1.1)."""

    code = "uidvalidity_changed"

    def __init__(self, *, folder_id: int, uidvalidity: int | None) -> None:
        super().__init__(f"folder {folder_id}: UIDVALIDITY is {uidvalidity} on the server")
        self.uidvalidity = uidvalidity


def connection_unusable(exc: errors.MailError) -> bool:
    """After a RETRY failure other than a renumbered folder the connection dropped or
    the server asks us to slow down: the rest of the pass waits."""
    if isinstance(exc, errors.NumberingChanged):
        return False
    return failures.verdict_for_error(exc) is Verdict.RETRY


def retry_or_fail(action_id: int, exc: errors.MailError, *, claimed: bool = True) -> None:
    """Judge `exc` by the failure table (module docstring): wait, or fail and undo.
    `claimed` is False when the action failed before it was claimed (no
    connection): the failure then counts as its attempt here."""
    action = RemoteAction.objects.select_related("location", "source_folder").get(pk=action_id)
    if isinstance(exc, UidValidityChanged):
        _await_repairing(action, exc)
        return
    rule = failures.rule_for_error(exc)
    now = timezone.now()
    attempts = action.attempts if claimed else action.attempts + 1
    if rule.verdict is Verdict.ACCOUNT:
        _wait(action_id, exc, until=now + ACCOUNT_WAIT, attempts=attempts)
        return
    if rule.verdict is Verdict.RETRY and rule.retry_for is not None:
        if now < action.created_at + rule.retry_for:
            _wait(action_id, exc, until=now + _retry_delay(attempts), attempts=attempts)
            return
    with transaction.atomic():
        RemoteAction.objects.filter(pk=action_id).update(
            state=State.FAILED,
            error_code=exc.code,
            error_detail=exc.detail[:500],
            claimed_by="",
            lease_until=None,
        )
        _undo_locally(action)
    log.warning("action %s failed: %s", action_id, exc)


def _retry_delay(attempts: int) -> timedelta:
    """RETRY_BASE doubled per attempt, at most RETRY_BACKOFF_CAP."""
    delay: timedelta = RETRY_BASE * 2 ** min(max(attempts - 1, 0), 16)
    return min(delay, RETRY_BACKOFF_CAP)


def _wait(action_id: int, exc: errors.MailError, *, until: datetime, attempts: int) -> None:
    """Leave the action pending until `until`, with the failure shown on it."""
    RemoteAction.objects.filter(pk=action_id).update(
        state=State.PENDING,
        attempts=attempts,
        claimed_by="",
        lease_until=None,
        next_attempt_at=until,
        error_code=exc.code,
        error_detail=exc.detail[:500],
    )


def _await_repairing(action: RemoteAction, exc: UidValidityChanged) -> None:
    """Nothing was done: the action's UID is of another numbering. Run it again at
    once if the sync re-paired it meanwhile; fail it if the sync has re-paired the
    folder without finding its copy; else wait for the sync, asking for a pass now
    (a paused account stays paused: the user resumes it). The wait does not count
    as an attempt."""
    running = RemoteAction.objects.filter(pk=action.pk, state=State.RUNNING)
    now = timezone.now()
    if exc.uidvalidity is not None and action.source_uidvalidity == exc.uidvalidity:
        running.update(
            state=State.PENDING,
            attempts=F("attempts") - 1,
            claimed_by="",
            lease_until=None,
            updated_at=now,
        )
        return
    folder_id = action.source_folder_id
    if exc.uidvalidity is not None and folder_id and rebind.repaired(folder_id, exc.uidvalidity):
        with transaction.atomic():
            if running.update(
                state=State.FAILED,
                error_code=RemoteAction.RENUMBERED,
                error_detail=exc.detail[:500],
                claimed_by="",
                lease_until=None,
                updated_at=now,
            ):
                rebind.forget_moving_copy(action.kind, action.location_id)
        log.warning("action %s failed: its copy was renumbered away (%s)", action.pk, exc)
        return
    running.update(
        state=State.PENDING,
        attempts=F("attempts") - 1,
        next_attempt_at=now + REPAIR_WAIT,
        claimed_by="",
        lease_until=None,
        error_code=exc.code,
        error_detail=exc.detail[:500],
        updated_at=now,
    )
    Account.objects.filter(pk=action.account_id).exclude(
        sync_state=Account.SyncState.PAUSED
    ).update(sync_requested_at=now)


def _undo_locally(action: RemoteAction) -> None:
    """Put the local copy back to what the server still has: the action never
    happened there."""
    loc = action.location
    if loc is None or action.source_folder is None:
        return
    if action.kind in FLAG_OF:
        flag, on = FLAG_OF[RemoteAction.Kind(action.kind)]
        field = "seen" if flag == "\\Seen" else "flagged"
        Location.objects.filter(pk=loc.pk).update(**{field: not on})
    elif action.kind in {Kind.MOVE, Kind.DELETE} and loc.uid is None:
        try:
            Location.objects.filter(pk=loc.pk).update(
                folder=action.source_folder,
                uid=action.source_uid,
                role=action.source_folder.role,
            )
        except IntegrityError:
            loc.delete()
