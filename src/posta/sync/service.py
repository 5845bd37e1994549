"""The sync service: a supervisor that claims accounts and keeps each one current.

One process (`posta sync`) runs one `SyncService`. Its supervisor loop, every few
seconds:

1. claims accounts with a database lease (`SyncLease`): one conditional UPDATE
   `... WHERE expires_at < now OR owner = me`, or an INSERT for an account never
   leased; both are atomic on SQLite and PostgreSQL, so two processes never hold
   one account, and a dead process's accounts are taken over once its leases
   expire (leases.LEASE_SECONDS, well within a minute);
2. renews the leases it holds in one UPDATE; an account whose lease was lost (the
   process stalled past expiry and another took it) has its thread stopped;
3. starts one thread per claimed account (`AccountWorker`).

An account thread connects, runs a full pass (posta.sync.account_pass), then waits for
news on INBOX with IDLE (RFC 2177; re-issued before 29 minutes, here every
IDLE_MAX seconds, with a NOOP after 2 s, 4 s, ... up to SETTLE_MAX for mail that
landed just before an IDLE began) or, where IDLE is missing, NOOP polling (RFC 3501
§6.1.2). Other
folders are resynced every RESYNC_SECONDS, and at once when the user asks ("sync
now": Account.sync_requested_at). On failure it reconnects with exponential
backoff and jitter; ServerBusy (RFC 5530 throttling codes) slows it down further;
repeated AuthenticationFailed pauses the account (sync_state "paused",
last_error_code "auth_failed", last_error_at) until the user asks to sync again.
After an outage a healthy account pauses at most POSTA_SYNC_RECONNECT_CAP, and the
first connection to get back into a server wakes the pauses of the others there
(posta.sync.reconnect).

Push beyond INBOX. IDLE watches only the selected mailbox (RFC 2177 §3), yet mail
also lands elsewhere without the user: server-side filters (Sieve fileinto), spam
filing, the Sent copies of the user's other clients. So each account thread also
runs up to POSTA_IDLE_FOLDERS `FolderWatcher` threads, each with a connection of
its own that EXAMINEs one folder and waits there with IDLE (the same waiting as on
INBOX); on news it brings that folder up to date on its connection and waits
again. The budget is small because servers limit connections per user (Dovecot's
mail_max_userip_connections is 10 by default, Gmail allows 15) and opening a
message whose body is not stored yet takes one short connection more: an account
never holds more than 1 + POSTA_IDLE_FOLDERS connections besides that one.

    account thread ── full pass ──> choose folders ──> start/stop watchers
         │    ▲                     (busiest first)            │
         ▼    │ resync due / "sync now"                        ▼
     IDLE on INBOX                                watcher: connect, EXAMINE
                                                  folder, catch up ──> IDLE
                                                            ▲            │ news
                                                            └── sync ◄───┘

The folders are chosen after every full pass: selectable ones other than INBOX and
Trash (mail reaches Trash only by the user's own hand), the one with the newest
stored message first, ties broken by role (spam, sent, drafts, archive, then the
rest). Watchers no longer chosen are stopped (and joined before new ones start, so
the budget holds while they change); a server without IDLE gets none, its folders
are covered by the resync. A watcher reconnects with backoff on errors and ends on
a refused login (the account thread owns the account's state and pauses it). The
account thread stops and joins its watchers whenever it ends (lease lost,
shutdown, account paused or gone).

One folder is never synced by two connections at once: `FOLDER_LOCKS` holds a lock
per folder, taken by a watcher while it brings its folder up to date (never while
it waits in IDLE) and by the full pass around each folder it looks at.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime

from django.conf import settings
from django.db import close_old_connections, connection
from imapclient import IMAPClient

from posta.accounts.models import Account, Folder
from posta.core.leases import make_owner
from posta.mailproto import errors
from posta.mailproto.imap.client import close_quietly, imap_errors
from posta.mailproto.imap.session import Session
from posta.remote import connect
from posta.remote.account_errors import record_failure
from posta.sync import account_pass, bodies, folder_state, leases, reconnect
from posta.sync.watchers import (
    FOLDER_LOCKS,
    FolderWatcher,
    IdleWait,
    Reconnecting,
    Timing,
    changed_since_stored,
    folders_to_watch,
)

log = logging.getLogger(__name__)

AUTH_FAILURES_TO_PAUSE = 3
# How long an account thread waits for a watcher it stopped: one IDLE check, DONE
# and LOGOUT, or at worst a command running into the network timeout.
WATCHER_JOIN_SECONDS = 30.0


# --- one account ----------------------------------------------------------------


class AccountWorker(Reconnecting):
    """Keeps one account current until `stop` is set (see the module docstring)."""

    def __init__(self, account_id: int, *, timing: Timing) -> None:
        super().__init__(f"posta-sync-{account_id}", account_id=account_id, timing=timing)
        self.auth_failures = 0
        self.handled_request: datetime | None = None
        self.idle_wait = IdleWait(
            timing=timing, stop_event=self.stop_event, leave=self._request_pending
        )
        # Folder id -> its running watcher; the lock guards it against `stop()`,
        # called from the supervisor's thread.
        self.watchers: dict[int, FolderWatcher] = {}
        self.watchers_lock = threading.Lock()
        # Stopped watchers that did not end within WATCHER_JOIN_SECONDS: their
        # connections still count against the budget.
        self.retiring: list[FolderWatcher] = []
        self.chosen: tuple[int, ...] | None = None  # folders chosen at the last full pass

    def stop(self) -> None:
        super().stop()
        with self.watchers_lock:
            for watcher in self.watchers.values():
                watcher.stop()

    def _refused_before(self) -> bool:
        return self.auth_failures > 0

    def _ended(self) -> None:
        with self.watchers_lock:
            ending = list(self.watchers.values())
            self.watchers.clear()
        self._retire(ending)

    def _connected_once(self) -> float | None:
        """Connect, sync, wait for news until something fails; return the pause
        before reconnecting, or None to end the thread (account gone or paused)."""
        close_old_connections()
        account = Account.objects.filter(pk=self.account_id).first()
        if account is None:
            return None
        self.handled_request = account.sync_requested_at
        self.server = reconnect.server_of(account)
        client: IMAPClient | None = None
        try:
            client = connect.open_account(account)
            self._logged_in()
            session = self._full_pass(client, account)
            self.auth_failures = self.failures = 0
            self._watch(session, account)
            return 0.0 if not self.stop_event.is_set() else None
        except errors.SettingsRefused as exc:
            # The failure table's ACCOUNT verdict that retrying cannot change (the
            # secret cannot be decrypted, the host is not allowed): pause until the
            # user fixes the settings.
            record_failure(self.account_id, exc, pause=True)
            log.warning("account %s: settings refused (%s)", self.account_id, exc.code)
            return None
        except errors.AuthenticationFailed as exc:
            self.auth_failures += 1
            pause = self.auth_failures >= AUTH_FAILURES_TO_PAUSE
            record_failure(self.account_id, exc, pause=pause)
            log.warning("account %s: login refused (%s)", self.account_id, exc.code)
            return None if pause else self._backoff(exc)
        except errors.ServerBusy as exc:
            record_failure(self.account_id, exc)
            self.failures += 2  # throttled: slow down more than for a network error
            return self._backoff(exc)
        except errors.MailError as exc:
            record_failure(self.account_id, exc)
            log.info("account %s: %s", self.account_id, exc)
            return self._backoff(exc)
        except Exception as exc:
            log.exception("account %s: sync failed", self.account_id)
            return self._backoff(exc)
        finally:
            if client is not None:
                close_quietly(client)

    def _full_pass(
        self, client: IMAPClient, account: Account, *, session: Session | None = None
    ) -> Session:
        """Sync every folder, then choose the folders to watch anew.

        The pass waits for a folder's lock rather than skipping a folder a watcher
        holds: a watcher holds it only while it syncs (never while in IDLE), so the
        wait is short, and the pass stays the safety net for a watcher whose
        connection died silently in IDLE (a dropped NAT mapping shows only at the
        next re-issue). Where the STATUS answer shows no change (CONDSTORE), the
        pass skips the folder anyway without selecting it.
        """
        session = account_pass.sync_account(
            client, account, session=session, folder_guard=FOLDER_LOCKS.syncing
        )
        self._arrange_watchers(session)
        return session

    def _arrange_watchers(self, session: Session) -> None:
        """Stop the watchers no longer chosen (or ended), then start the missing
        ones, never holding more connections than the budget allows."""
        # Read at run time: the setting may differ per process (and per test).
        budget = settings.POSTA_IDLE_FOLDERS if session.idle else 0
        chosen = folders_to_watch(self.account_id, budget=budget)
        self.chosen = tuple(chosen)
        with self.watchers_lock:
            leaving = [
                self.watchers.pop(folder_id)
                for folder_id, watcher in list(self.watchers.items())
                if folder_id not in chosen or not watcher.is_alive()
            ]
        self._retire(leaving)
        with self.watchers_lock:
            room = budget - len(self.watchers) - len(self.retiring)
            for folder_id in [f for f in chosen if f not in self.watchers][: max(room, 0)]:
                if self.stop_event.is_set():
                    return  # stop() has stopped those already running
                watcher = FolderWatcher(self.account_id, folder_id, timing=self.timing)
                self.watchers[folder_id] = watcher
                watcher.start()

    def _retire(self, leaving: list[FolderWatcher]) -> None:
        """Stop and join `leaving` (outside the lock: `stop()` must not wait for it)."""
        for watcher in leaving:
            watcher.stop()
        deadline = time.monotonic() + WATCHER_JOIN_SECONDS
        for watcher in [*self.retiring, *leaving]:
            watcher.join(timeout=max(deadline - time.monotonic(), 0.0))
        self.retiring = [w for w in [*self.retiring, *leaving] if w.is_alive()]

    def _watch(self, session: Session, account: Account) -> None:
        """Wait for changes on INBOX and act on them until stopped or resync is due."""
        last_full = time.monotonic()
        downloading = bodies.bodies_pending(account)
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
                bodies.fetch_pending_bodies(session, account)
                downloading = bodies.bodies_pending(account)
                news = not folder_state.sync_selected(session, inbox) and (
                    changed_since_stored(session, inbox)
                )
            elif session.idle:
                news = self._idle(session, inbox)
            else:
                news = self._noop(session, inbox)
            if self.stop_event.is_set():
                return
            requested = self._sync_requested()
            if requested or time.monotonic() - last_full > self.timing.resync:
                self._full_pass(session.client, account, session=session)
                last_full = time.monotonic()
            elif news:
                if not folder_state.sync_selected(session, inbox):
                    folder_state.sync_folder(session, inbox, source="idle")
                bodies.fetch_pending_bodies(session, account, limit=50)
                account_pass.record_success(account.pk)

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

    def _idle(self, session: Session, inbox: Folder) -> bool:
        """IDLE on INBOX until the server reports something (True), or until it is
        time to look at the database (False)."""
        known = inbox.uidnext
        if folder_state.sync_selected(session, inbox):
            # Stored whatever arrived since the last look, without a SELECT. Mail
            # stored just now still needs its body: the caller fetches it, as for
            # news announced during IDLE (the IDLE would not announce it again).
            if inbox.uidnext != known:
                return True
        elif changed_since_stored(session, inbox):
            return True  # arrived between the last sync and this IDLE
        return self.idle_wait.until_news(session)

    def _noop(self, session: Session, inbox: Folder) -> bool:
        if changed_since_stored(session, inbox):
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
                leases.release(self.owner, [account_id])
        held = leases.renew(self.owner, list(self.workers))
        for account_id in [a for a in self.workers if a not in held]:
            log.warning("account %s: lease lost; stopping its thread", account_id)
            self.workers.pop(account_id).stop()
        for account_id in leases.candidate_accounts():
            if len(self.workers) >= self.max_accounts:
                break
            if account_id in self.workers or not leases.try_claim(account_id, self.owner):
                continue
            worker = AccountWorker(account_id, timing=self.timing)
            self.workers[account_id] = worker
            worker.start()

    def shutdown(self) -> None:
        for worker in self.workers.values():
            worker.stop()
        for worker in self.workers.values():
            worker.join(timeout=30)
        leases.release(self.owner, list(self.workers))
        self.workers.clear()
        connection.close()
