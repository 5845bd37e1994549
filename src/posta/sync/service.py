"""The sync service: a supervisor that claims accounts and keeps each one current.

One process (`posta sync`) runs one `SyncService`. Its supervisor loop, every few
seconds:

1. claims accounts with a database lease (`SyncLease`): one conditional UPDATE
   `... WHERE expires_at < now OR owner = me`, or an INSERT for an account never
   leased; both are atomic on SQLite and PostgreSQL, so two processes never hold
   one account, and a dead process's accounts are taken over once its leases
   expire (LEASE_SECONDS, well within a minute);
2. renews the leases it holds in one UPDATE; an account whose lease was lost (the
   process stalled past expiry and another took it) has its thread stopped;
3. starts one thread per claimed account (`AccountWorker`).

An account thread connects, runs a full pass (posta.sync.engine), then waits for
news on INBOX with IDLE (RFC 2177; re-issued before 29 minutes, here every
IDLE_MAX seconds, with a NOOP after 2 s, 4 s, ... up to SETTLE_MAX for mail that
landed just before an IDLE began) or, where IDLE is missing, NOOP polling (RFC 3501
§6.1.2). Other
folders are resynced every RESYNC_SECONDS, and at once when the user asks ("sync
now": Account.sync_requested_at). On failure it reconnects with exponential
backoff and jitter; ServerBusy (RFC 5530 throttling codes) slows it down further;
repeated AuthenticationFailed pauses the account (sync_state "paused",
last_error_code "auth_failed", last_error_at) until the user asks to sync again.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, close_old_connections, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from imapclient import IMAPClient

from posta.accounts.models import Account, Folder
from posta.mailproto import errors
from posta.mailproto.imap.client import close_quietly, imap_errors
from posta.sync import engine
from posta.sync.models import SyncLease

log = logging.getLogger(__name__)

LEASE_SECONDS = 45
IDLE_MAX = 25 * 60  # RFC 2177 §3: re-issue IDLE at least every 29 minutes
SETTLE_MAX = 120.0  # longest IDLE between two NOOPs once settled
RESYNC_SECONDS = 300
AUTH_FAILURES_TO_PAUSE = 3
MAX_BACKOFF = 15 * 60


def make_owner() -> str:
    """A lease owner id unique to this process: host, pid and a random part."""
    return f"{socket.gethostname()[:50]}:{os.getpid()}:{secrets.token_hex(4)}"


# --- leases ---------------------------------------------------------------------


def try_claim(account_id: int, owner: str, *, now: datetime | None = None) -> bool:
    """Take (or keep) the lease on an account; True when `owner` holds it now."""
    now = now or timezone.now()
    expires = now + timedelta(seconds=LEASE_SECONDS)
    taken = (
        SyncLease.objects.filter(account_id=account_id)
        .filter(Q(expires_at__lt=now) | Q(owner=owner))
        .update(owner=owner, expires_at=expires, acquired_at=now)
    )
    if taken:
        return True
    if SyncLease.objects.filter(account_id=account_id).exists():
        return False
    try:
        with transaction.atomic():
            SyncLease.objects.create(
                account_id=account_id, owner=owner, expires_at=expires, acquired_at=now
            )
    except IntegrityError:
        return False  # another process inserted it first
    return True


def renew(owner: str, account_ids: list[int]) -> set[int]:
    """Extend the leases `owner` still holds; returns the account ids it holds."""
    if not account_ids:
        return set()
    expires = timezone.now() + timedelta(seconds=LEASE_SECONDS)
    held = SyncLease.objects.filter(owner=owner, account_id__in=account_ids)
    held.update(expires_at=expires)
    return set(held.values_list("account_id", flat=True))


def release(owner: str, account_ids: list[int]) -> None:
    """Give leases up at once (clean shutdown), so another process need not wait."""
    SyncLease.objects.filter(owner=owner, account_id__in=account_ids).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )


def candidate_accounts() -> list[int]:
    """Accounts to sync: all but shared senders (sent from, never read) and accounts
    paused since before the user's last "sync now"."""
    paused_waiting = Q(sync_state=Account.SyncState.PAUSED) & (
        Q(sync_requested_at__isnull=True) | Q(sync_requested_at__lt=F("last_error_at"))
    )
    return list(
        Account.objects.exclude(paused_waiting)
        .exclude(is_shared_sender=True)
        .order_by("id")
        .values_list("id", flat=True)
    )


# --- one account ----------------------------------------------------------------


@dataclass
class Timing:
    """Intervals of an account thread; tests shorten them."""

    idle_check: float = 1.0  # how often IDLE/NOOP waiting looks at stop and "sync now"
    noop_poll: float = 30.0  # NOOP polling interval where IDLE is missing
    resync: float = RESYNC_SECONDS
    idle_max: float = IDLE_MAX
    # A first short IDLE, then a NOOP: mail that landed in the instant before IDLE
    # began may not be announced by it (a Maildir server trusts directory times to
    # the second and falls back to its own slow check), but a NOOP a moment later
    # makes it look again.
    idle_settle: float = 2.0
    backoff_base: float = 2.0


class AccountWorker(threading.Thread):
    """Keeps one account current until `stop` is set (see the module docstring)."""

    def __init__(self, account_id: int, *, timing: Timing) -> None:
        super().__init__(name=f"posta-sync-{account_id}", daemon=True)
        self.account_id = account_id
        self.timing = timing
        self.stop_event = threading.Event()
        self.auth_failures = 0
        self.failures = 0
        self.handled_request: datetime | None = None

    def stop(self) -> None:
        self.stop_event.set()

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                delay = self._connected_once()
                if delay is None:
                    return
                self.stop_event.wait(delay)
        finally:
            connection.close()

    def _connected_once(self) -> float | None:
        """Connect, sync, wait for news until something fails; return the pause
        before reconnecting, or None to end the thread (account gone or paused)."""
        close_old_connections()
        account = Account.objects.filter(pk=self.account_id).first()
        if account is None:
            return None
        self.handled_request = account.sync_requested_at
        client: IMAPClient | None = None
        try:
            client = engine.open_account(account)
            session = engine.sync_account(client, account)
            self.auth_failures = self.failures = 0
            self._watch(session, account)
            return 0.0 if not self.stop_event.is_set() else None
        except engine.SecretUnreadable as exc:
            # Retrying cannot decrypt it: pause until the user enters it again.
            engine.record_failure(self.account_id, exc, pause=True)
            log.warning("account %s: stored secret unreadable", self.account_id)
            return None
        except errors.AuthenticationFailed as exc:
            self.auth_failures += 1
            pause = self.auth_failures >= AUTH_FAILURES_TO_PAUSE
            engine.record_failure(self.account_id, exc, pause=pause)
            log.warning("account %s: login refused (%s)", self.account_id, exc.code)
            return None if pause else self._backoff()
        except errors.ServerBusy as exc:
            engine.record_failure(self.account_id, exc)
            self.failures += 2  # throttled: slow down more than for a network error
            return self._backoff()
        except errors.MailError as exc:
            engine.record_failure(self.account_id, exc)
            log.info("account %s: %s", self.account_id, exc)
            return self._backoff()
        except Exception:
            log.exception("account %s: sync failed", self.account_id)
            return self._backoff()
        finally:
            if client is not None:
                close_quietly(client)

    def _backoff(self) -> float:
        self.failures += 1
        base = min(self.timing.backoff_base * 2.0 ** min(self.failures, 20), MAX_BACKOFF)
        return float(base * (0.5 + random.random() / 2))  # noqa: S311 - jitter, not a secret

    def _watch(self, session: engine.Session, account: Account) -> None:
        """Wait for changes on INBOX and act on them until stopped or resync is due."""
        last_full = time.monotonic()
        downloading = engine.bodies_pending(account)
        while not self.stop_event.is_set():
            inbox = Folder.objects.filter(account=account, role=Folder.Role.INBOX).first()
            if inbox is None:
                inbox = Folder.objects.filter(account=account, name__iexact="INBOX").first()
            if inbox is None:
                self.stop_event.wait(self.timing.noop_poll)
                return
            if downloading:
                # The mirror of the bodies continues one step at a time, with a
                # look at INBOX between steps so new mail still shows at once.
                engine.fetch_pending_bodies(session, account)
                downloading = engine.bodies_pending(account)
                news = not engine.sync_selected(session, inbox) and (
                    self._changed_since_stored(session, inbox)
                )
            elif session.idle:
                news = self._idle(session, inbox)
            else:
                news = self._noop(session, inbox)
            if self.stop_event.is_set():
                return
            requested = self._sync_requested()
            if requested or time.monotonic() - last_full > self.timing.resync:
                engine.sync_account(session.client, account, session=session)
                last_full = time.monotonic()
            elif news:
                if not engine.sync_selected(session, inbox):
                    engine.sync_folder(session, inbox)
                engine.fetch_pending_bodies(session, account, limit=50)
                engine.record_success(account.pk)

    def _sync_requested(self) -> bool:
        requested = (
            Account.objects.filter(pk=self.account_id)
            .values_list("sync_requested_at", flat=True)
            .first()
        )
        if requested is not None and (
            self.handled_request is None or requested > self.handled_request
        ):
            self.handled_request = requested
            return True
        return False

    def _idle(self, session: engine.Session, inbox: Folder) -> bool:
        """IDLE on INBOX until the server reports something (True), or until it is
        time to look at the database (False)."""
        client = session.client
        if engine.sync_selected(session, inbox):
            pass  # stored whatever arrived since the last look, without a SELECT
        elif self._changed_since_stored(session, inbox):
            return True  # arrived between the last sync and this IDLE
        started = time.monotonic()
        step = self.timing.idle_settle
        settle_until = started + step
        with imap_errors(host=session.host):
            while True:
                client.idle()
                try:
                    outcome = self._wait_in_idle(client, started, settle_until)
                finally:
                    _tag_line, done_responses = client.idle_done()
                if outcome is not None:
                    return outcome or bool(done_responses)
                # A settle period is over: one NOOP, then IDLE again. Each new IDLE
                # has the same blind instant at its start, so the NOOPs continue at
                # doubling intervals (2 s, 4 s, ... up to SETTLE_MAX).
                _typ, noop_responses = client.noop()
                if done_responses or noop_responses:
                    return True
                step = min(step * 2, SETTLE_MAX)
                settle_until = time.monotonic() + step

    def _wait_in_idle(
        self, client: IMAPClient, started: float, settle_until: float
    ) -> bool | None:
        """Wait inside IDLE: True on news, False when it is time to leave, None when
        the settle period ends."""
        while not self.stop_event.is_set():
            if client.idle_check(timeout=self.timing.idle_check):
                return True
            now = time.monotonic()
            if now - started > self.timing.idle_max or self._request_pending():
                return False
            if now >= settle_until:
                return None
        return False

    @staticmethod
    def _changed_since_stored(session: engine.Session, inbox: Folder) -> bool:
        """EXAMINE INBOX and compare with what is stored: mail that arrived before
        IDLE began is not announced during it (RFC 2177 reports only new events)."""
        raw = session.examine(inbox.name)
        return raw.get(b"UIDNEXT") != inbox.uidnext or raw.get(b"EXISTS") != inbox.message_count

    def _noop(self, session: engine.Session, inbox: Folder) -> bool:
        if self._changed_since_stored(session, inbox):
            return True
        deadline = time.monotonic() + self.timing.noop_poll
        while time.monotonic() < deadline and not self.stop_event.is_set():
            if self._request_pending():
                return False
            self.stop_event.wait(self.timing.idle_check)
        with imap_errors(host=session.host):
            _typ, responses = session.client.noop()
        return bool(responses)

    def _request_pending(self) -> bool:
        requested = (
            Account.objects.filter(pk=self.account_id)
            .values_list("sync_requested_at", flat=True)
            .first()
        )
        return requested is not None and (
            self.handled_request is None or requested > self.handled_request
        )


# --- supervisor -----------------------------------------------------------------


class SyncService:
    """Claims accounts and runs one AccountWorker per claimed account."""

    def __init__(
        self,
        *,
        owner: str | None = None,
        tick: float = 5.0,
        max_accounts: int = 500,
        timing: Timing | None = None,
    ) -> None:
        self.owner = owner or make_owner()
        self.tick = tick
        self.max_accounts = max_accounts
        self.timing = timing or Timing()
        self.workers: dict[int, AccountWorker] = {}
        self.stop_event = threading.Event()

    def run(self) -> None:
        """Supervise until `stop()`; then stop the threads and release the leases."""
        try:
            while not self.stop_event.is_set():
                self.step()
                self.stop_event.wait(self.tick)
        finally:
            self.shutdown()

    def stop(self) -> None:
        self.stop_event.set()

    def step(self) -> None:
        """One supervisor round: reap, renew, claim, start."""
        close_old_connections()
        for account_id, worker in list(self.workers.items()):
            if not worker.is_alive():
                del self.workers[account_id]
                release(self.owner, [account_id])
        held = renew(self.owner, list(self.workers))
        for account_id in [a for a in self.workers if a not in held]:
            log.warning("account %s: lease lost; stopping its thread", account_id)
            self.workers.pop(account_id).stop()
        for account_id in candidate_accounts():
            if len(self.workers) >= self.max_accounts:
                break
            if account_id in self.workers or not try_claim(account_id, self.owner):
                continue
            worker = AccountWorker(account_id, timing=self.timing)
            self.workers[account_id] = worker
            worker.start()

    def shutdown(self) -> None:
        for worker in self.workers.values():
            worker.stop()
        for worker in self.workers.values():
            worker.join(timeout=30)
        release(self.owner, list(self.workers))
        self.workers.clear()
        connection.close()
